package geoip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"airlock/policy"
)

// writeDB builds a small City-layout database with mmdbwriter.
func writeDB(t *testing.T) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	city := func(lat, lon float64, country string) mmdbtype.Map {
		return mmdbtype.Map{
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon)},
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String(country)},
		}
	}
	for cidr, v := range map[string]mmdbtype.DataType{
		"81.2.69.0/24":    city(51.5142, -0.0931, "GB"),                                             // London
		"1.128.0.0/16":    city(-33.8688, 151.2093, "AU"),                                           // Sydney
		"2a02:cf40::/29":  city(52.52, 13.405, "DE"),                                                // Berlin
		"89.160.20.0/24":  mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("SE")}}, // no coordinates
		"175.16.199.0/24": city(0, 0, "CN"),                                                         // a real 0°, 0°
	} {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, v); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLookup(t *testing.T) {
	db, err := Open(writeDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		ip      string
		ok      bool
		country string
		lat     float64
	}{
		{"81.2.69.160", true, "GB", 51.5142},
		{"::ffff:81.2.69.160", true, "GB", 51.5142}, // IPv4-mapped
		{"1.128.3.4", true, "AU", -33.8688},
		{"2a02:cf40::1", true, "DE", 52.52},
		{"175.16.199.1", true, "CN", 0},
		{"89.160.20.1", false, "", 0}, // a record without coordinates
		{"8.8.8.8", false, "", 0},     // not in the database
		{"2001:4860::1", false, "", 0},
	}
	for _, tt := range tests {
		loc, ok := db.Lookup(netip.MustParseAddr(tt.ip))
		if ok != tt.ok || loc.Country != tt.country || loc.Lat != tt.lat {
			t.Errorf("%s: got %+v %v", tt.ip, loc, ok)
		}
	}
	if _, ok := db.Lookup(netip.Addr{}); ok {
		t.Error("the zero address was found")
	}
}

// TestImpossibleTravel: London then Sydney an hour later is impossible;
// a day later it is not.
func TestImpossibleTravel(t *testing.T) {
	db, err := Open(writeDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := db.Lookup(netip.MustParseAddr("81.2.69.1"))
	b, _ := db.Lookup(netip.MustParseAddr("1.128.0.1"))
	if bad, kmh := (policy.TravelRule{}).Check(a.Point(), b.Point(), time.Hour); !bad || kmh < 16000 {
		t.Fatalf("an hour: impossible=%v at %.0f km/h", bad, kmh)
	}
	if bad, _ := (policy.TravelRule{}).Check(a.Point(), b.Point(), 24*time.Hour); bad {
		t.Fatal("a day: reported impossible")
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("missing file opened")
	}
	junk := filepath.Join(t.TempDir(), "junk.mmdb")
	os.WriteFile(junk, []byte("this is not a MaxMind database"), 0o600)
	if _, err := Open(junk); err == nil {
		t.Error("junk opened")
	}
}

package risk

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"airlock"
	"airlock/policy"
	"airlock/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "airlock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2031, 3, 4, 12, 0, 0, 0, time.UTC)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func TestNetwork(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:1:2:3::9", "2001:db8:1::/48"},
		{"fe80::1%eth0", "fe80::/48"},
	} {
		got, ok := Network(tc.ip)
		if !ok || got != tc.want {
			t.Errorf("Network(%q) = %q, %v; want %q", tc.ip, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "localhost", "192.0.2.1:80", "300.1.1.1"} {
		if got, ok := Network(bad); ok {
			t.Errorf("Network(%q) = %q, want not ok", bad, got)
		}
	}
}

func TestNetworkNovelty(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{now: t0}
	g := &Gatherer{Store: st, Now: c.Now}
	sub := Subject{UserID: "u-1", IP: "192.0.2.10"}

	sig, err := g.Gather(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if !sig.NewNetwork {
		t.Fatal("ok-first-request: a never-seen network is not new")
	}
	if err := g.Seen(ctx, "u-1", "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	// Another address in the same /24 is the same network.
	sig, _ = g.Gather(ctx, Subject{UserID: "u-1", IP: "192.0.2.200"})
	if sig.NewNetwork {
		t.Error("fail-same-/24: an address in a seen /24 counts as new")
	}
	// Another user has not seen it.
	sig, _ = g.Gather(ctx, Subject{UserID: "u-2", IP: "192.0.2.10"})
	if !sig.NewNetwork {
		t.Error("another user's network history leaks into this user's")
	}
	// 29 days later it is still known; 31 days later it is new again.
	c.now = t0.Add(29 * 24 * time.Hour)
	if sig, _ = g.Gather(ctx, sub); sig.NewNetwork {
		t.Error("a network seen 29 days ago counts as new")
	}
	c.now = t0.Add(31 * 24 * time.Hour)
	if sig, _ = g.Gather(ctx, sub); !sig.NewNetwork {
		t.Error("a network last seen 31 days ago does not count as new")
	}
	// IPv6: the /48 is the unit.
	if err := g.Seen(ctx, "u-1", "2001:db8:1:aaaa::1"); err != nil {
		t.Fatal(err)
	}
	if sig, _ = g.Gather(ctx, Subject{UserID: "u-1", IP: "2001:db8:1:bbbb::2"}); sig.NewNetwork {
		t.Error("an address in a seen IPv6 /48 counts as new")
	}
	if sig, _ = g.Gather(ctx, Subject{UserID: "u-1", IP: "2001:db8:2::1"}); !sig.NewNetwork {
		t.Error("another IPv6 /48 does not count as new")
	}
	// No address: no novelty claim either way.
	if sig, _ = g.Gather(ctx, Subject{UserID: "u-1"}); sig.NewNetwork {
		t.Error("a request without an address reports a new network")
	}
}

func TestSeenRefresh(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{now: t0}
	g := &Gatherer{Store: st, Now: c.Now}
	if err := g.Seen(ctx, "u-1", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	c.now = t0.Add(30 * time.Minute)
	if err := g.Seen(ctx, "u-1", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	n, err := st.FindNetwork(ctx, "u-1", "192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if !n.LastSeen.Equal(t0) {
		t.Errorf("seen again within the refresh interval: LastSeen %s, want unchanged %s", n.LastSeen, t0)
	}
	c.now = t0.Add(2 * time.Hour)
	if err := g.Seen(ctx, "u-1", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if n, _ = st.FindNetwork(ctx, "u-1", "192.0.2.0/24"); !n.LastSeen.Equal(c.now) {
		t.Errorf("LastSeen = %s, want %s", n.LastSeen, c.now)
	}
	if err := g.Seen(ctx, "u-1", "not-an-ip"); err != nil {
		t.Errorf("Seen with an unparsable address: %v", err)
	}
}

// fakeGeo places 192.0.2.0/24 in Berlin and 198.51.100.0/24 in Sydney.
type fakeGeo struct{}

func (fakeGeo) Locate(ip netip.Addr) (airlock.GeoPoint, bool) {
	switch {
	case netip.MustParsePrefix("192.0.2.0/24").Contains(ip):
		return airlock.GeoPoint{Lat: 52.52, Lon: 13.40, Country: "DE"}, true
	case netip.MustParsePrefix("198.51.100.0/24").Contains(ip):
		return airlock.GeoPoint{Lat: -33.87, Lon: 151.21, Country: "AU"}, true
	}
	return airlock.GeoPoint{}, false
}

// fakeTravel says Berlin→Sydney is 16,000 km and anything faster than
// 900 km/h is impossible.
func fakeTravel(from, to airlock.GeoPoint, dt time.Duration) (float64, bool) {
	km := 0.0
	if from.Country != to.Country {
		km = 16000
	}
	if dt <= 0 {
		return 0, km > 0
	}
	kmh := km / dt.Hours()
	return kmh, kmh > 900
}

func TestImpossibleTravel(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{now: t0}
	g := &Gatherer{Store: st, Locator: fakeGeo{}, Travel: fakeTravel, Now: c.Now}
	if err := g.Seen(ctx, "u-1", "192.0.2.1"); err != nil { // Berlin
		t.Fatal(err)
	}
	c.now = t0.Add(2 * time.Hour)
	sig, err := g.Gather(ctx, Subject{UserID: "u-1", IP: "198.51.100.9"}) // Sydney, 2 h later
	if err != nil {
		t.Fatal(err)
	}
	if !sig.ImpossibleTravel || sig.TravelKmh != 8000 {
		t.Errorf("fail-berlin-sydney-in-2h: impossible %v at %v km/h, want true at 8000", sig.ImpossibleTravel, sig.TravelKmh)
	}
	c.now = t0.Add(30 * time.Hour)
	sig, _ = g.Gather(ctx, Subject{UserID: "u-1", IP: "198.51.100.9"})
	if sig.ImpossibleTravel {
		t.Errorf("ok-berlin-sydney-in-30h: reported impossible at %v km/h", sig.TravelKmh)
	}
	// Same network as the last one: no travel at all.
	sig, _ = g.Gather(ctx, Subject{UserID: "u-1", IP: "192.0.2.99"})
	if sig.ImpossibleTravel || sig.TravelKmh != 0 {
		t.Errorf("same network: %+v", sig)
	}
	// An address the database does not know: no claim.
	sig, _ = g.Gather(ctx, Subject{UserID: "u-1", IP: "203.0.113.5"})
	if sig.ImpossibleTravel {
		t.Error("unlocated address reported as impossible travel")
	}
	// Without a locator the signal is off.
	g2 := &Gatherer{Store: st, Now: c.Now}
	c.now = t0.Add(time.Hour)
	if sig, _ = g2.Gather(ctx, Subject{UserID: "u-1", IP: "198.51.100.9"}); sig.ImpossibleTravel {
		t.Error("impossible travel without a GeoIP database")
	}
}

func TestCountedSignals(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{now: t0}
	g := &Gatherer{Store: st, Now: c.Now}
	sub := Subject{UserID: "u-1", DeviceID: "d-1", SessionCreated: t0}
	sig, err := g.Gather(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Signals{FirstDeviceUse: true}
	if sig != want {
		t.Errorf("clean history: %+v, want %+v", sig, want)
	}
	for _, at := range []time.Duration{-20 * time.Minute, -10 * time.Minute, -time.Minute, -time.Second} {
		if err := st.RecordRiskEvent(ctx, "u-1", airlock.RiskCeremonyFailure, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordRiskEvent(ctx, "u-1", airlock.RiskClone, t0.Add(-29*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordRiskEvent(ctx, "u-1", airlock.RiskRecovery, t0.Add(-8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	sess := &airlock.Session{ID: "s-old", TokenHash: []byte("h"), UserID: "u-1", DeviceID: "d-1", CreatedAt: t0.Add(-time.Hour),
		AuthTime: t0.Add(-time.Hour), LastSeen: t0.Add(-time.Hour), AbsoluteDeadline: t0.Add(time.Hour), IdleTimeout: time.Hour}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	sig, err = g.Gather(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	want = policy.Signals{FailedCeremonies: 3, CloneSignal: true, RecentRecovery: false, FirstDeviceUse: false}
	if sig != want {
		t.Errorf("with history: %+v, want %+v", sig, want)
	}
	if err := st.RecordRiskEvent(ctx, "u-1", airlock.RiskRecovery, t0.Add(-6*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if sig, _ = g.Gather(ctx, sub); !sig.RecentRecovery {
		t.Error("a recovery 6 days ago is not recent")
	}
	// Another device of the same user is used for the first time.
	if sig, _ = g.Gather(ctx, Subject{UserID: "u-1", DeviceID: "d-2", SessionCreated: t0}); !sig.FirstDeviceUse {
		t.Error("first session on d-2 not reported as first device use")
	}

	// Prune keeps what the windows still need.
	c.now = t0.Add(24 * time.Hour)
	if err := g.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := st.CountRiskEvents(ctx, "u-1", airlock.RiskClone, time.Time{})
	if n != 1 {
		t.Errorf("Prune dropped a clone event still inside its window (%d left)", n)
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	st := openStore(t)
	g := &Gatherer{Store: st}
	st.Close()
	if _, err := g.Gather(context.Background(), Subject{UserID: "u-1", IP: "192.0.2.1"}); err == nil {
		t.Fatal("Gather on a closed store returned no error")
	}
}

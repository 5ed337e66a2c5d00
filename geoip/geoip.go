// Package geoip looks up where an IP address is, in a MaxMind-format (MMDB)
// city database such as GeoLite2-City or DB-IP City Lite, for the
// impossible-travel risk signal. The travel computation itself is pure and
// lives in policy (policy.TravelRule).
package geoip

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"

	"airlock/policy"
)

// DB is an open city database. It is safe for concurrent use.
type DB struct {
	r *maxminddb.Reader
}

// Location is where the database places an address.
type Location struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	Country string  `json:"country,omitempty"` // ISO 3166-1 alpha-2, when known
}

// Point returns the location's coordinates.
func (l Location) Point() policy.Point { return policy.Point{Lat: l.Lat, Lon: l.Lon} }

// Open opens the MMDB file at path (memory-mapped). The file must be a
// valid MaxMind DB; its records are expected in the GeoIP2/GeoLite2 City
// layout (location.latitude, location.longitude, country.iso_code).
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: open %s: %w", path, err)
	}
	if r.Metadata.NodeCount == 0 {
		r.Close()
		return nil, errors.New("geoip: " + path + ": empty database")
	}
	return &DB{r: r}, nil
}

// Close releases the database.
func (db *DB) Close() error { return db.r.Close() }

// record is the part of a City record Airlock reads. Pointers tell a
// missing coordinate from 0°.
type record struct {
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
}

// Lookup returns the location of ip and whether the database has
// coordinates for it. An invalid address, one the database does not cover,
// a record without coordinates or a decoding error all report false: no
// location, so no travel signal, rather than a wrong one.
func (db *DB) Lookup(ip netip.Addr) (Location, bool) {
	if !ip.IsValid() {
		return Location{}, false
	}
	res := db.r.Lookup(ip.Unmap())
	if !res.Found() {
		return Location{}, false
	}
	var rec record
	if err := res.Decode(&rec); err != nil || rec.Location.Latitude == nil || rec.Location.Longitude == nil {
		return Location{}, false
	}
	return Location{Lat: *rec.Location.Latitude, Lon: *rec.Location.Longitude, Country: rec.Country.ISOCode}, true
}

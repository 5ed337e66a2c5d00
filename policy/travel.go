package policy

import (
	"math"
	"time"
)

// Point is a position on Earth in decimal degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

// DistanceKm returns the great-circle distance between a and b (haversine
// formula).
func DistanceKm(a, b Point) float64 {
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(1, h)))
}

// TravelRule says when the movement between two located requests of one
// user is impossible. The zero value uses the defaults.
type TravelRule struct {
	// MaxKmh is the fastest plausible travel (default 900 km/h, an
	// airliner).
	MaxKmh float64 `yaml:"max_kmh" json:"max_kmh"`
	// MinKm: shorter distances are never impossible travel, because GeoIP
	// locations are only approximate (default 300 km).
	MinKm float64 `yaml:"min_km" json:"min_km"`
}

// Default travel rule values.
const (
	DefaultMaxKmh = 900
	DefaultMinKm  = 300
)

// Check returns the implied speed of moving from `from` to `to` in dt and
// whether it is impossible: at least MinKm apart and faster than MaxKmh.
// A dt under one second counts as one second, so the speed stays finite.
// Coordinates outside ±90/±180 or not numbers are never impossible travel.
func (r TravelRule) Check(from, to Point, dt time.Duration) (impossible bool, kmh float64) {
	if !valid(from) || !valid(to) {
		return false, 0
	}
	maxKmh, minKm := r.MaxKmh, r.MinKm
	if maxKmh <= 0 {
		maxKmh = DefaultMaxKmh
	}
	if minKm <= 0 {
		minKm = DefaultMinKm
	}
	km := DistanceKm(from, to)
	hours := max(dt, time.Second).Hours()
	kmh = km / hours
	return km >= minKm && kmh > maxKmh, kmh
}

func valid(p Point) bool {
	return p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180
}

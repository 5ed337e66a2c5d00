package policy

import (
	"math"
	"testing"
	"time"
)

var (
	london = Point{51.5074, -0.1278}
	paris  = Point{48.8566, 2.3522}
	sydney = Point{-33.8688, 151.2093}
	berlin = Point{52.52, 13.405}
)

func TestDistanceKm(t *testing.T) {
	for _, tt := range []struct {
		a, b Point
		want float64 // km, great circle
	}{
		{london, paris, 343.6},
		{london, sydney, 16994},
		{london, london, 0},
		{Point{0, 0}, Point{0, 180}, math.Pi * earthRadiusKm},
	} {
		if got := DistanceKm(tt.a, tt.b); math.Abs(got-tt.want) > tt.want*0.005+0.1 {
			t.Errorf("%v→%v: %.1f km, want %.1f", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestTravelRule(t *testing.T) {
	tests := []struct {
		name     string
		rule     TravelRule
		from, to Point
		dt       time.Duration
		want     bool
	}{
		{"ok-london-sydney-in-a-day", TravelRule{}, london, sydney, 24 * time.Hour, false},
		{"fail-london-sydney-in-an-hour", TravelRule{}, london, sydney, time.Hour, true},
		{"fail-london-berlin-in-10-minutes", TravelRule{}, london, berlin, 10 * time.Minute, true},
		{"ok-london-berlin-in-2-hours", TravelRule{}, london, berlin, 2 * time.Hour, false},
		{"ok-under-min-distance", TravelRule{}, london, Point{51.0, 0.5}, time.Second, false},
		{"fail-zero-dt", TravelRule{}, london, paris, 0, true},
		{"ok-configured-faster", TravelRule{MaxKmh: 20000}, london, sydney, time.Hour, false},
		{"fail-configured-min-km", TravelRule{MinKm: 10}, london, Point{51.0, 0.5}, time.Minute, true},
		{"ok-bad-coordinates", TravelRule{}, Point{math.NaN(), 0}, sydney, time.Second, false},
		{"ok-out-of-range", TravelRule{}, Point{95, 0}, sydney, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kmh := tt.rule.Check(tt.from, tt.to, tt.dt)
			if got != tt.want || math.IsInf(kmh, 0) || math.IsNaN(kmh) {
				t.Fatalf("got %v at %.0f km/h, want %v", got, kmh, tt.want)
			}
		})
	}
	if _, kmh := (TravelRule{}).Check(london, sydney, 10*time.Hour); math.Abs(kmh-1699.4) > 10 {
		t.Errorf("speed %.1f km/h, want ≈1699", kmh)
	}
}

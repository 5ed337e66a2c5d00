package policy

import (
	"strings"
	"testing"
	"time"

	"airlock"
)

func contributions(r Risk) map[string]Contribution {
	m := map[string]Contribution{}
	for _, c := range r.Signals {
		m[c.Signal] = c
	}
	return m
}

// TestRiskSignals fires each signal alone and checks its points and text.
func TestRiskSignals(t *testing.T) {
	e := NewEngine(Default(), DefaultConfig())
	w := DefaultWeights()
	tests := []struct {
		signal string
		mut    func(*Input)
		points int
		text   string
	}{
		{SignalDeviceNoncompliant, func(in *Input) { in.Device.Compliant = false }, w[SignalDeviceNoncompliant], "not compliant"},
		{SignalPostureStale, func(in *Input) { in.Device.PostureAgeS = 25 * 3600 }, w[SignalPostureStale], "25h old (limit 24h)"},
		{SignalPostureStale, func(in *Input) { in.Device.PostureAgeS = -1 }, w[SignalPostureStale], "never reported"},
		{SignalSessionAge, func(in *Input) { in.Session.AgeS = 9 * 3600 }, w[SignalSessionAge], "9h old (over 8h)"},
		{SignalIdle, func(in *Input) { in.Session.IdleS = 700 }, w[SignalIdle], "idle for 11m40s"},
		{SignalUVAge, func(in *Input) { in.Session.UVAgeS = 5400 }, w[SignalUVAge], "1h30m ago (over 1h)"},
		{SignalUVAge, func(in *Input) { in.Session.UVAgeS = -1 }, w[SignalUVAge], "no user-verified"},
		{SignalNewNetwork, func(in *Input) { in.Signals.NewNetwork = true }, w[SignalNewNetwork], "network not seen"},
		{SignalImpossibleTravel, func(in *Input) { in.Signals.ImpossibleTravel, in.Signals.TravelKmh = true, 4321 }, w[SignalImpossibleTravel], "4321 km/h"},
		{SignalFailedCeremonies, func(in *Input) { in.Signals.FailedCeremonies = 2 }, 2 * w[SignalFailedCeremonies], "2 failed"},
		{SignalFailedCeremonies, func(in *Input) { in.Signals.FailedCeremonies = 9 }, 3 * w[SignalFailedCeremonies], "9 failed passkey ceremonies recently (3 counted)"},
		{SignalRecentRecovery, func(in *Input) { in.Signals.RecentRecovery = true }, w[SignalRecentRecovery], "recovered"},
		{SignalCloneSignal, func(in *Input) { in.Signals.CloneSignal = true }, w[SignalCloneSignal], "sign-count regression"},
		{SignalOutsideWindow, func(in *Input) {
			in.Subject.Kind = airlock.UserContractor
			in.Subject.Window = &airlock.AccessWindow{NotAfter: t0}
		}, w[SignalOutsideWindow], "window ended"},
		{SignalFirstDeviceUse, func(in *Input) { in.Signals.FirstDeviceUse = true }, w[SignalFirstDeviceUse], "first session"},
	}
	if d := e.Decide(baseInput()); d.Risk.Score != 0 || len(d.Risk.Signals) != 0 {
		t.Fatalf("base input has risk %+v", d.Risk)
	}
	for _, tt := range tests {
		t.Run(tt.signal, func(t *testing.T) {
			in := baseInput()
			tt.mut(&in)
			d := e.Decide(in)
			if len(d.Risk.Signals) != 1 {
				t.Fatalf("signals %+v, want only %s", d.Risk.Signals, tt.signal)
			}
			c := d.Risk.Signals[0]
			if c.Signal != tt.signal || c.Points != tt.points || d.Risk.Score != tt.points || !strings.Contains(c.Text, tt.text) {
				t.Fatalf("got %+v score %d, want %s %d points with %q", c, d.Risk.Score, tt.signal, tt.points, tt.text)
			}
		})
	}
}

func TestRiskScoreClampedAndConfigured(t *testing.T) {
	in := baseInput()
	in.Signals = Signals{NewNetwork: true, ImpossibleTravel: true, TravelKmh: 9000, FailedCeremonies: 3, RecentRecovery: true, CloneSignal: true, FirstDeviceUse: true}
	d := NewEngine(Default(), DefaultConfig()).Decide(in)
	if d.Risk.Score != 100 || len(d.Risk.Signals) != 6 || d.Outcome != Deny {
		t.Fatalf("got %s score %d signals %d", d.Outcome, d.Risk.Score, len(d.Risk.Signals))
	}
	// Weights override the defaults key by key; 0 switches a signal off
	// but it is still listed.
	cfg := Config{Weights: map[string]int{SignalCloneSignal: 0, SignalNewNetwork: 5}, SessionAge: time.Minute}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in = baseInput()
	in.Signals = Signals{NewNetwork: true, CloneSignal: true, FirstDeviceUse: true}
	d = NewEngine(Default(), cfg).Decide(in)
	c := contributions(d.Risk)
	if c[SignalCloneSignal].Points != 0 || c[SignalNewNetwork].Points != 5 || c[SignalFirstDeviceUse].Points != 15 || c[SignalSessionAge].Points != 10 {
		t.Fatalf("contributions %+v", d.Risk.Signals)
	}
	if d.Risk.Score != 30 || d.Outcome != Allow {
		t.Fatalf("got %s score %d", d.Outcome, d.Risk.Score)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"fail-unknown-signal": {Weights: map[string]int{"moon_phase": 5}},
		"fail-weight-101":     {Weights: map[string]int{SignalIdle: 101}},
		"fail-negative":       {Weights: map[string]int{SignalIdle: -1}},
		"fail-duration":       {Idle: -time.Second},
	} {
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInWindow(t *testing.T) {
	// t0 is Wednesday 2026-11-18 10:00 UTC; in New York it is 05:00.
	tests := []struct {
		name string
		w    airlock.AccessWindow
		at   time.Time
		want bool
	}{
		{"ok-zero-window", airlock.AccessWindow{}, t0, true},
		{"ok-between-dates", airlock.AccessWindow{NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}, t0, true},
		{"ok-not-before-inclusive", airlock.AccessWindow{NotBefore: t0}, t0, true},
		{"fail-before", airlock.AccessWindow{NotBefore: t0.Add(time.Second)}, t0, false},
		{"fail-not-after-exclusive", airlock.AccessWindow{NotAfter: t0}, t0, false},
		{"ok-weekday", airlock.AccessWindow{Weekdays: []time.Weekday{time.Wednesday}}, t0, true},
		{"fail-weekday", airlock.AccessWindow{Weekdays: []time.Weekday{time.Thursday}}, t0, false},
		{"ok-hours", airlock.AccessWindow{StartHour: 10, EndHour: 11}, t0, true},
		{"fail-hours-end-exclusive", airlock.AccessWindow{StartHour: 9, EndHour: 10}, t0, false},
		{"ok-end-hour-zero-no-bound", airlock.AccessWindow{StartHour: 12}, t0, true},
		{"ok-overnight-late", airlock.AccessWindow{StartHour: 22, EndHour: 6}, t0.Add(13 * time.Hour), true},
		{"ok-overnight-early", airlock.AccessWindow{StartHour: 22, EndHour: 11}, t0, true},
		{"fail-overnight-day", airlock.AccessWindow{StartHour: 22, EndHour: 6}, t0, false},
		{"ok-time-zone", airlock.AccessWindow{StartHour: 5, EndHour: 6, TimeZone: "America/New_York"}, t0, true},
		{"fail-time-zone", airlock.AccessWindow{StartHour: 9, EndHour: 17, TimeZone: "America/New_York"}, t0, false},
		{"fail-time-zone-weekday", airlock.AccessWindow{Weekdays: []time.Weekday{time.Wednesday}, TimeZone: "Pacific/Kiritimati"}, t0.Add(14 * time.Hour), false},
		{"fail-unknown-zone", airlock.AccessWindow{TimeZone: "Mars/Olympus"}, t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := InWindow(tt.w, tt.at)
			if got != tt.want || (!got && why == "") {
				t.Fatalf("got %v (%q), want %v", got, why, tt.want)
			}
		})
	}
}

func TestExceptionScope(t *testing.T) {
	in := baseInput()
	live := t0.Add(time.Minute)
	for _, tt := range []struct {
		name string
		x    Exception
		want bool
	}{
		{"ok-exact", Exception{UserID: "usr_admin", Action: "config.read", Resource: "grafana", Expires: live}, true},
		{"ok-wildcards", Exception{Expires: live}, true},
		{"fail-expired-at-now", Exception{Expires: t0}, false},
		{"fail-user", Exception{UserID: "usr_x", Expires: live}, false},
		{"fail-action", Exception{Action: "deploy.prod", Expires: live}, false},
		{"fail-resource", Exception{Resource: "ci", Expires: live}, false},
	} {
		if got := tt.x.IsLive(in); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
	in.Exceptions = []Exception{{ID: "exc_a", Effect: "custom", Expires: live}, {ID: "exc_b", Effect: EffectSkipStepUp, Expires: t0}}
	d := NewEngine(Default(), DefaultConfig()).Decide(in)
	if len(d.Exceptions) != 1 || d.Exceptions[0] != "exc_a" {
		t.Fatalf("exceptions %v", d.Exceptions)
	}
}

package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"airlock"
)

// Signal names: the keys of Config.Weights and Contribution.Signal.
const (
	SignalDeviceNoncompliant = "device_noncompliant"
	SignalPostureStale       = "posture_stale"
	SignalSessionAge         = "session_age"
	SignalIdle               = "idle"
	SignalUVAge              = "uv_age"
	SignalNewNetwork         = "new_network"
	SignalImpossibleTravel   = "impossible_travel"
	SignalFailedCeremonies   = "failed_ceremonies"
	SignalRecentRecovery     = "recent_recovery"
	SignalCloneSignal        = "clone_signal"
	SignalOutsideWindow      = "outside_window"
	SignalFirstDeviceUse     = "first_device_use"
)

// signalNames lists every signal in the order contributions are reported.
var signalNames = []string{
	SignalDeviceNoncompliant, SignalPostureStale, SignalSessionAge, SignalIdle,
	SignalUVAge, SignalNewNetwork, SignalImpossibleTravel, SignalFailedCeremonies,
	SignalRecentRecovery, SignalCloneSignal, SignalOutsideWindow, SignalFirstDeviceUse,
}

// SignalNames returns every risk signal's name, in report order.
func SignalNames() []string { return slices.Clone(signalNames) }

// Config holds the risk model's knobs. Thresholds for outcomes (step up at
// 70, deny at 90) live in the Cedar policies, over context.risk_score. The
// zero value of a duration field means its default; Weights overrides the
// default weights key by key (a weight of 0 switches a signal off).
type Config struct {
	// Weights maps a signal name to the points it adds when it fires (for
	// failed_ceremonies: per failed ceremony, up to FailedCeremoniesCap).
	Weights map[string]int `yaml:"weights" json:"weights"`
	// SessionAge: a session older than this adds session_age (default 8 h).
	SessionAge time.Duration `yaml:"session_age" json:"session_age"`
	// Idle: a session idle longer than this before the request adds idle
	// (default 10 min).
	Idle time.Duration `yaml:"idle" json:"idle"`
	// UVAge: no user-verified assertion within this adds uv_age (default 1 h).
	UVAge time.Duration `yaml:"uv_age" json:"uv_age"`
	// PostureMaxAge: a posture report older than this (or none) adds
	// posture_stale (default 24 h, the device package's default).
	PostureMaxAge time.Duration `yaml:"posture_max_age" json:"posture_max_age"`
	// FailedCeremoniesCap bounds how many failed ceremonies count
	// (default 3).
	FailedCeremoniesCap int `yaml:"failed_ceremonies_cap" json:"failed_ceremonies_cap"`
}

// DefaultWeights are the default points per signal. Alone, no signal but
// clone_signal reaches the step-up threshold (70); two strong signals
// together do (e.g. impossible_travel + new_network = 70).
func DefaultWeights() map[string]int {
	return map[string]int{
		SignalDeviceNoncompliant: 30,
		SignalPostureStale:       15,
		SignalSessionAge:         10,
		SignalIdle:               10,
		SignalUVAge:              10,
		SignalNewNetwork:         20,
		SignalImpossibleTravel:   50,
		SignalFailedCeremonies:   10,
		SignalRecentRecovery:     30,
		SignalCloneSignal:        70,
		SignalOutsideWindow:      40,
		SignalFirstDeviceUse:     15,
	}
}

// DefaultConfig returns the default risk model.
func DefaultConfig() Config {
	return Config{
		Weights:             DefaultWeights(),
		SessionAge:          8 * time.Hour,
		Idle:                10 * time.Minute,
		UVAge:               time.Hour,
		PostureMaxAge:       24 * time.Hour,
		FailedCeremoniesCap: 3,
	}
}

// Validate reports an unknown signal name, a weight outside 0..100 or a
// negative duration.
func (c Config) Validate() error {
	for _, k := range slices.Sorted(maps.Keys(c.Weights)) {
		if !slices.Contains(signalNames, k) {
			return fmt.Errorf("policy: unknown risk signal %q (known: %v)", k, signalNames)
		}
		if w := c.Weights[k]; w < 0 || w > 100 {
			return fmt.Errorf("policy: weight of %s is %d, not 0..100", k, w)
		}
	}
	if c.SessionAge < 0 || c.Idle < 0 || c.UVAge < 0 || c.PostureMaxAge < 0 || c.FailedCeremoniesCap < 0 {
		return fmt.Errorf("policy: risk thresholds must not be negative")
	}
	return nil
}

// model is a Config resolved for evaluation: defaults filled in, weights
// indexed by signal position.
type model struct {
	weights       [12]int
	sessionAgeS   int64
	idleS         int64
	uvAgeS        int64
	postureMaxAge int64
	failedCap     int
}

func newModel(c Config) model {
	d := DefaultConfig()
	m := model{
		sessionAgeS:   secs(c.SessionAge, d.SessionAge),
		idleS:         secs(c.Idle, d.Idle),
		uvAgeS:        secs(c.UVAge, d.UVAge),
		postureMaxAge: secs(c.PostureMaxAge, d.PostureMaxAge),
		failedCap:     c.FailedCeremoniesCap,
	}
	if m.failedCap <= 0 {
		m.failedCap = d.FailedCeremoniesCap
	}
	for i, name := range signalNames {
		w, ok := c.Weights[name]
		if !ok {
			w = d.Weights[name]
		}
		m.weights[i] = min(max(w, 0), 100)
	}
	return m
}

func secs(v, def time.Duration) int64 {
	if v <= 0 {
		v = def
	}
	return int64(v / time.Second)
}

// facts are the derived signals, computed once per decision and used both
// for the score and for the Cedar context.
type facts struct {
	postureStale  bool
	outsideWindow bool
	windowText    string
}

// risk computes the score and its contributions. Only signals that fired
// are listed; a fired signal whose weight is 0 is listed with 0 points.
func (m *model) risk(in *Input, f *facts) Risk {
	out := []Contribution{}
	add := func(i int, text string) {
		out = append(out, Contribution{Signal: signalNames[i], Points: m.weights[i], Text: text})
	}
	if !in.Device.Compliant {
		add(0, fmt.Sprintf("device %s is not compliant", in.Device.ID))
	}
	if f.postureStale {
		if in.Device.PostureAgeS < 0 {
			add(1, "the device never reported its posture")
		} else {
			add(1, fmt.Sprintf("posture report is %s old (limit %s)", dur(in.Device.PostureAgeS), dur(m.postureMaxAge)))
		}
	}
	if in.Session.AgeS > m.sessionAgeS {
		add(2, fmt.Sprintf("session is %s old (over %s)", dur(in.Session.AgeS), dur(m.sessionAgeS)))
	}
	if in.Session.IdleS > m.idleS {
		add(3, fmt.Sprintf("session was idle for %s (over %s)", dur(in.Session.IdleS), dur(m.idleS)))
	}
	if in.Session.UVAgeS < 0 {
		add(4, "no user-verified passkey assertion in this session")
	} else if in.Session.UVAgeS > m.uvAgeS {
		add(4, fmt.Sprintf("last passkey verification %s ago (over %s)", dur(in.Session.UVAgeS), dur(m.uvAgeS)))
	}
	s := &in.Signals
	if s.NewNetwork {
		add(5, "request from a network not seen for this user in the last 30 days")
	}
	if s.ImpossibleTravel {
		add(6, fmt.Sprintf("impossible travel: %.0f km/h implied since the previous location", s.TravelKmh))
	}
	if s.FailedCeremonies > 0 {
		n := min(s.FailedCeremonies, m.failedCap)
		out = append(out, Contribution{
			Signal: SignalFailedCeremonies,
			Points: m.weights[7] * n,
			Text:   fmt.Sprintf("%d failed passkey ceremonies recently (%d counted)", s.FailedCeremonies, n),
		})
	}
	if s.RecentRecovery {
		add(8, "the account was recovered in the last 7 days")
	}
	if s.CloneSignal {
		add(9, "a sign-count regression (possible cloned passkey) was seen on this user's credentials")
	}
	if f.outsideWindow {
		add(10, f.windowText)
	}
	if s.FirstDeviceUse {
		add(11, "first session on this device")
	}
	score := 0
	for _, c := range out {
		score += c.Points
	}
	return Risk{Score: min(max(score, 0), 100), Signals: out}
}

// dur renders seconds readably: "1h30m", "11m40s", "45s", "25h".
func dur(s int64) string {
	if s <= 0 {
		return "0s"
	}
	h, m, sec := s/3600, s%3600/60, s%60
	var b strings.Builder
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if sec > 0 {
		fmt.Fprintf(&b, "%ds", sec)
	}
	return b.String()
}

// outsideWindow reports whether a contractor is outside their access
// window at now, with a text saying why. Non-contractors are never outside.
// A contractor without a window, or with a window whose time zone cannot be
// loaded, is outside (fail closed).
func outsideWindow(s *Subject, now time.Time) (bool, string) {
	if s.Kind != airlock.UserContractor {
		return false, ""
	}
	if s.Window == nil {
		return true, "contractor has no access window"
	}
	in, why := InWindow(*s.Window, now)
	if in {
		return false, ""
	}
	return true, "contractor outside their access window: " + why
}

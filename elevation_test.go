package airlock

import (
	"testing"
	"time"
)

func TestParseScope(t *testing.T) {
	ok := map[string]Scope{
		"dba@db-prod":       {Role: "dba", Resource: "db-prod"},
		"ops.team_1@web-01": {Role: "ops.team_1", Resource: "web-01"},
		"tier:0":            {Tier: 0, IsTier: true},
		"tier:2":            {Tier: 2, IsTier: true},
	}
	for in, want := range ok {
		got, err := ParseScope(in)
		if err != nil || got != want {
			t.Errorf("ok-%s: %+v %v", in, got, err)
		}
		if got.String() != in {
			t.Errorf("ok-%s: String() = %q", in, got.String())
		}
	}
	for _, in := range []string{"", "dba", "@db", "dba@", "a@b@c", "dba@db prod", "tier:3", "tier:-1", "tier:01", "tier:",
		"tier:1x", "dba@db\u202eprod", "d\x00ba@db", "r@" + string(make([]byte, 65)), "ROLE@RES/OURCE", "role@ressource\n"} {
		if s, err := ParseScope(in); err == nil || ErrorCode(err) != EINVALID {
			t.Errorf("fail-%q: parsed %+v, %v", in, s, err)
		}
	}
}

func TestScopeCovers(t *testing.T) {
	role := Scope{Role: "dba", Resource: "db-prod", Tier: 1}
	if !role.Covers("db-prod", 1) || role.Covers("db-test", 1) || role.Covers("db-prod2", 1) {
		t.Error("role scope covers only its own resource")
	}
	// A resource reclassified to a more privileged tier after the grant
	// was approved is no longer covered: the approval (or auto-approval)
	// was for the tier the scope had then.
	if role.Covers("db-prod", 0) {
		t.Error("role scope of tier 1 covers its resource at tier 0")
	}
	if !role.Covers("db-prod", 2) {
		t.Error("role scope of tier 1 does not cover its resource at tier 2")
	}
	tier1 := Scope{Tier: 1, IsTier: true}
	if !tier1.Covers("x", 1) || !tier1.Covers("y", 2) || tier1.Covers("z", 0) {
		t.Error("tier scope covers its tier and less privileged ones only")
	}
}

func TestCapDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		tier Tier
		want time.Duration
	}{
		{30 * time.Minute, 0, 30 * time.Minute},
		{2 * time.Hour, 0, time.Hour},
		{5 * time.Hour, 1, 4 * time.Hour},
		{9 * time.Hour, 2, 8 * time.Hour},
		{9 * time.Hour, 7, time.Hour}, // an invalid tier gets the shortest cap
		{9 * time.Hour, -1, time.Hour},
	} {
		if got := CapDuration(tt.d, tt.tier, DefaultGrantCaps); got != tt.want {
			t.Errorf("CapDuration(%v, %d) = %v, want %v", tt.d, tt.tier, got, tt.want)
		}
	}
}

func TestGrantIsActive(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	g := &Grant{NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	if g.IsActive(t0.Add(-time.Microsecond)) || !g.IsActive(t0) || !g.IsActive(t0.Add(59*time.Minute)) || g.IsActive(t0.Add(time.Hour)) {
		t.Error("window is [NotBefore, NotAfter)")
	}
	g.EndedAt = t0.Add(time.Minute)
	if g.IsActive(t0.Add(30 * time.Second)) {
		t.Error("an ended grant is not active")
	}
}

// FuzzParseScope: no panic on any input, and whatever parses prints back
// to the same text.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"dba@db-prod", "tier:1", "tier:01", "@", "a@b@c", "tier:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseScope(in)
		if err != nil {
			return
		}
		if s.String() != in {
			t.Fatalf("%q parsed to %+v which prints %q", in, s, s.String())
		}
	})
}

func TestCheckResolution(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	grant := func(id, requestID string) *Grant { return &Grant{ID: id, RequestID: requestID} }
	for _, tc := range []struct {
		name   string
		status RequestStatus
		at     time.Time
		g      *Grant
		ok     bool
	}{
		{"ok-approved-with-grant", RequestApproved, at, grant("grt_1", "req_1"), true},
		{"ok-approved-without-grant", RequestApproved, at, nil, true},
		{"ok-denied", RequestDenied, at, nil, true},
		{"ok-expired", RequestExpired, at, nil, true},
		{"ok-cancelled", RequestCancelled, at, nil, true},
		{"fail-pending", RequestPending, at, nil, false},
		{"fail-unknown-status", RequestStatus("granted"), at, nil, false},
		{"fail-empty-status", "", at, nil, false},
		{"fail-zero-time", RequestDenied, time.Time{}, nil, false},
		{"fail-grant-with-denial", RequestDenied, at, grant("grt_1", "req_1"), false},
		{"fail-grant-without-id", RequestApproved, at, grant("", "req_1"), false},
		{"fail-grant-of-another-request", RequestApproved, at, grant("grt_1", "req_2"), false},
	} {
		err := CheckResolution("req_1", tc.status, tc.at, tc.g)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && ErrorCode(err) != EINVALID {
			t.Errorf("%s: got %v, want EINVALID", tc.name, err)
		}
	}
}

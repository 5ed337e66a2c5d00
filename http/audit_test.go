package http_test

import (
	"bytes"
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	airhttp "airlock/http"
	"airlock/passkey/passkeytest"
)

// seedAudit appends events with known users, sessions, grants and times
// after whatever the setup recorded, and returns the first seq.
func seedAudit(t *testing.T, e *env, base time.Time) int64 {
	t.Helper()
	var evs []*airlock.AuditEvent
	for i := range 12 {
		evs = append(evs, &airlock.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Type: []string{"elevate.granted", "ssh.session"}[i%2],
			Outcome: airlock.OutcomeSuccess, UserID: []string{"u-ann", "u-bob"}[i%2], SessionID: []string{"s-1", "s-2", "s-3"}[i%3],
			GrantID: []string{"g-7", ""}[i/6]})
	}
	if err := e.store.AppendAudit(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	return evs[0].Seq
}

func seqsOf(t *testing.T, r resp) []int64 {
	t.Helper()
	evs, ok := r.body["events"].([]any)
	if !ok {
		t.Fatalf("no events in %s", r.raw)
	}
	var out []int64
	for _, ev := range evs {
		out = append(out, int64(ev.(map[string]any)["seq"].(float64)))
	}
	return out
}

func TestAuditAPI(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	base := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	first := seedAudit(t, e, base)
	rel := func(seqs []int64) []int64 { // seq numbers relative to the seed
		out := []int64{}
		for _, s := range seqs {
			out = append(out, s-first)
		}
		return out
	}
	reads := func() int {
		evs, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "audit.read", Limit: 1000})
		return len(evs)
	}

	for _, tc := range []struct {
		name  string
		query string
		want  []int64
	}{
		{"ok-user", "user=u-ann", []int64{0, 2, 4, 6, 8, 10}},
		{"ok-session", "session=s-2", []int64{1, 4, 7, 10}},
		{"ok-grant", "grant=g-7", []int64{0, 1, 2, 3, 4, 5}},
		{"ok-type-prefix", "type=ssh.&grant=g-7", []int64{1, 3, 5}},
		{"ok-since-until", "since=" + url.QueryEscape(base.Add(3*time.Minute).Format(time.RFC3339)) + "&until=" + url.QueryEscape(base.Add(6*time.Minute).Format(time.RFC3339)), []int64{3, 4, 5}},
		{"ok-since-other-zone", "since=" + url.QueryEscape(base.Add(10*time.Minute).In(time.FixedZone("x", -7200)).Format(time.RFC3339)), []int64{10, 11}},
		{"ok-desc", "user=u-bob&order=desc&limit=2", []int64{11, 9}},
		{"ok-after", "user=u-bob&after=" + itoa(first+7), []int64{9, 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reads()
			r := e.req("GET", "/v1/audit?"+tc.query, nil, admin, nil)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if got := rel(seqsOf(t, r)); !equal(got, tc.want) {
				t.Errorf("seqs %v, want %v", got, tc.want)
			}
			if reads() != before+1 {
				t.Errorf("the read was not audited")
			}
		})
	}

	// Paging: follow "next" until the end, both ways.
	for _, order := range []string{"asc", "desc"} {
		var got []int64
		path := "/v1/audit?user=u-ann&limit=4&order=" + order
		for range 10 {
			r := e.req("GET", path, nil, admin, nil)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", path, r.status, r.raw)
			}
			got = append(got, rel(seqsOf(t, r))...)
			next, _ := r.body["next"].(string)
			if next == "" {
				break
			}
			path = next
		}
		want := []int64{0, 2, 4, 6, 8, 10}
		if order == "desc" {
			want = []int64{10, 8, 6, 4, 2, 0}
		}
		// Ascending, the admin's own audit.read events are not u-ann's,
		// so they never join the pages.
		if !equal(got, want) {
			t.Errorf("%s pages: %v, want %v", order, got, want)
		}
	}

	// The event as the API shows it: RFC 3339 time, details numbers exact.
	r := e.req("GET", "/v1/audit?type=audit.read&order=desc&limit=1", nil, admin, nil)
	ev := r.body["events"].([]any)[0].(map[string]any)
	if _, err := time.Parse(time.RFC3339, ev["time"].(string)); err != nil || ev["outcome"] != "success" || ev["actor"] == "" {
		t.Errorf("event view %v", ev)
	}

	// The old name still answers.
	if r := e.req("GET", "/v1/admin/audit?user=u-ann", nil, admin, nil); r.status != 200 || len(seqsOf(t, r)) != 6 {
		t.Errorf("/v1/admin/audit: %d %s", r.status, r.raw)
	}

	// Bad input: a clear error, nothing read, nothing audited.
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=-1", "before=x", "since=yesterday",
		"until=2030-01-01", "order=random", "user=" + strings.Repeat("u", 300)} {
		before := reads()
		r := e.req("GET", "/v1/audit?"+q, nil, admin, nil)
		if r.status != 400 || r.errCode() != airlock.EINVALID || r.errMsg() == "" {
			t.Errorf("%s: %d %s", q, r.status, r.raw)
		}
		if reads() != before {
			t.Errorf("%s: a refused read was audited as a read", q)
		}
	}
}

func TestAuditAPIAdminsOnly(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	user, _, _ := e.person(admin, "plain", 1, nil, passkeytest.Flags{})
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"fail-no-session", "", 401},
		{"fail-not-an-admin", user, 403},
		{"ok-admin", admin, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/audit", "/v1/admin/audit"} {
				r := e.req("GET", path, nil, tc.token, nil)
				if r.status != tc.status {
					t.Errorf("%s: %d, want %d (%s)", path, r.status, tc.status, r.raw)
				}
				if tc.status != 200 && r.body["events"] != nil {
					t.Errorf("%s: events leaked to a refused caller", path)
				}
			}
		})
	}
	denied, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "admin.denied"})
	if len(denied) == 0 {
		t.Errorf("the refused read was not audited")
	}
}

// failingAudit refuses audit.read events, as a log that cannot write.
type failingAudit struct{ airlock.AuditStore }

func (f failingAudit) AppendAudit(ctx context.Context, evs ...*airlock.AuditEvent) error {
	for _, e := range evs {
		if e.Type == "audit.read" {
			return airlock.Errorf(airlock.EUNAVAILABLE, "disk full")
		}
	}
	return f.AuditStore.AppendAudit(ctx, evs...)
}

// TestAuditReadUnrecordedReturnsNothing: a read that cannot be audited
// fails and shows nothing.
func TestAuditReadUnrecordedReturnsNothing(t *testing.T) {
	var e *env
	e = newEnv(t, func(s *airhttp.Server) {
		s.Audit = audit.New(failingAudit{s.Store}, nil, nil)
	})
	admin, _ := e.bootstrapAdmin()
	r := e.req("GET", "/v1/audit", nil, admin, nil)
	if r.status != 503 || r.body["events"] != nil {
		t.Errorf("read with the audit log down: %d %s", r.status, r.raw)
	}
	p := e.req("GET", "/admin/audit", nil, admin, nil)
	if p.status != 503 || bytes.Contains(p.raw, []byte(`<td>1</td>`)) {
		t.Errorf("audit page with the audit log down: %d", p.status)
	}
}

// TestAuditPage checks the admin page: filters by user, session and grant
// and the latest checkpoint's verdict.
func TestAuditPage(t *testing.T) {
	status := audit.Status{Verified: true, Size: 42, TreeSize: 50, Origin: "airlock/test"}
	e := newEnv(t, func(s *airhttp.Server) {
		s.AuditStatus = func(context.Context) audit.Status { return status }
	})
	admin, _ := e.bootstrapAdmin()
	first := seedAudit(t, e, time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	r := e.req("GET", "/admin/audit?user=u-bob&session=s-2&grant=g-7", nil, admin, nil)
	if r.status != 200 {
		t.Fatalf("audit page: %d %s", r.status, r.raw)
	}
	page := string(r.raw)
	// u-bob ∧ s-2 ∧ g-7: only the seed's event 1.
	if !strings.Contains(page, "<td>"+itoa(first+1)+"</td>") || strings.Contains(page, "<td>"+itoa(first+3)+"</td>") {
		t.Errorf("filtered page shows the wrong events")
	}
	if !strings.Contains(page, `value="g-7"`) || !strings.Contains(page, `id="audit-checkpoint" class="ok"`) || !strings.Contains(page, "42 events signed by airlock/test") {
		t.Errorf("page lacks the grant filter or the checkpoint verdict")
	}
	status = audit.Status{Size: 42, Problem: "audit: checkpoint signature: note has no verifiable signatures"}
	r = e.req("GET", "/admin/audit", nil, admin, nil)
	if !strings.Contains(string(r.raw), `id="audit-checkpoint" class="error"`) || !strings.Contains(string(r.raw), "no verifiable signatures") {
		t.Errorf("page does not show the failed verification")
	}
	reads, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{Type: "audit.read"})
	if len(reads) != 2 || reads[0].Details["via"] != "ui" || reads[0].Details["grant"] != "g-7" {
		t.Errorf("page reads audited as %+v", reads)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func equal(a, b []int64) bool { return slices.Equal(a, b) }

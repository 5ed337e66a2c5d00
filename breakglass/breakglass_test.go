package breakglass

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/passkey"
	"airlock/passkey/passkeytest"
	"airlock/policy"
	"airlock/session"
)

// TestBreakGlassNew: the configuration rules New enforces.
func TestBreakGlassNew(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"ok-60-minutes", func(c *Config) { c.Duration = MaxDuration }, ""},
		{"fail-no-scopes", func(c *Config) { c.Scopes = nil }, "at least one scope"},
		{"fail-bad-scope", func(c *Config) { c.Scopes = []string{"db-prod"} }, "scope"},
		{"fail-duration-over-60-minutes", func(c *Config) { c.Duration = MaxDuration + time.Second }, "over"},
		{"fail-negative-duration", func(c *Config) { c.Duration = -time.Minute }, "negative"},
		{"fail-no-alert-target", func(c *Config) { c.Alerts = nil }, "alert target"},
		{"fail-alert-not-url", func(c *Config) { c.Alerts = []AlertTarget{{URL: "ftp://x/y?token=hunter2", Secret: "s"}} }, "http(s)"},
		{"fail-alert-no-secret", func(c *Config) { c.Alerts = []AlertTarget{{URL: "https://hooks.example.com/x"}} }, "secret"},
		{"fail-no-dir", func(c *Config) { c.Dir = "" }, "directory"},
		{"fail-bad-credentials-file", func(c *Config) { c.CredentialsFile = filepath.Join(t.TempDir(), "missing.json") }, "credentials file"},
		{"fail-bad-source-address", func(c *Config) { c.SourceAddresses = []string{"10.0.0.0/33"} }, "source_addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := h.cfg
			cfg.Dir = filepath.Join(t.TempDir(), "bg")
			tc.mod(&cfg)
			_, err := New(cfg, h.store, h.pk, h.log, h.ca)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error quotes the alert URL: %v", err)
			}
		})
	}
	if _, err := New(h.cfg, nil, h.pk, h.log, h.ca); err == nil {
		t.Error("New without a store succeeded")
	}
}

// TestBreakGlassUse: a whole use with the store up — the alert reaches the
// webhook (HMAC verified) before access, the event is recorded, admins are
// notified, the session decides within scope only, ends, and the account
// is then locked until review.
func TestBreakGlassUse(t *testing.T) {
	var logged bytes.Buffer
	h := newHarness(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logged, nil)) })
	before := h.bgCred.SignCount
	tok, sess, err := h.use(h.svc, "bg", h.bgAuth, "prod database down, on-call cannot sign in (INC-7)")
	if err != nil {
		t.Fatal(err)
	}
	if !IsToken(tok) || len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	ev, err := h.sqlite.FindBreakGlassEventByID(h.ctx, sess.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev.TokenHash, session.HashToken(tok)) || ev.AccountID != h.bg.ID || ev.Offline ||
		!ev.EndsAt.Equal(h.clk.Now().Add(30*time.Minute)) || ev.Justification != "prod database down, on-call cannot sign in (INC-7)" ||
		!ev.AlertDelivered || len(ev.AlertIDs) != 1 || ev.IP != testIP {
		t.Errorf("event %+v", ev)
	}
	if c, _ := h.sqlite.FindCredentialByID(h.ctx, h.bgCred.ID); c.SignCount != before+1 {
		t.Errorf("stored sign count %d, want %d", c.SignCount, before+1)
	}
	alerts := h.rcv.got()
	if len(alerts) != 1 || alerts[0].ID != ev.AlertIDs[0] || alerts[0].Account != "bg" || alerts[0].EventID != ev.ID ||
		alerts[0].Justification != ev.Justification || alerts[0].IP != testIP {
		t.Fatalf("alerts %+v", alerts)
	}
	if line := logged.String(); !strings.Contains(line, "level=ERROR msg=\"CRITICAL break-glass\"") || !strings.Contains(line, "account=bg") {
		t.Errorf("no critical log line: %q", line)
	}
	// The alert was recorded before the start.
	all := h.audited("breakglass.")
	var order []string
	for _, e := range all {
		order = append(order, e.Type)
	}
	if strings.Join(order, ",") != "breakglass.alert,breakglass.started" {
		t.Errorf("audit order %v", order)
	}
	var used []string
	for _, n := range h.not.list() {
		if strings.HasSuffix(n, " "+NotifyUsed) {
			used = append(used, n)
		}
	}
	if strings.Join(used, ",") != "u-ops "+NotifyUsed+",u-root "+NotifyUsed {
		t.Errorf("notifications %v, want the two admins (by name)", used)
	}

	got, err := h.svc.Authenticate(h.ctx, tok)
	if err != nil || got.Event.ID != ev.ID || got.Account.ID != h.bg.ID {
		t.Fatalf("Authenticate: %v %+v", err, got)
	}
	if _, err := h.svc.Authenticate(h.ctx, tok+"x"); err == nil {
		t.Error("a wrong token authenticated")
	}
	if _, err := h.svc.Authenticate(h.ctx, "not-a-bg-token"); err == nil {
		t.Error("a normal token authenticated")
	}

	// Decisions within scope only; forwarding never.
	for _, c := range []struct {
		action, resource string
		want             policy.Outcome
	}{
		{"db.connect", "db-prod", policy.Allow},     // dba@db-prod
		{"dashboard.view", "grafana", policy.Allow}, // tier:2
		{"deploy", "ci", policy.Deny},               // tier 1: not covered
		{"x", "unknown-resource", policy.Deny},
		{"ssh.port_forwarding", "db-prod", policy.Deny},
		{"ssh.agent_forwarding", "db-prod", policy.Deny},
	} {
		res, err := h.svc.Decide(h.ctx, got, c.action, c.resource, meta)
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision.Outcome != c.want || res.Decision.PolicyVersion != "breakglass" || res.Decision.ID == "" {
			t.Errorf("%s %s: %+v, want %s", c.action, c.resource, res.Decision, c.want)
		}
	}
	if d := h.audited("breakglass.decision"); len(d) != 6 || d[0].Outcome != airlock.OutcomeSuccess || d[2].Outcome != airlock.OutcomeDenied {
		t.Errorf("%d decisions audited", len(d))
	}

	// The account is locked while the use is unreviewed.
	_, err = h.svc.Begin(h.ctx, "bg", "again", meta)
	wantErr(t, err, airlock.EFORBIDDEN, ReasonLocked)

	// The session never outlives its end; End ends it early.
	if err := h.svc.End(h.ctx, got, "done", meta); err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.Authenticate(h.ctx, tok)
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonSessionEnded)
	_, err = h.svc.Decide(h.ctx, &Session{Event: &airlock.BreakGlassEvent{ID: ev.ID, EndsAt: h.clk.Now().Add(time.Minute), EndedAt: h.clk.Now()}, Account: h.bg}, "db.connect", "db-prod", meta)
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonSessionEnded)
	if err := h.svc.End(h.ctx, got, "again", meta); airlock.ErrorCode(err) != airlock.ECONFLICT {
		t.Errorf("second End: %v, want ECONFLICT", err)
	}
	if ev, _ := h.sqlite.FindBreakGlassEventByID(h.ctx, ev.ID); ev.EndedAt.IsZero() || ev.EndReason != "done" {
		t.Errorf("event not ended: %+v", ev)
	}
}

// TestBreakGlassExpires: the session ends at EndsAt (never extended); the
// sweep records the end.
func TestBreakGlassExpires(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.mustUse(h.svc)
	h.clk.Advance(30*time.Minute - time.Second)
	if _, err := h.svc.Authenticate(h.ctx, tok); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(time.Second)
	_, err := h.svc.Authenticate(h.ctx, tok)
	wantErr(t, err, airlock.EUNAUTHORIZED, ReasonSessionEnded)
	h.svc.Sweep(h.ctx)
	evs, _ := h.sqlite.ListBreakGlassEvents(h.ctx, airlock.BreakGlassFilter{})
	if len(evs) != 1 || evs[0].EndReason != "expired" {
		t.Fatalf("events %+v", evs)
	}
}

// TestBreakGlassRefusals: every refusal of the path, each audited and
// leaving no event behind.
func TestBreakGlassRefusals(t *testing.T) {
	const why = "prod database down (INC-7)"
	tests := []struct {
		name string
		// run returns the error of the attempt.
		run    func(h *harness) error
		code   string
		reason passkey.Reason
		// audit is the refusal's audit type.
		audit string
	}{
		{name: "fail-normal-account-at-begin", run: func(h *harness) error {
			_, err := h.svc.Begin(h.ctx, "alice", why, meta)
			return err
		}, code: airlock.EFORBIDDEN, reason: passkey.ReasonNotBreakGlass, audit: "breakglass.begin_refused"},
		{name: "fail-unknown-account", run: func(h *harness) error {
			_, err := h.svc.Begin(h.ctx, "nobody", why, meta)
			return err
		}, code: airlock.EFORBIDDEN, reason: passkey.ReasonNotBreakGlass, audit: "breakglass.begin_refused"},
		{name: "fail-normal-account-at-finish", run: func(h *harness) error {
			b, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			h.bg.Kind = airlock.UserEmployee
			if err := h.sqlite.UpdateUser(h.ctx, h.bg); err != nil {
				h.tb.Fatal(err)
			}
			resp, _ := h.bgAuth.Assert(testOrigin, mustJSON(h.tb, b))
			_, _, err = h.svc.Finish(h.ctx, b.Ceremony, resp, meta)
			return err
		}, code: airlock.EFORBIDDEN, reason: passkey.ReasonNotBreakGlass, audit: "breakglass.refused"},
		{name: "fail-no-justification", run: func(h *harness) error {
			_, err := h.svc.Begin(h.ctx, "bg", "  \n", meta)
			return err
		}, code: airlock.EINVALID, reason: ReasonJustification, audit: "breakglass.begin_refused"},
		{name: "fail-justification-too-long", run: func(h *harness) error {
			_, err := h.svc.Begin(h.ctx, "bg", strings.Repeat("x", MaxJustificationLen+1), meta)
			return err
		}, code: airlock.EINVALID, reason: ReasonJustification, audit: "breakglass.begin_refused"},
		{name: "fail-justification-control-chars", run: func(h *harness) error {
			_, err := h.svc.Begin(h.ctx, "bg", "ok\x1b[2J", meta)
			return err
		}, code: airlock.EINVALID, reason: ReasonJustification, audit: "breakglass.begin_refused"},
		{name: "fail-uv-missing", run: func(h *harness) error {
			_, _, err := h.use(h.svc, "bg", h.bgAuth, why, passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
			return err
		}, code: airlock.EUNAUTHORIZED, reason: passkey.ReasonUVMissing, audit: "breakglass.refused"},
		{name: "fail-backup-eligible-assertion", run: func(h *harness) error {
			_, _, err := h.use(h.svc, "bg", h.bgAuth, why, passkeytest.WithFlags(passkeytest.Flags{BackupEligible: true}))
			return err
		}, code: airlock.EUNAUTHORIZED, reason: passkey.ReasonBreakGlassBound, audit: "breakglass.refused"},
		{name: "fail-wrong-origin", run: func(h *harness) error {
			b, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			resp, _ := h.bgAuth.Assert("https://evil.example.com", mustJSON(h.tb, b))
			_, _, err = h.svc.Finish(h.ctx, b.Ceremony, resp, meta)
			return err
		}, code: airlock.EUNAUTHORIZED, reason: passkey.ReasonBadOrigin, audit: "breakglass.refused"},
		{name: "fail-other-accounts-passkey", run: func(h *harness) error {
			b, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			resp, err := h.people["alice"].auth.Assert(testOrigin, withoutAllowList(h.tb, b))
			if err != nil {
				h.tb.Fatal(err)
			}
			_, _, err = h.svc.Finish(h.ctx, b.Ceremony, resp, meta)
			return err
		}, code: airlock.EUNAUTHORIZED, reason: passkey.ReasonUnknownCredential, audit: "breakglass.refused"},
		{name: "fail-replayed-ceremony", run: func(h *harness) error {
			b, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			resp, _ := h.bgAuth.Assert(testOrigin, mustJSON(h.tb, b), passkeytest.WithFlags(passkeytest.Flags{NoUserVerification: true}))
			if _, _, err := h.svc.Finish(h.ctx, b.Ceremony, resp, meta); err == nil {
				h.tb.Fatal("UV-less finish succeeded")
			}
			resp, _ = h.bgAuth.Assert(testOrigin, mustJSON(h.tb, b))
			_, _, err = h.svc.Finish(h.ctx, b.Ceremony, resp, meta)
			return err
		}, code: airlock.EUNAUTHORIZED, reason: passkey.ReasonUnknownCeremony, audit: "breakglass.refused"},
		{name: "fail-expired-ceremony", run: func(h *harness) error {
			b, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			h.clk.Advance(CeremonyTTL)
			resp, _ := h.bgAuth.Assert(testOrigin, mustJSON(h.tb, b))
			_, _, err = h.svc.Finish(h.ctx, b.Ceremony, resp, meta)
			return err
		}, code: airlock.EEXPIRED, reason: passkey.ReasonExpired, audit: "breakglass.refused"},
		{name: "fail-tampered-justification", run: func(h *harness) error {
			b, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			// Someone with write access to the ceremony store swaps the
			// justification the passkey signed for another.
			c, err := h.sqlite.ConsumeCeremony(h.ctx, b.Ceremony)
			if err != nil {
				h.tb.Fatal(err)
			}
			var st ceremonyState
			_ = json.Unmarshal(c.Data, &st)
			st.Justification = "routine maintenance"
			c.Data = mustJSON(h.tb, st)
			if err := h.sqlite.CreateCeremony(h.ctx, c); err != nil {
				h.tb.Fatal(err)
			}
			resp, _ := h.bgAuth.Assert(testOrigin, mustJSON(h.tb, b))
			_, _, err = h.svc.Finish(h.ctx, b.Ceremony, resp, meta)
			return err
		}, code: airlock.EUNAUTHORIZED, reason: passkey.ReasonRequestBinding, audit: "breakglass.refused"},
		{name: "fail-locked-at-finish", run: func(h *harness) error {
			// Two ceremonies begun before either finished: the second
			// finish finds the account locked by the first use.
			b1, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			b2, err := h.svc.Begin(h.ctx, "bg", why, meta)
			if err != nil {
				return err
			}
			r1, _ := h.bgAuth.Assert(testOrigin, mustJSON(h.tb, b1))
			if _, _, err := h.svc.Finish(h.ctx, b1.Ceremony, r1, meta); err != nil {
				h.tb.Fatal(err)
			}
			r2, _ := h.bgAuth.Assert(testOrigin, mustJSON(h.tb, b2))
			_, _, err = h.svc.Finish(h.ctx, b2.Ceremony, r2, meta)
			return err
		}, code: airlock.EFORBIDDEN, reason: ReasonLocked, audit: "breakglass.refused"},
		{name: "fail-alert-neither-delivered-nor-spooled", run: func(h *harness) error {
			h.rcv.setFail(true)
			// The spool cannot be written: its path is a directory.
			if err := os.MkdirAll(h.svc.alertSpool.path, 0o700); err != nil {
				h.tb.Fatal(err)
			}
			_, _, err := h.use(h.svc, "bg", h.bgAuth, why)
			return err
		}, code: airlock.EUNAVAILABLE, reason: ReasonAlertFailed, audit: "breakglass.refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			err := tc.run(h)
			wantErr(t, err, tc.code, tc.reason)
			refused := h.audited(tc.audit)
			if len(refused) == 0 || refused[len(refused)-1].Reason != string(tc.reason) {
				t.Errorf("no %s audit with reason %s: %+v", tc.audit, tc.reason, refused)
			}
			evs, _ := h.sqlite.ListBreakGlassEvents(h.ctx, airlock.BreakGlassFilter{})
			want := 0
			if tc.name == "fail-locked-at-finish" {
				want = 1 // the first use
			}
			if len(evs) != want {
				t.Errorf("%d events recorded, want %d", len(evs), want)
			}
		})
	}
}

// TestBreakGlassAlertQueued: an alert that reaches no webhook but is
// spooled lets access begin (AlertDelivered false); RetryAlerts delivers
// it once the webhook is back and empties the spool. An alert delivered
// while the spool cannot be written lets access begin too.
func TestBreakGlassAlertQueued(t *testing.T) {
	t.Run("ok-spooled-then-retried", func(t *testing.T) {
		h := newHarness(t, nil)
		h.rcv.setFail(true)
		_, sess := h.mustUse(h.svc)
		if sess.Event.AlertDelivered {
			t.Error("AlertDelivered with the webhook failing")
		}
		if n, err := h.svc.RetryAlerts(h.ctx); err != nil || n != 0 {
			t.Fatalf("retry while failing: %d, %v", n, err)
		}
		h.rcv.setFail(false)
		if n, err := h.svc.RetryAlerts(h.ctx); err != nil || n != 1 {
			t.Fatalf("retry: %d, %v", n, err)
		}
		if a := h.rcv.got(); len(a) != 1 || a[0].EventID != sess.Event.ID {
			t.Fatalf("alerts %+v", a)
		}
		if fi, err := os.Stat(h.svc.alertSpool.path); err != nil || fi.Size() != 0 {
			t.Errorf("spool not emptied: %v %v", fi, err)
		}
		if n, _ := h.svc.RetryAlerts(h.ctx); n != 0 {
			t.Errorf("delivered again: %d", n)
		}
	})
	t.Run("ok-delivered-spool-broken", func(t *testing.T) {
		h := newHarness(t, nil)
		if err := os.MkdirAll(h.svc.alertSpool.path, 0o700); err != nil {
			t.Fatal(err)
		}
		_, sess := h.mustUse(h.svc)
		if !sess.Event.AlertDelivered || len(h.rcv.got()) != 1 {
			t.Error("alert not delivered")
		}
	})
	t.Run("fail-redirect-is-not-delivered", func(t *testing.T) {
		redirect := httptest.NewServer(http.RedirectHandler("https://example.com/", http.StatusFound))
		defer redirect.Close()
		h := newHarness(t, func(c *Config) { c.Alerts = []AlertTarget{{URL: redirect.URL, Secret: alertSecret}} })
		_, sess := h.mustUse(h.svc)
		if sess.Event.AlertDelivered {
			t.Error("a 302 counted as delivered")
		}
	})
	t.Run("fail-bad-secret-is-not-delivered", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.Alerts[0].Secret = "wrong" })
		_, sess := h.mustUse(h.svc) // spooled: access begins
		if sess.Event.AlertDelivered || len(h.rcv.got()) != 0 || h.rcv.badCount() == 0 {
			t.Errorf("a delivery signed with the wrong secret was accepted")
		}
	})
}

// TestBreakGlassPolicyMissing: break-glass never consults Cedar: the use
// works whatever the normal policy is (none is configured here at all).
func TestBreakGlassPolicyMissing(t *testing.T) {
	h := newHarness(t, nil)
	_, sess := h.mustUse(h.svc)
	res, err := h.svc.Decide(h.ctx, sess, "db.connect", "db-prod", meta)
	if err != nil || res.Decision.Outcome != policy.Allow || res.Decision.Reasons[0].Policy != "breakglass:"+sess.Event.ID {
		t.Fatalf("%v %+v", err, res)
	}
}

// withoutAllowList is b's options without allowCredentials, so that an
// authenticator answers with a passkey the ceremony did not offer.
func withoutAllowList(tb testing.TB, b *passkey.Begin) []byte {
	tb.Helper()
	var o struct {
		PublicKey map[string]any `json:"publicKey"`
	}
	if err := json.Unmarshal(mustJSON(tb, b), &o); err != nil {
		tb.Fatal(err)
	}
	delete(o.PublicKey, "allowCredentials")
	return mustJSON(tb, o)
}

package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/passkey/passkeytest"
	"airlock/session"
)

// dpopJTIRecord is the ceremony-store id under which the server remembers
// a proof's jti: everything in it can be read off the proof itself.
func dpopJTIRecord(t *testing.T, jkt, proof string) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(jkt + "\x00" + c.JTI))
	return "dpop_" + hex.EncodeToString(h[:])
}

// TestDPoPReplayNotReopenedByCeremonyEndpoints: whoever captured a request
// of a CLI session (token and proof) cannot make the server forget the
// proof's jti by naming its record as the "ceremony" of a WebAuthn finish
// (which consumed any ceremony id before checking its kind) and then
// replay the proof.
func TestDPoPReplayNotReopenedByCeremonyEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	k := newCLIKey(t)
	tok, _ := e.cliLogin(admin, k)
	const path = "/v1/session"
	for _, finish := range []string{"/v1/login/finish", "/v1/enrol/finish", "/v1/stepup/finish"} {
		t.Run("fail-replay-after-"+strings.TrimPrefix(finish, "/v1/"), func(t *testing.T) {
			proof := e.proof(k, "GET", path, tok, nil)
			if r := e.dpopReq("GET", path, nil, tok, proof); r.status != 200 {
				t.Fatalf("first use: %d %s", r.status, r.raw)
			}
			body := map[string]any{"ceremony": dpopJTIRecord(t, k.jkt, proof), "credential": map[string]any{"id": "x"}}
			if r := e.browser("POST", finish, body, nil); r.status == 200 {
				t.Fatalf("%s accepted a DPoP record as a ceremony: %s", finish, r.raw)
			}
			if r := e.req("POST", finish, body, admin, nil); r.status == 200 {
				t.Fatalf("%s accepted a DPoP record as a ceremony: %s", finish, r.raw)
			}
			r := e.dpopReq("GET", path, nil, tok, proof)
			if r.status != 401 {
				t.Fatalf("replayed proof: %d %s", r.status, r.raw)
			}
			if evs := auditTypes(t, e, "cli.dpop_refused"); len(evs) == 0 || lastEvent(evs).Reason != "replayed_jti" {
				t.Fatalf("replay not refused as replayed_jti")
			}
		})
	}
}

func lastEvent(evs []*airlock.AuditEvent) *airlock.AuditEvent {
	last := evs[0]
	for _, ev := range evs {
		if ev.Seq > last.Seq {
			last = ev
		}
	}
	return last
}

// TestOriginCheckDPoPHeaderWithCookie: a DPoP header lets a request skip
// the Origin check only where no cookie can authenticate it (the CLI's
// token request) or when the DPoP authorization itself authenticates it;
// a cookie-authenticated request with a stray DPoP header still needs one
// of our origins.
func TestOriginCheckDPoPHeaderWithCookie(t *testing.T) {
	e := newEnv(t, nil)
	_, a := e.bootstrapAdmin()
	_, r := e.login(a)
	cookie := (&http.Response{Header: r.header}).Cookies()[0]
	ck := cookie.Name + "=" + cookie.Value
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"fail-cookie-and-dpop-header-no-origin", map[string]string{"Cookie": ck, "DPoP": "x"}, 403},
		{"fail-cookie-and-dpop-header-other-origin", map[string]string{"Cookie": ck, "DPoP": "x", "Origin": "https://evil.example"}, 403},
		{"ok-cookie-and-same-origin", map[string]string{"Cookie": ck, "Origin": e.origin}, 201},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.req("POST", "/v1/admin/devices", map[string]any{"name": tc.name, "owner": "shared", "kind": "shared-station"}, "", tc.hdr)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.raw)
			}
		})
	}
	// The CLI's token request carries a proof and no Origin: still let in
	// (refused here for its unknown code, not for its origin).
	res := e.req("POST", "/v1/cli/token", map[string]any{"code": "nope"}, "", map[string]string{"DPoP": "x"})
	if res.status != 401 {
		t.Fatalf("token request without Origin: %d %s", res.status, res.raw)
	}
}

// TestBrowserLogoutEndsCLISessions: signing out in the browser signs out
// the terminals of that account on that device (the CLI sessions made from
// a browser there), with their grants; other people's CLI sessions, the
// account's CLI sessions on other devices, and browser sessions stay. A CLI
// session's own logout ends only itself.
func TestBrowserLogoutEndsCLISessions(t *testing.T) {
	e := newEnv(t, nil)
	admin, adminKey := e.bootstrapAdmin()
	fay, _, _ := e.person(admin, "fay", 0, nil, passkeytest.Flags{})
	fayCLIKey := newCLIKey(t)
	fayCLI, _ := e.cliLogin(fay, fayCLIKey)

	// Two CLI sessions of the admin on this device: one from this browser
	// session, one from another (a later sign-in in another browser).
	browser, _ := e.login(adminKey)
	other, _ := e.login(adminKey)
	k1, k2 := newCLIKey(t), newCLIKey(t)
	cli1, r1 := e.cliLogin(browser, k1)
	cli2, _ := e.cliLogin(other, k2)
	cli1ID := r1.body["session"].(map[string]any)["id"].(string)

	// A key-bound session of the admin on another device.
	ctx := context.Background()
	adminID := e.req("GET", "/v1/session", nil, browser, nil).body["user"].(map[string]any)["id"].(string)
	cred, err := e.store.ListCredentialsByUser(ctx, adminID)
	if err != nil || len(cred) == 0 {
		t.Fatal(err)
	}
	now := e.clock.Now()
	elsewhere := &airlock.Session{ID: airlock.NewID(airlock.PrefixSession), TokenHash: session.HashToken("elsewhere"), UserID: adminID,
		DeviceID: e.compliantDevice(admin, adminID), CredentialID: cred[0].ID, KeyThumbprint: k1.jkt, AuthTime: now, LastSeen: now,
		AbsoluteDeadline: now.Add(time.Hour), IdleTimeout: time.Hour, CreatedAt: now}
	if err := e.store.CreateSession(ctx, elsewhere); err != nil {
		t.Fatal(err)
	}

	alive := func(tok string, k cliKey) bool {
		return e.dpopReq("GET", "/v1/session", nil, tok, e.proof(k, "GET", "/v1/session", tok, nil)).status == 200
	}
	if !alive(cli1, k1) || !alive(cli2, k2) || !alive(fayCLI, fayCLIKey) {
		t.Fatal("CLI sessions not live before the logout")
	}
	t.Run("ok-cli-logout-ends-only-itself", func(t *testing.T) {
		k3 := newCLIKey(t)
		cli3, _ := e.cliLogin(other, k3)
		if r := e.dpopReq("POST", "/v1/logout", nil, cli3, e.proof(k3, "POST", "/v1/logout", cli3, nil)); r.status != 200 {
			t.Fatalf("CLI logout: %d %s", r.status, r.raw)
		}
		if alive(cli3, k3) || !alive(cli1, k1) || e.req("GET", "/v1/session", nil, other, nil).status != 200 {
			t.Fatal("a CLI logout ended other sessions, or not itself")
		}
	})

	if r := e.req("POST", "/v1/logout", nil, browser, nil); r.status != 200 {
		t.Fatalf("logout: %d %s", r.status, r.raw)
	}
	if alive(cli1, k1) || alive(cli2, k2) {
		t.Error("a CLI session of this account on this device outlived the browser logout")
	}
	if !alive(fayCLI, fayCLIKey) {
		t.Error("another person's CLI session ended")
	}
	if s, err := e.store.FindSessionByID(ctx, elsewhere.ID); err != nil || !s.EndedAt.IsZero() {
		t.Errorf("the account's CLI session on another device ended: %v %v", s, err)
	}
	if r := e.req("GET", "/v1/session", nil, other, nil); r.status != 200 {
		t.Errorf("another browser session ended: %d", r.status)
	}
	ended := false
	for _, ev := range auditTypes(t, e, "session.ended") {
		if ev.SessionID == cli1ID && ev.Reason == "browser_logout" && ev.Actor == adminID {
			ended = true
		}
	}
	if !ended {
		t.Error("the CLI session's end is not audited with reason browser_logout")
	}
}

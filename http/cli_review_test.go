package http_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"airlock"
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

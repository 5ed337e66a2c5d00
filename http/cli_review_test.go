package http_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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

package http_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"airlock"
	"airlock/passkey/passkeytest"
)

// TestAdminChangesEndGrants: the admin changes that take away what a grant
// rests on end it at once, with the matching reason and an
// "elevation.ended" record — not only at the next sweep or use.
func TestAdminChangesEndGrants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(e *env, admin, uid, devID, credID string) resp
		reason string
	}{
		{"user-disabled", func(e *env, admin, uid, _, _ string) resp {
			return e.req("PATCH", "/v1/admin/users/"+uid, map[string]any{"disabled": true}, admin, nil)
		}, airlock.EndUserDisabled},
		{"credential-revoked", func(e *env, admin, _, _, credID string) resp {
			return e.req("POST", "/v1/admin/credentials/"+credID+"/revoke", nil, admin, nil)
		}, airlock.EndCredentialRevoked},
		{"device-untrusted", func(e *env, admin, _, devID, _ string) resp {
			return e.req("PATCH", "/v1/admin/devices/"+devID, map[string]any{"trust": "pending"}, admin, nil)
		}, airlock.EndDeviceUntrusted},
		{"device-revoked", func(e *env, admin, _, devID, _ string) resp {
			return e.req("PATCH", "/v1/admin/devices/"+devID, map[string]any{"trust": "revoked"}, admin, nil)
		}, airlock.EndDeviceUntrusted},
		{"device-noncompliant", func(e *env, admin, _, devID, _ string) resp {
			return e.req("PUT", "/v1/admin/devices/"+devID+"/posture", map[string]any{"managed": true, "disk_encrypted": false, "screen_lock": true}, admin, nil)
		}, airlock.EndDeviceNonCompliant},
	} {
		t.Run("fail-"+tc.name, func(t *testing.T) {
			e := newEnv(t, withElevation())
			admin, _ := e.bootstrapAdmin()
			tok, _, uid := e.person(admin, "rita", 1, nil, passkeytest.Flags{})
			r := e.ask(tok, "viewer@grafana", time.Hour, "look at the dashboards")
			if r.status != http.StatusCreated || nested(r, "grant") == nil {
				t.Fatalf("request: %d %s", r.status, r.raw)
			}
			grantID := nested(r, "grant")["id"].(string)
			s := e.req("GET", "/v1/session", nil, tok, nil)
			devID := s.body["device"].(map[string]any)["id"].(string)
			credID := s.body["credential"].(string)
			if c := tc.change(e, admin, uid, devID, credID); c.status != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.name, c.status, c.raw)
			}
			g, err := e.store.FindGrantByID(context.Background(), grantID)
			if err != nil {
				t.Fatal(err)
			}
			if g.EndedAt.IsZero() || g.EndReason != tc.reason {
				t.Fatalf("grant ended %v reason %q, want %q at once", g.EndedAt, g.EndReason, tc.reason)
			}
			evs, _ := e.store.ListAudit(context.Background(), airlock.AuditFilter{GrantID: grantID, Type: "elevation.ended"})
			if len(evs) != 1 || evs[0].Reason != tc.reason {
				t.Fatalf("elevation.ended records %+v", evs)
			}
		})
	}
}

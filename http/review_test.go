package http_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock"
	"airlock/passkey/passkeytest"
)

// deviceOf returns the id of the first device owned by userID.
func (e *env) deviceOf(admin, userID string) string {
	e.t.Helper()
	for _, d := range e.req("GET", "/v1/admin/devices", nil, admin, nil).body["devices"].([]any) {
		if d.(map[string]any)["owner"] == userID {
			return d.(map[string]any)["id"].(string)
		}
	}
	e.t.Fatalf("no device for %s", userID)
	return ""
}

func (e *env) userID(admin, name string) string {
	e.t.Helper()
	r := e.req("GET", "/v1/admin/users/"+name, nil, admin, nil)
	return r.body["user"].(map[string]any)["id"].(string)
}

func TestNoDeviceTakeoverAcrossTiers(t *testing.T) {
	e := newEnv(t, airlockTier1)
	admin, adminAuth := e.bootstrapAdmin()
	t1admin, _, _ := e.person(admin, "t1admin", 1, []string{airlock.RoleAdmin}, passkeytest.Flags{})
	bootDev := e.deviceOf(admin, e.userID(admin, "admin"))

	cases := []struct {
		name   string
		method string
		path   string
		body   map[string]any
	}{
		{"fail-revoke-tier0-device", "PATCH", "/v1/admin/devices/" + bootDev, map[string]any{"trust": "revoked"}},
		{"fail-take-tier0-device", "PATCH", "/v1/admin/devices/" + bootDev, map[string]any{"owner": "t1admin"}},
		{"fail-posture-tier0-device", "PUT", "/v1/admin/devices/" + bootDev + "/posture", map[string]any{"disk_encrypted": false}},
		{"fail-device-for-tier0-owner", "POST", "/v1/admin/devices", map[string]any{"name": "x", "owner": "admin", "kind": "managed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.req(tc.method, tc.path, tc.body, t1admin, nil); r.status != 403 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	// The tier-0 admin still signs in and administers.
	fresh, r := e.login(adminAuth)
	if r.status != 200 || e.req("GET", "/v1/admin/users", nil, fresh, nil).status != 200 {
		t.Fatalf("tier-0 admin locked out: %d %s", r.status, r.raw)
	}
	// A device never starts trusted.
	if r := e.req("POST", "/v1/admin/devices", map[string]any{"name": "y", "owner": "shared", "kind": "managed", "trust": "trusted"}, admin, nil); r.status != 400 {
		t.Fatalf("created trusted: %d %s", r.status, r.raw)
	}
	// The posture source is the caller, not a claim.
	id := e.compliantDevice(admin, "shared")
	p := e.req("PUT", "/v1/admin/devices/"+id+"/posture", map[string]any{"disk_encrypted": true, "screen_lock": true, "source": "bootstrap"}, admin, nil)
	if p.status != 200 || p.body["posture"].(map[string]any)["source"] != "admin:admin" {
		t.Fatalf("posture source: %d %s", p.status, p.raw)
	}
}

func TestNoSameTierAccountTakeover(t *testing.T) {
	e := newEnv(t, airlockTier1)
	admin, _ := e.bootstrapAdmin()
	t1admin, _, _ := e.person(admin, "t1admin", 1, []string{airlock.RoleAdmin}, passkeytest.Flags{})
	_, _, peerID := e.person(admin, "peer", 1, []string{airlock.RoleAdmin}, passkeytest.Flags{})
	_, _, lowID := e.person(admin, "low", 2, nil, passkeytest.Flags{})

	// Established account of the same tier: refused.
	dev := e.deviceOf(admin, peerID)
	r := e.req("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": peerID, "device": dev}, t1admin, nil)
	if r.status != 403 || !strings.Contains(r.errMsg(), "only they can add another") {
		t.Fatalf("same-tier takeover: %d %s", r.status, r.raw)
	}
	// Less privileged account: allowed.
	if r := e.req("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": lowID, "device": e.deviceOf(admin, lowID)}, t1admin, nil); r.status != 201 {
		t.Fatalf("tier-2 account: %d %s", r.status, r.raw)
	}
	// New account of the same tier with no passkey yet (onboarding): allowed.
	nu := e.req("POST", "/v1/admin/users", map[string]any{"name": "newbie", "tier": 1}, t1admin, nil)
	nd := e.req("POST", "/v1/admin/devices", map[string]any{"name": "nb", "owner": "newbie", "kind": "managed"}, t1admin, nil)
	if r := e.req("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": nu.body["id"], "device": nd.body["id"]}, t1admin, nil); r.status != 201 {
		t.Fatalf("onboarding: %d %s", r.status, r.raw)
	}
}

func TestSelfServiceAddPasskey(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	tok, a, uid := e.person(admin, "sam", 1, nil, passkeytest.Flags{})
	stok, _, sid := e.person(admin, "syncy", 1, nil, passkeytest.Flags{BackupEligible: true, BackupState: true})
	syncDev := e.deviceOf(admin, sid)
	dev := e.deviceOf(admin, uid)
	r := e.req("POST", "/v1/me/enrolment-tokens", map[string]any{"device": dev}, tok, nil)
	if r.status != 201 || !strings.HasPrefix(r.body["url"].(string), e.origin+"/enrol?token=") {
		t.Fatalf("self token: %d %s", r.status, r.raw)
	}
	// The new passkey enrols and the user is notified again.
	b := passkeytest.New()
	if er := e.enrol(b, r.body["token"].(string)); er.status != 200 {
		t.Fatalf("enrol second passkey: %d %s", er.status, er.raw)
	}
	ns, _ := e.store.ListNotificationsByUser(context.Background(), uid)
	if len(ns) != 2 {
		t.Fatalf("notifications: %d", len(ns))
	}
	// Someone else's device: refused.
	other := e.deviceOf(admin, e.userID(admin, "admin"))
	_ = a
	if r := e.req("POST", "/v1/me/enrolment-tokens", map[string]any{"device": other}, tok, nil); r.status != 403 {
		t.Fatalf("other's device: %d %s", r.status, r.raw)
	}
	// Stale passkey verification: refused.
	e.clock.Add(6 * time.Minute)
	tok, _ = e.login(a)
	e.clock.Add(5*time.Minute + time.Second)
	if r := e.req("POST", "/v1/me/enrolment-tokens", map[string]any{"device": dev}, tok, nil); r.status != 403 || r.errCode() != airlock.EFRESHAUTH {
		t.Fatalf("stale UV: %d %s", r.status, r.raw)
	}
	// A session below the account's tier (synced passkey) cannot add one.
	if r := e.req("POST", "/v1/me/enrolment-tokens", map[string]any{"device": syncDev}, stok, nil); r.status != 403 || !strings.Contains(r.errMsg(), "account's tier") {
		t.Fatalf("lower-tier session: %d %s", r.status, r.raw)
	}
}

func TestLoginReplacesBrowserSession(t *testing.T) {
	e := newEnv(t, nil)
	_, a := e.bootstrapAdmin()
	_, r1 := e.login(a)
	c1 := (&http.Response{Header: r1.header}).Cookies()[0]
	// Log in again from the same browser (cookie sent).
	b := e.browser("POST", "/v1/login/begin", map[string]any{}, c1)
	cred, _ := a.Assert(e.origin, mustJSON(b.body["publicKey"]))
	r2 := e.browser("POST", "/v1/login/finish", map[string]any{"ceremony": b.body["ceremony"], "credential": rawJSON(cred)}, c1)
	if r2.status != 200 {
		t.Fatalf("second login: %d %s", r2.status, r2.raw)
	}
	if r := e.browser("GET", "/v1/session", nil, c1); r.status != 401 {
		t.Fatalf("replaced session still live: %d", r.status)
	}
}

func TestSessionsEndWithCredentialAndTier(t *testing.T) {
	e := newEnv(t, nil)
	admin, _ := e.bootstrapAdmin()
	tok, _, uid := e.person(admin, "tess", 1, nil, passkeytest.Flags{})
	// Revoke the credential behind the admin API's back (as a concurrent
	// revocation racing a login would leave it): the session still dies.
	cred := e.req("GET", "/v1/session", nil, tok, nil).body["credential"].(string)
	creds, _ := e.store.ListCredentialsByUser(context.Background(), uid)
	if err := e.store.RevokeCredential(context.Background(), creds[0].ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if r := e.req("GET", "/v1/session", nil, tok, nil); r.status != 401 || !strings.Contains(r.errMsg(), "revoked") {
		t.Fatalf("session with revoked credential %s: %d %s", cred, r.status, r.raw)
	}
	// A lowered tier ends a session of the old tier.
	tok2, _, uid2 := e.person(admin, "tom", 1, nil, passkeytest.Flags{})
	u, _ := e.store.FindUserByID(context.Background(), uid2)
	u.Tier = 2
	if err := e.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if r := e.req("GET", "/v1/session", nil, tok2, nil); r.status != 401 {
		t.Fatalf("session above the account's tier: %d %s", r.status, r.raw)
	}
}

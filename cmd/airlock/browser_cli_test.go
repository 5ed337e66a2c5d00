package main

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserCLILogin drives the /cli/login page in Chromium with a virtual
// authenticator: `airlock login --no-browser` prints the URL, the page
// shows the CLI's key, the person signs in afresh with the passkey and
// authorises, the page hands the code to the CLI's loopback listener, and
// the CLI stores a key-bound token. Deny tells the CLI too.
func TestBrowserCLILogin(t *testing.T) {
	e := newE2E(t)
	t.Setenv("AIRLOCK_CONFIG_DIR", filepath.Join(t.TempDir(), "airlock"))
	t.Setenv("AIRLOCK_SERVER", "")
	admin := e.newPerson("admin", deviceBound)
	admin.mustEnrol(e.m.BootstrapURL, passkeyBootstrapUser)

	r := startCLI("login", "--no-browser", "--server", e.m.Origin, "--timeout", "1m")
	loginURL := r.waitOutput(t, loginURLRe)[1]
	u, _ := url.Parse(loginURL)
	admin.open(loginURL)
	if got := admin.text("cli-jkt"); got != u.Query().Get("jkt") {
		admin.fatalf("the page shows key %q, the CLI printed %q", got, u.Query().Get("jkt"))
	}
	admin.expectOK(admin.act("#cli-signin"), "Signed in")
	if got := admin.text("cli-user"); !strings.Contains(got, passkeyBootstrapUser) {
		admin.fatalf("confirm step names %q", got)
	}
	admin.click("#cli-authorize")
	admin.waitFor("the CLI's loopback page", func(st pageState) bool { return strings.HasPrefix(st.URL, "http://127.0.0.1:") })
	if c := r.wait(t); c != 0 {
		t.Fatalf("airlock login exited %d:\n%s", c, r.stderr.String())
	}
	st, err := loadCLIState()
	if err != nil || st.User != passkeyBootstrapUser || st.Token == "" {
		t.Fatalf("stored state %+v, %v", st, err)
	}
	if evs := e.audit("cli.login"); len(evs) != 1 || evs[0].SessionID != st.Session {
		t.Errorf("cli.login events: %d", len(evs))
	}

	// Deny: the CLI is told and stores nothing new.
	r = startCLI("login", "--no-browser", "--server", e.m.Origin, "--timeout", "1m")
	admin.open(r.waitOutput(t, loginURLRe)[1])
	admin.expectOK(admin.act("#cli-signin"), "Signed in")
	admin.click("#cli-deny")
	if c := r.wait(t); c != 1 || !strings.Contains(r.stderr.String(), "refused in the browser") {
		t.Fatalf("deny: exit %d\n%s", c, r.stderr.String())
	}
	if again, _ := loadCLIState(); again == nil || again.Token != st.Token {
		t.Error("a denied login replaced the stored token")
	}
}

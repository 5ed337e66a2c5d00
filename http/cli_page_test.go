package http_test

import (
	"bytes"
	"net/url"
	"testing"
)

// TestCLILoginPage: GET /cli/login shows the confirmation only for a link
// naming a loopback IP literal, an unprivileged port, a URL-safe state and
// a SHA-256 thumbprint; any other link is refused (400) and never offers a
// callback, so a crafted link cannot send the browser elsewhere.
func TestCLILoginPage(t *testing.T) {
	e := newEnv(t, nil)
	k := newCLIKey(t)
	link := func(mod func(url.Values)) string {
		q := url.Values{"port": {"40123"}, "state": {"st-1"}, "jkt": {k.jkt}}
		if mod != nil {
			mod(q)
		}
		return "/cli/login?" + q.Encode()
	}
	cases := []struct {
		name string
		path string
		ok   bool
	}{
		{"ok-ipv4", link(nil), true},
		{"ok-ipv6", link(func(q url.Values) { q.Set("host", "::1") }), true},
		{"fail-host-localhost", link(func(q url.Values) { q.Set("host", "localhost") }), false},
		{"fail-host-elsewhere", link(func(q url.Values) { q.Set("host", "evil.example") }), false},
		{"fail-privileged-port", link(func(q url.Values) { q.Set("port", "80") }), false},
		{"fail-no-port", link(func(q url.Values) { q.Del("port") }), false},
		{"fail-no-state", link(func(q url.Values) { q.Del("state") }), false},
		{"fail-state-not-url-safe", link(func(q url.Values) { q.Set("state", "a&b") }), false},
		{"fail-jkt-not-a-thumbprint", link(func(q url.Values) { q.Set("jkt", "abc") }), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.req("GET", c.path, nil, "", nil)
			if c.ok {
				if r.status != 200 || !bytes.Contains(r.raw, []byte(`id="cli-login"`)) || !bytes.Contains(r.raw, []byte(k.jkt)) {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				return
			}
			if r.status != 400 || !bytes.Contains(r.raw, []byte("not a valid CLI login link")) {
				t.Fatalf("%d %s, want 400 naming an invalid link", r.status, r.raw)
			}
			if bytes.Contains(r.raw, []byte(`id="cli-login"`)) || bytes.Contains(r.raw, []byte("/callback")) || bytes.Contains(r.raw, []byte("http://evil.example")) {
				t.Errorf("a refused link still offers the CLI flow or its target: %s", r.raw)
			}
		})
	}
}

package breakglass

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock"
)

// exported returns the harness's exported file as a generic JSON tree.
func exported(tb testing.TB, h *harness) map[string]any {
	tb.Helper()
	data, err := os.ReadFile(h.credsAt)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestParseCredentials: the export parses back; each rule of the parser
// has a failing case (EINVALID, never a panic).
func TestParseCredentials(t *testing.T) {
	h := newHarness(t, nil)
	c, err := LoadCredentials(h.credsAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 1 || c.Accounts[0].Name != "bg" || len(c.Accounts[0].Credentials) != 1 ||
		string(c.Accounts[0].Credentials[0].ID) != string(h.bgCred.ID) {
		t.Fatalf("parsed %+v", c)
	}
	u, creds, ok := c.account("bg")
	if !ok || u.ID != h.bg.ID || string(u.Handle) != string(h.bg.Handle) || string(creds[0].PublicKey) != string(h.bgCred.PublicKey) {
		t.Fatalf("account %+v %+v", u, creds)
	}
	acct := func(m map[string]any) map[string]any { return m["accounts"].([]any)[0].(map[string]any) }
	cred := func(m map[string]any) map[string]any { return acct(m)["credentials"].([]any)[0].(map[string]any) }
	tests := []struct {
		name string
		mod  func(m map[string]any)
		raw  string
		want string
	}{
		{name: "fail-not-json", raw: "{", want: "not a credential file"},
		{name: "fail-trailing-data", raw: "{\"version\":1} {}", want: "trailing"},
		{name: "fail-unknown-field", mod: func(m map[string]any) { m["private_key"] = "x" }, want: "unknown field"},
		{name: "fail-version", mod: func(m map[string]any) { m["version"] = 2 }, want: "version"},
		{name: "fail-no-accounts", mod: func(m map[string]any) { m["accounts"] = []any{} }, want: "accounts"},
		{name: "fail-normal-kind", mod: func(m map[string]any) { acct(m)["kind"] = "employee" }, want: "only breakglass"},
		{name: "fail-no-name", mod: func(m map[string]any) { acct(m)["name"] = "" }, want: "name"},
		{name: "fail-name-with-newline", mod: func(m map[string]any) { acct(m)["name"] = "bg\nx" }, want: "name"},
		{name: "fail-no-handle", mod: func(m map[string]any) { acct(m)["handle"] = "" }, want: "handle"},
		{name: "fail-handle-not-base64url", mod: func(m map[string]any) { acct(m)["handle"] = "a+b/" }, want: "base64url"},
		{name: "fail-duplicate-account", mod: func(m map[string]any) {
			m["accounts"] = append(m["accounts"].([]any), acct(m))
		}, want: "twice"},
		{name: "fail-no-credentials", mod: func(m map[string]any) { acct(m)["credentials"] = []any{} }, want: "credentials"},
		{name: "fail-backup-eligible", mod: func(m map[string]any) { cred(m)["be"] = true }, want: "be=true"},
		{name: "fail-algorithm-not-offered", mod: func(m map[string]any) { cred(m)["algorithm"] = -35 }, want: "not offered"},
		{name: "fail-algorithm-mismatch", mod: func(m map[string]any) { cred(m)["algorithm"] = -8 }, want: "algorithm"},
		{name: "fail-public-key-not-cose", mod: func(m map[string]any) { cred(m)["public_key"] = "AAAA" }, want: "COSE"},
		{name: "fail-no-credential-id", mod: func(m map[string]any) { cred(m)["id"] = "" }, want: "id must be"},
		{name: "fail-bad-aaguid", mod: func(m map[string]any) { cred(m)["aaguid"] = "not-a-uuid" }, want: "aaguid"},
		{name: "fail-negative-sign-count", mod: func(m map[string]any) { cred(m)["sign_count"] = -1 }, want: "not a credential file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.raw)
			if tc.mod != nil {
				m := exported(t, h)
				tc.mod(m)
				data = mustJSON(t, m)
			}
			_, err := ParseCredentials(data)
			if airlock.ErrorCode(err) != airlock.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCredentials: %v, want EINVALID about %q", err, tc.want)
			}
		})
	}
	t.Run("fail-too-large", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "big.json")
		if err := os.WriteFile(path, make([]byte, MaxCredentialsFileSize+1), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCredentials(path); err == nil || !strings.Contains(err.Error(), "over") {
			t.Fatalf("LoadCredentials: %v", err)
		}
	})
}

// TestExportCredentials: only enabled break-glass accounts with unrevoked
// device-bound passkeys; none is ENOTFOUND.
func TestExportCredentials(t *testing.T) {
	h := newHarness(t, nil)
	data, err := ExportCredentials(h.ctx, h.sqlite)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "alice") || strings.Contains(string(data), "u-root") {
		t.Error("normal accounts exported")
	}
	if err := h.sqlite.RevokeCredential(h.ctx, h.bgCred.ID, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ExportCredentials(h.ctx, h.sqlite); airlock.ErrorCode(err) != airlock.ENOTFOUND {
		t.Fatalf("export with no usable passkey: %v, want ENOTFOUND", err)
	}
}

// FuzzLoadCredentials: the static credential file parser never panics, and
// whatever it accepts satisfies its rules.
func FuzzLoadCredentials(f *testing.F) {
	h := newHarness(f, nil)
	good, err := os.ReadFile(h.credsAt)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"accounts":[]}`))
	f.Add([]byte(`{"version":1,"accounts":[{"id":"a","name":"b","handle":"AA","kind":"breakglass","credentials":[{"id":"AA","public_key":"AA","algorithm":-7}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCredentials(data)
		if err != nil {
			if airlock.ErrorCode(err) != airlock.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if c.Version != CredentialsVersion || len(c.Accounts) == 0 {
			t.Fatalf("accepted %+v", c)
		}
		for _, a := range c.Accounts {
			if a.Kind != airlock.UserBreakGlass || len(a.Credentials) == 0 {
				t.Fatalf("accepted account %+v", a)
			}
			for _, cr := range a.Credentials {
				if cr.BE || len(cr.ID) == 0 || checkCOSE(cr.PublicKey, cr.Algorithm) != nil {
					t.Fatalf("accepted credential %+v", cr)
				}
			}
			if _, _, ok := c.account(a.Name); !ok {
				t.Fatalf("account %q not found", a.Name)
			}
		}
	})
}

// TestSpoolTornLine: a torn last line (a crash mid-append) is ignored on
// read and cut off before the next append; a damaged complete line is an
// error, not silently dropped.
func TestSpoolTornLine(t *testing.T) {
	sp := &spool{path: filepath.Join(t.TempDir(), "s.jsonl")}
	if lines, err := sp.read(); err != nil || len(lines) != 0 {
		t.Fatalf("missing file: %v %v", lines, err)
	}
	if err := sp.append(map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(sp.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"n":2,"tor`)
	f.Close()
	lines, err := sp.read()
	if err != nil || len(lines) != 1 || string(lines[0]) != `{"n":1}` {
		t.Fatalf("with a torn line: %q %v", lines, err)
	}
	if err := sp.append(map[string]int{"n": 3}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(sp.path)
	if string(data) != "{\"n\":1}\n{\"n\":3}\n" {
		t.Fatalf("after repair: %q", data)
	}
	if fi, _ := os.Stat(sp.path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if err := os.WriteFile(sp.path, []byte("{\"n\":1}\nnot json\n{\"n\":3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.read(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("damaged line: %v", err)
	}
}

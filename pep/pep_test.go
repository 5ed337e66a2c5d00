package pep

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"airlock"
)

type fake struct {
	got  Request
	ans  *Decision
	err  error
	call int
}

func (f *fake) Decide(_ context.Context, req Request) (*Decision, error) {
	f.call++
	f.got = req
	return f.ans, f.err
}

func serve(t *testing.T, g Guard, method, body string, hdr map[string]string) (*httptest.ResponseRecorder, *bool, string) {
	t.Helper()
	called := false
	var seen string
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		b, _ := io.ReadAll(r.Body)
		seen = string(b)
		if d := FromContext(r.Context()); d == nil || d.Decision != Allow {
			t.Errorf("handler ran without the allow decision in its context: %+v", d)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	r := httptest.NewRequest(method, "/things/1", strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, &called, seen
}

func TestGuardAllow(t *testing.T) {
	f := &fake{ans: &Decision{Decision: Allow, DecisionID: "dec-1"}}
	g := Guard{Decider: f, Action: "deploy.prod", Resource: "ci", Client: "deployer"}
	w, called, seen := serve(t, g, "POST", `{"service":"api","version":"1.2"}`, map[string]string{
		"Authorization": "Bearer tok-1", HeaderStepUp: " proof-1 ", "User-Agent": "curl/8"})
	if w.Code != http.StatusNoContent || !*called {
		t.Fatalf("allow: %d, handler called %v", w.Code, *called)
	}
	if seen != `{"service":"api","version":"1.2"}` {
		t.Errorf("handler saw body %q", seen)
	}
	if f.got.Session != "tok-1" || f.got.Action != "deploy.prod" || f.got.Resource != "ci" || f.got.StepUp != "proof-1" ||
		f.got.Context.Client != "deployer" || f.got.Context.UserAgent != "curl/8" || f.got.Context.IP != "192.0.2.1" {
		t.Errorf("decision request %+v", f.got)
	}
	var p struct {
		Request string         `json:"request"`
		Body    map[string]any `json:"body"`
	}
	if err := json.Unmarshal(f.got.Params, &p); err != nil || p.Request != "POST /things/1" || p.Body["service"] != "api" {
		t.Errorf("params %s", f.got.Params)
	}
}

func TestGuardStepUpChallenge(t *testing.T) {
	f := &fake{ans: &Decision{Decision: StepUp, DecisionID: "dec-2", Reasons: []Reason{{Policy: "p", Text: `needs "fresh" UV`}},
		StepUp: &StepUpChallenge{Transaction: "txn_1", MaxAge: 300, ACR: "airlock:tier0", URL: "https://a.example/stepup/txn_1"}}}
	w, called, _ := serve(t, Guard{Decider: f, Action: "a", Resource: "r"}, "POST", `{}`, nil)
	if *called {
		t.Fatal("handler ran on step_up")
	}
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", w.Code)
	}
	want := `Bearer error="insufficient_user_authentication", error_description="a passkey confirmation of this exact request is required: needs \"fresh\" UV", acr_values="airlock:tier0", max_age="300"`
	if got := w.Header().Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, want)
	}
	var b ChallengeBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if b.Error.Code != ErrInsufficientUserAuthentication || b.Transaction != "txn_1" || b.StepUpURL != "https://a.example/stepup/txn_1" ||
		b.MaxAge != 300 || b.DecisionID != "dec-2" {
		t.Errorf("body %+v", b)
	}
	resp := &http.Response{StatusCode: w.Code, Header: w.Header()}
	if c, ok := ParseChallenge(resp, w.Body.Bytes()); !ok || c.Transaction != "txn_1" {
		t.Errorf("ParseChallenge: %+v %v", c, ok)
	}
	// Without an ACR the header names only max_age.
	f.ans.StepUp.ACR, f.ans.StepUp.MaxAge = "", 0
	w, _, _ = serve(t, Guard{Decider: f, Action: "a", Resource: "r"}, "POST", `{}`, nil)
	if h := w.Header().Get("WWW-Authenticate"); strings.Contains(h, "acr_values") || !strings.HasSuffix(h, `max_age="0"`) {
		t.Errorf("WWW-Authenticate without acr: %s", h)
	}
	// A step_up without a transaction cannot be cured.
	f.ans.StepUp = nil
	w, called, _ = serve(t, Guard{Decider: f, Action: "a", Resource: "r"}, "POST", `{}`, nil)
	if w.Code != http.StatusForbidden || *called {
		t.Errorf("step_up without transaction: %d, called %v", w.Code, *called)
	}
}

func TestGuardRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ans    *Decision
		err    error
		body   string
		status int
		code   string
	}{
		{"fail-deny", &Decision{Decision: Deny, Reasons: []Reason{{Policy: "tier0-device", Text: "needs a managed device"}}}, nil, `{}`, 403, airlock.EFORBIDDEN},
		{"fail-approval", &Decision{Decision: ApprovalRequired}, nil, `{}`, 403, ApprovalRequired},
		{"fail-unknown-outcome", &Decision{Decision: "maybe"}, nil, `{}`, 403, airlock.EFORBIDDEN},
		{"fail-decider-down", nil, errors.New("connection refused"), `{}`, 503, airlock.EUNAVAILABLE},
		{"fail-store-down", nil, airlock.Errorf(airlock.EUNAVAILABLE, "store"), `{}`, 503, airlock.EUNAVAILABLE},
		{"fail-internal", nil, airlock.Errorf(airlock.EINTERNAL, "bug"), `{}`, 503, airlock.EUNAVAILABLE},
		{"fail-no-session", nil, airlock.Errorf(airlock.EUNAUTHORIZED, "sign in first"), `{}`, 401, airlock.EUNAUTHORIZED},
		{"fail-bad-body", &Decision{Decision: Allow}, nil, `{"a":`, 400, airlock.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{ans: tc.ans, err: tc.err}
			w, called, _ := serve(t, Guard{Decider: f, Action: "a", Resource: "r"}, "POST", tc.body, nil)
			if *called {
				t.Fatal("handler ran")
			}
			var b struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &b)
			if w.Code != tc.status || b.Error.Code != tc.code {
				t.Errorf("got %d %s, want %d %s (%s)", w.Code, b.Error.Code, tc.status, tc.code, w.Body)
			}
		})
	}
	// No decider at all: denied.
	w, called, _ := serve(t, Guard{Action: "a", Resource: "r"}, "GET", ``, nil)
	if w.Code != 503 || *called {
		t.Errorf("no decider: %d, called %v", w.Code, *called)
	}
}

func TestClient(t *testing.T) {
	var got Request
	answer := `{"decision":"step_up","decision_id":"dec-1","reasons":[],"risk":{"score":0,"signals":[]},"step_up":{"transaction":"txn_1","max_age":0,"url":"u"},"policy_version":"v"}`
	status := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/decide" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/"}
	d, err := c.Decide(context.Background(), Request{Session: "tok", Action: "a", Resource: "r", Params: json.RawMessage(`{"x":1}`), StepUp: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Decision != StepUp || d.StepUp.Transaction != "txn_1" || got.Session != "tok" || got.StepUp != "p" || string(got.Params) != `{"x":1}` {
		t.Errorf("decision %+v, request %+v", d, got)
	}
	status, answer = 401, `{"error":{"code":"unauthorized","message":"no valid session"}}`
	if _, err := c.Decide(context.Background(), Request{}); airlock.ErrorCode(err) != airlock.EUNAUTHORIZED {
		t.Errorf("401 answer: %v", err)
	}
	status, answer = 200, `{"decision":"allow-ish"}`
	if _, err := c.Decide(context.Background(), Request{}); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Errorf("unknown decision accepted: %v", err)
	}
	status, answer = 502, `bad gateway`
	if _, err := c.Decide(context.Background(), Request{}); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Errorf("502: %v", err)
	}
	srv.Close()
	if _, err := c.Decide(context.Background(), Request{}); airlock.ErrorCode(err) != airlock.EUNAVAILABLE {
		t.Errorf("unreachable: %v", err)
	}
}

// TestGuardDefaultParamsBindTheURL: with the default parameters a step-up
// proof is bound to the method, path and query as well as the body, so that
// a proof confirmed for /accounts/1 cannot be spent on /accounts/2 with the
// same body.
func TestGuardDefaultParamsBindTheURL(t *testing.T) {
	params := func(method, target, body string) string {
		f := &fake{ans: &Decision{Decision: Allow}}
		h := Guard{Decider: f, Action: "payments.transfer", Resource: "payments"}.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, target, strings.NewReader(body)))
		return string(f.got.Params)
	}
	body := `{"amount":"100.00"}`
	base := params("POST", "/accounts/1/transfer", body)
	for name, other := range map[string]string{
		"fail-other-path":   params("POST", "/accounts/2/transfer", body),
		"fail-other-query":  params("POST", "/accounts/1/transfer?to=mallory", body),
		"fail-other-method": params("PUT", "/accounts/1/transfer", body),
	} {
		if other == base {
			t.Errorf("%s: same parameters %s as the original request", name, base)
		}
	}
	var p struct {
		Request string         `json:"request"`
		Body    map[string]any `json:"body"`
	}
	if err := json.Unmarshal([]byte(params("POST", "/accounts/1/transfer?to=alice", body)), &p); err != nil ||
		p.Request != "POST /accounts/1/transfer?to=alice" || p.Body["amount"] != "100.00" {
		t.Errorf("default parameters %+v (%v)", p, err)
	}
}

// Package pep is Airlock's policy enforcement point for Go HTTP services: a
// middleware that asks Airlock's decision point (in process, or over HTTP
// through POST /v1/decide) about every request it guards and enforces the
// answer — the handler runs only on allow; a step_up becomes an RFC 9470
// challenge (401 with WWW-Authenticate: Bearer
// error="insufficient_user_authentication", acr_values, max_age) carrying
// the step-up transaction and the page where the person confirms it; a deny
// or approval_required becomes 403; and any failure to get a decision is a
// deny (fail closed, 503).
//
// A client that completed the step-up repeats the identical request with
// the single-use proof in the Airlock-StepUp header; the middleware passes
// it to the decision point, which accepts it once, for that request only.
package pep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"airlock"
)

// HeaderStepUp carries a step-up proof on the repeated request.
const HeaderStepUp = "Airlock-StepUp"

// ErrInsufficientUserAuthentication is the RFC 9470 error code of a
// step-up challenge, used as the JSON error code too.
const ErrInsufficientUserAuthentication = "insufficient_user_authentication"

// Outcomes of a decision.
const (
	Allow            = "allow"
	StepUp           = "step_up"
	ApprovalRequired = "approval_required"
	Deny             = "deny"
)

// Context describes the end user's request.
type Context struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Client names the requesting application; the step-up page shows it.
	Client string `json:"client,omitempty"`
}

// Request is a decision request: the body of POST /v1/decide.
type Request struct {
	// Session is the end user's session token; empty means the caller's
	// own session (browser calls).
	Session  string          `json:"session,omitempty"`
	Action   string          `json:"action"`
	Resource string          `json:"resource"`
	Params   json.RawMessage `json:"params,omitempty"`
	Context  Context         `json:"context"`
	// StepUp is a step-up proof presented for this request.
	StepUp string `json:"stepup,omitempty"`
}

// Reason explains one policy's part in a decision.
type Reason struct {
	Policy string `json:"policy"`
	Text   string `json:"text"`
}

// Contribution is one risk signal's share of the score.
type Contribution struct {
	Signal string `json:"signal"`
	Points int    `json:"points"`
	Text   string `json:"text"`
}

// Risk is the decision's risk score and its contributions.
type Risk struct {
	Score   int            `json:"score"`
	Signals []Contribution `json:"signals"`
}

// StepUpChallenge is what a step_up asks for.
type StepUpChallenge struct {
	Transaction string `json:"transaction"`
	// MaxAge is the largest acceptable age in seconds of the confirming
	// passkey assertion (0: one for this very request).
	MaxAge int64 `json:"max_age"`
	// ACR is the authentication context class to ask for (may be empty).
	ACR string `json:"acr,omitempty"`
	// URL is the page where the person confirms the transaction.
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Decision is the decision point's answer: the body POST /v1/decide returns.
type Decision struct {
	Decision      string           `json:"decision"`
	DecisionID    string           `json:"decision_id"`
	Reasons       []Reason         `json:"reasons"`
	Risk          Risk             `json:"risk"`
	StepUp        *StepUpChallenge `json:"step_up,omitempty"`
	PolicyVersion string           `json:"policy_version"`
	// Exceptions lists the ids of live exceptions that applied.
	Exceptions []string `json:"exceptions,omitempty"`
}

// Text joins the reasons' texts.
func (d *Decision) Text() string {
	var parts []string
	for _, r := range d.Reasons {
		parts = append(parts, r.Text)
	}
	if len(parts) == 0 {
		return d.Decision
	}
	return strings.Join(parts, "; ")
}

// Decider answers decision requests. The context is the guarded request's.
// An error means no decision: the middleware denies.
type Decider interface {
	Decide(ctx context.Context, req Request) (*Decision, error)
}

// DeciderFunc adapts a function to Decider.
type DeciderFunc func(ctx context.Context, req Request) (*Decision, error)

// Decide calls f.
func (f DeciderFunc) Decide(ctx context.Context, req Request) (*Decision, error) { return f(ctx, req) }

// Guard protects handlers with decisions about one action on one resource.
type Guard struct {
	Decider Decider
	// Action and Resource name what the guarded handler does.
	Action   string
	Resource string
	// Params returns the request's parameters (JSON-encodable, normally an
	// object); nil means RequestParams (method, path, query and JSON body).
	// Step-up proofs are bound to them, so they must cover everything that
	// makes the request what it is.
	Params func(r *http.Request) (any, error)
	// Session returns the end user's session token; nil means the bearer
	// token of the Authorization header (an in-process Decider may find
	// the session in the context instead).
	Session func(r *http.Request) string
	// Client names this application on the step-up page.
	Client string
	// ClientIP returns the end user's address; nil means the TCP peer.
	ClientIP func(r *http.Request) string
}

type ctxKey struct{}

// FromContext returns the allow decision the guard made for the request
// (for correlating the handler's own audit records), or nil.
func FromContext(ctx context.Context) *Decision {
	d, _ := ctx.Value(ctxKey{}).(*Decision)
	return d
}

// Wrap returns next guarded by g.
func (g Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := g.request(r)
		if err != nil {
			WriteError(w, http.StatusBadRequest, airlock.EINVALID, err.Error())
			return
		}
		var d *Decision
		if g.Decider != nil {
			d, err = g.Decider.Decide(r.Context(), req)
		} else {
			err = errors.New("pep: no decider")
		}
		if err != nil {
			writeDecideError(w, err)
			return
		}
		switch d.Decision {
		case Allow:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, d)))
		case StepUp:
			Challenge(w, d)
		case ApprovalRequired:
			writeDenied(w, ApprovalRequired, "this action needs approval: "+d.Text(), d)
		default:
			writeDenied(w, airlock.EFORBIDDEN, "denied by policy: "+d.Text(), d)
		}
	})
}

// request builds the decision request for r, reading (and restoring) the
// body when the parameters come from it.
func (g Guard) request(r *http.Request) (Request, error) {
	params := g.Params
	if params == nil {
		params = RequestParams
	}
	p, err := params(r)
	if err != nil {
		return Request{}, err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return Request{}, fmt.Errorf("pep: parameters cannot be encoded: %v", err)
	}
	req := Request{Action: g.Action, Resource: g.Resource, Params: raw, StepUp: strings.TrimSpace(r.Header.Get(HeaderStepUp)),
		Context: Context{UserAgent: r.UserAgent(), Client: g.Client}}
	if g.Session != nil {
		req.Session = g.Session(r)
	} else {
		req.Session = BearerToken(r)
	}
	if g.ClientIP != nil {
		req.Context.IP = g.ClientIP(r)
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Context.IP = host
	}
	return req, nil
}

// RequestParams returns the parameters of r as a whole: {"request":
// "<method> <path>[?<query>]", "body": <JSONBody>}. It is the Guard's
// default, so that a step-up proof confirmed for one URL (say
// /accounts/1/transfer) cannot be spent on another with the same body.
func RequestParams(r *http.Request) (any, error) {
	body, err := JSONBody(r)
	if err != nil {
		return nil, err
	}
	target := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	return map[string]any{"request": r.Method + " " + target, "body": body}, nil
}

// MaxBodyBytes bounds the body JSONBody reads.
const MaxBodyBytes = 64 << 10

// JSONBody returns the request's JSON body as parameters (an empty body is
// an empty object) and puts the body back for the handler.
func JSONBody(r *http.Request) (any, error) {
	if r.Body == nil {
		return map[string]any{}, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("pep: cannot read the request body: %v", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, fmt.Errorf("request body too large (limit %d bytes)", MaxBodyBytes)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("malformed JSON body: %v", err)
	}
	return v, nil
}

// BearerToken returns the bearer token of r's Authorization header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// ChallengeBody is the JSON body of a step-up challenge.
type ChallengeBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Transaction string    `json:"transaction"`
	StepUpURL   string    `json:"step_up_url"`
	MaxAge      int64     `json:"max_age"`
	ACR         string    `json:"acr,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	DecisionID  string    `json:"decision_id"`
}

// Challenge answers a step_up decision as RFC 9470 says: 401 with
// WWW-Authenticate: Bearer error="insufficient_user_authentication",
// error_description, acr_values (when the decision names one) and max_age,
// and a JSON body with the transaction and its step-up URL.
func Challenge(w http.ResponseWriter, d *Decision) {
	s := d.StepUp
	if s == nil {
		// A step_up without a transaction cannot be cured: deny.
		writeDenied(w, airlock.EFORBIDDEN, "denied: step-up required but no transaction was opened", d)
		return
	}
	msg := "a passkey confirmation of this exact request is required: " + d.Text()
	params := []string{`error="` + ErrInsufficientUserAuthentication + `"`, `error_description="` + quote(msg) + `"`}
	if s.ACR != "" {
		params = append(params, `acr_values="`+quote(s.ACR)+`"`)
	}
	params = append(params, `max_age="`+strconv.FormatInt(s.MaxAge, 10)+`"`)
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	var body ChallengeBody
	body.Error.Code = ErrInsufficientUserAuthentication
	body.Error.Message = msg
	body.Transaction, body.StepUpURL, body.MaxAge, body.ACR, body.ExpiresAt, body.DecisionID = s.Transaction, s.URL, s.MaxAge, s.ACR, s.ExpiresAt, d.DecisionID
	writeJSON(w, http.StatusUnauthorized, body)
}

// quote makes s safe inside an RFC 9110 quoted-string.
func quote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

type deniedBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	DecisionID string   `json:"decision_id"`
	Reasons    []Reason `json:"reasons"`
}

func writeDenied(w http.ResponseWriter, code, msg string, d *Decision) {
	var body deniedBody
	body.Error.Code, body.Error.Message = code, msg
	body.DecisionID, body.Reasons = d.DecisionID, d.Reasons
	if body.Reasons == nil {
		body.Reasons = []Reason{}
	}
	writeJSON(w, http.StatusForbidden, body)
}

// writeDecideError answers when no decision could be made: an
// unauthenticated or malformed request is the caller's to fix; anything
// else is a deny because the decision point is unavailable (fail closed).
func writeDecideError(w http.ResponseWriter, err error) {
	code, msg := airlock.ErrorCode(err), airlock.ErrorMessage(err)
	switch code {
	case airlock.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer`)
		WriteError(w, http.StatusUnauthorized, code, msg)
	case airlock.EINVALID:
		WriteError(w, http.StatusBadRequest, code, msg)
	case airlock.EFORBIDDEN:
		WriteError(w, http.StatusForbidden, code, msg)
	default:
		WriteError(w, http.StatusServiceUnavailable, airlock.EUNAVAILABLE, "no policy decision could be made; the request is denied")
	}
}

// WriteError writes Airlock's JSON error body.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package http

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"airlock"
	"airlock/decide"
)

type stepUpBeginRequest struct {
	Transaction string `json:"transaction"`
}

// handleStepUpBegin is POST /v1/stepup/begin: only the transaction's own
// session may start its ceremony.
func (s *Server) handleStepUpBegin(w http.ResponseWriter, r *http.Request) {
	var req stepUpBeginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	a := sessionFrom(r.Context())
	sid, m := s.stepUpAs(r, a, req.Transaction)
	b, err := s.Passkeys.BeginStepUp(r.Context(), req.Transaction, sid, m)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

type stepUpJSON struct {
	Proof          string    `json:"proof"`
	Transaction    string    `json:"transaction"`
	Action         string    `json:"action"`
	Resource       string    `json:"resource"`
	ProofExpiresAt time.Time `json:"proof_expires_at"`
}

// handleStepUpFinish is POST /v1/stepup/finish. On success the answer
// carries the single-use proof; it is shown once and only its hash is
// stored.
func (s *Server) handleStepUpFinish(w http.ResponseWriter, r *http.Request) {
	req, err := s.decodeFinish(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a := sessionFrom(r.Context())
	// ?transaction= names the transaction when the browser confirms one
	// of its user's CLI sessions (stepUpSession); the ceremony still
	// checks that it is the one it was begun for.
	sid, m := s.stepUpAs(r, a, r.URL.Query().Get("transaction"))
	res, err := s.Passkeys.FinishStepUp(r.Context(), req.Ceremony, req.Credential, sid, m)
	s.logins.WithLabelValues("stepup", outcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t := res.Transaction
	// The passkey was used from here, so this network is the user's now.
	// The transaction's IP is only what the enforcement point reported
	// (context.ip of decide), so it never teaches Airlock a network.
	if err := s.seen(r.Context(), t.UserID, m.IP); err != nil {
		s.Logger.Warn("recording the step-up network failed", "user", t.UserID, "err", err)
	}
	writeJSON(w, http.StatusOK, stepUpJSON{Proof: res.Proof, Transaction: t.ID, Action: t.Action, Resource: t.Resource,
		ProofExpiresAt: t.ProofExpiresAt})
}

// stepUpData is what the step-up page shows.
type stepUpData struct {
	Tx     *airlock.StepUp
	Params []decide.Field
	// Client is the requesting application's name as it said it, made
	// safe to show (decide.DisplayText), or "".
	Client    string
	ReturnTo  string
	Expired   bool
	Completed bool
	// ExpiresIn is the time left, in whole seconds.
	ExpiresIn int64
}

// pageStepUp is GET /stepup/{id}: it shows the person exactly what they
// confirm — action, resource, a readable summary of the parameters, the
// requesting application, why, and until when — and a button that runs the
// ceremony. Only the transaction's own session sees it.
func (s *Server) pageStepUp(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	const title = "Confirm with your passkey"
	t, err := s.Store.FindStepUpByID(r.Context(), r.PathValue("id"))
	if err != nil {
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			err = airlock.Errorf(airlock.ENOTFOUND, "unknown or expired confirmation request; repeat what you were doing to start a new one")
		}
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "stepup", page{Title: title, Auth: a, Error: airlock.ErrorMessage(err)})
		return
	}
	if t.SessionID != a.Session.ID && !s.confirmsForCLI(r.Context(), a, t) {
		s.render(w, r, http.StatusForbidden, "stepup", page{Title: title, Auth: a,
			Error: "This confirmation belongs to another session. Open it in the browser session the request came from (sign in there again if it ended)."})
		return
	}
	now := s.Now()
	d := stepUpData{Tx: t, Params: decide.Summary(t.Params), ReturnTo: s.safeReturn(r.URL.Query().Get("return_to")),
		Expired: !now.Before(t.ExpiresAt), Completed: t.IsCompleted(), ExpiresIn: int64(t.ExpiresAt.Sub(now) / time.Second)}
	if t.Client != "" {
		d.Client = decide.DisplayText(t.Client)
	}
	p := page{Title: title, Auth: a, Data: d}
	switch {
	case d.Completed:
		p.Error = "This request was already confirmed; each confirmation is used once. Repeat the request to confirm it again."
	case d.Expired:
		p.Error = "This confirmation request expired. Repeat the request to start a new one."
	}
	s.render(w, r, http.StatusOK, "stepup", p)
}

// safeReturn keeps a return_to target only when it stays on one of our
// origins: a path on this site ("/x", never "//host" or "/\host"), or an
// absolute URL whose origin is allowed. Anything else is dropped.
func (s *Server) safeReturn(v string) string {
	if v == "" || len(v) > 2000 || strings.ContainsAny(v, "\\\r\n\t") {
		return ""
	}
	if strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//") {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	if !slices.Contains(s.Origins, u.Scheme+"://"+u.Host) {
		return ""
	}
	return v
}

package http

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock"
	"airlock/decide"
	"airlock/pep"
	"airlock/policy"
	"airlock/sshca"
)

// Actions decided before an SSH certificate is issued (catalog entries of
// the quick-start configuration; an operator's catalog must define them).
const (
	ActionSSHLogin           = "ssh.login"
	ActionSSHAgentForwarding = "ssh.agent_forwarding"
	ActionSSHPortForwarding  = "ssh.port_forwarding"
)

// Audit event types of this file. Each is recorded before the answer, with
// outcome success, denied (grant or policy refused) or failure (bad
// input, no issuer).
const (
	EventSSHCertificateIssued = "sshca.certificate.issued"
	EventGrantTokenIssued     = "granttoken.issued"
)

// IssuePerMinute bounds SSH certificates, and separately grant tokens, per
// user per minute.
const IssuePerMinute = 30

// routesSSH registers the credentials issued from grants (issue 5): the SSH
// CA's public key and the grant-token JWKS (public, cacheable), and, for a
// signed-in holder of an active grant, SSH certificates and grant tokens.
func (s *Server) routesSSH(handle func(pattern string, h http.HandlerFunc)) {
	handle("GET /v1/sshca/pubkey", s.handleSSHCAPubkey)
	handle("GET /v1/jwks", s.handleJWKS)
	// Each issue signs and writes a record: bounded per user.
	handle("POST /v1/grants/{id}/ssh-certificate", s.authed(s.userLimited("ssh-certificate", IssuePerMinute, s.handleSSHCertificate)))
	handle("POST /v1/grants/{id}/token", s.authed(s.userLimited("grant-token", IssuePerMinute, s.handleGrantToken)))
}

// handleSSHCAPubkey is GET /v1/sshca/pubkey: the CA key as one
// authorized_keys line, for sshd's TrustedUserCAKeys.
func (s *Server) handleSSHCAPubkey(w http.ResponseWriter, r *http.Request) {
	if s.SSHCA == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EUNAVAILABLE, "no SSH certificate authority is configured on this server"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write([]byte(s.SSHCA.AuthorizedKey()))
}

// handleJWKS is GET /v1/jwks: the key set grant tokens verify against.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if s.GrantTokens == nil {
		s.writeError(w, r, airlock.Errorf(airlock.EUNAVAILABLE, "grant tokens are not configured on this server"))
		return
	}
	// RFC 7517 §8.5.
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.GrantTokens.JWKS())
}

type sshCertRequest struct {
	// PublicKey is the key to certify, as an authorized_keys line.
	PublicKey    string `json:"public_key"`
	ForwardAgent bool   `json:"forward_agent"`
	ForwardPorts bool   `json:"forward_ports"`
}

// sshCertJSON is the answer of POST /v1/grants/{id}/ssh-certificate.
// Serial is a 64-bit unsigned integer (JavaScript clients: read it as a
// BigInt or from the certificate).
type sshCertJSON struct {
	Certificate   string    `json:"certificate"`
	Serial        uint64    `json:"serial"`
	KeyID         string    `json:"key_id"`
	Principals    []string  `json:"principals"`
	ValidAfter    time.Time `json:"valid_after"`
	ValidBefore   time.Time `json:"valid_before"`
	SourceAddress string    `json:"source_address,omitempty"`
	Extensions    []string  `json:"extensions"`
	GrantID       string    `json:"grant_id"`
	DecisionID    string    `json:"decision_id"`
}

// handleSSHCertificate is POST /v1/grants/{id}/ssh-certificate. The grant
// must be usable by the caller's session (elevate.UsableGrant); the policy
// must allow ssh.login on the grant's resource (a step_up answers the RFC
// 9470 challenge; the repeated request carries the proof in the
// Airlock-StepUp header) and, when forwarding is asked for, allow
// ssh.agent_forwarding / ssh.port_forwarding outright (anything but allow
// is 403 naming the action). The grant is checked again after the
// certificate is recorded, so one that ended meanwhile gets none. The
// issue or refusal is audited before the answer.
func (s *Server) handleSSHCertificate(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	ev := s.grantEvent(r, a, EventSSHCertificateIssued)
	refuse := func(outcome string, err error) {
		s.auditRefusal(w, r, ev, outcome, err)
	}
	if s.SSHCA == nil || s.Elevation == nil || s.Decide == nil {
		refuse(airlock.OutcomeFailure, airlock.Errorf(airlock.EUNAVAILABLE, "SSH certificates are not configured on this server"))
		return
	}
	var req sshCertRequest
	if err := decode(r, &req); err != nil {
		refuse(airlock.OutcomeFailure, err)
		return
	}
	ev.Details["forward_agent"], ev.Details["forward_ports"] = req.ForwardAgent, req.ForwardPorts
	pub, err := sshca.ParsePublicKey(req.PublicKey)
	if err != nil {
		refuse(airlock.OutcomeFailure, err)
		return
	}
	fp := ssh.FingerprintSHA256(pub)
	ev.Details["key_fingerprint"], ev.Details["key_type"] = fp, pub.Type()

	sub := subject(a)
	g, err := s.Elevation.UsableGrant(r.Context(), r.PathValue("id"), sub)
	if err != nil {
		refuse(airlock.OutcomeDenied, err)
		return
	}
	ev.RequestID = g.RequestID
	principal := g.Scope.String()
	ev.Details["scope"] = principal

	// The decision's parameters say exactly what would be certified, so a
	// step-up proof confirms this key, this grant, this forwarding.
	params, _ := json.Marshal(map[string]any{"grant_id": g.ID, "principal": principal, "public_key": fp,
		"forward_agent": req.ForwardAgent, "forward_ports": req.ForwardPorts})
	dreq := decide.Request{Action: ActionSSHLogin, Params: params, IP: clientIP(r), UserAgent: truncate(r.UserAgent(), 300),
		Client: "airlock ssh", Proof: r.Header.Get(pep.HeaderStepUp), RequestID: requestIDFrom(r.Context()), GrantID: g.ID}
	dreq.Resource, dreq.Target = grantResource(g)
	res, err := s.Decide.Decide(r.Context(), sub, dreq)
	if err != nil {
		refuse(airlock.OutcomeFailure, err)
		return
	}
	ev.DecisionID = res.Decision.ID
	if res.Decision.Outcome != policy.Allow {
		s.refuseDecision(w, r, ev, ActionSSHLogin, res)
		return
	}
	// Forwarding opens paths around the session; it is allowed only when
	// the policy says allow outright (no proof is presented for it).
	var opts sshca.Options
	for _, f := range []struct {
		asked  bool
		action string
		set    *bool
	}{{req.ForwardAgent, ActionSSHAgentForwarding, &opts.AgentForwarding}, {req.ForwardPorts, ActionSSHPortForwarding, &opts.PortForwarding}} {
		if !f.asked {
			continue
		}
		fr := dreq
		fr.Action, fr.Proof = f.action, ""
		fres, err := s.Decide.Decide(r.Context(), sub, fr)
		if err != nil {
			refuse(airlock.OutcomeFailure, err)
			return
		}
		if fres.Decision.Outcome != policy.Allow {
			ev.Details["refused_action"] = f.action
			ev.Details["forwarding_decision_id"] = fres.Decision.ID
			s.refuseDecision(w, r, ev, f.action, fres)
			return
		}
		*f.set = true
	}

	cert, rec, err := s.SSHCA.Issue(r.Context(), g, a.User, a.Session, pub, opts, s.Now())
	if err != nil {
		refuse(airlock.OutcomeFailure, err)
		return
	}
	// A decimal string, as sshd logs it ("(serial N)"): a 64-bit number
	// would lose digits in JSON readers that use doubles.
	ev.Details["serial"] = strconv.FormatUint(rec.Serial, 10)
	// The grant may have ended while the request was decided and signed
	// (its holder, an admin, a session, device or passkey hook): look
	// again now that the certificate is recorded, and hand it out only if
	// the grant is still usable. A certificate cannot be recalled.
	if _, err := s.Elevation.UsableGrant(r.Context(), g.ID, sub); err != nil {
		refuse(airlock.OutcomeDenied, err)
		return
	}
	ev.Outcome = airlock.OutcomeSuccess
	ev.Details["key_id"] = rec.KeyID
	ev.Details["principals"] = rec.Principals
	ev.Details["valid_after"] = rec.ValidAfter.Format(time.RFC3339)
	ev.Details["valid_before"] = rec.ValidBefore.Format(time.RFC3339)
	ev.Details["source_address"] = rec.SourceAddress
	ev.Details["extensions"] = rec.Extensions
	if err := s.recordDetached(r.Context(), ev); err != nil {
		// The certificate is recorded but never handed out.
		s.writeError(w, r, airlock.Wrap(airlock.EUNAVAILABLE, "the audit log is unavailable; no certificate was issued", err))
		return
	}
	writeJSON(w, http.StatusOK, sshCertJSON{Certificate: sshca.MarshalCertificate(cert), Serial: rec.Serial, KeyID: rec.KeyID,
		Principals: rec.Principals, ValidAfter: rec.ValidAfter, ValidBefore: rec.ValidBefore, SourceAddress: rec.SourceAddress,
		Extensions: rec.Extensions, GrantID: g.ID, DecisionID: res.Decision.ID})
}

type grantTokenJSON struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	GrantID   string    `json:"grant_id"`
	Audience  string    `json:"audience"`
}

// handleGrantToken is POST /v1/grants/{id}/token (empty body or {}): a
// signed grant token for a grant usable by the caller's session. The
// grant itself is the decision (its request was decided and approved), so
// no further decision is made; the issue or refusal is audited before the
// answer.
func (s *Server) handleGrantToken(w http.ResponseWriter, r *http.Request) {
	a := sessionFrom(r.Context())
	ev := s.grantEvent(r, a, EventGrantTokenIssued)
	refuse := func(outcome string, err error) {
		s.auditRefusal(w, r, ev, outcome, err)
	}
	if s.GrantTokens == nil || s.Elevation == nil {
		refuse(airlock.OutcomeFailure, airlock.Errorf(airlock.EUNAVAILABLE, "grant tokens are not configured on this server"))
		return
	}
	if err := decodeOptional(r); err != nil {
		refuse(airlock.OutcomeFailure, err)
		return
	}
	g, err := s.Elevation.UsableGrant(r.Context(), r.PathValue("id"), subject(a))
	if err != nil {
		refuse(airlock.OutcomeDenied, err)
		return
	}
	ev.RequestID = g.RequestID
	ev.Details["scope"] = g.Scope.String()
	token, c, err := s.GrantTokens.Issue(g, a.User, s.Now())
	if err != nil {
		refuse(airlock.OutcomeFailure, err)
		return
	}
	ev.Outcome = airlock.OutcomeSuccess
	ev.Details["jti"] = c.ID
	ev.Details["audience"] = c.Audience
	ev.Details["kid"] = s.GrantTokens.KeyID()
	ev.Details["not_before"] = time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339)
	ev.Details["expires_at"] = c.ExpiresAt().Format(time.RFC3339)
	if err := s.recordDetached(r.Context(), ev); err != nil {
		s.writeError(w, r, airlock.Wrap(airlock.EUNAVAILABLE, "the audit log is unavailable; no token was issued", err))
		return
	}
	writeJSON(w, http.StatusOK, grantTokenJSON{Token: token, ExpiresAt: c.ExpiresAt(), GrantID: g.ID, Audience: c.Audience})
}

// grantEvent starts the audit event of a credential asked for from grant
// {id} by the signed-in a (the id as asked, clipped for the record; the
// lookup uses it whole).
func (s *Server) grantEvent(r *http.Request, a *authn, typ string) airlock.AuditEvent {
	e := airlock.AuditEvent{Type: typ, Actor: a.User.ID, UserID: a.User.ID, SessionID: a.Session.ID, DeviceID: a.Session.DeviceID,
		GrantID: truncate(r.PathValue("id"), 64), IP: clientIP(r), Details: map[string]any{}}
	e.Subject = e.GrantID
	if len(a.Session.CredentialID) > 0 {
		e.CredentialID = b64(a.Session.CredentialID)
	}
	if id := requestIDFrom(r.Context()); id != "" {
		e.Details["http_request_id"] = id
	}
	if ua := r.UserAgent(); ua != "" {
		e.Details["user_agent"] = truncate(ua, 256)
	}
	return e
}

// auditRefusal records ev as refused with err's code and message, then
// answers err (or, when the refusal cannot be recorded, unavailable).
func (s *Server) auditRefusal(w http.ResponseWriter, r *http.Request, ev airlock.AuditEvent, outcome string, err error) {
	ev.Outcome, ev.Reason = outcome, airlock.ErrorCode(err)
	ev.Details["message"] = airlock.ErrorMessage(err)
	if aerr := s.recordDetached(r.Context(), ev); aerr != nil {
		s.writeError(w, r, airlock.Wrap(airlock.EUNAVAILABLE, "the audit log is unavailable", aerr))
		return
	}
	s.writeError(w, r, err)
}

// refuseDecision audits and answers a decision other than allow on
// action: step_up as the RFC 9470 challenge (as package pep answers it),
// anything else as 403 naming the action, with the decision's reasons.
func (s *Server) refuseDecision(w http.ResponseWriter, r *http.Request, ev airlock.AuditEvent, action string, res *decide.Result) {
	d := decisionView(res)
	ev.Outcome, ev.Reason = airlock.OutcomeDenied, "policy_"+d.Decision
	ev.Details["action"] = action
	ev.Details["message"] = d.Text()
	if err := s.recordDetached(r.Context(), ev); err != nil {
		s.writeError(w, r, airlock.Wrap(airlock.EUNAVAILABLE, "the audit log is unavailable", err))
		return
	}
	if d.Decision == pep.StepUp && action == ActionSSHLogin {
		pep.Challenge(w, d)
		return
	}
	msg := action + " denied by policy: " + d.Text()
	if d.Decision == pep.StepUp {
		msg = action + " needs a confirmation the certificate request cannot carry; the policy must allow it outright: " + d.Text()
	}
	var body struct {
		errorBody
		DecisionID string       `json:"decision_id"`
		Action     string       `json:"action"`
		Reasons    []pep.Reason `json:"reasons"`
	}
	body.Error.Code, body.Error.Message = airlock.EFORBIDDEN, msg
	body.DecisionID, body.Action, body.Reasons = d.DecisionID, action, d.Reasons
	writeJSON(w, http.StatusForbidden, body)
}

// recordDetached records ev even if the client has gone away: a refusal
// is evidence too.
func (s *Server) recordDetached(ctx context.Context, ev airlock.AuditEvent) error {
	if s.Audit == nil {
		return airlock.Errorf(airlock.EUNAVAILABLE, "no audit log")
	}
	return s.Audit.Record(context.WithoutCancel(ctx), ev)
}

// grantResource is the resource a grant's credentials are decided on: the
// scope's resource, or for a tier scope the synthetic resource "tier:N" of
// that tier (passed as the decision's Target).
func grantResource(g *airlock.Grant) (string, *airlock.Resource) {
	if g.Scope.IsTier {
		name := g.Scope.String()
		return name, &airlock.Resource{Name: name, Tier: g.Scope.Tier, Labels: map[string]string{}}
	}
	return g.Scope.Resource, nil
}

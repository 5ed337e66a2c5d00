// Package http is Airlock's HTTP edge: the JSON API under /v1, the web UI,
// health and metrics endpoints. It turns requests into domain calls and maps
// domain error codes to HTTP statuses; it holds no security rule of its own
// beyond the transport ones (origin check, rate limits, body limits, cookies).
package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"airlock"
	"airlock/audit"
	"airlock/breakglass"
	"airlock/decide"
	"airlock/device"
	"airlock/elevate"
	"airlock/granttoken"
	"airlock/passkey"
	"airlock/pep"
	"airlock/recovery"
	"airlock/session"
	"airlock/sshca"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// Server serves the API and the web UI. Fill the fields, then call Handler.
type Server struct {
	Store    airlock.Store
	Passkeys *passkey.Service
	Sessions *session.Manager
	Audit    *audit.Log
	// DeviceRules judge device compliance for display and admin checks.
	DeviceRules device.Rules
	// Origins is the exact allow-list of web origins; the first is the
	// public base URL used in enrolment links.
	Origins []string
	// Secure marks cookies Secure with the __Host- prefix (serving https).
	Secure bool
	// SelfServiceFreshUV is how recent the last user-verified passkey use
	// must be for a person to add a passkey to their own account (default
	// 5 min). Admin actions are decided by Decide instead.
	SelfServiceFreshUV time.Duration
	// Decide decides requests: POST /v1/decide and every sensitive admin
	// action. Without it those are denied (fail closed).
	Decide *decide.Service
	// ReloadPolicy, if set, reloads the policy directory on
	// POST /v1/admin/policy/reload.
	ReloadPolicy PolicyReloader
	// AuditStatus, if set, tells the audit page whether the latest
	// checkpoint verifies.
	AuditStatus AuditStatusFunc
	// Elevation runs access requests, approvals and grants; without it
	// the elevation API answers unavailable.
	Elevation *elevate.Service
	// SSHCA issues SSH certificates from grants, GrantTokens signed grant
	// tokens; without them those endpoints answer unavailable.
	SSHCA       *sshca.CA
	GrantTokens *granttoken.Issuer
	// Recovery runs recovery cases; BreakGlass the break-glass path.
	// Without them those endpoints answer unavailable.
	Recovery   *recovery.Service
	BreakGlass *breakglass.Service
	// CLITokenTTL is the lifetime of a CLI session from `airlock login`
	// (0: 1 h, never past the browser session it came from).
	CLITokenTTL time.Duration
	// BeginPerMinute limits ceremony begin calls per client IP (default 30).
	BeginPerMinute int
	Now            func() time.Time
	Logger         *slog.Logger
	// Registry collects metrics; nil gets a fresh registry.
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	logins   *prometheus.CounterVec
}

// Handler returns the server's root handler.
func (s *Server) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.SelfServiceFreshUV <= 0 {
		s.SelfServiceFreshUV = 5 * time.Minute
	}
	if s.BeginPerMinute <= 0 {
		s.BeginPerMinute = 30
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airlock_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "airlock_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"})
	s.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airlock_ceremonies_total", Help: "WebAuthn ceremonies finished, by kind and outcome."}, []string{"kind", "outcome"})
	s.Registry.MustRegister(s.requests, s.latency, s.logins)

	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(pattern, h))
	}
	handle("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	handle("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))

	handle("POST /v1/enrol/begin", s.rateLimited("enrol", s.handleEnrolBegin))
	handle("POST /v1/enrol/finish", s.handleEnrolFinish)
	handle("POST /v1/login/begin", s.rateLimited("login", s.handleLoginBegin))
	handle("POST /v1/login/finish", s.handleLoginFinish)
	handle("POST /v1/logout", s.authed(s.handleLogout))
	handle("GET /v1/session", s.authed(s.handleSession))
	handle("GET /v1/me/credentials", s.authed(s.handleMyCredentials))
	handle("POST /v1/me/enrolment-tokens", s.authed(s.handleMyEnrolmentToken))

	handle("GET /v1/admin/users", s.admin(s.handleListUsers))
	handle("POST /v1/admin/users", s.sensitive(decide.ActionUserCreate, s.handleCreateUser))
	handle("GET /v1/admin/users/{id}", s.admin(s.handleGetUser))
	handle("PATCH /v1/admin/users/{id}", s.sensitive(decide.ActionUserUpdate, s.handleUpdateUser))
	handle("GET /v1/admin/devices", s.admin(s.handleListDevices))
	handle("POST /v1/admin/devices", s.sensitive(decide.ActionDeviceCreate, s.handleCreateDevice))
	handle("GET /v1/admin/devices/{id}", s.admin(s.handleGetDevice))
	handle("PATCH /v1/admin/devices/{id}", s.sensitive(decide.ActionDeviceUpdate, s.handleUpdateDevice))
	handle("PUT /v1/admin/devices/{id}/posture", s.sensitive(decide.ActionDevicePosture, s.handleReportPosture))
	handle("GET /v1/admin/enrolment-tokens", s.admin(s.handleListTokens))
	handle("POST /v1/admin/enrolment-tokens", s.sensitive(decide.ActionEnrolmentTokenIssue, s.handleIssueToken))
	handle("POST /v1/admin/credentials/{id}/revoke", s.sensitive(decide.ActionCredentialRevoke, s.handleRevokeCredential))
	handle("GET /v1/audit", s.sensitive(decide.ActionAuditRead, s.handleAudit))
	handle("GET /v1/admin/audit", s.sensitive(decide.ActionAuditRead, s.handleAudit)) // the old name

	s.routesDecide(handle)
	s.routesElevation(handle)  // elevation.go: access requests, approvals, grants, approval pages
	s.routesSSH(handle)        // ssh.go: SSH certificates, grant tokens, JWKS
	s.routesCLI(handle)        // cli.go: the CLI's loopback login
	s.routesRecovery(handle)   // recovery.go: recovery cases, their approvals, cancel and claim
	s.routesBreakGlass(handle) // breakglass.go: the break-glass path, its sessions and reviews
	s.routesUI(mux, handle)

	return s.requestID(s.limitBody(s.checkOrigin(mux)))
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keySession
)

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id := "req_" + hex.EncodeToString(b)
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Frame-Options", "DENY")
		if s.Secure {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
	})
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// checkOrigin refuses a state-changing request that a browser could have
// sent cross-site: unless it carries a bearer token (which browsers never
// attach on their own), its Origin must be one of ours.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		// /v1/decide checks the origin itself when it falls back to the
		// caller's cookie; enforcement points send neither. A DPoP
		// authorization (the CLI) is a header no cross-site form can send
		// either, and it, not a cookie, authenticates the request. A bare
		// DPoP proof header lets through only the CLI's token request,
		// which no cookie authenticates: elsewhere the cookie would.
		if pep.BearerToken(r) != "" || dpopToken(r) != "" || r.URL.Path == "/v1/decide" ||
			(r.URL.Path == "/v1/cli/token" && r.Header.Get("DPoP") != "") {
			next.ServeHTTP(w, r)
			return
		}
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(s.Origins, origin) {
			s.writeError(w, r, airlock.Errorf(airlock.EFORBIDDEN, "request origin %q is not allowed", origin))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) rateLimited(kind string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.overLimit(w, r, "begin:"+kind+":"+rateKey(clientIP(r)), s.BeginPerMinute,
			"too many attempts from your address; wait a minute and try again") {
			return
		}
		h(w, r)
	}
}

// userLimited limits an authenticated endpoint to perMinute calls per user
// (across replicas: the counter is in the store). It runs inside s.authed.
func (s *Server) userLimited(kind string, perMinute int, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := sessionFrom(r.Context())
		if a == nil {
			s.writeError(w, r, airlock.Errorf(airlock.EUNAUTHORIZED, "sign in first"))
			return
		}
		if s.overLimit(w, r, "user:"+kind+":"+a.User.ID, perMinute,
			"too many "+kind+" requests; wait a minute and try again") {
			return
		}
		h(w, r)
	}
}

// overLimit counts one hit on key in the store's per-minute window and,
// past perMinute (or when the store fails), answers the request itself and
// reports true.
func (s *Server) overLimit(w http.ResponseWriter, r *http.Request, key string, perMinute int, msg string) bool {
	n, err := s.Store.HitRateLimit(r.Context(), key, time.Minute, s.Now())
	if err != nil {
		s.writeError(w, r, err)
		return true
	}
	if n > perMinute {
		w.Header().Set("Retry-After", "60")
		s.writeError(w, r, airlock.Errorf(airlock.ERATELIMIT, "%s", msg))
		return true
	}
	return false
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.Logger.Error("readiness check failed", "err", err)
		s.writeError(w, r, airlock.Wrap(airlock.EUNAVAILABLE, "store unreachable", err))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// clientIP is the TCP peer's address. Airlock does not trust forwarding
// headers; put it behind a proxy only with the proxy's own rate limits.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// rateKey groups addresses the way one client can hold them: an IPv6 /64
// is one subscriber's network, so rotating inside it gains nothing.
func rateKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Is4() || addr.Is4In6() {
		return ip
	}
	p, _ := addr.Prefix(64)
	return p.String()
}

func (s *Server) meta(r *http.Request) passkey.Meta {
	return passkey.Meta{IP: clientIP(r), UserAgent: truncate(r.UserAgent(), 300), RequestID: requestIDFrom(r.Context())}
}

func truncate(v string, n int) string {
	if len(v) > n {
		return v[:n]
	}
	return v
}

// statusOf maps a domain error code to an HTTP status.
func statusOf(code string) int {
	switch code {
	case airlock.EINVALID:
		return http.StatusBadRequest
	case airlock.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case airlock.EFORBIDDEN, airlock.EFRESHAUTH:
		return http.StatusForbidden
	case airlock.ENOTFOUND:
		return http.StatusNotFound
	case airlock.ECONFLICT:
		return http.StatusConflict
	case airlock.EEXPIRED:
		return http.StatusGone
	case airlock.ERATELIMIT:
		return http.StatusTooManyRequests
	case airlock.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers with the error's code and client-safe message; internal
// causes go to the log only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := airlock.ErrorCode(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = airlock.EINVALID
		err = airlock.Errorf(airlock.EINVALID, "request body too large (limit %d bytes)", MaxBodyBytes)
	}
	if code == airlock.EINTERNAL || code == airlock.EUNAVAILABLE {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestIDFrom(r.Context()), "err", err)
	}
	var body errorBody
	body.Error.Code = code
	body.Error.Message = airlock.ErrorMessage(err)
	writeJSON(w, statusOf(code), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body into v, refusing unknown fields and trailing data.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return airlock.Errorf(airlock.EINVALID, "malformed JSON body: %s", jsonErrText(err))
	}
	if dec.More() {
		return airlock.Errorf(airlock.EINVALID, "malformed JSON body: trailing data")
	}
	return nil
}

func jsonErrText(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

package http

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"airlock"
	"airlock/device"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var funcs = template.FuncMap{
	"fmtTime": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join": strings.Join,
	// tierNum prints a tier as its number (Tier's String is "tier-N").
	"tierNum": func(t airlock.Tier) int { return int(t) },
	"b64":     b64,
}

var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range []string{"login", "enrol", "home", "admin_users", "admin_user", "admin_devices", "admin_enrol", "admin_audit", "stepup", "elevate", "approvals", "approve"} {
		m[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

// page is what every template gets.
type page struct {
	Title   string
	Auth    *authn
	IsAdmin bool
	Error   string
	Data    any
}

func (s *Server) routesUI(mux *http.ServeMux, handle func(string, http.HandlerFunc)) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	handle("GET /{$}", s.pageHome)
	handle("GET /login", s.pageLogin)
	handle("GET /enrol", s.rateLimited("enrol-page", s.pageEnrol))
	handle("GET /admin/users", s.adminPage("Users", "admin_users", s.dataUsers))
	handle("GET /admin/users/{id}", s.adminPage("User", "admin_user", s.dataUser))
	handle("GET /admin/devices", s.adminPage("Devices", "admin_devices", s.dataDevices))
	handle("GET /admin/enrol", s.adminPage("Enrolment links", "admin_enrol", s.dataEnrol))
	handle("GET /admin/audit", s.adminPage("Audit", "admin_audit", s.dataAudit))
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Auth != nil {
		// Show the admin menu to anyone who could pass the admin rule after
		// a fresh passkey verification.
		p.IsAdmin = slices.Contains(p.Auth.User.Roles, airlock.RoleAdmin) && p.Auth.Session.Tier <= 1
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, name+".html", p); err != nil {
		s.Logger.Error("template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", page{Title: "Sign in"})
}

type enrolData struct {
	User   *airlock.User
	Device *airlock.Device
	Token  *airlock.EnrolmentToken
	Secret string
}

func (s *Server) pageEnrol(w http.ResponseWriter, r *http.Request) {
	secret := r.URL.Query().Get("token")
	if secret == "" {
		s.render(w, r, http.StatusBadRequest, "enrol", page{Title: "Enrol a passkey", Error: "This page needs the enrolment link you were given (…/enrol?token=…)."})
		return
	}
	tok, user, dev, err := s.Passkeys.CheckEnrolmentToken(r.Context(), secret)
	if err != nil {
		// Repeated tries with dead links leave a trace.
		ev := airlock.AuditEvent{Type: "enrol.link_refused", Outcome: airlock.OutcomeDenied, Reason: airlock.ErrorCode(err),
			RequestID: requestIDFrom(r.Context()), IP: clientIP(r), Details: map[string]any{"message": airlock.ErrorMessage(err)}}
		if tok != nil {
			ev.UserID, ev.DeviceID, ev.Subject = tok.UserID, tok.DeviceID, tok.ID
		}
		if aerr := s.Audit.Record(r.Context(), ev); aerr != nil {
			err = aerr
		}
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "enrol", page{Title: "Enrol a passkey", Error: airlock.ErrorMessage(err)})
		return
	}
	s.render(w, r, http.StatusOK, "enrol", page{Title: "Enrol a passkey", Data: enrolData{User: user, Device: dev, Token: tok, Secret: secret}})
}

type homeData struct {
	Compliance  device.Compliance
	Credentials []*airlock.Credential
	Devices     []*airlock.Device
}

func (s *Server) pageHome(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAuth(w, r)
	if !ok {
		return
	}
	creds, err := s.Store.ListCredentialsByUser(r.Context(), a.User.ID)
	if err != nil {
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "home", page{Title: "Home", Auth: a, Error: airlock.ErrorMessage(err)})
		return
	}
	devs, err := s.Store.ListDevices(r.Context())
	if err != nil {
		s.render(w, r, statusOf(airlock.ErrorCode(err)), "home", page{Title: "Home", Auth: a, Error: airlock.ErrorMessage(err)})
		return
	}
	var mine []*airlock.Device
	for _, d := range devs {
		if d.Owner == a.User.ID && d.Trust != airlock.TrustRevoked {
			mine = append(mine, d)
		}
	}
	s.render(w, r, http.StatusOK, "home", page{Title: "Home", Auth: a, Data: homeData{
		Compliance: device.Evaluate(a.Device, s.DeviceRules, s.Now()), Credentials: creds, Devices: mine,
	}})
}

// pageAuth authenticates a page request. Without any session it redirects
// to the login page; with a session that is no longer valid (expired,
// revoked, disabled) or a store failure it shows the login page with the
// specific reason.
func (s *Server) pageAuth(w http.ResponseWriter, r *http.Request) (*authn, bool) {
	a, err := s.authenticate(r)
	if err == nil {
		return a, true
	}
	if _, cerr := r.Cookie(s.cookieName()); cerr != nil && airlock.ErrorCode(err) == airlock.EUNAUTHORIZED {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil, false
	}
	if airlock.ErrorCode(err) == airlock.EUNAUTHORIZED {
		s.clearSessionCookie(w)
	}
	s.render(w, r, statusOf(airlock.ErrorCode(err)), "login", page{Title: "Sign in", Error: airlock.ErrorMessage(err)})
	return nil, false
}

// adminPage renders an admin page when the session passes the admin rule,
// and otherwise the page's frame with the specific reason.
func (s *Server) adminPage(title, name string, load func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.pageAuth(w, r)
		if !ok {
			return
		}
		r = r.WithContext(withAuth(r, a))
		if err := s.checkAdmin(a); err != nil {
			s.render(w, r, statusOf(airlock.ErrorCode(err)), name, page{Title: title, Auth: a, Error: airlock.ErrorMessage(err)})
			return
		}
		data, err := load(r)
		if err != nil {
			s.render(w, r, statusOf(airlock.ErrorCode(err)), name, page{Title: title, Auth: a, Error: airlock.ErrorMessage(err)})
			return
		}
		s.render(w, r, http.StatusOK, name, page{Title: title, Auth: a, Data: data})
	}
}

type listData struct {
	Users   []*airlock.User
	Devices []deviceJSON
	Tokens  []*airlock.EnrolmentToken
}

func (s *Server) dataUsers(r *http.Request) (any, error) {
	users, err := s.Store.ListUsers(r.Context())
	return listData{Users: users}, err
}

type userData struct {
	User        *airlock.User
	Credentials []*airlock.Credential
}

func (s *Server) dataUser(r *http.Request) (any, error) {
	u, err := s.findUser(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	creds, err := s.Store.ListCredentialsByUser(r.Context(), u.ID)
	return userData{User: u, Credentials: creds}, err
}

func (s *Server) dataDevices(r *http.Request) (any, error) {
	users, err := s.Store.ListUsers(r.Context())
	if err != nil {
		return nil, err
	}
	devs, err := s.Store.ListDevices(r.Context())
	if err != nil {
		return nil, err
	}
	views := make([]deviceJSON, 0, len(devs))
	for _, d := range devs {
		views = append(views, s.deviceView(d))
	}
	return listData{Users: users, Devices: views}, nil
}

func (s *Server) dataEnrol(r *http.Request) (any, error) {
	d, err := s.dataDevices(r)
	if err != nil {
		return nil, err
	}
	ld := d.(listData)
	ld.Tokens, err = s.Store.ListEnrolmentTokens(r.Context())
	return ld, err
}

package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/decide"
	"airlock/device"
	airhttp "airlock/http"
	"airlock/notify"
	"airlock/passkey"
	"airlock/pep"
	"airlock/policy"
	"airlock/risk"
	"airlock/session"
	"airlock/sqlite"
)

// Stack is a complete Airlock (SQLite in a directory, the default policy
// set, the quick-start catalog) serving HTTP on a loopback port, with
// signed-in users to decide for. It is for load runs and benchmarks.
type Stack struct {
	URL      string
	Sessions []string
	Store    *sqlite.Store
	srv      *http.Server
}

// NewStack starts a stack in dir with users tier-0 users, each with a
// compliant managed device and a session that just verified a passkey.
func NewStack(ctx context.Context, dir string, users int) (*Stack, error) {
	st, err := sqlite.Open(ctx, filepath.Join(dir, "airlock.db"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	origin := "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	log := audit.New(st, nil, logger)
	rules := device.DefaultRules()
	pk, err := passkey.New(passkey.Config{RPID: "localhost", Origins: []string{origin}, Tiers: passkey.DefaultTierPolicies(), DeviceRules: rules},
		st, log, notify.NewOutbox(st, nil))
	if err != nil {
		ln.Close()
		st.Close()
		return nil, err
	}
	sessions := session.New(session.DefaultConfig(), st, log)
	dec := &decide.Service{Store: st, Engine: policy.NewEngine(policy.Default(), policy.DefaultConfig()), Catalog: decide.QuickStart(),
		Signals: &risk.Gatherer{Store: st}, Audit: log, DeviceRules: rules, BaseURL: origin}
	s := &Stack{URL: "http://" + ln.Addr().String(), Store: st}
	h := &airhttp.Server{Store: st, Passkeys: pk, Sessions: sessions, Audit: log, DeviceRules: rules, Origins: []string{origin},
		Decide: dec, Logger: logger}
	s.srv = &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()

	now := time.Now().UTC()
	for i := range users {
		name := fmt.Sprintf("load%03d", i)
		u := &airlock.User{ID: airlock.NewID(airlock.PrefixUser), Name: name, DisplayName: name, Kind: airlock.UserEmployee, Tier: 0,
			Roles: []string{}, Handle: airlock.NewHandle(), CreatedAt: now, UpdatedAt: now}
		d := &airlock.Device{ID: airlock.NewID(airlock.PrefixDevice), Name: name + "-laptop", Owner: u.ID, Kind: airlock.DeviceManaged,
			Trust: airlock.TrustTrusted, CreatedAt: now, UpdatedAt: now,
			Posture: airlock.Posture{Managed: true, DiskEncrypted: true, ScreenLock: true, EDRRunning: true, ReportedAt: now, Source: "loadgen"}}
		credID := make([]byte, 16)
		_, _ = rand.Read(credID)
		c := &airlock.Credential{ID: credID, UserID: u.ID, DeviceID: d.ID, AAGUID: "00000000-0000-0000-0000-000000000000",
			AttestationFormat: "none", PublicKey: []byte{0}, Algorithm: -7, CreatedAt: now}
		if err := errors.Join(st.CreateUser(ctx, u), st.CreateDevice(ctx, d), st.CreateCredential(ctx, c)); err != nil {
			s.Close()
			return nil, err
		}
		tok, _, err := sessions.Create(ctx, session.Start{User: u, Device: d, Credential: c, Tier: 0, UV: true, AMR: []string{"hwk", "user", "mfa"}, IP: "127.0.0.1"})
		if err != nil {
			s.Close()
			return nil, err
		}
		// The network is the user's already: steady-state signals.
		if err := dec.Signals.Seen(ctx, u.ID, "127.0.0.1"); err != nil {
			s.Close()
			return nil, err
		}
		s.Sessions = append(s.Sessions, tok)
	}
	return s, nil
}

// Close stops serving and closes the store.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(s.srv.Shutdown(ctx), s.Store.Close())
}

// Mix is the default request mix: reads and deploys that the default
// policies allow for a fresh tier-0 session, and a critical export.
func Mix() []pep.Request {
	return []pep.Request{
		{Action: "config.read", Resource: "grafana", Params: json.RawMessage(`{"dashboard":"latency"}`), Context: pep.Context{IP: "127.0.0.1", Client: "loadgen"}},
		{Action: "deploy.prod", Resource: "ci", Params: json.RawMessage(`{"service":"api","version":"1.2.3"}`), Context: pep.Context{IP: "127.0.0.1", Client: "loadgen"}},
		{Action: "secrets.export", Resource: "vault-prod", Params: json.RawMessage(`{"path":"kv/app"}`), Context: pep.Context{IP: "127.0.0.1", Client: "loadgen"}},
	}
}

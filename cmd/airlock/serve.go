package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/breakglass"
	"airlock/decide"
	"airlock/elevate"
	"airlock/geoip"
	"airlock/granttoken"
	airhttp "airlock/http"
	"airlock/notify"
	"airlock/passkey"
	"airlock/policy"
	"airlock/policy/policyfs"
	"airlock/recovery"
	"airlock/session"
	"airlock/sshca"
)

// Main is the running server: `airlock serve` and the end-to-end tests start
// Airlock through it.
type Main struct {
	Config Config
	// Stdout receives the bootstrap line; Logger gets diagnostics.
	Stdout io.Writer
	Logger *slog.Logger
	// Now, if set, replaces the clock everywhere (tests).
	Now func() time.Time

	Store    airlock.Store
	Passkeys *passkey.Service
	Sessions *session.Manager
	Audit    *audit.Log
	// auditParts are the checkpoint signer and SIEM streamer
	// (audit_serve.go).
	auditParts auditParts
	// Engine is the policy engine; Decide the decision point over it.
	Engine *policy.Engine
	Decide *decide.Service
	// policyWatcher hot-reloads policy_dir (nil without one); geo is the
	// GeoIP database (nil without one). See serve_policy.go.
	policyWatcher *policyfs.Watcher
	geo           *geoip.DB
	// Elevation runs access requests and grants (serve_elevation.go);
	// SSHCA and GrantTokens issue credentials from grants (sshca_config.go).
	Elevation   *elevate.Service
	SSHCA       *sshca.CA
	GrantTokens *granttoken.Issuer
	// Recovery runs recovery cases (serve_recovery.go); BreakGlass the
	// break-glass path, nil when the config does not enable it
	// (serve_breakglass.go).
	Recovery   *recovery.Service
	BreakGlass *breakglass.Service
	// Origin is the public base URL (the first allowed origin).
	Origin string
	// BootstrapURL is set when this start issued a bootstrap enrolment link.
	BootstrapURL string

	listener net.Listener
	server   *http.Server
	cancel   context.CancelFunc
	done     chan struct{}
	wg       sync.WaitGroup
}

// Addr is the address the server listens on.
func (m *Main) Addr() net.Addr { return m.listener.Addr() }

// services builds the domain services over an open store.
func (m *Main) services(cfg Config, origins []string) error {
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	m.Audit = audit.New(m.Store, m.Now, m.Logger)
	if err := m.auditServices(cfg); err != nil {
		return err
	}
	sc := cfg.SessionConfig()
	sc.Now = m.Now
	m.Sessions = session.New(sc, m.Store, m.Audit)
	var err error
	m.Passkeys, err = passkey.New(passkey.Config{
		RPID: cfg.RPID, RPName: cfg.RPName, Origins: origins, Tiers: cfg.Tiers,
		CeremonyTTL: cfg.CeremonyTTL, TokenTTL: cfg.EnrolmentTokenTTL, DeviceRules: cfg.Posture, Now: m.Now,
	}, m.Store, m.Audit, notify.NewOutbox(m.Store, m.Now))
	if err != nil {
		return err
	}
	if err := m.decisionPoint(cfg, origins); err != nil {
		return err
	}
	if err := m.elevation(cfg, origins); err != nil {
		return err
	}
	if err := m.sshServices(cfg); err != nil {
		return err
	}
	if err := m.recovery(cfg, origins); err != nil {
		return err
	}
	return m.breakGlass(cfg)
}

// Run opens the store, listens, issues the bootstrap link on an empty
// store, and serves in the background until Close.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if m.Stdout == nil {
		m.Stdout = os.Stdout
	}
	cfg := m.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	if m.Store, err = openStore(ctx, cfg); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			m.Store.Close()
		}
	}()
	if m.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	tls := cfg.TLSCert != ""
	origins := cfg.Origins
	if len(origins) == 0 {
		origins = []string{deriveOrigin(cfg.RPID, m.listener.Addr(), tls)}
		if err := checkOrigin(origins[0], cfg.RPID); err != nil {
			m.listener.Close()
			return fmt.Errorf("%w (set --origin to the public https URL)", err)
		}
	}
	m.Origin = origins[0]
	if err := m.services(cfg, origins); err != nil {
		m.listener.Close()
		return err
	}

	// Only the very first start prints a bootstrap link; afterwards an
	// operator on the server host uses `airlock admin bootstrap --reissue`.
	users, err := m.Store.ListUsers(ctx)
	if err != nil {
		m.listener.Close()
		return err
	}
	secret := ""
	if len(users) == 0 {
		if secret, _, err = m.Passkeys.Bootstrap(ctx); airlock.ErrorCode(err) == airlock.ECONFLICT {
			// Replicas starting together on an empty shared store: another
			// one created the bootstrap account first and prints the link.
			m.Logger.Warn("bootstrap: another replica is bootstrapping this store; it prints the link", "err", err)
			secret, err = "", nil
		}
		if err != nil {
			m.listener.Close()
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	if secret != "" {
		m.BootstrapURL = airhttp.EnrolURL(m.Origin, secret)
		fmt.Fprintf(m.Stdout, "bootstrap enrolment: %s\n", m.BootstrapURL)
	}

	srv := &airhttp.Server{
		Store: m.Store, Passkeys: m.Passkeys, Sessions: m.Sessions, Audit: m.Audit,
		// Behind a TLS-terminating proxy the origin, not the listener, says
		// whether browsers speak https.
		DeviceRules: cfg.Posture, Origins: origins, Secure: tls || strings.HasPrefix(m.Origin, "https://"), SelfServiceFreshUV: cfg.SelfServiceFreshUV,
		Decide: m.Decide, ReloadPolicy: m.reloadPolicy(), AuditStatus: m.auditStatus,
		BeginPerMinute: cfg.CeremonyBeginPerMinute, Now: m.Now, Logger: m.Logger,
		Elevation: m.Elevation, SSHCA: m.SSHCA, GrantTokens: m.GrantTokens, CLITokenTTL: cfg.CLI.TokenTTL,
		// BreakGlass is nil when the config does not enable it: its routes
		// answer unavailable.
		Recovery: m.Recovery, BreakGlass: m.BreakGlass,
	}
	m.server = &http.Server{
		Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.done = make(chan struct{})
	if cfg.Webhook.URL == "" {
		m.Logger.Warn("no webhook.url configured: user notifications (e.g. a passkey was added) stay queued in the store until one is")
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.housekeeping(bg, cfg) }()
	m.runElevation(bg, cfg)
	m.runRecovery(bg, cfg)
	m.runBreakGlass(bg, cfg)
	go func() {
		defer close(m.done)
		var err error
		if tls {
			err = m.server.ServeTLS(m.listener, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = m.server.Serve(m.listener)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("server stopped", "err", err)
		}
	}()
	m.Logger.Info("airlock serving", "addr", m.listener.Addr().String(), "origin", m.Origin, "data", cfg.Data,
		"store", firstNonEmpty(redactStore(cfg.Store), "sqlite (data directory)"))
	return nil
}

// housekeeping removes expired ceremonies, ends (and audits) sessions past
// their deadlines, and delivers notifications.
func (m *Main) housekeeping(ctx context.Context, cfg Config) {
	if cfg.Webhook.URL != "" {
		d := &notify.Dispatcher{Store: m.Store, URL: cfg.Webhook.URL, Secret: cfg.Webhook.Secret, Now: m.Now, Logger: m.Logger}
		m.wg.Add(1)
		go func() { defer m.wg.Done(); d.Run(ctx, 2*time.Second) }()
	}
	m.runDecisionPoint(ctx)
	m.runAudit(ctx)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.sweep(ctx); err != nil && ctx.Err() == nil {
				m.Logger.Error("housekeeping", "err", err)
			}
		}
	}
}

// sweep does one round of housekeeping.
func (m *Main) sweep(ctx context.Context) error {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	if _, err := m.Store.DeleteExpiredCeremonies(ctx, now()); err != nil {
		return err
	}
	if err := m.Sessions.ExpireStale(ctx); err != nil {
		return err
	}
	// Expired exceptions (audited policy.exception_expired), finished
	// step-up transactions, old risk history.
	return m.Decide.Housekeeping(ctx)
}

// Close shuts down gracefully: in-flight requests get up to 10 s.
func (m *Main) Close() error {
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			m.Logger.Error("shutdown", "err", err)
		}
		<-m.done
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	// Last: every queued audit event committed, then a final checkpoint.
	m.closeAudit()
	if m.Store != nil {
		return m.Store.Close()
	}
	return nil
}

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	resolve := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments")
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Config: cfg}
	if err := m.Run(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}

package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

const sshUsage = `airlock ssh [--grant ID] [-p PORT] [-F CONFIG] [-o OPTION]... [user@]host [command…]

Gets a short-lived SSH certificate for an active grant (the only one, or
--grant) for a fresh key, and runs the system ssh with it. The key and the
certificate live in a private temporary directory removed afterwards.
Exits with ssh's status.
`

// maxCertWait is the longest `airlock ssh` waits for a certificate's
// valid_after; a later start is left for sshd to judge.
const maxCertWait = 5 * time.Second

// sshCertView is the answer of POST /v1/grants/{id}/ssh-certificate.
type sshCertView struct {
	Certificate string    `json:"certificate"`
	Serial      uint64    `json:"serial"`
	KeyID       string    `json:"key_id"`
	Principals  []string  `json:"principals"`
	ValidAfter  time.Time `json:"valid_after"`
	ValidBefore time.Time `json:"valid_before"`
}

func cmdSSH(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ssh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sshUsage); fs.PrintDefaults() }
	grantID := fs.String("grant", "", "the grant to use (default: the only active one)")
	port := fs.Int("p", 0, "port to connect to on the remote host (passed to ssh)")
	sshConfig := fs.String("F", "", "ssh configuration file (passed to ssh)")
	var opts multiFlag
	fs.Var(&opts, "o", "an ssh option, e.g. -o StrictHostKeyChecking=yes (repeatable; passed to ssh)")
	sshProg := fs.String("ssh", envOr("AIRLOCK_SSH", "ssh"), "the ssh program to run (env AIRLOCK_SSH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return errors.New("ssh needs a destination, [user@]host")
	}
	dest, command := fs.Arg(0), fs.Args()[1:]
	// A destination that looks like an option would be read by ssh as one.
	if strings.HasPrefix(dest, "-") || dest == "" {
		return fmt.Errorf("destination %q is not [user@]host (flags go before it)", dest)
	}
	for _, o := range opts {
		if strings.HasPrefix(o, "-") {
			return fmt.Errorf("-o %q: give the option itself, e.g. -o Port=2222", o)
		}
	}
	c, err := newCLIClient(stderr)
	if err != nil {
		return err
	}
	g, err := pickGrant(c, *grantID)
	if err != nil {
		return err
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	var cert sshCertView
	body := map[string]any{"public_key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), "forward_agent": false, "forward_ports": false}
	if err := c.callConfirmed("POST", "/v1/grants/"+url.PathEscape(g.ID)+"/ssh-certificate", body, &cert); err != nil {
		return fmt.Errorf("no SSH certificate for grant %s: %w", g.ID, err)
	}
	if cert.Certificate == "" {
		return errors.New("the server answered without a certificate")
	}
	fmt.Fprintf(stderr, "Certificate %s (serial %d) for %s, valid until %s.\n", cert.KeyID, cert.Serial,
		strings.Join(cert.Principals, ","), cert.ValidBefore.Local().Format("15:04:05"))
	// A certificate never starts before its grant, in whole seconds
	// rounded up: one for a grant made a moment ago starts up to a second
	// from now, and sshd would refuse it as "not yet valid" until then.
	if wait := time.Until(cert.ValidAfter); wait > 0 && wait <= maxCertWait {
		time.Sleep(wait)
	}

	dir, err := os.MkdirTemp("", "airlock-ssh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	keyPath := filepath.Join(dir, "id_ed25519")
	certPath := keyPath + "-cert.pub"
	block, err := ssh.MarshalPrivateKey(priv, "airlock "+cert.KeyID)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(certPath, []byte(strings.TrimSpace(cert.Certificate)+"\n"), 0o600); err != nil {
		return err
	}

	sshArgs := []string{"-i", keyPath, "-o", "CertificateFile=" + certPath, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"}
	if *sshConfig != "" {
		sshArgs = append([]string{"-F", *sshConfig}, sshArgs...)
	}
	if *port != 0 {
		sshArgs = append(sshArgs, "-p", strconv.Itoa(*port))
	}
	for _, o := range opts {
		sshArgs = append(sshArgs, "-o", o)
	}
	// "--" ends ssh's options: OpenSSH reads options after the
	// destination too, so without it a command word like
	// "-oProxyCommand=…" would run a local command.
	sshArgs = append(sshArgs, "--", dest)
	sshArgs = append(sshArgs, command...)
	cmd := exec.Command(*sshProg, sshArgs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// While ssh runs, Ctrl-C and friends are for it (it shares the
	// terminal); this process waits, then removes the key.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sig)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = 255 // killed by a signal
		}
		return &exitError{Code: code}
	}
	if err != nil {
		return fmt.Errorf("cannot run %s: %w", *sshProg, err)
	}
	return nil
}

// pickGrant returns the grant named id — as is: whether it may be used is
// for the server to say when asked for a certificate — or else the only
// grant in force for this login.
func pickGrant(c *cliClient, id string) (*grantView, error) {
	if id != "" {
		return &grantView{ID: id}, nil
	}
	var out struct {
		Grants []grantView `json:"grants"`
	}
	if err := c.call("GET", "/v1/grants?active=1", nil, &out); err != nil {
		return nil, err
	}
	switch len(out.Grants) {
	case 0:
		return nil, errors.New("no active grant for this login: ask for one with airlock request")
	case 1:
		return &out.Grants[0], nil
	}
	var b strings.Builder
	b.WriteString("several active grants; pick one with --grant:")
	for _, g := range out.Grants {
		fmt.Fprintf(&b, "\n  %s  %s  until %s", g.ID, g.Scope, g.NotAfter.Local().Format(time.RFC3339))
	}
	return nil, errors.New(b.String())
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

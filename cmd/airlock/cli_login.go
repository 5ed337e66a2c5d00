package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"airlock/dpop"
)

const loginUsage = `airlock login [--server URL] [--no-browser] [--timeout 5m]

Signs this terminal in: makes a key pair, opens (and prints) a page on the
Airlock server where you sign in with your passkey and confirm, and stores a
short-lived token bound to the key in $AIRLOCK_CONFIG_DIR (default
$XDG_CONFIG_HOME/airlock or ~/.config/airlock)/cli.json.
`

// defaultServer is used when neither --server, AIRLOCK_SERVER nor an
// earlier login names one.
const defaultServer = "http://localhost:8080"

// resolveServer picks the server: the flag, else AIRLOCK_SERVER, else the
// last login's, else defaultServer. The result has no trailing slash.
func resolveServer(flagValue string) (string, error) {
	s := flagValue
	if s == "" {
		s = os.Getenv("AIRLOCK_SERVER")
	}
	if s == "" {
		if st, err := loadCLIState(); err == nil {
			s = st.Server
		}
	}
	if s == "" {
		s = defaultServer
	}
	s = strings.TrimRight(s, "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("server %q must be a base URL like https://airlock.example.com", s)
	}
	return s, nil
}

func cmdLogin(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loginUsage) }
	server := fs.String("server", "", "Airlock base URL (env AIRLOCK_SERVER; default: your last login's, else "+defaultServer+")")
	noBrowser := fs.Bool("no-browser", false, "print the URL only; do not open a browser")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the browser")
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("login takes no arguments")
	}
	base, err := resolveServer(*server)
	if err != nil {
		return err
	}
	// The token, its DPoP proofs and later the certificates and grant
	// tokens travel to this server: never in the clear over a network.
	if u, err := url.Parse(base); err != nil || !protectedURL(u) {
		return fmt.Errorf("login: %s is neither https nor plain http to this machine (loopback); Airlock's CLI never signs in over an unprotected network", base)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	jkt, err := dpop.Thumbprint(pub)
	if err != nil {
		return err
	}
	state, err := randomURLSafe(24)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("cannot listen on 127.0.0.1 for the browser's answer: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	loginURL := base + "/cli/login?" + url.Values{"port": {strconv.Itoa(port)}, "state": {state}, "jkt": {jkt}}.Encode()

	fmt.Fprintf(stderr, "To sign in, open this page in a browser on this computer:\n\n  %s\n\n", loginURL)
	fmt.Fprintf(stderr, "The page must show this key: %s\n", jkt)
	if !*noBrowser {
		if err := openBrowser(loginURL); err != nil {
			fmt.Fprintf(stderr, "(could not open a browser: %v)\n", err)
		}
	}
	fmt.Fprintf(stderr, "Waiting for the browser (up to %s)…\n", *timeout)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	code, err := awaitCallback(ctx, ln, state, stderr)
	if err != nil {
		return err
	}

	st, err := exchangeCode(base, code, priv)
	if err != nil {
		return err
	}
	st.KeyJKT = jkt
	path, err := saveCLIState(st)
	if err != nil {
		return fmt.Errorf("signed in, but the token could not be stored: %w", err)
	}
	fmt.Fprintf(stderr, "Signed in as %s until %s (stored in %s).\n", st.User, st.ExpiresAt.Local().Format(time.RFC3339), path)
	return nil
}

// awaitCallback serves the loopback listener until the browser brings a
// code with our state (or an error), or ctx ends. A request with another
// state is answered 400 and ignored: it is not our login.
func awaitCallback(ctx context.Context, ln net.Listener, state string, stderr io.Writer) (string, error) {
	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	want := ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// Only 127.0.0.1:PORT itself (a rebound DNS name would carry its
		// own Host).
		if r.Host != want {
			http.Error(w, "wrong host", http.StatusBadRequest)
			return
		}
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			fmt.Fprintln(stderr, "(ignored a callback with the wrong state: not this login)")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, callbackPage("This answer does not belong to the login the CLI is waiting for."))
			return
		}
		if e := q.Get("error"); e != "" {
			fmt.Fprint(w, callbackPage("The Airlock CLI was not signed in. You can close this window."))
			select {
			case done <- result{err: fmt.Errorf("sign-in refused in the browser (%s)", clipText(e, 40))}:
			default:
			}
			return
		}
		code := q.Get("code")
		if code == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, callbackPage("No code in this answer."))
			return
		}
		fmt.Fprint(w, callbackPage("The Airlock CLI is signed in. You can close this window and return to the terminal."))
		select {
		case done <- result{code: code}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	select {
	case r := <-done:
		return r.code, r.err
	case <-ctx.Done():
		return "", errors.New("timed out waiting for the browser: run airlock login again")
	}
}

func callbackPage(msg string) string {
	var b bytes.Buffer
	b.WriteString("<!doctype html><meta charset=utf-8><title>Airlock CLI</title><p>")
	b.WriteString(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(msg))
	b.WriteString("</p>\n")
	return b.String()
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// exchangeCode trades the one-time code for the key-bound token.
func exchangeCode(base, code string, key ed25519.PrivateKey) (*cliState, error) {
	u := base + "/v1/cli/token"
	proof, err := dpop.Proof(key, "POST", u, "", time.Now())
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"code": code})
	req, err := http.NewRequest("POST", u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", proof)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		Session   struct {
			ID string `json:"id"`
		} `json:"session"`
		User struct {
			Name string `json:"name"`
		} `json:"user"`
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(data, &out)
	if resp.StatusCode != http.StatusOK || out.Token == "" {
		if out.Error.Message != "" {
			return nil, fmt.Errorf("sign-in failed: %s (%s)", out.Error.Message, out.Error.Code)
		}
		return nil, fmt.Errorf("sign-in failed: HTTP %d", resp.StatusCode)
	}
	return &cliState{Server: base, Token: out.Token, PrivateKey: base64.RawURLEncoding.EncodeToString(key.Seed()),
		ExpiresAt: out.ExpiresAt, User: out.User.Name, Session: out.Session.ID}, nil
}

func randomURLSafe(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// openBrowser starts $BROWSER or xdg-open on url without waiting for it.
func openBrowser(u string) error {
	prog := os.Getenv("BROWSER")
	if prog == "" {
		p, err := exec.LookPath("xdg-open")
		if err != nil {
			return errors.New("no $BROWSER and no xdg-open")
		}
		prog = p
	}
	cmd := exec.Command(prog, u)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

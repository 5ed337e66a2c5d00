package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"airlock/dpop"
	"airlock/pep"
)

// The terminal commands' state: one file, cli.json, in the CLI's config
// directory, holding the server, the key-bound token and its private key.

// cliConfigFile is the CLI's state file name.
const cliConfigFile = "cli.json"

// cliState is what `airlock login` stores. The token alone is useless:
// every request must carry a DPoP proof signed by PrivateKey.
type cliState struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	// PrivateKey is the Ed25519 seed, base64url.
	PrivateKey string    `json:"private_key"`
	KeyJKT     string    `json:"jkt"`
	ExpiresAt  time.Time `json:"expires_at"`
	User       string    `json:"user"`
	Session    string    `json:"session"`
}

// cliConfigDir is $AIRLOCK_CONFIG_DIR, else $XDG_CONFIG_HOME/airlock,
// else ~/.config/airlock.
func cliConfigDir() (string, error) {
	if d := os.Getenv("AIRLOCK_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "airlock"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a config directory (set AIRLOCK_CONFIG_DIR): %w", err)
	}
	return filepath.Join(home, ".config", "airlock"), nil
}

// saveCLIState writes st to the config directory: the directory 0700, the
// file 0600, replaced atomically (never a half-written token).
func saveCLIState(st *cliState) (string, error) {
	dir, err := cliConfigDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".cli-*.json")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, cliConfigFile)
	return path, os.Rename(f.Name(), path)
}

// errNotLoggedIn and friends end in the one remedy.
var errNotLoggedIn = errors.New("not logged in: run airlock login")

// loadCLIState reads the state; a missing file is errNotLoggedIn, a file
// others can read is refused (like ssh refuses a readable private key).
func loadCLIState() (*cliState, error) {
	dir, err := cliConfigDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, cliConfigFile)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotLoggedIn
	} else if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is accessible by others (mode %v): chmod 600 it, or run airlock login again", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st cliState
	if err := json.Unmarshal(data, &st); err != nil || st.Token == "" || st.Server == "" {
		return nil, fmt.Errorf("%s is not a valid CLI state file: run airlock login", path)
	}
	return &st, nil
}

func (st *cliState) key() (ed25519.PrivateKey, error) {
	seed, err := base64.RawURLEncoding.DecodeString(st.PrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("the stored CLI key is damaged: run airlock login")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// cliClient calls the Airlock API as the logged-in CLI session: the token
// in "Authorization: DPoP", a fresh proof in "DPoP" on every request.
type cliClient struct {
	st   *cliState
	key  ed25519.PrivateKey
	http *http.Client
	// errOut gets progress and prompts; in is where a step-up proof is read.
	errOut io.Writer
	in     io.Reader
	now    func() time.Time
}

// newCLIClient loads the state and refuses an expired session up front.
func newCLIClient(stderr io.Writer) (*cliClient, error) {
	st, err := loadCLIState()
	if err != nil {
		return nil, err
	}
	key, err := st.key()
	if err != nil {
		return nil, err
	}
	c := &cliClient{st: st, key: key, http: &http.Client{Timeout: 30 * time.Second}, errOut: stderr, in: stdin, now: time.Now}
	if !st.ExpiresAt.IsZero() && !c.now().Before(st.ExpiresAt) {
		return nil, fmt.Errorf("your Airlock CLI session expired at %s: run airlock login", st.ExpiresAt.Local().Format(time.RFC3339))
	}
	return c, nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Body is the whole answer (a deny's reasons, for example).
	Body []byte
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// send makes one API request with its DPoP proof; hdr adds headers.
func (c *cliClient) send(method, path string, body any, hdr map[string]string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.st.Server + path
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	proof, err := dpop.Proof(c.key, method, u, c.st.Token, c.now())
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "DPoP "+c.st.Token)
	req.Header.Set("DPoP", proof)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach %s: %w", c.st.Server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, err
	}
	return resp, data, nil
}

// call sends a request and decodes a 2xx answer into out (if not nil). An
// RFC 9470 challenge comes back as *pep.ChallengeBody in the error chain
// (stepUpNeeded); a refused session as the advice to log in again.
func (c *cliClient) call(method, path string, body, out any) error {
	resp, data, err := c.send(method, path, body, nil)
	if err != nil {
		return err
	}
	return c.answer(resp, data, out)
}

func (c *cliClient) answer(resp *http.Response, data []byte, out any) error {
	if ch, ok := pep.ParseChallenge(resp, data); ok {
		return &stepUpNeeded{ch}
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode, Body: data}
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("Airlock refused this CLI session (%s): run airlock login", strings.TrimSuffix(e.Message, "."))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("unexpected answer from %s: %w", c.st.Server, err)
	}
	return nil
}

// callConfirmed is call that meets an RFC 9470 challenge the way `airlock
// admin` does: the person confirms this very request with their passkey in
// the browser (the step-up page accepts a CLI session's transaction from a
// browser session of the same user on the same device), pastes the proof,
// and the identical request is repeated once with it (Airlock-StepUp).
func (c *cliClient) callConfirmed(method, path string, body, out any) error {
	err := c.call(method, path, body, out)
	var su *stepUpNeeded
	if !errors.As(err, &su) {
		return err
	}
	proof, err := (&client{errOut: c.errOut, in: c.in}).confirm(su.ch)
	if err != nil {
		return err
	}
	resp, data, err := c.send(method, path, body, map[string]string{pep.HeaderStepUp: proof})
	if err != nil {
		return err
	}
	return c.answer(resp, data, out)
}

// stepUpNeeded is an RFC 9470 challenge answer.
type stepUpNeeded struct{ ch *pep.ChallengeBody }

func (e *stepUpNeeded) Error() string { return e.ch.String() }

package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"airlock/granttoken"
	"airlock/sshca"
)

const sshcaUsage = `Usage:
  airlock sshca pubkey [--data DIR | --config FILE | --server URL]

Prints the SSH CA's public key as one authorized_keys line: the content of
sshd's TrustedUserCAKeys file. Locally (on the server host) it reads the CA
key file (sshca.key_file, else DATA/sshca.key, made when serve first
starts); with --server it fetches GET /v1/sshca/pubkey (https, or http to
loopback only).
`

const grantUsage = `Usage:
  airlock grant verify [--jwks FILE | --server URL | --data DIR | --config FILE] [--aud RESOURCE] TOKEN
  airlock grant jwks [--data DIR | --config FILE]

Verifies a grant token offline and prints its claims as JSON. The key set is
the JWKS file (a copy of GET /v1/jwks: works with no network), else fetched
from --server, else derived from the local signing key
(grant_tokens.key_file, else DATA/grant-token.key). --aud is the resource
(or "tier:N") the token must be for. TOKEN "-" reads the token from stdin
(keeps it out of the process list). Exits non-zero with the reason when the
token is refused.

jwks prints, on the server host, the key set of the local signing key (what
GET /v1/jwks serves): to hand to offline verifiers, or to prepare a rotation.
`

func cmdSSHCA(args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp("sshca", sshcaUsage, args, stdout, stderr); done {
		return err
	}
	if args[0] != "pubkey" {
		return fmt.Errorf("sshca: unknown command %q (run 'airlock sshca help')", args[0])
	}
	fs := flag.NewFlagSet("sshca pubkey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resolve := configFlags(fs)
	server := fs.String("server", "", "fetch the key from this Airlock base URL instead of reading the local key file")
	if err := fs.Parse(interspersed(fs, args[1:])); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("sshca pubkey: no arguments expected")
	}
	if *server != "" {
		b, err := fetchPublic(*server, "/v1/sshca/pubkey", 16<<10)
		if err != nil {
			return fmt.Errorf("sshca pubkey: %w", err)
		}
		k, _, options, rest, err := ssh.ParseAuthorizedKey(b)
		if err != nil || len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 || k.Type() != ssh.KeyAlgoED25519 {
			return fmt.Errorf("sshca pubkey: the server's answer is not one Ed25519 authorized_keys line")
		}
		fmt.Fprint(stdout, sshca.AuthorizedKey(k))
		return nil
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	key, err := (&Main{}).loadSSHCAKey(cfg, false)
	if err != nil {
		return fmt.Errorf("sshca pubkey: %w (the key is made when serve first starts)", err)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, sshca.AuthorizedKey(pub))
	return nil
}

func cmdGrant(args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp("grant", grantUsage, args, stdout, stderr); done {
		return err
	}
	switch args[0] {
	case "verify":
	case "jwks":
		return cmdGrantJWKS(args[1:], stdout, stderr)
	default:
		return fmt.Errorf("grant: unknown command %q (run 'airlock grant help')", args[0])
	}
	fs := flag.NewFlagSet("grant verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resolve := configFlags(fs)
	jwksFile := fs.String("jwks", "", "a JWKS `FILE` (a copy of GET /v1/jwks); no network is used")
	server := fs.String("server", "", "fetch the JWKS from this Airlock base URL")
	aud := fs.String("aud", "", "the `RESOURCE` (or tier:N) the token must be for; empty accepts any audience")
	if err := fs.Parse(interspersed(fs, args[1:])); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("grant verify: want one TOKEN argument, got %d", fs.NArg())
	}
	if *jwksFile != "" && *server != "" {
		return fmt.Errorf("grant verify: give --jwks or --server, not both")
	}
	token := fs.Arg(0)
	if token == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, granttoken.MaxTokenBytes+1))
		if err != nil {
			return fmt.Errorf("grant verify: read the token: %w", err)
		}
		token = string(b)
	}
	token = strings.TrimSpace(token)

	var jwks []byte
	switch {
	case *jwksFile != "":
		b, err := readLimited(*jwksFile, granttoken.MaxJWKSBytes)
		if err != nil {
			return fmt.Errorf("grant verify: --jwks: %w", err)
		}
		jwks = b
	case *server != "":
		b, err := fetchPublic(*server, "/v1/jwks", granttoken.MaxJWKSBytes)
		if err != nil {
			return fmt.Errorf("grant verify: %w", err)
		}
		jwks = b
	default:
		cfg, err := resolve()
		if err != nil {
			return err
		}
		key, err := (&Main{}).loadGrantTokenKey(cfg, false)
		if err != nil {
			return fmt.Errorf("grant verify: %w (pass --jwks FILE away from the server host)", err)
		}
		if jwks, err = granttoken.PublicJWKS(key.Public().(ed25519.PublicKey)); err != nil {
			return err
		}
	}
	if _, err := granttoken.ParseJWKS(jwks); err != nil {
		return fmt.Errorf("grant verify: %w", err)
	}
	c, err := granttoken.Verify(token, jwks, *aud, time.Now())
	if err != nil {
		var ve *granttoken.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("grant verify: token refused (%s): %s", ve.Reason, ve.Detail)
		}
		return fmt.Errorf("grant verify: %w", err)
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", out)
	fmt.Fprintf(stderr, "valid: grant %s of %s for %q until %s\n", c.GrantID, c.Name, c.Audience, c.ExpiresAt().Local().Format(time.RFC3339))
	return nil
}

// cmdGrantJWKS is `airlock grant jwks`: the local signing key's key set.
func cmdGrantJWKS(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grant jwks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resolve := configFlags(fs)
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("grant jwks: no arguments expected")
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	key, err := (&Main{}).loadGrantTokenKey(cfg, false)
	if err != nil {
		return fmt.Errorf("grant jwks: %w (the key is made when serve first starts)", err)
	}
	jwks, err := granttoken.PublicJWKS(key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", jwks)
	return nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// fetchPublic GETs a public document from an Airlock server: https, or
// plain http to a loopback address only (a CA key or key set fetched over
// plain http from afar could be anyone's) — redirects included.
func fetchPublic(server, path string, limit int64) ([]byte, error) {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || u.Host == "" || !protectedURL(u) {
		return nil, fmt.Errorf("--server must be an https URL (plain http only to loopback), not %q", server)
	}
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !protectedURL(req.URL) {
			return fmt.Errorf("refused a redirect to %s: only https (plain http only to loopback)", req.URL.Redacted())
		}
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b[:min(len(b), 300)])))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: answer larger than %d bytes", path, limit)
	}
	return b, nil
}

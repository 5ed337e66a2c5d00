package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"airlock"
	airhttp "airlock/http"
	"airlock/pep"
)

const adminUsage = `airlock admin — manage users, devices and enrolment links through the admin API

Global flags (before the command):
  --server URL   Airlock base URL (env AIRLOCK_SERVER; default http://localhost:8080)
  --token TOKEN  bearer token from the web UI's "Get a CLI token" (env AIRLOCK_TOKEN)

Commands:
  users list
  users show USER
  users create --name NAME [--display-name S] [--kind employee|contractor|breakglass] [--tier N] [--roles a,b]
  users update [--display-name S] [--tier N] [--roles a,b] [--disable|--enable] USER
      contractors: --window-from RFC3339 --window-until RFC3339 --window-days mon,...,fri --window-hours 8-18 --window-tz ZONE
      (also accepted by users create)
  devices list
  devices show ID
  devices create --name NAME --owner USER|shared --kind managed|shared-station|contractor-issued|unmanaged
  devices trust ID | devices revoke ID
  devices update [--name S] [--owner USER|shared] [--kind K] [--trust pending|trusted|revoked] ID
  devices posture [--managed] [--disk-encrypted] [--edr] [--screen-lock] [--os V] [--patch YYYY-MM-DD] ID
  enrol-token --user USER --device ID
  tokens list
  credentials revoke CREDENTIAL_ID
  audit [--user ID] [--session ID] [--grant ID] [--type T] [--since T] [--until T] [--order asc|desc] [--after SEQ] [--limit N]
  exceptions list
  exceptions create --effect E --owner O --reason R (--ttl DURATION | --expires RFC3339) [--user U] [--action A] [--resource R]
  exceptions delete ID
  resources list
  resources create --name NAME --tier N [--labels k=v,k=v]
  resources update [--tier N] [--labels k=v,...] NAME
  resources delete NAME
  catalog
  policy-reload
  decide --action A --resource R [--params JSON] [--client NAME] [--stepup PROOF]   (as your own session)
  bootstrap --reissue [--data DIR | --store URL] [serve's flags]   (on the server host: new bootstrap link while no tier-0 admin exists)
  posture --device ID [--managed] [--disk-encrypted] [--edr] [--screen-lock] [--os-version V] [--patch-level YYYY-MM-DD] [--data DIR | --store URL]
                                                                   (on the server host: record a trusted device's posture, audited)

Output is JSON on stdout.

Sensitive changes may need a step-up: the command prints a URL on stderr;
open it in the browser signed in with the same session (the one that gave
the token), confirm with your passkey, paste the proof it shows, and the
identical request is repeated once with it.
`

type client struct {
	base  string
	token string
	http  *http.Client
	out   io.Writer
	// errOut gets the step-up prompt; in is where the proof is read from.
	errOut io.Writer
	in     io.Reader
}

func (c *client) do(method, path string, body any) error {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		raw = b
	}
	resp, data, err := c.send(method, path, raw, "")
	if err != nil {
		return err
	}
	// RFC 9470: the policy wants this exact change confirmed with a
	// passkey. The person confirms it in the browser, the identical
	// request is repeated once with the proof (stepup.go).
	if ch, ok := pep.ParseChallenge(resp, data); ok {
		proof, err := c.confirm(ch)
		if err != nil {
			return err
		}
		if resp, data, err = c.send(method, path, raw, proof); err != nil {
			return err
		}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (%s, HTTP %d)", e.Error.Message, e.Error.Code, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, data, "", "  ") == nil {
		data = pretty.Bytes()
	}
	_, err = c.out.Write(data)
	return err
}

// send makes one API request; proof, if set, goes in the Airlock-StepUp
// header.
func (c *client) send(method, path string, body []byte, proof string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if proof != "" {
		req.Header.Set(pep.HeaderStepUp, proof)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, err
	}
	return resp, data, nil
}

func cmdAdmin(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	server := fs.String("server", firstNonEmpty(os.Getenv("AIRLOCK_SERVER"), "http://localhost:8080"), "server base URL")
	token := fs.String("token", os.Getenv("AIRLOCK_TOKEN"), "bearer token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" {
		fmt.Fprint(stdout, adminUsage)
		return nil
	}
	if rest[0] == "bootstrap" {
		return cmdBootstrap(rest[1:], stdout, stderr)
	}
	if rest[0] == "posture" {
		return cmdHostPosture(rest[1:], stdout, stderr)
	}
	if *token == "" {
		return fmt.Errorf("admin: no token: pass --token or set AIRLOCK_TOKEN (get one from the web UI's home page)")
	}
	c := &client{base: strings.TrimRight(*server, "/"), token: *token, http: &http.Client{Timeout: 30 * time.Second}, out: stdout,
		errOut: stderr, in: stdin}
	cmd, args := rest[0], rest[1:]
	sub := ""
	if len(args) > 0 && cmd != "enrol-token" && cmd != "audit" && !policyCommandsWithoutSub[cmd] {
		sub, args = args[0], args[1:]
	}
	sfs := flag.NewFlagSet("admin "+cmd+" "+sub, flag.ContinueOnError)
	sfs.SetOutput(stderr)
	esc := url.PathEscape
	one := func() (string, error) {
		if err := sfs.Parse(args); err != nil {
			return "", err
		}
		if sfs.NArg() != 1 {
			return "", fmt.Errorf("admin %s %s: want exactly one argument", cmd, sub)
		}
		return sfs.Arg(0), nil
	}
	none := func() error {
		if err := sfs.Parse(args); err != nil {
			return err
		}
		if sfs.NArg() != 0 {
			return fmt.Errorf("admin %s %s: unexpected argument %q", cmd, sub, sfs.Arg(0))
		}
		return nil
	}
	switch cmd + " " + sub {
	case "users list":
		if err := none(); err != nil {
			return err
		}
		return c.do("GET", "/v1/admin/users", nil)
	case "users show":
		id, err := one()
		if err != nil {
			return err
		}
		return c.do("GET", "/v1/admin/users/"+esc(id), nil)
	case "users create", "users update":
		name := sfs.String("name", "", "login name (create)")
		display := sfs.String("display-name", "", "display name")
		kind := sfs.String("kind", "", "employee|contractor|breakglass")
		tier := sfs.Int("tier", -1, "tier 0-2")
		roles := sfs.String("roles", "\x00", "comma-separated roles")
		disable := sfs.Bool("disable", false, "disable the user (update)")
		enable := sfs.Bool("enable", false, "enable the user (update)")
		winFrom := sfs.String("window-from", "", "contractor window start, RFC 3339")
		winUntil := sfs.String("window-until", "", "contractor window end, RFC 3339")
		winDays := sfs.String("window-days", "", "contractor weekdays, e.g. mon,tue,wed,thu,fri")
		winHours := sfs.String("window-hours", "", "contractor hours, e.g. 8-18")
		winTZ := sfs.String("window-tz", "", "time zone of the hours, IANA name (default UTC)")
		var id string
		var err error
		if sub == "create" {
			err = none()
		} else {
			id, err = one()
		}
		if err != nil {
			return err
		}
		body := map[string]any{}
		if *name != "" {
			body["name"] = *name
		}
		if *display != "" {
			body["display_name"] = *display
		}
		if *kind != "" {
			body["kind"] = *kind
		}
		if *tier >= 0 {
			body["tier"] = *tier
		}
		if *roles != "\x00" {
			body["roles"] = append([]string{}, splitList(*roles)...)
		}
		if *disable && *enable {
			return fmt.Errorf("admin users update: --disable and --enable conflict")
		}
		if *winFrom != "" || *winUntil != "" || *winDays != "" || *winHours != "" || *winTZ != "" {
			w, err := parseWindow(*winFrom, *winUntil, *winDays, *winHours, *winTZ)
			if err != nil {
				return err
			}
			body["window"] = w
		}
		if *disable {
			body["disabled"] = true
		}
		if *enable {
			body["disabled"] = false
		}
		if sub == "create" {
			return c.do("POST", "/v1/admin/users", body)
		}
		return c.do("PATCH", "/v1/admin/users/"+esc(id), body)
	case "devices list":
		if err := none(); err != nil {
			return err
		}
		return c.do("GET", "/v1/admin/devices", nil)
	case "devices show":
		id, err := one()
		if err != nil {
			return err
		}
		return c.do("GET", "/v1/admin/devices/"+esc(id), nil)
	case "devices create":
		name := sfs.String("name", "", "device name")
		owner := sfs.String("owner", "", "owner user, or shared")
		kind := sfs.String("kind", "managed", "device kind")
		if err := none(); err != nil {
			return err
		}
		return c.do("POST", "/v1/admin/devices", map[string]any{"name": *name, "owner": *owner, "kind": *kind})
	case "devices trust", "devices revoke":
		id, err := one()
		if err != nil {
			return err
		}
		trust := airlock.TrustTrusted
		if sub == "revoke" {
			trust = airlock.TrustRevoked
		}
		return c.do("PATCH", "/v1/admin/devices/"+esc(id), map[string]any{"trust": trust})
	case "devices update":
		name := sfs.String("name", "", "new name")
		owner := sfs.String("owner", "", "new owner user, or shared")
		kind := sfs.String("kind", "", "new kind")
		trust := sfs.String("trust", "", "pending|trusted|revoked")
		id, err := one()
		if err != nil {
			return err
		}
		body := map[string]any{}
		for k, v := range map[string]string{"name": *name, "owner": *owner, "kind": *kind, "trust": *trust} {
			if v != "" {
				body[k] = v
			}
		}
		return c.do("PATCH", "/v1/admin/devices/"+esc(id), body)
	case "devices posture":
		p := airlock.Posture{}
		sfs.BoolVar(&p.Managed, "managed", false, "device is managed")
		sfs.BoolVar(&p.DiskEncrypted, "disk-encrypted", false, "disk is encrypted")
		sfs.BoolVar(&p.EDRRunning, "edr", false, "EDR is running")
		sfs.BoolVar(&p.ScreenLock, "screen-lock", false, "screen lock is on")
		sfs.StringVar(&p.OSVersion, "os", "", "OS version")
		sfs.StringVar(&p.PatchLevel, "patch", "", "patch level YYYY-MM-DD")
		id, err := one()
		if err != nil {
			return err
		}
		return c.do("PUT", "/v1/admin/devices/"+esc(id)+"/posture", p)
	case "enrol-token ":
		user := sfs.String("user", "", "user")
		dev := sfs.String("device", "", "device id")
		if err := none(); err != nil {
			return err
		}
		return c.do("POST", "/v1/admin/enrolment-tokens", map[string]any{"user": *user, "device": *dev})
	case "tokens list":
		if err := none(); err != nil {
			return err
		}
		return c.do("GET", "/v1/admin/enrolment-tokens", nil)
	case "credentials revoke":
		id, err := one()
		if err != nil {
			return err
		}
		return c.do("POST", "/v1/admin/credentials/"+esc(id)+"/revoke", nil)
	case "audit ":
		user := sfs.String("user", "", "user id")
		sess := sfs.String("session", "", "session id")
		typ := sfs.String("type", "", "event type or prefix ending in '.'")
		grant := sfs.String("grant", "", "grant id")
		since := sfs.String("since", "", "only events at or after this RFC 3339 time")
		until := sfs.String("until", "", "only events before this RFC 3339 time")
		order := sfs.String("order", "", "asc (default) or desc (newest first)")
		after := sfs.Int64("after", 0, "only events after this sequence number")
		limit := sfs.Int("limit", 100, "at most this many events")
		if err := none(); err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range map[string]string{"user": *user, "session": *sess, "type": *typ, "grant": *grant,
			"since": *since, "until": *until, "order": *order} {
			if v != "" {
				q.Set(k, v)
			}
		}
		q.Set("after", fmt.Sprint(*after))
		q.Set("limit", fmt.Sprint(*limit))
		return c.do("GET", "/v1/audit?"+q.Encode(), nil)
	}
	if handled, err := c.policyCommand(cmd, sub, sfs, args, one, none); handled {
		return err
	}
	return fmt.Errorf("admin: unknown command %q (run 'airlock admin help')", strings.TrimSpace(cmd+" "+sub))
}

// cmdBootstrap issues a new bootstrap enrolment link from the server host,
// opening the store directly: only someone with access to the data
// directory can do it, and only while no tier-0 admin exists.
func cmdBootstrap(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reissue := fs.Bool("reissue", false, "issue a new bootstrap link")
	resolve := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*reissue {
		return fmt.Errorf("admin bootstrap: pass --reissue to issue a new bootstrap enrolment link")
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	ctx := context.Background()
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	if m.Store, err = openStore(ctx, cfg); err != nil {
		return err
	}
	defer m.Store.Close()
	origins := cfg.Origins
	if len(origins) == 0 {
		origins = []string{deriveOriginFromListen(cfg)}
	}
	if err := m.services(cfg, origins); err != nil {
		return err
	}
	secret, _, err := m.Passkeys.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if secret == "" {
		return fmt.Errorf("admin bootstrap: a tier-0 admin with a device-bound passkey exists; bootstrap is closed (use the admin UI)")
	}
	fmt.Fprintf(stdout, "bootstrap enrolment: %s\n", airhttp.EnrolURL(origins[0], secret))
	return nil
}

func deriveOriginFromListen(cfg Config) string {
	addr, err := netResolve(cfg.Listen)
	if err != nil {
		return "http://" + cfg.RPID
	}
	return deriveOrigin(cfg.RPID, addr, cfg.TLSCert != "")
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// parseWindow builds a contractor access window from the CLI's flags.
func parseWindow(from, until, days, hours, tz string) (*airlock.AccessWindow, error) {
	w := &airlock.AccessWindow{TimeZone: tz}
	var err error
	if from != "" {
		if w.NotBefore, err = time.Parse(time.RFC3339, from); err != nil {
			return nil, fmt.Errorf("--window-from: %v", err)
		}
	}
	if until != "" {
		if w.NotAfter, err = time.Parse(time.RFC3339, until); err != nil {
			return nil, fmt.Errorf("--window-until: %v", err)
		}
	}
	for _, d := range splitList(days) {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return nil, fmt.Errorf("--window-days: unknown day %q (use sun,mon,tue,wed,thu,fri,sat)", d)
		}
		w.Weekdays = append(w.Weekdays, wd)
	}
	if hours != "" {
		if _, err := fmt.Sscanf(hours, "%d-%d", &w.StartHour, &w.EndHour); err != nil {
			return nil, fmt.Errorf("--window-hours: want START-END, e.g. 8-18")
		}
	}
	return w, nil
}

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"airlock"
)

// The terminal commands (issue 5): request, approve, grants, end (this
// file), login (cli_login.go) and ssh (cli_ssh.go). They talk to the API
// as the key-bound session of `airlock login` (cli_client.go). Machine
// output goes to stdout alone; progress and diagnostics to stderr.

// errNotYet is what a command not built yet returns.
var errNotYet = errors.New("not implemented yet")

// pollInterval is how often `airlock request` asks whether its request
// was decided; tests shorten it.
var pollInterval = 2 * time.Second

// exitError ends the program with Code (after printing Err, if any): the
// status of a command it ran, or 1 for a refusal that is not a failure of
// the CLI itself.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *exitError) Unwrap() error { return e.Err }

// Wire shapes of the elevation API (http/elevation.go) the CLI reads.
type (
	accessRequestView struct {
		ID          string                `json:"id"`
		Scope       string                `json:"scope"`
		ScopeTier   int                   `json:"scope_tier"`
		Reason      string                `json:"reason"`
		DurationS   int64                 `json:"duration_s"`
		Rule        string                `json:"approval_rule"`
		Status      airlock.RequestStatus `json:"status"`
		ExpiresAt   time.Time             `json:"expires_at"`
		ResolvedBy  string                `json:"resolved_by"`
		Note        string                `json:"note"`
		GrantID     string                `json:"grant_id"`
		ApprovalURL string                `json:"approval_url"`
	}
	grantView struct {
		ID        string    `json:"id"`
		RequestID string    `json:"request_id"`
		Scope     string    `json:"scope"`
		NotBefore time.Time `json:"not_before"`
		NotAfter  time.Time `json:"not_after"`
		Active    bool      `json:"active"`
		ExpiresIn int64     `json:"expires_in_s"`
		EndedAt   time.Time `json:"ended_at"`
		EndReason string    `json:"end_reason"`
	}
	quorumView struct {
		Group string `json:"group"`
		Min   int    `json:"min"`
	}
	requestDetail struct {
		Request   accessRequestView `json:"request"`
		Approvals []json.RawMessage `json:"approvals"`
		Missing   []quorumView      `json:"missing"`
		Grant     *grantView        `json:"grant"`
	}
	createdView struct {
		Request     accessRequestView `json:"request"`
		Grant       *grantView        `json:"grant"`
		ApprovalURL string            `json:"approval_url"`
	}
)

const requestUsage = `airlock request [--for 30m] --reason "…" [--ticket T] [--no-wait] ROLE@RESOURCE|tier:N

Asks for time-bounded privilege. Without --no-wait it waits until the request
is decided and prints the grant id on stdout (the request id and the approval
URL go to stderr); with --no-wait it prints the request id and returns.
`

func cmdRequest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, requestUsage); fs.PrintDefaults() }
	dur := fs.Duration("for", 30*time.Minute, "how long the grant should last (capped per tier)")
	reason := fs.String("reason", "", "the task, in your words (required)")
	ticket := fs.String("ticket", "", "ticket id, if any")
	noWait := fs.Bool("no-wait", false, "print the request id and return without waiting for approval")
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("request takes exactly one scope, ROLE@RESOURCE or tier:N")
	}
	scope := fs.Arg(0)
	if _, err := airlock.ParseScope(scope); err != nil {
		return errors.New(airlock.ErrorMessage(err))
	}
	if strings.TrimSpace(*reason) == "" {
		return errors.New(`--reason is required: say what the task is`)
	}
	if *dur < time.Second {
		return errors.New("--for must be at least 1s")
	}
	c, err := newCLIClient(stderr)
	if err != nil {
		return err
	}
	body := map[string]any{"scope": scope, "duration_s": int64(*dur / time.Second), "reason": *reason, "ticket": *ticket}
	var created createdView
	// RFC 9470: the policy may want this very request confirmed with a
	// passkey first; it is repeated once with the proof.
	if err := c.callConfirmed("POST", "/v1/elevation/requests", body, &created); err != nil {
		return requestError(err)
	}
	q := created.Request
	fmt.Fprintf(stderr, "Request %s: %s for %s.\n", q.ID, q.Scope, time.Duration(q.DurationS)*time.Second)
	if created.Grant != nil || q.GrantID != "" {
		id := q.GrantID
		if created.Grant != nil {
			id = created.Grant.ID
		}
		fmt.Fprintf(stderr, "Granted at once by policy: grant %s.\n", id)
		if *noWait {
			fmt.Fprintln(stdout, q.ID)
			return nil
		}
		fmt.Fprintln(stdout, id)
		return nil
	}
	if created.ApprovalURL != "" {
		fmt.Fprintf(stderr, "Approval is required. Approvers review it at:\n\n  %s\n\n", created.ApprovalURL)
	}
	if *noWait {
		fmt.Fprintln(stdout, q.ID)
		return nil
	}
	grant, err := waitForDecision(c, q, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, grant)
	return nil
}

// requestError makes a policy deny readable: the message and each reason.
func requestError(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 403 {
		return err
	}
	var d struct {
		Reasons []struct {
			Policy string `json:"policy"`
			Text   string `json:"text"`
		} `json:"reasons"`
	}
	_ = json.Unmarshal(ae.Body, &d)
	var b strings.Builder
	b.WriteString("request refused: " + ae.Message)
	for _, r := range d.Reasons {
		fmt.Fprintf(&b, "\n  - %s (%s)", r.Text, r.Policy)
	}
	return &exitError{Code: 1, Err: errors.New(b.String())}
}

// waitForDecision polls the request until it is approved (its grant id
// returned), denied, cancelled or expired, reporting progress on stderr.
func waitForDecision(c *cliClient, q accessRequestView, stderr io.Writer) (string, error) {
	fmt.Fprintf(stderr, "Waiting for approval (Ctrl-C stops waiting; the request stays pending until %s)…\n", q.ExpiresAt.Local().Format("15:04:05"))
	last := ""
	for {
		var d requestDetail
		if err := c.call("GET", "/v1/elevation/requests/"+url.PathEscape(q.ID), nil, &d); err != nil {
			return "", err
		}
		r := d.Request
		switch r.Status {
		case airlock.RequestApproved:
			if r.GrantID == "" && d.Grant != nil {
				r.GrantID = d.Grant.ID
			}
			fmt.Fprintf(stderr, "Approved (by %s): grant %s.\n", r.ResolvedBy, r.GrantID)
			return r.GrantID, nil
		case airlock.RequestDenied:
			return "", &exitError{Code: 1, Err: fmt.Errorf("request %s denied by %s: %s", r.ID, r.ResolvedBy, r.Note)}
		case airlock.RequestCancelled:
			return "", &exitError{Code: 1, Err: fmt.Errorf("request %s was cancelled", r.ID)}
		case airlock.RequestExpired:
			return "", &exitError{Code: 1, Err: fmt.Errorf("request %s expired without approval", r.ID)}
		}
		if !c.now().Before(r.ExpiresAt) {
			return "", &exitError{Code: 1, Err: fmt.Errorf("request %s expired without approval", r.ID)}
		}
		var missing []string
		for _, m := range d.Missing {
			missing = append(missing, fmt.Sprintf("%d from %s", m.Min, m.Group))
		}
		line := fmt.Sprintf("  %d approval(s) so far", len(d.Approvals))
		if len(missing) > 0 {
			line += "; still needs " + strings.Join(missing, " and ")
		}
		if line != last {
			fmt.Fprintf(stderr, "%s (expires in %s)\n", line, r.ExpiresAt.Sub(c.now()).Round(time.Second))
			last = line
		}
		time.Sleep(pollInterval)
	}
}

func cmdApprove(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("approve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "Airlock base URL (default: your login's)")
	noBrowser := fs.Bool("no-browser", false, "print the URL only")
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: airlock approve [--no-browser] REQUEST_ID")
	}
	base, err := resolveServer(*server)
	if err != nil {
		return err
	}
	u := base + "/approve/" + url.PathEscape(fs.Arg(0))
	fmt.Fprintln(stdout, u)
	fmt.Fprintln(stderr, "Review the request on that page and approve it with your passkey (or deny it with a reason).")
	if !*noBrowser {
		if err := openBrowser(u); err != nil {
			fmt.Fprintf(stderr, "(could not open a browser: %v)\n", err)
		}
	}
	return nil
}

func cmdGrants(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grants", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the grants as JSON")
	all := fs.Bool("all", false, "list ended and expired grants too (default: those in force for this login)")
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("usage: airlock grants [--all] [--json]")
	}
	c, err := newCLIClient(stderr)
	if err != nil {
		return err
	}
	var out struct {
		Grants []json.RawMessage `json:"grants"`
	}
	path := "/v1/grants?active=1"
	if *all {
		path = "/v1/grants"
	}
	if err := c.call("GET", path, nil, &out); err != nil {
		return err
	}
	if out.Grants == nil {
		out.Grants = []json.RawMessage{}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(out.Grants, "", "  ")
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	if len(out.Grants) == 0 {
		fmt.Fprintln(stderr, "No grants. Ask for one with airlock request.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tSCOPE\tSTATUS\tUNTIL")
	for _, raw := range out.Grants {
		var g grantView
		_ = json.Unmarshal(raw, &g)
		status := "active"
		switch {
		case g.EndReason != "":
			status = "ended (" + g.EndReason + ")"
		case !g.Active:
			status = "not in force"
		}
		until := g.NotAfter
		if !g.EndedAt.IsZero() {
			until = g.EndedAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.ID, g.Scope, status, until.Local().Format(time.RFC3339))
	}
	return tw.Flush()
}

func cmdEnd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("end", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: airlock end GRANT_ID")
	}
	c, err := newCLIClient(stderr)
	if err != nil {
		return err
	}
	var g grantView
	if err := c.call("POST", "/v1/grants/"+url.PathEscape(fs.Arg(0))+"/end", nil, &g); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Grant %s (%s) ended: %s.\n", g.ID, g.Scope, g.EndReason)
	fmt.Fprintln(stdout, g.ID)
	return nil
}

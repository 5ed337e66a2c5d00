package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"airlock"
	"airlock/audit"
	"airlock/passkey/passkeytest"
	"airlock/postgres"
	"airlock/postgres/pgtest"
)

// replica is one `airlock serve --store postgres://…` process.
type replica struct {
	i      int
	base   string
	cmd    *exec.Cmd
	stdout chan string // lines printed on stdout
	stderr *syncBuffer
	dead   atomic.Bool
}

// startReplica starts the test binary as `airlock serve` (TestMain's
// re-exec) on its own loopback port and data directory, on the shared
// store, serving the load balancer's origin lb.
func startReplica(t *testing.T, i int, store, lb string, extra ...string) *replica {
	t.Helper()
	port := freePort(t)
	args := append([]string{"serve", "--listen", "127.0.0.1:" + itoa(port), "--data", filepath.Join(t.TempDir(), "data"),
		"--store", store, "--origin", lb}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "AIRLOCK_TEST_MAIN=1")
	r := &replica{i: i, base: "http://127.0.0.1:" + itoa(port), cmd: cmd, stdout: make(chan string, 16), stderr: &syncBuffer{}}
	cmd.Stderr = r.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.stdout <- sc.Text()
		}
		close(r.stdout)
	}()
	t.Cleanup(func() {
		if !r.dead.Load() {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("replica %d stderr:\n%s", i, r.stderr.String())
		}
	})
	waitReady(t, r.base, nil)
	return r
}

// cluster is the test's load balancer: it spreads requests round-robin
// over the replicas that are up, all behind one origin. Its client's
// transport is the kill switch: once armed, it kills the victim replica
// while requests to it are open.
type cluster struct {
	t        *testing.T
	origin   string
	replicas []*replica
	next     atomic.Uint64
	client   *http.Client
	base     http.RoundTripper // under the kill switch
	kill     killSwitch
	// cut counts requests that got no answer because their replica died,
	// by path.
	cutMu sync.Mutex
	cut   map[string]int
}

// pick returns the next live replica.
func (c *cluster) pick() *replica {
	for {
		r := c.replicas[(c.next.Add(1)-1)%uint64(len(c.replicas))]
		if !r.dead.Load() {
			return r
		}
	}
}

// killSwitch kills the victim replica with a request to it open, from the
// transport, with no timing assumption. Once armed, the first request to
// the victim that finds another request to the victim open (sent, its
// answer not begun) — or, should that not happen, the eighth since arming —
// is the trigger: before it is written the victim is stopped (SIGSTOP, so
// that it can answer nothing more: the other open requests stop wherever
// their handlers are, mid-transaction or mid-commit), the trigger is
// written to the stopped process's socket, and then the victim is killed
// (SIGKILL). The trigger is thus always cut off, and so is every other open
// request whose answer was not yet on its way.
type killSwitch struct {
	mu         sync.Mutex
	victim     *replica
	armed      bool
	fired      bool
	open       int // requests to the victim sent and not yet answering
	passes     int // armed requests to the victim that found none open
	openAtKill int // other requests to the victim open at the stop
	once       sync.Once
	err        error
}

// arm makes the next request to the victim with another one open the
// trigger.
func (k *killSwitch) arm() {
	k.mu.Lock()
	k.armed = true
	k.mu.Unlock()
}

// fire kills the stopped victim (once).
func (k *killSwitch) fire() {
	k.once.Do(func() { k.err = k.victim.cmd.Process.Kill() })
}

// RoundTrip is http.RoundTripper: requests to the victim are watched.
func (c *cluster) RoundTrip(req *http.Request) (*http.Response, error) {
	k := &c.kill
	if k.victim == nil || req.URL.Host != strings.TrimPrefix(k.victim.base, "http://") {
		return c.base.RoundTrip(req)
	}
	var trigger, counted bool
	uncount := func() {
		k.mu.Lock()
		if counted {
			counted = false
			k.open--
		}
		k.mu.Unlock()
	}
	trace := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			k.mu.Lock()
			defer k.mu.Unlock()
			if !k.armed || k.fired {
				return
			}
			if k.open == 0 && k.passes < 8 {
				k.passes++
				return
			}
			k.fired, trigger, k.openAtKill = true, true, k.open
			k.victim.dead.Store(true) // the balancer sends it nothing more
			if err := k.victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				k.err = err
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if trigger {
				k.fire()
				return
			}
			k.mu.Lock()
			counted = true
			k.open++
			k.mu.Unlock()
		},
		GotFirstResponseByte: uncount,
	}
	res, err := c.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	uncount()
	if trigger {
		k.fire() // had the write failed
	}
	return res, err
}

// cutOff counts a request to path that got no answer.
func (c *cluster) cutOff(path string) {
	c.cutMu.Lock()
	defer c.cutMu.Unlock()
	if c.cut == nil {
		c.cut = map[string]int{}
	}
	c.cut[path]++
}

// errReplicaDown marks a request that got no answer because its replica
// went away.
var errReplicaDown = errors.New("replica down")

// post sends a JSON POST to replica r as a browser on the cluster's origin
// would, with an optional bearer token, and decodes the answer. A transport
// error is errReplicaDown; a non-2xx status is an error with the body.
func (c *cluster) post(r *replica, path, token string, body any) (map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", r.base+path, bytes.NewReader(b))
	req.Header.Set("Origin", c.origin)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.client.Do(req)
	if err != nil {
		c.cutOff(path)
		return nil, fmt.Errorf("%w: replica %d: %v", errReplicaDown, r.i, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.cutOff(path)
		return nil, fmt.Errorf("%w: replica %d: %v", errReplicaDown, r.i, err)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if res.StatusCode/100 != 2 {
		return out, fmt.Errorf("replica %d: POST %s: %d %s", r.i, path, res.StatusCode, raw)
	}
	return out, nil
}

// mustPost is post on the next replica that fails the test on any error.
func (c *cluster) mustPost(path, token string, body any) map[string]any {
	c.t.Helper()
	out, err := c.post(c.pick(), path, token, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// enrol completes an enrolment link with a new software authenticator,
// beginning on one replica and finishing on the next.
func (c *cluster) enrol(link string) *passkeytest.Authenticator {
	c.t.Helper()
	secret := link[strings.Index(link, "token=")+len("token="):]
	a := passkeytest.New()
	begin := c.mustPost("/v1/enrol/begin", "", map[string]any{"token": secret})
	opts, _ := json.Marshal(begin["publicKey"])
	cred, _, err := a.Register(c.origin, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mustPost("/v1/enrol/finish", "", map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred)})
	return a
}

// loginOutcome is what one login attempt under load came to.
type loginOutcome struct {
	session, token string
	// decision is the id of the decision made with the new session, when
	// its answer came back.
	decision string
	// lost: the attempt died with a replica (a request to it got no
	// answer) and is not acknowledged; killed says it was the killed one.
	lost   bool
	killed bool
	// finishCut: the lost attempt's finish was cut off on the killed
	// replica (which may have completed it, in part or whole, unanswered).
	finishCut bool
	// decisionCut: the decision request was cut off on the killed replica.
	decisionCut bool
	err         error
}

// login runs one discoverable login: begin on one replica, finish on the
// next. When the replica of a request dies under it, the finish is retried
// once on a live replica: a ceremony begun on the dead replica must still
// finish elsewhere, and one whose finish died with it may be gone.
func (c *cluster) login(a *passkeytest.Authenticator) loginOutcome {
	r := c.pick()
	begin, err := c.post(r, "/v1/login/begin", "", map[string]any{})
	if err != nil {
		return loginOutcome{lost: errors.Is(err, errReplicaDown), killed: r.dead.Load(), err: err}
	}
	opts, _ := json.Marshal(begin["publicKey"])
	cred, err := a.Assert(c.origin, opts)
	if err != nil {
		return loginOutcome{err: err}
	}
	finish := map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(cred), "bearer": true}
	r = c.pick()
	out, err := c.post(r, "/v1/login/finish", "", finish)
	if errors.Is(err, errReplicaDown) {
		killed := r.dead.Load()
		if out, err = c.post(c.pick(), "/v1/login/finish", "", finish); err != nil {
			return loginOutcome{lost: true, killed: killed, finishCut: true, err: err}
		}
	} else if err != nil {
		return loginOutcome{err: err}
	}
	sess, _ := out["session"].(map[string]any)
	id, _ := sess["id"].(string)
	tok, _ := out["token"].(string)
	if id == "" || tok == "" {
		return loginOutcome{err: fmt.Errorf("login answer without session or token: %v", out)}
	}
	return loginOutcome{session: id, token: tok}
}

// TestReplicasKillOne runs three replicas on one PostgreSQL database behind
// a round-robin balancer. Several users sign in again and again (each
// ceremony begun on one replica and finished on another) and ask for a
// decision with each new session; step-up proofs minted through one replica
// are presented to all of them at once; one replica is killed with SIGKILL
// mid-load, from the balancer's transport, with requests to it open (see
// killSwitch), so that at least one is cut off. All replicas sign checkpoints with one shared key file. Then:
// every acknowledged login and decision has its audit event; the audit log
// is one gap-free history that `airlock audit verify --store` accepts, every
// checkpoint included; a request cut off was completed unanswered or not at
// all, never twice (checkCutOff); each step-up proof was accepted
// exactly once; no ceremony was lost except those whose request was in
// flight on the killed replica (ceremonies begun on it finish on the
// survivors); and the survivors carry on.
func TestReplicasKillOne(t *testing.T) {
	url := pgtest.Schema(t)
	lb := "http://localhost:" + itoa(freePort(t))
	c := &cluster{t: t, origin: lb, base: http.DefaultTransport.(*http.Transport).Clone()}
	c.client = &http.Client{Timeout: 20 * time.Second, Transport: c}
	// One configuration for every replica: the shared audit signing key
	// file and log origin, checkpoints signed often (by whichever replica
	// gets there), and — every login comes from 127.0.0.1 — the
	// per-address limit on ceremony starts (which holds across replicas)
	// lifted out of the way.
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "audit-signing.key")
	key, _, err := audit.LoadOrCreateKey(keyFile, "airlock-test")
	if err != nil {
		t.Fatal(err)
	}
	const logOrigin = "airlock/replicas-test"
	cfgFile := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(cfgFile, []byte("ceremony_begin_per_minute: 1000000\n"+
		"audit:\n  key_file: "+keyFile+"\n  origin: "+logOrigin+"\n  checkpoint_every: 20\n  checkpoint_interval: 200ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := []string{"--config", cfgFile}
	// The first replica makes the schema and prints the bootstrap link;
	// the others start together against the migrated database.
	c.replicas = append(c.replicas, startReplica(t, 0, url, lb, conf...))
	var link string
	select {
	case link = <-c.replicas[0].stdout:
	case <-time.After(10 * time.Second):
		t.Fatal("no bootstrap line")
	}
	link = strings.TrimPrefix(link, "bootstrap enrolment: ")
	var wg sync.WaitGroup
	more := make([]*replica, 2)
	for i := range more {
		wg.Go(func() { more[i] = startReplica(t, i+1, url, lb, conf...) })
	}
	wg.Wait()
	c.replicas = append(c.replicas, more...)

	// The bootstrap admin enrols and signs in through the balancer, then
	// creates one user per worker, each with a trusted, compliant device
	// and an enrolment link (admin API calls spread over the replicas).
	admin := c.enrol(link)
	adm := c.login(admin)
	if adm.err != nil {
		t.Fatal(adm.err)
	}
	const workers, logins = 4, 25
	auths := make([]*passkeytest.Authenticator, workers)
	for w := range workers {
		name := "worker" + itoa(w)
		adminCLI := func(args ...string) map[string]any {
			t.Helper()
			out, errOut, code := runCLI(t, append([]string{"admin", "--server", c.pick().base, "--token", adm.token}, args...)...)
			var m map[string]any
			if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
				t.Fatalf("admin %v: %d %s %s", args, code, out, errOut)
			}
			return m
		}
		adminCLI("users", "create", "--name", name, "--tier", "2")
		dev := adminCLI("devices", "create", "--name", name+"-laptop", "--owner", name, "--kind", "managed")["id"].(string)
		adminCLI("devices", "trust", dev)
		adminCLI("devices", "posture", "--disk-encrypted", "--screen-lock", "--edr", "--managed", dev)
		auths[w] = c.enrol(adminCLI("enrol-token", "--user", name, "--device", dev)["url"].(string))
	}

	// A step-up proof minted through one replica is accepted once across
	// all three.
	var decisions []string
	decisions = append(decisions, c.stepUpRound(admin, adm.token, 100))

	// Ceremonies begun on the replica about to die, finished after its
	// death on the others: their state is in the database.
	victim := c.replicas[2]
	type begun struct{ finish map[string]any }
	var pending []begun
	for range 2 {
		b, err := c.post(victim, "/v1/login/begin", "", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		opts, _ := json.Marshal(b["publicKey"])
		cred, err := admin.Assert(lb, opts)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, begun{map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred), "bearer": true}})
	}

	// Load: every worker signs in and asks for a decision, again and
	// again; after a third of the logins the kill switch is armed, and
	// replica 2 is killed with requests to it open.
	ctx := context.Background()
	pg, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	loadFrom, err := pg.AuditTreeSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.kill.victim = victim
	var (
		mu       sync.Mutex
		outcomes []loginOutcome
		done     atomic.Int64
	)
	for w := range workers {
		wg.Go(func() {
			for range logins {
				o := c.login(auths[w])
				if o.err == nil {
					// A decision with the new session, on the next replica.
					r := c.pick()
					d, err := c.decide(r, o.token, map[string]any{"action": "config.read", "resource": "grafana",
						"params": map[string]any{"dashboard": "db-" + itoa(w)}})
					switch {
					case err == nil && d["decision"] == "allow":
						o.decision = d["decision_id"].(string)
					case errors.Is(err, errReplicaDown) && r.dead.Load():
						// in flight on the killed replica: not acknowledged
						o.decisionCut = true
					default:
						o.err = fmt.Errorf("config.read with a fresh session: %v %v", d, err)
					}
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if done.Add(1) == workers*logins/3 {
					c.kill.arm()
				}
			}
		})
	}
	wg.Wait()
	c.kill.mu.Lock()
	fired, openAtKill := c.kill.fired, c.kill.openAtKill
	c.kill.mu.Unlock()
	if !fired {
		t.Fatal("the victim replica was never killed")
	}
	if c.kill.err != nil {
		t.Fatalf("killing the victim: %v", c.kill.err)
	}
	loadTo, err := pg.AuditTreeSize(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var acked []string
	for i, p := range pending {
		out, err := c.post(c.pick(), "/v1/login/finish", "", p.finish)
		if err != nil {
			t.Errorf("ceremony %d begun on the killed replica did not finish on a survivor: %v", i, err)
			continue
		}
		acked = append(acked, out["session"].(map[string]any)["id"].(string))
	}
	// (The admin's passkey signs after the pending assertions: its sign
	// count must keep growing.) Step-up proofs across the two survivors.
	decisions = append(decisions, c.stepUpRound(admin, adm.token, 200))
	lost := 0
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			acked = append(acked, o.session)
			if o.decision != "" {
				decisions = append(decisions, o.decision)
			}
		case o.lost && o.killed:
			lost++ // in flight on the killed replica: allowed to be lost
			t.Logf("login lost with the killed replica: %v", o.err)
		default:
			t.Errorf("a login failed that the kill does not explain: %v", o.err)
		}
	}
	// Each worker has at most one request in flight at the kill, and a
	// login is lost only through a request of its own cut off.
	cutTotal, cutFinish := 0, c.cut["/v1/login/finish"]
	for _, n := range c.cut {
		cutTotal += n
	}
	if cutTotal == 0 {
		t.Fatal("no request was cut off by the kill")
	}
	if cutTotal > workers {
		t.Errorf("%d requests cut off, more than the %d workers can have in flight", cutTotal, workers)
	}
	if lost > cutTotal {
		t.Errorf("%d logins lost, more than the %d requests cut off by the kill", lost, cutTotal)
	}
	if len(acked) < workers*logins+len(pending)-workers {
		t.Errorf("only %d of %d logins succeeded", len(acked), workers*logins)
	}
	t.Logf("%d logins and %d decisions acknowledged, %d logins lost in flight on the killed replica, "+
		"%d requests cut off by the kill %v (%d others open on the victim when it was stopped)",
		len(acked), len(decisions), lost, cutTotal, c.cut, openAtKill)

	// Every acknowledged login's events are in the one audit log, which has
	// no gap, and the survivors still serve.
	created := map[string]bool{}
	var after int64
	for {
		page, err := pg.ListAudit(ctx, airlock.AuditFilter{Type: "session.created", AfterSeq: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			created[e.SessionID] = true
		}
		after = page[len(page)-1].Seq
	}
	for _, id := range acked {
		if !created[id] {
			t.Errorf("acknowledged login of session %s has no session.created event", id)
		}
	}
	decided := map[string]bool{}
	for after = 0; ; {
		page, err := pg.ListAudit(ctx, airlock.AuditFilter{Type: "decision.", AfterSeq: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			decided[e.DecisionID] = true
		}
		after = page[len(page)-1].Seq
	}
	for _, id := range decisions {
		if !decided[id] {
			t.Errorf("acknowledged decision %s has no audit event", id)
		}
	}
	checkAuditGapFree(t, pg)
	checkCutOff(t, pg, loadFrom, loadTo, outcomes, cutFinish)
	// Checkpoints were signed during the load, by the shared key, and
	// `airlock audit verify` recomputes the whole tree and checks every one.
	time.Sleep(500 * time.Millisecond) // a checkpoint interval and more: the survivors sign the tail
	cps, err := pg.ListAuditCheckpoints(ctx, 0, 0)
	if err != nil || len(cps) < 2 {
		t.Errorf("%d checkpoints signed during the run (%v), want several", len(cps), err)
	}
	out, errOut, code := runCLI(t, "audit", "verify", "--store", url, "--pubkey", key.VerifierKey, "--log-origin", logOrigin)
	if code != 0 {
		t.Errorf("audit verify --store: exit %d\n%s%s", code, out, errOut)
	} else {
		t.Logf("%s", strings.TrimSpace(errOut))
	}
	for _, r := range c.replicas[:2] {
		if _, err := c.post(r, "/v1/login/begin", "", map[string]any{}); err != nil {
			t.Errorf("survivor %d: %v", r.i, err)
		}
	}
}

// checkCutOff checks the audit events of the load, seq (from, to], against
// what the load was told. A request cut off by the kill may have been
// completed unanswered, or not at all, never doubled: each session has at
// most one session.created and one decision; a session.created (or a
// successful auth.login without one) nobody was told of is one of the
// login finishes cut off; a decision nobody was told of is one whose
// request was cut off; every session.created follows the auth.login of its
// request; and no session that was never handed out was used.
func checkCutOff(t *testing.T, s airlock.AuditStore, from, to int64, outcomes []loginOutcome, cutFinish int) {
	t.Helper()
	told := map[string]bool{}    // sessions handed out
	decCut := map[string]bool{}  // sessions whose decision was cut off
	toldDec := map[string]bool{} // decisions answered
	for _, o := range outcomes {
		if o.session != "" {
			told[o.session] = true
		}
		if o.decisionCut {
			decCut[o.session] = true
		}
		if o.decision != "" {
			toldDec[o.decision] = true
		}
	}
	loginAt := map[string]int64{} // request id → seq of its auth.login
	created := map[string]int{}
	decided := map[string]int{}
	var untoldCreated, untoldLogins, cutDecisions int
	var evs []*airlock.AuditEvent
	for after := from; after < to; {
		page, err := s.ListAudit(context.Background(), airlock.AuditFilter{AfterSeq: after, BeforeSeq: to + 1, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		evs = append(evs, page...)
		after = page[len(page)-1].Seq
	}
	if int64(len(evs)) != to-from {
		t.Fatalf("%d audit events read between seq %d and %d", len(evs), from, to)
	}
	sessionReq := map[string]bool{}
	for _, e := range evs {
		switch {
		case e.Type == "auth.login" && e.Outcome == airlock.OutcomeSuccess:
			loginAt[e.RequestID] = e.Seq
		case e.Type == "session.created":
			created[e.SessionID]++
			sessionReq[e.RequestID] = true
			if at, ok := loginAt[e.RequestID]; !ok || at > e.Seq {
				t.Errorf("session.created %d (session %s) without the auth.login of its request", e.Seq, e.SessionID)
			}
			if !told[e.SessionID] {
				untoldCreated++
			}
		case strings.HasPrefix(e.Type, "decision."):
			decided[e.SessionID]++
			if !toldDec[e.DecisionID] {
				if !decCut[e.SessionID] {
					t.Errorf("decision %s (seq %d) was neither answered nor cut off", e.DecisionID, e.Seq)
				}
				cutDecisions++
			}
		}
	}
	for req := range loginAt {
		if !sessionReq[req] {
			untoldLogins++ // a finish cut off between its auth.login and its session
		}
	}
	for id, n := range created {
		if n > 1 {
			t.Errorf("session %s created %d times", id, n)
		}
		if !told[id] && decided[id] > 0 {
			t.Errorf("session %s, never handed out, made %d decisions", id, decided[id])
		}
	}
	for id, n := range decided {
		if n > 1 {
			t.Errorf("session %s has %d decisions, one asked for", id, n)
		}
	}
	if untoldCreated+untoldLogins > cutFinish {
		t.Errorf("%d sessions created and %d logins audited that nobody was told of, more than the %d login finishes cut off",
			untoldCreated, untoldLogins, cutFinish)
	}
	t.Logf("cut off and completed unanswered: %d sessions, %d logins without a session, %d decisions",
		untoldCreated, untoldLogins, cutDecisions)
}

// checkAuditGapFree reads every audit record and checks Seq runs 1, 2, 3…
// and each leaf parses back to an event with that Seq.
func checkAuditGapFree(t *testing.T, s airlock.AuditStore) {
	t.Helper()
	ctx := context.Background()
	size, err := s.AuditTreeSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	for {
		page, err := s.ReadAuditEntries(ctx, seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			seq++
			if e.Seq != seq {
				t.Fatalf("audit record %d follows %d", e.Seq, seq-1)
			}
			if ev, err := airlock.ParseAuditLeaf(e.Leaf); err != nil || ev.Seq != e.Seq {
				t.Fatalf("audit record %d: leaf %v %v", e.Seq, ev, err)
			}
		}
	}
	if seq != size || size == 0 {
		t.Fatalf("read %d audit records, tree size %d", seq, size)
	}
}

// decide asks replica r for a decision with the session's bearer token.
func (c *cluster) decide(r *replica, token string, req map[string]any) (map[string]any, error) {
	return c.post(r, "/v1/decide", token, req)
}

// stepUpRound runs one payments transfer through a step-up: the decision,
// the ceremony (begun on one replica, finished on another) and then the
// proof presented at once to every live replica. It fails the test unless
// exactly one presentation is allowed and the others are refused, and
// returns the allowed decision's id.
func (c *cluster) stepUpRound(a *passkeytest.Authenticator, token string, amount int) string {
	t := c.t
	t.Helper()
	req := map[string]any{"action": "payments.transfer", "resource": "payments",
		"params": map[string]any{"amount": amount, "currency": "EUR", "payee": "ACME GmbH"}}
	d, err := c.decide(c.pick(), token, req)
	if err != nil {
		t.Fatal(err)
	}
	su, _ := d["step_up"].(map[string]any)
	if d["decision"] != "step_up" || su == nil {
		t.Fatalf("payments.transfer: %v, want step_up", d)
	}
	b, err := c.post(c.pick(), "/v1/stepup/begin", token, map[string]any{"transaction": su["transaction"]})
	if err != nil {
		t.Fatal(err)
	}
	opts, _ := json.Marshal(b["publicKey"])
	cred, err := a.Assert(c.origin, opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.post(c.pick(), "/v1/stepup/finish", token, map[string]any{"ceremony": b["ceremony"], "credential": json.RawMessage(cred)})
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := f["proof"].(string)
	if proof == "" {
		t.Fatalf("step-up finish without a proof: %v", f)
	}
	req["stepup"] = proof
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed []string
		refused int
	)
	start := make(chan struct{})
	for _, r := range c.replicas {
		if r.dead.Load() {
			continue
		}
		for range 2 {
			wg.Go(func() {
				<-start
				d, err := c.decide(r, token, req)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("proof presented to replica %d: %v", r.i, err)
				case d["decision"] == "allow":
					allowed = append(allowed, d["decision_id"].(string))
				case d["decision"] == "deny":
					refused++
				default:
					t.Errorf("proof presented to replica %d: %v", r.i, d)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if len(allowed) != 1 {
		t.Fatalf("one step-up proof presented %d times across replicas was accepted %d times (refused %d), want exactly once",
			len(allowed)+refused, len(allowed), refused)
	}
	return allowed[0]
}

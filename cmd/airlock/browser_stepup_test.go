package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// decideJS asks POST /v1/decide from the page, as the browser's own
// (cookie) session, and returns the answer.
func decideJS(p *person, body string) map[string]any {
	p.e.t.Helper()
	return eval[map[string]any](p, `fetch("/v1/decide", {method: "POST", credentials: "same-origin",
	  headers: {"Content-Type": "application/json"}, body: JSON.stringify(`+body+`)}).then(r => r.json())`)
}

func reasonTexts(d map[string]any) string {
	var out []string
	rs, _ := d["reasons"].([]any)
	for _, r := range rs {
		m, _ := r.(map[string]any)
		out = append(out, fmt.Sprint(m["policy"], ": ", m["text"]))
	}
	return strings.Join(out, "; ")
}

// TestBrowserStepUpBoundToTransaction: decide → step_up → the step-up page
// shows exactly the request → the passkey confirms it → the proof makes the
// identical decide allow, once.
func TestBrowserStepUpBoundToTransaction(t *testing.T) {
	e, _, tok := withAdmin(t)
	bob := e.newPerson("bob", deviceBound)
	en := e.setupEnrolee(tok, "bob", 0, true)
	bob.mustEnrol(en.URL, "bob")
	bob.mustLogin("bob", 0, 0)

	const transfer = `{action: "payments.transfer", resource: "payments",
	  params: {payee: "DE02 1203 0000 0000 2020 51", amount: "250.00", memo: "invoice 42"}, context: {client: "bank-ui"}}`
	d := decideJS(bob, transfer)
	su, _ := d["step_up"].(map[string]any)
	if d["decision"] != "step_up" || su == nil {
		bob.fatalf("bob: payments.transfer decided %v (%s), want step_up with a transaction", d["decision"], reasonTexts(d))
	}
	url, _ := su["url"].(string)
	txn, _ := su["transaction"].(string)
	if !strings.HasPrefix(url, e.m.Origin+"/stepup/"+txn) {
		bob.fatalf("bob: step-up URL %q is not the transaction's page under %s", url, e.m.Origin)
	}

	// The page shows what is confirmed.
	st := bob.open(url + "?return_to=https://evil.example/")
	bob.expectNoError(st)
	for id, want := range map[string]string{"stepup-action": "payments.transfer", "stepup-resource": "payments", "stepup-client": "bank-ui", "stepup-transaction": txn} {
		if got := bob.text(id); got != want {
			bob.fatalf("bob: #%s = %q, want %q", id, got, want)
		}
	}
	params := bob.text("stepup-params")
	for _, want := range []string{"amount", "250.00", "payee", "DE02 1203 0000 0000 2020 51", "memo", "invoice 42"} {
		if !strings.Contains(params, want) {
			bob.fatalf("bob: the parameters table %q does not show %q", params, want)
		}
	}
	if bob.has(`#stepup-confirm[data-return*="evil"]`) {
		bob.fatalf("bob: a foreign return_to was kept")
	}

	// Confirm with the passkey: the page shows the single-use proof.
	st = bob.act("#stepup-confirm")
	bob.expectOK(st, "Confirmed")
	proof := bob.text("stepup-proof")
	if len(proof) < 40 || bob.has(`#stepup-done[hidden]`) {
		bob.fatalf("bob: #stepup-proof = %q, want a visible proof", proof)
	}
	if ok := e.audit("stepup.success"); len(ok) != 1 || ok[0].TransactionID != txn {
		e.fatalf("stepup.success events: %+v", ok)
	}

	// The identical request with the proof is allowed, once.
	with := strings.TrimSuffix(transfer, "}") + `, stepup: ` + jsString(proof) + `}`
	d = decideJS(bob, with)
	if d["decision"] != "allow" || !strings.Contains(reasonTexts(d), "stepup-confirmed") {
		bob.fatalf("bob: transfer with its proof decided %v (%s), want allow", d["decision"], reasonTexts(d))
	}
	d = decideJS(bob, with)
	if d["decision"] != "deny" || !strings.Contains(reasonTexts(d), "already used") {
		bob.fatalf("bob: the proof's second use decided %v (%s), want deny", d["decision"], reasonTexts(d))
	}
	allowed := e.audit("decision.allow")
	if len(allowed) == 0 || allowed[len(allowed)-1].TransactionID != txn {
		e.fatalf("the allow decision is not joined to transaction %s", txn)
	}

	// The page of a used transaction offers no second confirmation.
	st = bob.open(url)
	bob.expectError(st, "already confirmed")
	if bob.has("#stepup-confirm") {
		bob.fatalf("bob: a completed transaction still offers the confirm button")
	}
}

// TestBrowserAdminChangeStepsUp: an admin change more than 300 s after the
// last passkey verification is confirmed inline with the passkey and then
// made; the decision, the step-up and the change are joined in the audit.
func TestBrowserAdminChangeStepsUp(t *testing.T) {
	e, admin, tok := withAdmin(t)
	e.clock.Advance(301 * time.Second)
	// Reads need no step-up.
	e.api(tok, "GET", "/v1/admin/users", nil, http.StatusOK)

	st := admin.open("/admin/users")
	admin.expectNoError(st)
	admin.setValue(`#new-user input[name="name"]`, "carol")
	admin.actAndReload(`#new-user button[type="submit"]`)
	if got := admin.text("users"); !strings.Contains(got, "carol") {
		admin.fatalf("admin: carol is not listed after the confirmed change: %q", got)
	}
	steps := e.audit("decision.step_up")
	ups := e.audit("stepup.success")
	created := e.audit("user.created")
	if len(steps) != 1 || len(ups) != 1 || ups[0].TransactionID != steps[0].TransactionID {
		e.fatalf("step_up decisions %d, step-ups %d: not one confirmed transaction", len(steps), len(ups))
	}
	last := created[len(created)-1]
	allowed := e.audit("decision.allow")
	if last.DecisionID == "" || last.DecisionID != allowed[len(allowed)-1].DecisionID || allowed[len(allowed)-1].TransactionID != ups[0].TransactionID {
		e.fatalf("user.created (decision %s) is not joined to the allow that redeemed the step-up", last.DecisionID)
	}
}

// refreshPosture records a fresh posture report for every device of the
// named user directly in the store, as a device-management feed would.
func (e *e2e) refreshPosture(userName string) {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.m.Store.FindUserByName(ctx, userName)
	if err != nil {
		e.fatalf("refresh posture: %v", err)
	}
	devs, err := e.m.Store.ListDevices(ctx)
	if err != nil {
		e.fatalf("refresh posture: %v", err)
	}
	for _, d := range devs {
		if d.Owner != u.ID {
			continue
		}
		d.Posture.ReportedAt = e.clock.Now().UTC()
		d.Posture.Source = "test-mdm"
		if err := e.m.Store.UpdateDevice(ctx, d); err != nil {
			e.fatalf("refresh posture of %s: %v", d.Name, err)
		}
	}
}

// Airlock web UI: account recovery — opening a case ("lost my passkey"),
// following it and claiming the enrolment link with the recovery code,
// the subject's cancel with a passkey, and the officers' approval, denial
// and abort. Loaded after airlock.js, whose show, ceremonyError and api it
// uses.
"use strict";

// anonPost posts JSON without credentials: the public recovery pages never
// ride on a session (a browser's stale cookie must not turn a "lost my
// passkey" request into a help-desk one).
async function anonPost(path, body) {
  const resp = await fetch(path, {
    method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  let data = {};
  try { data = await resp.json(); } catch (e) { /* empty body */ }
  if (!resp.ok) {
    const err = new Error(data.error && data.error.message ? data.error.message : "request failed (HTTP " + resp.status + ")");
    err.code = data.error && data.error.code;
    throw err;
  }
  return data;
}

async function openCase(form) {
  const res = await anonPost("/v1/recovery/cases", { user: form.elements.user.value.trim(), reason: form.elements.reason.value });
  form.hidden = true;
  document.getElementById("recover-secret").textContent = res.claim_secret;
  document.getElementById("recover-result").hidden = false;
  show("Recovery case requested. Keep the code below.", true);
}

const statusHelp = {
  pending: "Waiting for recovery officers to verify your identity and approve.",
  cooling_down: "Approved. For your protection there is a waiting period; the account's owner has been notified and can still cancel.",
  released: "Your enrolment link was issued.",
  completed: "Done: a new passkey was enrolled through this case.",
  cancelled: "This case was cancelled.",
  denied: "This case was denied.",
  expired: "This case expired; open a new one if you still need to.",
};

async function checkStatus(form) {
  const secret = form.elements.secret.value.trim();
  const res = await anonPost("/v1/recovery/status", { secret });
  document.getElementById("status-status").textContent = res.status;
  document.getElementById("status-cool-down").textContent = res.cool_down_until ? new Date(res.cool_down_until).toISOString() : "—";
  document.getElementById("status-help").textContent = statusHelp[res.status] || "";
  document.getElementById("status-result").hidden = false;
  const claim = document.getElementById("claim-form");
  claim.hidden = !res.claimable;
  claim.dataset.secret = secret;
  show("Status: " + res.status, true);
}

async function claim(form) {
  const res = await anonPost("/v1/recovery/claim", { secret: form.dataset.secret, device_id: form.elements.device_id.value.trim() });
  const link = document.getElementById("claim-link");
  link.href = res.enrol_url;
  link.textContent = res.enrol_url;
  document.getElementById("claim-expires").textContent = new Date(res.expires_at).toISOString();
  document.getElementById("claim-result").hidden = false;
  form.hidden = true;
  show("Your enrolment link is ready.", true);
}

async function cancelCase(el) {
  const begin = await anonPost("/v1/recovery/cancel/begin", { case: el.dataset.case });
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.get({ publicKey: options });
  await anonPost("/v1/recovery/cancel/finish", { ceremony: begin.ceremony, credential: cred.toJSON() });
  el.hidden = true;
  show("The recovery case is cancelled. Nothing changed on your account.", true);
}

async function helpdeskOpen(form) {
  const body = { user: form.elements.user.value.trim(), reason: form.elements.reason.value };
  if (form.elements.device_id.value.trim() !== "") body.device_id = form.elements.device_id.value.trim();
  const res = await api("POST", "/v1/recovery/cases", body);
  form.hidden = true;
  document.getElementById("helpdesk-secret").textContent = res.claim_secret;
  const link = document.getElementById("helpdesk-case");
  link.href = "/recovery/" + encodeURIComponent(res.case.id);
  link.textContent = res.case.id;
  document.getElementById("helpdesk-result").hidden = false;
  show("Case opened.", true);
}

// approve runs an officer's approval: a user-verified passkey assertion
// bound to the case and the verification note.
async function approveCase(el) {
  const verification = document.getElementById("recovery-verification").value;
  if (verification.trim() === "") throw new Error("Write how you verified the person first.");
  const begin = await api("POST", "/v1/recovery/begin", { case: el.dataset.case, verification });
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.get({ publicKey: options });
  const res = await api("POST", "/v1/recovery/finish", { ceremony: begin.ceremony, credential: cred.toJSON(), verification });
  el.hidden = true;
  show(res.case.status === "pending" ? "Approved: your approval is recorded; the case needs more." : "Approved: the quorum is met; the cool-down has started.", true);
  setTimeout(() => location.reload(), 400);
}

async function resolveCase(form) {
  const reason = form.elements.reason.value;
  if (reason.trim() === "") throw new Error("A reason is required.");
  await api("POST", "/v1/recovery/cases/" + encodeURIComponent(form.dataset.case) + "/" + form.dataset.verb, { reason });
  show(form.dataset.verb === "deny" ? "Denied." : "Aborted.", true);
  setTimeout(() => location.reload(), 400);
}

const recoveryForms = {
  "recover-form": openCase, "status-form": checkStatus, "claim-form": claim, "helpdesk-form": helpdeskOpen,
  "recovery-deny-form": resolveCase, "recovery-abort-form": resolveCase,
};

document.addEventListener("submit", (ev) => {
  const f = recoveryForms[ev.target.id];
  if (!f) return;
  ev.preventDefault();
  f(ev.target).catch(e => show(ceremonyError(e), false));
});

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("#cancel-case, #recovery-approve-submit");
  if (!el) return;
  ev.preventDefault();
  (el.id === "cancel-case" ? cancelCase(el) : approveCase(el)).catch(e => show(ceremonyError(e), false));
});

// Airlock web UI: just-in-time elevation — the request form (with its
// step-up round trip through the step-up page), the approval ceremony and
// denial. Loaded after airlock.js, whose show, ceremonyError and api it uses.
"use strict";

const savedAsk = "airlock.elevate.ask";

// postAsk sends an access request. A step-up answer (RFC 9470 401) keeps
// the ask in this tab's sessionStorage and leads the person to the step-up
// page, which comes back to /elevate with the proof in the fragment.
async function postAsk(ask, proof) {
  const body = Object.assign({}, ask);
  if (proof) body.stepup = proof;
  const resp = await fetch("/v1/elevation/requests", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  let data = {};
  try { data = await resp.json(); } catch (e) { /* empty body */ }
  if (resp.status === 401 && data.step_up_url && data.error && data.error.code === "insufficient_user_authentication") {
    if (proof) throw new Error("The confirmation was not accepted for this request: " + data.error.message);
    sessionStorage.setItem(savedAsk, JSON.stringify(ask));
    show("This request needs a passkey confirmation first…", true);
    const target = new URL(data.step_up_url, location.href);
    target.searchParams.set("return_to", "/elevate");
    location.href = target.toString();
    return;
  }
  if (!resp.ok) {
    throw new Error(data.error && data.error.message ? data.error.message : "request failed (HTTP " + resp.status + ")");
  }
  // The request's own page shows its status (and the grant, once there is one).
  location.href = "/approve/" + encodeURIComponent(data.request.id);
}

function askFrom(form) {
  const ask = {
    scope: form.elements.scope.value.trim(),
    duration_s: parseInt(form.elements.duration_m.value, 10) * 60,
    reason: form.elements.reason.value,
  };
  if (form.elements.ticket.value !== "") ask.ticket = form.elements.ticket.value;
  return ask;
}

// resumeAfterStepUp repeats the saved ask with the proof the step-up page
// put in the fragment (never sent to a server by the browser).
function resumeAfterStepUp() {
  const m = /^#stepup_proof=(.+)$/.exec(location.hash);
  if (!m) return;
  const proof = decodeURIComponent(m[1]);
  history.replaceState(null, "", location.pathname);
  const saved = sessionStorage.getItem(savedAsk);
  sessionStorage.removeItem(savedAsk);
  if (!saved) { show("The confirmed request was not found in this tab; submit it again.", false); return; }
  const ask = JSON.parse(saved);
  const form = document.getElementById("elevate-form");
  if (form) {
    form.elements.scope.value = ask.scope;
    form.elements.duration_m.value = String(ask.duration_s / 60);
    form.elements.reason.value = ask.reason;
    if (ask.ticket) form.elements.ticket.value = ask.ticket;
  }
  show("Confirmed; sending the request…", true);
  postAsk(ask, proof).catch(e => show(ceremonyError(e), false));
}

// approve runs the approval ceremony: a user-verified passkey assertion
// whose challenge is bound to this request's digest.
async function approve(el) {
  const begin = await api("POST", "/v1/approval/begin", { request: el.dataset.request });
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.get({ publicKey: options });
  const comment = document.getElementById("approve-comment");
  const res = await api("POST", "/v1/approval/finish", {
    ceremony: begin.ceremony, credential: cred.toJSON(), comment: comment ? comment.value : "",
  });
  el.hidden = true;
  show(res.grant ? "Approved: the grant is active." : "Approved: your approval is recorded; the rule needs more.", true);
  setTimeout(() => location.reload(), 400);
}

async function deny(form) {
  const reason = form.elements.reason.value;
  if (reason.trim() === "") throw new Error("A denial needs a reason.");
  await api("POST", "/v1/elevation/requests/" + encodeURIComponent(form.dataset.request) + "/deny", { reason });
  show("Denied.", true);
  setTimeout(() => location.reload(), 400);
}

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-elevate]");
  if (!el) return;
  ev.preventDefault();
  if (el.dataset.elevate === "approve") approve(el).catch(e => show(ceremonyError(e), false));
});

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (form.id === "elevate-form") {
    ev.preventDefault();
    postAsk(askFrom(form)).catch(e => show(ceremonyError(e), false));
  } else if (form.id === "deny-form") {
    ev.preventDefault();
    deny(form).catch(e => show(ceremonyError(e), false));
  }
});

resumeAfterStepUp();

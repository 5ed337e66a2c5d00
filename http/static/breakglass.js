// Airlock web UI: the break-glass page (sealed passkey + justification →
// a session token shown once) and the reviewers' post-incident review.
// Loaded after airlock.js, whose show, ceremonyError and api it uses.
"use strict";

let bgToken = "";

// useBreakGlass runs the break-glass ceremony. No cookie is sent or set:
// the session is the token, shown once on this page.
async function useBreakGlass(form) {
  const account = form.elements.account.value.trim();
  const justification = form.elements.justification.value;
  if (justification.trim() === "") throw new Error("A written justification is required.");
  const begin = await bgPost("/v1/breakglass/begin", { account, justification });
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.get({ publicKey: options });
  const res = await bgPost("/v1/breakglass/finish", { ceremony: begin.ceremony, credential: cred.toJSON() });
  bgToken = res.token;
  form.hidden = true;
  document.getElementById("bg-token").textContent = res.token;
  document.getElementById("bg-event").textContent = res.event.id;
  document.getElementById("bg-scopes").textContent = res.event.scopes.join(", ");
  document.getElementById("bg-expires").textContent = new Date(res.expires_at).toISOString();
  document.getElementById("bg-alert").textContent = res.event.alert_delivered ? "delivered" : "queued (will be retried)";
  document.getElementById("bg-result").hidden = false;
  show("Break-glass session started. The alert has been raised.", true);
}

// bgPost posts JSON without credentials (no cookie: break-glass never
// rides on a normal session) and returns the answer or throws its message.
async function bgPost(path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const resp = await fetch(path, { method: "POST", credentials: "omit", headers, body: JSON.stringify(body) });
  let data = {};
  try { data = await resp.json(); } catch (e) { /* empty body */ }
  if (!resp.ok) {
    const err = new Error(data.error && data.error.message ? data.error.message : "request failed (HTTP " + resp.status + ")");
    err.code = data.error && data.error.code;
    throw err;
  }
  return data;
}

async function endBreakGlass(el) {
  if (!bgToken) return;
  await bgPost("/v1/breakglass/end", { reason: "ended by the user" }, bgToken);
  el.hidden = true;
  show("Break-glass session ended.", true);
}

// review records a post-incident review: a passkey confirmation bound to
// the use and the notes.
async function review(form) {
  const notes = form.elements.notes.value;
  if (notes.trim() === "") throw new Error("Review notes are required.");
  const begin = await api("POST", "/v1/breakglass/review/begin", { event: form.dataset.event, notes });
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.get({ publicKey: options });
  await api("POST", "/v1/breakglass/review/finish", { ceremony: begin.ceremony, credential: cred.toJSON(), notes });
  show("Review recorded.", true);
  setTimeout(() => location.reload(), 400);
}

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (form.id === "bg-form") {
    ev.preventDefault();
    useBreakGlass(form).catch(e => show(ceremonyError(e), false));
  } else if (form.classList.contains("bg-review-form")) {
    ev.preventDefault();
    review(form).catch(e => show(ceremonyError(e), false));
  }
});

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("#bg-end");
  if (!el) return;
  ev.preventDefault();
  endBreakGlass(el).catch(e => show(ceremonyError(e), false));
});

// Airlock web UI: passkey ceremonies and admin forms over the JSON API.
"use strict";

async function api(method, path, body, retried) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (retried) init.headers["Airlock-StepUp"] = retried;
  const resp = await fetch(path, init);
  let data = {};
  try { data = await resp.json(); } catch (e) { /* empty body */ }
  // RFC 9470: the policy wants a passkey confirmation of this exact request.
  // Confirm it here and repeat the identical request once with the proof.
  if (resp.status === 401 && !retried && data.transaction && data.error && data.error.code === "insufficient_user_authentication") {
    show("Confirm this change with your passkey…", true);
    const proof = await stepUp(data.transaction);
    return api(method, path, body, proof);
  }
  if (!resp.ok) {
    const msg = data.error && data.error.message ? data.error.message : "request failed (HTTP " + resp.status + ")";
    const err = new Error(msg);
    err.code = data.error && data.error.code;
    throw err;
  }
  return data;
}

function show(text, ok) {
  const el = document.getElementById("message");
  el.textContent = text;
  el.className = ok ? "ok" : "error";
  el.hidden = false;
}

function ceremonyError(e) {
  // DOMException from the browser: the person cancelled or the authenticator refused.
  if (e && e.name === "NotAllowedError") return "The passkey prompt was cancelled or timed out. Try again.";
  if (e && e.name === "InvalidStateError") return "This authenticator already holds a passkey for this account.";
  return (e && e.message) || String(e);
}

async function login(bearer) {
  const begin = await api("POST", "/v1/login/begin", {});
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.get({ publicKey: options });
  return api("POST", "/v1/login/finish", { ceremony: begin.ceremony, credential: cred.toJSON(), bearer: !!bearer });
}

async function enrol(token) {
  const begin = await api("POST", "/v1/enrol/begin", { token });
  const options = PublicKeyCredential.parseCreationOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.create({ publicKey: options });
  return api("POST", "/v1/enrol/finish", { ceremony: begin.ceremony, credential: cred.toJSON() });
}

// stepUp confirms a step-up transaction with a passkey and returns the
// single-use proof.
async function stepUp(transaction) {
  const begin = await api("POST", "/v1/stepup/begin", { transaction });
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(begin.publicKey);
  const cred = await navigator.credentials.get({ publicKey: options });
  const res = await api("POST", "/v1/stepup/finish?transaction=" + encodeURIComponent(transaction), { ceremony: begin.ceremony, credential: cred.toJSON() });
  return res.proof;
}

function unchanged(el) {
  if (el.type === "checkbox") return el.checked === el.defaultChecked;
  if (el.tagName === "SELECT") return Array.from(el.options).every(o => o.selected === o.defaultSelected);
  return el.value === el.defaultValue;
}

function formBody(form) {
  const body = {};
  const changedOnly = form.hasAttribute("data-changed-only");
  for (const el of form.elements) {
    if (!el.name || el.hasAttribute("data-path-param")) continue;
    if (changedOnly && unchanged(el)) continue;
    // Fields with data-group="x" go into a nested object body.x, sent only
    // when one of them is filled in.
    let target = body;
    if (el.dataset.group) {
      if (el.value === "") continue;
      target = body[el.dataset.group] = body[el.dataset.group] || {};
    }
    const type = el.dataset.type;
    if (type === "bool") { target[el.name] = el.checked; continue; }
    if (el.value === "" && type !== "list") continue;
    if (type === "int") target[el.name] = parseInt(el.value, 10);
    else if (type === "list") target[el.name] = el.value.split(",").map(s => s.trim()).filter(s => s);
    else if (type === "intlist") target[el.name] = el.value.split(",").map(s => parseInt(s.trim(), 10)).filter(n => !isNaN(n));
    else if (type === "datetime") target[el.name] = new Date(el.value).toISOString();
    else target[el.name] = el.value;
  }
  return body;
}

async function submitForm(form) {
  let path = form.dataset.path;
  if (form.dataset.pathTemplate) {
    path = form.dataset.pathTemplate.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(form.elements[k].value));
  }
  const res = await api(form.dataset.method, path, formBody(form));
  if (form.dataset.result) {
    const out = document.getElementById(form.dataset.result);
    out.textContent = res.url || JSON.stringify(res, null, 2);
    out.hidden = false;
    let msg = "Enrolment link created.";
    if (res.device_compliant === false) msg += " Warning: the device is not compliant yet (" + res.noncompliance.join("; ") + "); enrolment will be refused until it is.";
    show(msg, true);
    return;
  }
  show("Saved.", true);
  setTimeout(() => location.reload(), 400);
}

async function onAction(el) {
  const action = el.dataset.action;
  try {
    if (action === "login") {
      await login(false);
      location.href = "/";
    } else if (action === "enrol") {
      await enrol(el.dataset.token);
      el.hidden = true;
      document.getElementById("enrol-done").hidden = false;
      show("Passkey created and bound to this device.", true);
    } else if (action === "logout") {
      await api("POST", "/v1/logout");
      location.href = "/login";
    } else if (action === "token") {
      const res = await login(true);
      const out = document.getElementById("token-out");
      out.textContent = res.token;
      out.hidden = false;
      show("Token created. Keep it secret; it ends with its session.", true);
    } else if (action === "stepup") {
      const proof = await stepUp(el.dataset.transaction);
      el.hidden = true;
      document.getElementById("stepup-proof").textContent = proof;
      document.getElementById("stepup-done").hidden = false;
      show("Confirmed.", true);
      // return_to was checked by the server to stay on this origin; the
      // proof travels in the fragment, which is never sent to a server.
      if (el.dataset.return) location.href = el.dataset.return + "#stepup_proof=" + encodeURIComponent(proof);
    } else if (action === "api") {
      if (el.dataset.confirm && !confirm(el.dataset.confirm)) return;
      await api(el.dataset.method, el.dataset.path, el.dataset.body ? JSON.parse(el.dataset.body) : undefined);
      show("Done.", true);
      setTimeout(() => location.reload(), 400);
    }
  } catch (e) {
    show(ceremonyError(e), false);
  }
}

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-action]");
  if (el) { ev.preventDefault(); onAction(el); }
});

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!form.dataset.method) return;
  ev.preventDefault();
  submitForm(form).catch(e => show(ceremonyError(e), false));
});

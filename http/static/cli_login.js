// Airlock CLI login page (/cli/login): a fresh passkey sign-in, then the
// person's explicit confirmation, then the one-time code goes to the CLI's
// loopback listener. Uses api(), login(), show() and ceremonyError() from
// airlock.js.
"use strict";

(function () {
  const root = document.getElementById("cli-login");
  if (!root) return;
  const target = {
    host: root.dataset.host,
    port: parseInt(root.dataset.port, 10),
    state: root.dataset.state,
    jkt: root.dataset.jkt,
  };

  function leave(url) {
    document.getElementById("cli-step-login").hidden = true;
    document.getElementById("cli-step-confirm").hidden = true;
    document.getElementById("cli-done").hidden = false;
    location.href = url;
  }

  document.getElementById("cli-signin").addEventListener("click", async () => {
    try {
      const res = await login(false);
      const u = res.session && res.session.user;
      document.getElementById("cli-user").textContent = u ? (u.display_name || u.name) + " (" + u.name + ", tier " + res.session.tier + ")" : "you";
      document.getElementById("cli-step-login").hidden = true;
      document.getElementById("cli-step-confirm").hidden = false;
      show("Signed in. Check the key and confirm.", true);
    } catch (e) {
      show(ceremonyError(e), false);
    }
  });

  document.getElementById("cli-authorize").addEventListener("click", async () => {
    try {
      const res = await api("POST", "/v1/cli/authorize", target);
      show("Authorised. Handing over to the CLI…", true);
      leave(res.redirect);
    } catch (e) {
      show(ceremonyError(e), false);
    }
  });

  for (const id of ["cli-cancel", "cli-deny"]) {
    document.getElementById(id).addEventListener("click", () => {
      show("Refused. The CLI was told.", false);
      leave(root.dataset.cancel);
    });
  }
})();

// Keyward passkeys in the browser. On the login page: offers saved passkeys in the email
// field's autofill (conditional mediation) and runs "Sign in with a passkey". On the account
// page: "Add a passkey". Without WebAuthn nothing here runs and the page stays email-only.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !window.fetch) { return; }

  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64u(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { throw new Error(j.message || "Something went wrong. Try again."); }
        return j;
      });
    });
  }
  function say(text) {
    var box = document.getElementById("passkey-status");
    if (box) { box.textContent = text; box.hidden = !text; }
  }

  // Sign-in
  var signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    var attempt = signIn.getAttribute("data-attempt");
    var pending = null;
    var run = function (mediation) {
      if (pending) { pending.abort(); }
      var controller = new AbortController();
      pending = controller;
      return post("/login/passkey/start", { attempt: attempt }).then(function (start) {
        var pk = start.options.publicKey;
        pk.challenge = fromB64u(pk.challenge);
        (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
        var req = { publicKey: pk, signal: controller.signal };
        if (mediation) { req.mediation = mediation; }
        return navigator.credentials.get(req).then(function (cred) {
          return post("/login/passkey/finish", {
            attempt: attempt, ceremony: start.ceremony,
            credential: {
              id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: {},
              response: {
                authenticatorData: toB64u(cred.response.authenticatorData),
                clientDataJSON: toB64u(cred.response.clientDataJSON),
                signature: toB64u(cred.response.signature),
                userHandle: cred.response.userHandle ? toB64u(cred.response.userHandle) : null
              }
            }
          });
        });
      }).then(function (done) { window.location.assign(done.redirect); });
    };
    signIn.hidden = false;
    signIn.addEventListener("click", function () {
      say("");
      run(null).catch(function (e) { if (e.name !== "AbortError") { say(e.name === "NotAllowedError" ? "No passkey was used. Try again, or use your email." : e.message); } });
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) { run("conditional").catch(function () { /* the person chose email instead */ }); }
      });
    }
  }

  // Registration
  var add = document.getElementById("passkey-add");
  if (add) {
    add.hidden = false;
    add.addEventListener("click", function () {
      say("");
      post("/account/passkeys/register/start", {}).then(function (start) {
        var pk = start.options.publicKey;
        pk.challenge = fromB64u(pk.challenge);
        pk.user.id = fromB64u(pk.user.id);
        (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
        return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
          return post("/account/passkeys/register/finish", {
            ceremony: start.ceremony,
            name: navigator.userAgentData && navigator.userAgentData.platform ? navigator.userAgentData.platform + " passkey" : "Passkey",
            credential: {
              id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: {},
              response: {
                attestationObject: toB64u(cred.response.attestationObject),
                clientDataJSON: toB64u(cred.response.clientDataJSON),
                transports: cred.response.getTransports ? cred.response.getTransports() : []
              }
            }
          });
        });
      }).then(function () { window.location.reload(); })
        .catch(function (e) { say(e.name === "InvalidStateError" ? "This device already has a passkey for your account." : (e.name === "NotAllowedError" ? "No passkey was created." : e.message)); });
    });
  }
})();

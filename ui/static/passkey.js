// Keyward passkeys in the browser. On the login page: offers saved passkeys in the email
// field's autofill (conditional mediation) and runs "Sign in with a passkey". On the account
// page: "Add a passkey" (started again by itself after "Confirm it's you"). On the
// confirmation page: "Confirm with a passkey". Without WebAuthn nothing here runs and the
// page stays email-only.
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
        if (r.status === 403 && j.error === "reauthentication_required") {
          // Sensitive change on an older sign-in: confirm it's you first, then come back.
          window.location.assign(j.confirm_url || "/account/confirm");
          throw new Error(j.message || "Confirm it's you first.");
        }
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

  // Registration: "Add a passkey" on the account page, "Create a passkey" on the offer
  // after an email sign-in. The first passkey comes with recovery codes, shown once.
  function showRecoveryCodes(codes) {
    var box = document.getElementById("recovery-new");
    if (!box || !codes || !codes.length) { return false; }
    var list = box.querySelector(".codes");
    codes.forEach(function (c) {
      var li = document.createElement("li"), code = document.createElement("code");
      code.textContent = c; li.appendChild(code); list.appendChild(li);
    });
    var text = "Recovery codes for " + location.origin + "\nEach code signs you in once.\n\n" + codes.join("\n") + "\n";
    box.querySelector("a[download]").href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    box.hidden = false;
    box.setAttribute("tabindex", "-1");
    box.focus();
    return true;
  }
  function register(button, after) {
    var create = function () {
      say("");
      button.disabled = true;
      post("/account/passkeys/register/start", {}).then(function (start) {
        var pk = start.options.publicKey;
        pk.challenge = fromB64u(pk.challenge);
        pk.user.id = fromB64u(pk.user.id);
        (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
        return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
          return post("/account/passkeys/register/finish", {
            ceremony: start.ceremony,
            name: defaultName(),
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
      }).then(function (done) { after(done); })
        .catch(function (e) {
          button.disabled = false;
          say(e.name === "InvalidStateError" ? "This device already has a passkey for your account." : (e.name === "NotAllowedError" ? "No passkey was created." : e.message));
        });
    };
    button.hidden = false;
    button.addEventListener("click", create);
    // Back from "Confirm it's you" (`?resume=add-passkey`): carry on with what was asked,
    // once (the address loses the marker, so a reload does not start it again).
    if (button.getAttribute("data-resume") === "yes") {
      if (window.history && history.replaceState) {
        history.replaceState(null, "", location.pathname + location.search.replace(/([?&])resume=add-passkey(&|$)/, "$1").replace(/[?&]$/, "") + location.hash);
      }
      create();
    }
  }

  // "Confirm it's you" with one of the account's passkeys, then back to where the person was.
  var confirm = document.getElementById("reauth-passkey");
  if (confirm) {
    confirm.hidden = false;
    confirm.addEventListener("click", function () {
      say("");
      confirm.disabled = true;
      post("/account/confirm/passkey/start", {}).then(function (start) {
        var pk = start.options.publicKey;
        pk.challenge = fromB64u(pk.challenge);
        (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
        return navigator.credentials.get({ publicKey: pk }).then(function (cred) {
          return post("/account/confirm/passkey/finish", {
            ceremony: start.ceremony, next: confirm.getAttribute("data-next"),
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
      }).then(function (done) { window.location.assign(done.redirect); })
        .catch(function (e) {
          confirm.disabled = false;
          say(e.name === "NotAllowedError" ? "No passkey was used. Try again, or use an emailed code." : e.message);
        });
    });
  }
  // A name people recognise: "Chrome on Android", "Safari on iPhone"… (editable later).
  function defaultName() {
    var ua = navigator.userAgent, browser = "Browser", os = "";
    if (/Edg\//.test(ua)) { browser = "Edge"; } else if (/Firefox\//.test(ua)) { browser = "Firefox"; }
    else if (/Chrom(e|ium)\//.test(ua)) { browser = "Chrome"; } else if (/Safari\//.test(ua)) { browser = "Safari"; }
    if (/iPhone|iPad/.test(ua)) { os = "iPhone"; } else if (/Android/.test(ua)) { os = "Android"; }
    else if (/Mac OS X/.test(ua)) { os = "Mac"; } else if (/Windows/.test(ua)) { os = "Windows"; }
    else if (/Linux|CrOS/.test(ua)) { os = "Linux"; }
    return os ? browser + " on " + os : browser;
  }

  var add = document.getElementById("passkey-add");
  if (add) {
    register(add, function (done) {
      if (!showRecoveryCodes(done.recovery_codes)) { window.location.reload(); }
      else { add.hidden = true; }
    });
  }
  var offer = document.getElementById("passkey-offer-create");
  if (offer) {
    register(offer, function (done) {
      offer.hidden = true;
      var next = document.getElementById("offer-continue-button");
      if (!showRecoveryCodes(done.recovery_codes) && next) { next.click(); }
    });
  }

  // The code form tells the server whether this device can make a passkey, so the
  // "sign in faster next time" offer only appears where it can work.
  var platform = document.getElementById("platform-authenticator");
  if (platform && PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable) {
    PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable().then(function (ok) { platform.value = ok ? "1" : ""; });
  }
})();

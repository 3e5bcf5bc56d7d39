// Keyward login page: while this browser waits for the sign-in to be approved on another
// device, ask the server every two seconds and continue as soon as it is. Without
// JavaScript, the "Continue" button on the page does the same.
(function () {
  "use strict";
  var form = document.getElementById("continue-form");
  if (!form || !window.fetch) { return; }
  var attempt = form.querySelector("input[name=attempt]").value;
  var url = "/login/status?attempt=" + encodeURIComponent(attempt);
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && s.approved) { form.submit(); return; }
        if (s && (s.mail_failed || s.gone)) { window.location.reload(); return; }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();

// Keyward login page: while this browser waits for the sign-in to be approved on another
// device, ask the server every two seconds and continue as soon as it is. Without
// JavaScript, the "Continue" button on the page does the same.
//
// Polling stops for good as soon as any form on the page is submitted (the code, a new
// code, "continue"): a correct code finishes the attempt while the browser is still on its
// way to the app, and a poll answered "gone" in that moment must not reload the page and
// cancel the trip. An attempt this browser finished is never treated as an error.
(function () {
  "use strict";
  var form = document.getElementById("continue-form");
  if (!form || !window.fetch) { return; }
  var attempt = form.querySelector("input[name=attempt]").value;
  var url = "/login/status?attempt=" + encodeURIComponent(attempt);
  var stopped = false;
  var timer = null;
  function stop() {
    stopped = true;
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
  }
  document.addEventListener("submit", stop, true);
  window.addEventListener("pagehide", stop);
  function later(ms) {
    if (!stopped) { timer = window.setTimeout(poll, ms); }
  }
  function poll() {
    timer = null;
    if (stopped) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (stopped) { return; }
        if (s && s.finished) { stop(); return; }
        if (s && s.approved) { stop(); form.submit(); return; }
        if (s && (s.mail_failed || s.gone)) { stop(); window.location.reload(); return; }
        later(2000);
      })
      .catch(function () { later(5000); });
  }
  later(2000);
})();

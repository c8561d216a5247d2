// Check-in and check-out by location: when the member taps the button of a form marked
// data-locate, the browser is asked for the phone's position (the only moment it is asked),
// the form's hidden fields are filled and the form is sent. A refusal, a timeout or no
// location at all sends the form anyway with the reason: the server records and flags it,
// it never turns the member away. Without JavaScript the form is sent plain (also flagged).
(function () {
  "use strict";
  var gettext = window.gettext || function (text) { return text; };
  var ERRORS = {1: "denied", 2: "unavailable", 3: "timeout"};

  function send(form, fields) {
    Object.keys(fields).forEach(function (name) {
      var input = form.querySelector("input[name=" + name + "]");
      if (input) input.value = fields[name];
    });
    form.setAttribute("data-located", "");
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-locate") || form.hasAttribute("data-located")) return;
    event.preventDefault();
    if (form.hasAttribute("data-locating")) return;  // a second tap while we wait
    form.setAttribute("data-locating", "");
    var button = form.querySelector("button[type=submit]");
    var status = form.querySelector("[data-locate-status]");
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    if (status) status.textContent = gettext("Finding your location\u2026");
    if (!navigator.geolocation) { send(form, {location_error: "unsupported"}); return; }
    navigator.geolocation.getCurrentPosition(
      function (position) {
        send(form, {
          latitude: position.coords.latitude,
          longitude: position.coords.longitude,
          accuracy: position.coords.accuracy
        });
      },
      function (error) { send(form, {location_error: ERRORS[error.code] || "unavailable"}); },
      {enableHighAccuracy: true, timeout: 10000, maximumAge: 60000}
    );
  }, true);

  // Back to a page whose form was sent: it can be used again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-locate]").forEach(function (form) {
      form.removeAttribute("data-located");
      form.removeAttribute("data-locating");
      var status = form.querySelector("[data-locate-status]");
      if (status) status.textContent = "";
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    });
  });
})();

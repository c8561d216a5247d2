// The portal as an app: registers the service worker (/sw.js), tells it the page's language
// (for its offline page), empties the app's caches when someone logs out, and offers to
// install the app where the browser can (Chromium's prompt; iPhone's Share menu in words).
(function () {
  "use strict";
  var language = document.documentElement.lang;

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(function () { /* the site works without */ });
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.active) registration.active.postMessage({ type: "page", language: language });
    });
  }

  // Logging out: nothing this member saw stays in the app's caches for the next person.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-logout") || !window.caches || form.hasAttribute("data-cleared")) return;
    event.preventDefault();
    form.setAttribute("data-cleared", "");
    var sent = false;
    var send = function () { if (!sent) { sent = true; form.submit(); } };
    setTimeout(send, 1500);  // a stuck cache never keeps anyone signed in
    caches.keys().then(function (names) {
      return Promise.all(names.map(function (name) { return caches.delete(name); }));
    }).then(send, send);
  }, true);

  // "Install the app": on the home page, once, until the member says not now.
  var hint = document.getElementById("install-hint");
  if (!hint) return;
  var standalone = window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
  var dismissed = false;
  try { dismissed = localStorage.getItem("sf-install-dismissed") === "1"; } catch (e) { /* private mode */ }
  if (standalone || dismissed) return;
  var button = document.getElementById("install-button");
  var prompt = null;
  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault();
    prompt = event;
    button.hidden = false;
    hint.hidden = false;
  });
  button.addEventListener("click", function () {
    if (!prompt) return;
    prompt.prompt();
    prompt.userChoice.then(function () { hint.hidden = true; prompt = null; });
  });
  if (/iphone|ipad|ipod/i.test(navigator.userAgent)) {
    document.getElementById("install-ios").hidden = false;
    hint.hidden = false;
  }
  window.addEventListener("appinstalled", function () { hint.hidden = true; });
  document.getElementById("install-dismiss").addEventListener("click", function () {
    hint.hidden = true;
    try { localStorage.setItem("sf-install-dismissed", "1"); } catch (e) { /* private mode */ }
  });
})();

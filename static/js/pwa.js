// The portal as an app: registers the service worker (/sw.js), tells it the page's language
// (for its offline page), keeps a check-in made with no signal and sends it when the signal
// is back, empties the app's caches when someone logs out, and offers to install the app
// where the browser can (Chromium's prompt; iPhone's Share menu in words).
(function () {
  "use strict";
  var language = document.documentElement.lang;

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(function () { /* the site works without */ });
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.active) registration.active.postMessage({ type: "page", language: language });
    });
  }

  // --- Check-ins with no signal (checkin_queue.js keeps them) ---------------------------
  var body = document.body;
  var gettext = window.gettext || function (text) { return text; };
  var offlinePage = body.hasAttribute("data-offline");
  var member = null, clock = 0;
  try {
    if (!offlinePage) {
      // Who is logged in here, and how far this phone's clock is from ours (a page that was
      // not kept is fresh: it says our time when it was made).
      if (body.dataset.member) localStorage.setItem("sf-member", body.dataset.member);
      else localStorage.removeItem("sf-member");
      localStorage.setItem("sf-clock", String(Number(body.dataset.now) * 1000 - Date.now()));
    }
    member = localStorage.getItem("sf-member");
    clock = Number(localStorage.getItem("sf-clock")) || 0;
  } catch (e) { /* private mode: check-ins need signal */ }

  function status(text, kind) {
    var region = document.getElementById("app-status");
    if (!region) return;
    // The page and the worker may both have sent it (the server checks in once): one line.
    for (var i = 0; i < region.children.length; i++) if (region.children[i].textContent === text) return;
    var line = document.createElement("p");
    line.className = "message " + (kind || "success");
    line.textContent = text;
    region.appendChild(line);
  }

  function csrf() {
    var found = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return found ? found[1] : "";
  }

  function keep(event, code) {
    if (!window.SFCheckIns || !member) return Promise.resolve(false);
    var item = { member: member, event: String(event), code: code, made_at: Date.now() + clock, csrf: csrf() };
    return window.SFCheckIns.add(item).then(function () {
      status(gettext("Saved: your check-in will be sent when you have signal."));
      if ("serviceWorker" in navigator) {
        navigator.serviceWorker.ready.then(function (registration) {
          if (registration.sync) return registration.sync.register("sf-check-ins");
        }).catch(function () { /* the next page or the online event sends it */ });
      }
      return true;
    });
  }

  function report(answer) {
    if (answer.success) status(answer.message);
    else status(gettext("A check-in kept on this phone was not accepted:") + " " + answer.error.message, "error");
  }

  function sendKept() {
    // The offline page is no one's; the member is the one this phone last saw logged in.
    if (!window.SFCheckIns || !member || (!offlinePage && !body.dataset.member)) return;
    window.SFCheckIns.send(member, csrf(), function (item, answer) { report(answer); });
  }
  sendKept();
  window.addEventListener("online", sendKept);
  if ("serviceWorker" in navigator) {
    // The worker sent them itself (Background Sync): say so on the open page.
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "check-in") report(event.data.answer);
    });
  }

  // A phone with notifications on tells us its subscription again once a day: a push service
  // may change a subscription's address, and no event says so everywhere.
  if (body.dataset.member && !offlinePage && "serviceWorker" in navigator && "PushManager" in window) {
    var today = new Date().toDateString();
    var told = null;
    try { told = localStorage.getItem("sf-push-told"); } catch (e) { /* private mode */ }
    if (told !== body.dataset.member + ":" + today) {
      navigator.serviceWorker.ready.then(function (registration) {
        return registration.pushManager.getSubscription();
      }).then(function (subscription) {
        if (!subscription) return;
        return fetch("/account/push/", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
          body: JSON.stringify({ subscription: subscription.toJSON(), refresh: true }),
        }).then(function (response) {
          if (response.ok) localStorage.setItem("sf-push-told", body.dataset.member + ":" + today);
        });
      }).catch(function () { /* tomorrow, then */ });
    }
  }

  // The venue's page, loaded before the signal went: the tap is kept instead of lost.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-venue-check-in") || navigator.onLine || !member) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    keep(form.dataset.event, form.dataset.code).then(function (kept) {
      if (kept) form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
  }, true);

  // The venue's code scanned with no signal: the worker answered with the offline page.
  var scanned = offlinePage && location.pathname.match(/^\/events\/(\d+)\/at-venue\/([^/]+)\/$/);
  if (scanned) {
    var section = document.getElementById("offline-check-in");
    var button = document.getElementById("offline-check-in-button");
    section.hidden = false;
    if (!member) {
      button.hidden = true;
      document.getElementById("offline-check-in-login").hidden = false;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      keep(scanned[1], decodeURIComponent(scanned[2])).then(function (kept) {
        if (!kept) button.disabled = false;
      });
    });
  }

  // Logging out: nothing this member saw stays in the app's caches for the next person.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-logout") || !window.caches || form.hasAttribute("data-cleared")) return;
    event.preventDefault();
    form.setAttribute("data-cleared", "");
    try { localStorage.removeItem("sf-member"); } catch (e) { /* private mode */ }
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

// The Account page's "Turn on notifications": asks the browser's permission on that tap (never
// on page load), subscribes this phone with our VAPID key and gives the subscription to the
// server. "Turn off on this phone" undoes it. A phone already subscribed sends its subscription
// again here (`refresh`), and pwa.js does once a day, so the server's copy follows the push
// service's.
(function () {
  "use strict";
  var section = document.getElementById("push");
  if (!section) return;
  var gettext = window.gettext || function (text) { return text; };
  var on = document.getElementById("push-on");
  var off = document.getElementById("push-off");
  var status = document.getElementById("push-status");

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    on.hidden = true;
    document.getElementById("push-unsupported").hidden = false;
    return;
  }
  if (Notification.permission === "denied") document.getElementById("push-blocked").hidden = false;

  function applicationServerKey() {
    var text = section.dataset.key.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(text + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
  }

  function csrf() {
    var found = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return found ? found[1] : "";
  }

  function post(body) {
    return fetch(section.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) throw new Error(answer.error ? answer.error.message : response.statusText);
        return answer;
      });
    });
  }

  function showOn(isOn) {
    on.hidden = isOn;
    off.hidden = !isOn;
  }

  var ready = navigator.serviceWorker.ready;
  ready.then(function (registration) { return registration.pushManager.getSubscription(); })
    .then(function (subscription) {
      if (!subscription) return;
      showOn(true);
      return post({ subscription: subscription.toJSON(), refresh: true });
    })
    .catch(function () { /* shown when the member taps */ });

  on.addEventListener("click", function () {
    on.disabled = true;
    status.textContent = "";
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        document.getElementById("push-blocked").hidden = false;
        return null;
      }
      return ready.then(function (registration) {
        return registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: applicationServerKey(),
        });
      }).then(function (subscription) {
        return post({ subscription: subscription.toJSON() });
      }).then(function (answer) {
        status.textContent = answer.message;
        showOn(true);
      });
    }).catch(function (error) {
      status.textContent = gettext("Notifications could not be turned on here:") + " " + error.message;
    }).then(function () { on.disabled = false; });
  });

  off.addEventListener("click", function () {
    off.disabled = true;
    ready.then(function (registration) { return registration.pushManager.getSubscription(); })
      .then(function (subscription) {
        if (!subscription) return { message: gettext("Notifications are off on this phone.") };
        return subscription.unsubscribe().then(function () {
          return post({ off: true, endpoint: subscription.endpoint });
        });
      })
      .then(function (answer) { status.textContent = answer.message; showOn(false); })
      .catch(function (error) { status.textContent = error.message; })
      .then(function () { off.disabled = false; });
  });
})();

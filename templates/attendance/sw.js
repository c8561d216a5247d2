{% autoescape off %}// Sound Fusion crew: the service worker (served from /sw.js, scope: the whole portal).
// Version {{ version }}: a release that changes a precached file changes this line, and phones
// install the new worker, which drops the old caches.
"use strict";

const VERSION = "{{ version }}";
const CACHE = "sf-app-" + VERSION;
const SETTINGS = "sf-settings";
const PRECACHE = {{ precache }};
const OFFLINE = {{ offline }};  // the offline page per language
const DEFAULT_LANGUAGE = {{ default_language }};

importScripts({{ queue_script }});
const ICON = {{ icon }};  // SFCheckIns: check-ins kept with no signal

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== CACHE && name !== SETTINGS) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// Pages: always the network (a member's pages are never kept); the offline page when it fails.
// The precached files: from the cache, so the offline page and the portal's look need no signal.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // A form sent with no signal (the venue's Check in) gets the offline page too, which
    // offers to keep the check-in on the phone.
    event.respondWith(fetch(request).catch(() => offlinePage()));
    return;
  }
  if (request.method === "GET" && PRECACHE.includes(url.pathname + url.search)) {
    event.respondWith(caches.match(request).then((kept) => kept || fetch(request)));
  }
});

// Web push: every push shows a notification (userVisibleOnly). An invitation carries Confirm
// and Decline (Chromium shows them); pressing one posts to the answer link's JSON twin, which
// answers like the page, and the notification is replaced by the answer's words. A tap on the
// notification itself opens its page (where Firefox and iPhones, with no buttons, answer).
self.addEventListener("push", (event) => {
  let message = {};
  try { message = event.data ? event.data.json() : {}; } catch (error) { message = {}; }
  const actions = (message.actions || []).map((a) => ({ action: a.action, title: a.title }));
  const answers = Object.fromEntries((message.actions || []).map((a) => [a.action, a.answer]));
  event.waitUntil(self.registration.showNotification(message.title || "Sound Fusion", {
    body: message.body || "",
    tag: message.tag || undefined,
    icon: ICON,
    badge: ICON,
    data: { url: message.url || "/", answers: answers },
    actions: actions,
  }));
});

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  const data = notification.data || {};
  notification.close();
  const answer = event.action && data.answers ? data.answers[event.action] : "";
  if (answer) {
    event.waitUntil(fetch(answer, { method: "POST", credentials: "omit" })
      .then((response) => response.json())
      .then((result) => self.registration.showNotification(notification.title, {
        body: result.message, tag: notification.tag, icon: ICON, data: { url: data.url },
      }))
      .catch(() => self.clients.openWindow(data.url || "/")));
    return;
  }
  event.waitUntil((async () => {
    const url = new URL(data.url || "/", self.location.origin).href;
    for (const client of await self.clients.matchAll({ type: "window", includeUncontrolled: true })) {
      if (client.url === url && "focus" in client) return client.focus();
    }
    return self.clients.openWindow(url);
  })());
});

// Background Sync (Chromium): check-ins kept with no signal go as soon as there is signal,
// even with the app closed. Elsewhere the next page or the "online" event sends them.
self.addEventListener("sync", (event) => {
  if (event.tag !== "sf-check-ins") return;
  event.waitUntil(self.SFCheckIns.send(null, null, async (item, answer) => {
    for (const client of await self.clients.matchAll({ type: "window" })) {
      client.postMessage({ type: "check-in", answer: answer });
    }
  }));
});

async function offlinePage() {
  const language = await readSetting("language");
  const url = OFFLINE[language] || OFFLINE[DEFAULT_LANGUAGE] || Object.values(OFFLINE)[0];
  const kept = await caches.match(url);
  return kept || new Response("No connection.", { status: 503, headers: { "Content-Type": "text/plain" } });
}

// Each page tells the worker the member's language (for the offline page) and asks it to
// fill its cache again if a logout emptied it.
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "page") {
    event.waitUntil((async () => {
      if (data.language) await writeSetting("language", data.language);
      const cache = await caches.open(CACHE);
      if (!(await cache.match(PRECACHE[PRECACHE.length - 1]))) await cache.addAll(PRECACHE);
    })());
  }
});

async function readSetting(name) {
  const kept = await caches.match("/__sf/" + name, { cacheName: SETTINGS });
  return kept ? kept.text() : "";
}

async function writeSetting(name, value) {
  const cache = await caches.open(SETTINGS);
  await cache.put("/__sf/" + name, new Response(value));
}
{% endautoescape %}

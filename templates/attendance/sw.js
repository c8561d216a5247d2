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
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => offlinePage()));
    return;
  }
  const path = new URL(request.url).pathname;
  if (PRECACHE.includes(path)) {
    event.respondWith(caches.match(request, { ignoreSearch: true }).then((kept) => kept || fetch(request)));
  }
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

// Check-ins made at the venue with no signal: kept in this phone's IndexedDB until they can be
// sent. Used by the pages (pwa.js) and by the service worker (Background Sync), so it only
// uses what both have. Each item: {id, member, event, code, made_at (ms, our clock), csrf}.
(function (scope) {
  "use strict";
  var DB = "sf-app", STORE = "check-ins";

  function open() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE, { keyPath: "id" }); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function run(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result = work(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(result && "result" in result ? result.result : undefined); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function key(item) {
    return item.member + ":" + item.event;  // one kept check-in per member and event
  }

  var queue = {
    add: function (item) {
      item.id = key(item);
      return run("readwrite", function (store) { return store.put(item); });
    },
    all: function () {
      return run("readonly", function (store) { return store.getAll(); });
    },
    remove: function (id) {
      return run("readwrite", function (store) { return store.delete(id); });
    },
    // Send each of `member`'s kept check-ins (all members' when `member` is null: the worker,
    // whose requests carry whoever is logged in; the server refuses another member's).
    // Calls report(item, answer) for each one the server answered for good.
    send: function (member, csrf, report) {
      // One sender at a time (the page's "online" event and the worker's Background Sync
      // fire together): the second finds the queue emptied by the first.
      if (scope.navigator && scope.navigator.locks) {
        return scope.navigator.locks.request("sf-check-ins", function () { return sendAll(member, csrf, report); });
      }
      return sendAll(member, csrf, report);
    },
  };

  function sendAll(member, csrf, report) {
    return queue.all().then(function (items) {
      return items.reduce(function (previous, item) {
        if (member !== null && item.member !== member) return previous;
        return previous.then(function () {
          return fetch("/events/" + item.event + "/check-in/sent-later/", {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRFToken": csrf || item.csrf },
            body: JSON.stringify({ code: item.code, made_at: item.made_at, member: item.member }),
          }).then(function (response) {
            // 2xx: checked in (or was already). 400/404: refused for good (kept by us for the
            // event manager). Anything else (logged out, CSRF, our trouble): try again later.
            if (!(response.ok || response.status === 400 || response.status === 404)) return;
            return response.json().then(function (answer) {
              return queue.remove(item.id).then(function () { if (report) report(item, answer); });
            });
          }).catch(function () { /* still no signal: kept */ });
        });
      }, Promise.resolve());
    });
  }
  scope.SFCheckIns = queue;
})(self);

// One way for a page to follow something on the server: ask every few seconds, wait longer
// after each failed request, and after too many failures or too long give up and say so on
// the page (never poll forever, never go quiet).
(function () {
  "use strict";
  var gettext = window.gettext || function (text) { return text; };
  window.sfPoll = function (options) {
    var every = options.every || 2000;
    var maxErrors = options.maxErrors || 5;
    var giveUpAfter = options.giveUpAfter || 15 * 60 * 1000;
    var started = Date.now(), errors = 0;
    function say(text) {
      var note = document.createElement("p");
      note.className = "sf-warning sf-poll-stopped";
      note.setAttribute("role", "status");
      note.textContent = text;
      options.where.parentNode.insertBefore(note, options.where);
    }
    function tick() {
      if (Date.now() - started > giveUpAfter) {
        say(gettext("This page stopped updating itself. Reload it to see the latest."));
        return;
      }
      fetch(options.url(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          errors = 0;
          if (options.update(data) !== false) setTimeout(tick, every);
        })
        .catch(function () {
          errors += 1;
          if (errors === maxErrors) {
            say(gettext("We cannot reach the server to update this page. Reload it in a moment."));
          }
          // keepTrying: a screen left on all day goes on asking, at most every maxDelay.
          if (errors < maxErrors || options.keepTrying) {
            setTimeout(tick, Math.min(every * Math.pow(2, Math.min(errors, 10)), options.maxDelay || Infinity));
          }
        });
    }
    setTimeout(tick, options.first === undefined ? every : options.first);
  };
})();

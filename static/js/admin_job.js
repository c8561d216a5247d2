// A background job's progress page: counts and each member's outcome, without reloading.
(function () {
  "use strict";
  var POLL_MS = 2000;
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("job");
    if (!box) return;
    var since = null;
    function set(id, value) {
      var el = document.getElementById(id);
      if (el) el.textContent = value;
    }
    function update(data) {
      set("job-status", data.status_display);
      ["done", "failed", "skipped", "remaining", "total"].forEach(function (key) {
        set("job-" + key, data[key]);
      });
      var bar = document.getElementById("job-bar");
      bar.max = data.total || 1;
      bar.value = data.done + data.failed + data.skipped;
      var error = document.getElementById("job-error");
      error.hidden = !data.error;
      error.textContent = data.error;
      document.getElementById("job-download").hidden = !data.file;
      var stage = document.getElementById("job-stage");
      stage.hidden = !data.stage;
      stage.textContent = data.stage;
      var waiting = document.getElementById("job-waiting");
      waiting.hidden = !data.waiting;
      waiting.textContent = data.waiting;
      var missing = false;
      data.items.forEach(function (item) {
        var row = document.getElementById("item-" + item.id);
        if (!row) { missing = true; return; }
        var badge = document.createElement("span");
        badge.className = "sf-badge sf-job-" + item.status;
        badge.textContent = item.status_display;
        var cell = row.querySelector(".status");
        cell.textContent = "";
        cell.appendChild(badge);
        row.querySelector(".outcome").textContent = item.outcome;
      });
      // The job worked out its items after this page was drawn (payouts after the balance
      // check): draw it again, once, to list them.
      if (missing && !box.dataset.reloaded) {
        box.dataset.reloaded = "1";
        window.location.reload();
      }
    }
    if (box.dataset.finished === "1") return;
    window.sfPoll({
      where: box,
      every: POLL_MS,
      first: 500,
      giveUpAfter: 60 * 60 * 1000,  // a big job's page may stay open a while
      url: function () {
        return box.dataset.progressUrl + (since ? "?since=" + encodeURIComponent(since) : "");
      },
      update: function (data) {
        update(data);
        since = data.now;
        return !data.finished;
      }
    });
  });
})();

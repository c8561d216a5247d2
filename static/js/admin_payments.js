// Payments list: rows still waiting for M-Pesa update in place when they settle.
(function () {
  "use strict";
  var POLL_MS = 5000, STOP_AFTER_MS = 10 * 60 * 1000, started = Date.now();
  function openIds() {
    return Array.prototype.map.call(document.querySelectorAll("[data-open-payment]"), function (el) {
      return el.getAttribute("data-open-payment");
    });
  }
  function poll() {
    var ids = openIds();
    if (!ids.length || Date.now() - started > STOP_AFTER_MS) return;
    var url = window.location.pathname.replace(/\/$/, "") + "/status/?ids=" + ids.join(",");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (rows) {
        Object.keys(rows).forEach(function (id) {
          var row = rows[id];
          if (row.open) return;
          var holder = document.querySelector('[data-open-payment="' + id + '"]');
          if (!holder) return;
          var tr = holder.closest("tr");
          holder.outerHTML = row.badge;  // rendered by the admin itself (escaped there)
          var receipt = tr && tr.querySelector("td.field-receipt_number");
          if (receipt && row.receipt) receipt.textContent = row.receipt;
        });
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  document.addEventListener("DOMContentLoaded", function () { setTimeout(poll, POLL_MS); });
})();

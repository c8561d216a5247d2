// Payments list: rows still waiting for M-Pesa update in place when they settle.
(function () {
  "use strict";
  var POLL_MS = 5000;
  function openIds() {
    return Array.prototype.map.call(document.querySelectorAll("[data-open-payment]"), function (el) {
      return el.getAttribute("data-open-payment");
    });
  }
  function show(rows) {
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
    return openIds().length > 0;  // nothing left waiting: stop asking
  }
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("changelist");
    if (!list || !openIds().length) return;
    window.sfPoll({
      where: list,
      every: POLL_MS,
      giveUpAfter: 10 * 60 * 1000,
      url: function () {
        return window.location.pathname.replace(/\/$/, "") + "/status/?ids=" + openIds().join(",");
      },
      update: show
    });
  });
})();

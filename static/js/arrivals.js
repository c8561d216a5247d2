// The arrivals board follows the server every few seconds (counts, per role, each member),
// without reloading the page; on a TV it runs all day. Text only: names go in with
// textContent, never as HTML.
(function () {
  "use strict";
  var main = document.getElementById("arrivals");
  if (!main) return;
  var offerUrl = main.getAttribute("data-offer-url");
  var OFFER = {late: true, cant: true, no_show: true};

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function update(data) {
    document.getElementById("arrivals-at").textContent = "updated " + data.at;
    Object.keys(data.counts).forEach(function (state) {
      var n = document.getElementById("count-" + state);
      if (n) n.textContent = data.counts[state];
    });
    var roles = document.createDocumentFragment();
    data.roles.forEach(function (r) {
      var tr = document.createElement("tr");
      cell(tr, r.role); cell(tr, r.here); cell(tr, r.crew);
      cell(tr, r.missing, r.missing ? "sf-missing" : "");
      roles.appendChild(tr);
    });
    document.getElementById("arrivals-roles").replaceChildren(roles);
    var rows = document.createDocumentFragment();
    data.rows.forEach(function (a) {
      var tr = document.createElement("tr");
      tr.className = "sf-row-" + a.state;
      tr.id = "crew-" + a.id;
      cell(tr, a.name); cell(tr, a.role); cell(tr, a.call);
      cell(tr, data.labels[a.state], "sf-state sf-" + a.state);
      cell(tr, a["in"] ? a["in"] + " \u00b7 " + a.proof : "", a["in"] && !a.proven ? "sf-unproven" : "");
      if (offerUrl) {
        var td = cell(tr, "");
        if (OFFER[a.state]) {
          var link = document.createElement("a");
          link.href = offerUrl.replace("{id}", a.id);
          link.textContent = "Offer the place to standby";
          td.appendChild(link);
        }
      }
      rows.appendChild(tr);
    });
    document.getElementById("arrivals-rows").replaceChildren(rows);
  }

  window.sfPoll({
    every: 5000,
    first: 0,
    maxErrors: 6,
    keepTrying: true,              // a venue's Wi-Fi drops; keep asking, at most every minute
    maxDelay: 60000,
    giveUpAfter: 24 * 3600 * 1000, // a TV shows it all day
    where: main.querySelector("header"),
    url: function () { return main.getAttribute("data-url"); },
    update: update
  });
})();

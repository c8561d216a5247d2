// "Pay with M-Pesa": send the prompt, then follow the payment until it settles.
//
// Following is bounded: it stops after GIVE_UP_MS, or after MAX_ERRORS failed status checks in
// a row, says so, and offers "Check again". A redirect to the login page (the session ended)
// is "please log in again", never an endless "No connection".
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form) return;
  var progress = document.getElementById("pay-progress");
  var button = document.getElementById("pay-button");
  var confirmBox = document.getElementById("pay-confirm");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var owed = Number(form.dataset.owed || 0);
  var POLL_MS = 2000, GIVE_UP_MS = 3 * 60 * 1000, MAX_ERRORS = 5;
  var following = null;  // the payment this page reports on; a new tap replaces it
  // The words, in the member's language: Django's catalogue (/jsi18n/), loaded before this.
  var gettext = window.gettext || function (text) { return text; };
  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_match, name) { return values[name]; });
  }

  function show(text, kind, options) {
    options = options || {};
    progress.hidden = false;
    progress.className = "message " + (kind || "");
    progress.textContent = "";
    if (options.busy) {
      var spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      progress.appendChild(spinner);
    }
    progress.appendChild(document.createTextNode(text));
    if (options.link) {
      progress.appendChild(document.createTextNode(" "));
      var a = document.createElement("a");
      a.href = options.link.href;
      a.textContent = options.link.text;
      progress.appendChild(a);
    }
    if (options.retry) {
      var again = document.createElement("button");
      again.type = "button";
      again.className = "btn secondary";
      again.id = "pay-check-again";
      again.textContent = gettext("Check again");
      again.addEventListener("click", options.retry);
      var row = document.createElement("div");
      row.className = "actions";
      row.appendChild(again);
      progress.appendChild(row);
    }
    // Where the member is looking: below a list of events the message would be off-screen
    // while the button only goes pale.
    var box = progress.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) {
      progress.scrollIntoView({ block: "center", behavior: "smooth" });
    }
  }

  function loggedOut() {
    var login = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
    show(gettext("Your session has ended. Please log in again to see how the payment went."), "warning",
      { link: { href: login, text: gettext("Log in") } });
    button.disabled = false;
  }

  // Resolves with the JSON body, or rejects with {loggedOut} / {status} / a network error.
  function getJSON(response) {
    if (response.redirected && response.url.indexOf("/accounts/login/") !== -1) {
      return Promise.reject({ loggedOut: true });
    }
    var type = response.headers.get("Content-Type") || "";
    if (type.indexOf("application/json") === -1) {
      return Promise.reject({ status: response.status });
    }
    return response.json().then(function (data) {
      if (response.status === 401) return Promise.reject({ loggedOut: true });
      return { ok: response.ok, status: response.status, data: data };
    });
  }

  function newKey() {
    // One key per tap of the button, so a retried request never prompts twice.
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function stopped(paymentId, lateOnly, why) {
    show(why, "warning", {
      retry: function () { follow(paymentId, Date.now(), lateOnly, 0); }
    });
    button.disabled = false;
  }

  // lateOnly: Daraja never answered the push, so the payment is already "failed"; only a
  // late payment (matched when its callback arrives) can still change that.
  function follow(paymentId, started, lateOnly, errors) {
    following = paymentId;
    if (!lateOnly) show(gettext("Check your phone and enter your M-Pesa PIN. Waiting for M-Pesa (this can take up to a minute)..."), "warning", { busy: true });
    fetch(form.dataset.statusUrl + "?payment_id=" + encodeURIComponent(paymentId), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(getJSON)
      .then(function (answer) {
        if (paymentId !== following) return;
        if (!answer.ok) return Promise.reject({ status: answer.status });
        var data = answer.data;
        var code = data.receipt_number || gettext("to follow");
        if (data.status === "completed" && data.needs_review) {
          // Money moved, but the amount, the phone or the match needs a person's look.
          show(fill(gettext("M-Pesa received your payment (code %(code)s). Our team checks it before your balance is updated."), { code: code }), "warning");
          button.disabled = false;
        } else if (data.status === "completed") {
          show(fill(gettext("Paid, thank you. M-Pesa code %(code)s."), { code: code }), "success");
          button.disabled = false;
          // Reload for the new balance and history; the thank-you stays on the new page.
          setTimeout(function () {
            window.location.assign(form.dataset.homeUrl + "?paid=" + encodeURIComponent(paymentId));
          }, 2500);
        } else if (!lateOnly && (data.status === "failed" || data.status === "cancelled")) {
          show(fill(gettext("Not paid: %(why)s You can try again."), { why: data.explanation || data.status_display }), "error");
          button.disabled = false;
        } else if (Date.now() - started > GIVE_UP_MS) {
          stopped(paymentId, lateOnly, lateOnly
            ? gettext("No payment arrived from M-Pesa. If money left your account, it will show here once M-Pesa confirms it.")
            : gettext("M-Pesa has not answered yet. If you paid, your balance updates when it does."));
        } else {
          setTimeout(function () { follow(paymentId, started, lateOnly, 0); }, POLL_MS);
        }
      })
      .catch(function (problem) {
        if (paymentId !== following) return;
        if (problem && problem.loggedOut) return loggedOut();
        errors += 1;
        if (errors >= MAX_ERRORS || Date.now() - started > GIVE_UP_MS) {
          stopped(paymentId, lateOnly,
            gettext("We cannot reach Sound Fusion to check the payment right now. Your payment is not lost: check again in a moment."));
        } else {
          setTimeout(function () { follow(paymentId, started, lateOnly, errors); }, POLL_MS);
        }
      });
  }

  function send() {
    following = null;
    button.disabled = true;
    show(gettext("Sending the payment prompt to your phone..."), "", { busy: true });
    var body = { amount: Number(form.amount.value), phone: form.phone.value, purpose: "Balance payment" };
    fetch(form.dataset.requestUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json", Accept: "application/json",
        "X-CSRFToken": csrf, "Idempotency-Key": newKey()
      },
      body: JSON.stringify(body)
    })
      .then(getJSON)
      .then(function (answer) {
        var data = answer.data;
        if (!data.success) {
          var noAnswer = data.error && data.error.code === "daraja_no_answer" && data.payment_id;
          show(data.error ? data.error.message : gettext("Something went wrong."), noAnswer ? "warning" : "error");
          button.disabled = false;
          if (noAnswer) follow(data.payment_id, Date.now(), true, 0);
          return;
        }
        follow(data.payment_id, Date.now(), false, 0);
      })
      .catch(function (problem) {
        if (problem && problem.loggedOut) return loggedOut();
        show(gettext("No connection to Sound Fusion. Nothing was sent; check your network and try again."), "error");
        button.disabled = false;
      });
  }

  function kes(n) { return "KES " + n.toLocaleString("en-KE"); }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var amount = Number(form.amount.value);
    if (owed && amount > owed) {
      // Paying more than is owed is allowed (it becomes credit), but never by a slip of a finger.
      document.getElementById("pay-confirm-text").textContent = fill(
        gettext("You owe %(owed)s. Pay %(amount)s anyway? The %(over)s over becomes credit."),
        { owed: kes(owed), amount: kes(amount), over: kes(amount - owed) });
      document.getElementById("pay-confirm-yes").textContent = fill(gettext("Pay %(amount)s"), { amount: kes(amount) });
      confirmBox.hidden = false;
      document.getElementById("pay-confirm-yes").focus();
      return;
    }
    send();
  });
  document.getElementById("pay-confirm-yes").addEventListener("click", function () {
    confirmBox.hidden = true;
    send();
  });
  document.getElementById("pay-confirm-no").addEventListener("click", function () {
    confirmBox.hidden = true;
    form.amount.focus();
  });
})();

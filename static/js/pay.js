// "Pay with M-Pesa": send the prompt, then follow the payment until it settles.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form) return;
  var progress = document.getElementById("pay-progress");
  var button = document.getElementById("pay-button");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var POLL_MS = 2000, GIVE_UP_MS = 3 * 60 * 1000;
  var following = null;  // the payment this page reports on; a new tap replaces it

  function show(text, kind) {
    progress.hidden = false;
    progress.className = "message " + (kind || "");
    progress.textContent = text;
  }

  function newKey() {
    // One key per tap of the button, so a retried request never prompts twice.
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  // lateOnly: Daraja never answered the push, so the payment is already "failed"; only a
  // late payment (matched when its callback arrives) can still change that.
  function follow(paymentId, started, lateOnly) {
    following = paymentId;
    fetch(form.dataset.statusUrl + "?payment_id=" + encodeURIComponent(paymentId), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (paymentId !== following) return;
        var code = data.receipt_number || "to follow";
        if (data.status === "completed" && data.needs_review) {
          // Money moved, but the amount, the phone or the match needs a person's look.
          show("M-Pesa received your payment (code " + code +
            "). Our team checks it before your balance is updated.", "warning");
          button.disabled = false;
        } else if (data.status === "completed") {
          show("Paid, thank you. M-Pesa code " + code + ".", "success");
          button.disabled = false;
          setTimeout(function () { window.location.reload(); }, 2500);
        } else if (!lateOnly && (data.status === "failed" || data.status === "cancelled")) {
          show("Not paid: " + (data.result_description || data.status_display), "error");
          button.disabled = false;
        } else if (Date.now() - started > GIVE_UP_MS) {
          show(lateOnly ? "No payment arrived from M-Pesa. You can try again."
            : "Still waiting for M-Pesa. We will update your balance when it answers.", "warning");
          button.disabled = false;
        } else {
          setTimeout(function () { follow(paymentId, started, lateOnly); }, POLL_MS);
        }
      })
      .catch(function () {
        if (paymentId !== following) return;
        setTimeout(function () { follow(paymentId, started, lateOnly); }, POLL_MS);
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    following = null;
    button.disabled = true;
    show("Sending the payment prompt to your phone...", "");
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
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (!data.success) {
          var noAnswer = data.error && data.error.code === "daraja_no_answer" && data.payment_id;
          show(data.error ? data.error.message : "Something went wrong.", noAnswer ? "warning" : "error");
          button.disabled = false;
          if (noAnswer) follow(data.payment_id, Date.now(), true);
          return;
        }
        show("Check your phone and enter your M-Pesa PIN. Waiting for M-Pesa...", "warning");
        follow(data.payment_id, Date.now());
      })
      .catch(function () {
        show("No connection. Check your network and try again.", "error");
        button.disabled = false;
      });
  });
})();

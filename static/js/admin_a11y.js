// Autocomplete boxes (select2, which the admin builds next to a hidden <select>) get the
// select's name, so a screen reader says what each one is for (axe: "aria-input-field-name",
// "label"). Boxes added later (a new inline row) are named as they appear.
(function () {
  "use strict";
  function nameOf(select) {
    if (select.getAttribute("aria-label")) return select.getAttribute("aria-label");
    var label = select.id && document.querySelector('label[for="' + select.id + '"]');
    return label ? label.textContent.replace(/:\s*$/, "").trim() : "";
  }
  function label(root) {
    root.querySelectorAll("select.admin-autocomplete").forEach(function (select) {
      var box = select.nextElementSibling;
      if (!box || !box.classList.contains("select2")) return;
      var name = nameOf(select);
      if (!name) return;
      var parts = '[role="combobox"], .select2-search__field, .select2-selection__rendered';
      box.querySelectorAll(parts).forEach(function (el) {
        el.setAttribute("aria-label", name);
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    label(document);
    new MutationObserver(function () { label(document); })
      .observe(document.body, { childList: true, subtree: true });
  });
})();

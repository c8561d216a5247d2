// The payslip's Print button (a file, not an inline handler: the Content-Security-Policy
// allows scripts from our own static files only).
document.addEventListener("click", function (event) {
  if (event.target.closest("[data-print]")) window.print();
});

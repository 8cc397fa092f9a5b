// Liaison dashboard: the only script. It asks before a destructive button is pressed and
// stops a form being sent twice; every page works without it.
"use strict";
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  var form = event.target;
  if (form.method && form.method.toLowerCase() === "post") {
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    if (button) { button.disabled = true; }
  }
});

// The console's only script: reload a page that asks for it (data-refresh, in seconds),
// e.g. the log page while a verification runs. No data leaves the page.
"use strict";
(function () {
  var seconds = Number(document.body.getAttribute("data-refresh"));
  if (seconds > 0) {
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();

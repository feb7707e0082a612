// Dates in the visitor's own time zone, and an upload's size check and status. Pages work without it.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll(".local[data-utc]").forEach(function (node) {
    var moment = new Date(node.getAttribute("data-utc"));
    node.textContent = "(yours, " + zone + ": " + moment.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short"}) + ")";
  });
  document.querySelectorAll(".visitor-zone").forEach(function (node) { node.textContent = "in yours (" + zone + ")"; });
  document.querySelectorAll("form.upload").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var input = form.querySelector("input[type=file]");
      var status = form.querySelector(".upload-status");
      var limit = parseInt(form.getAttribute("data-max-bytes"), 10);
      if (input.files.length && input.files[0].size > limit) {
        event.preventDefault();
        status.textContent = "This file is " + input.files[0].size + " bytes; the limit is " + limit + " bytes.";
        return;
      }
      // The form posts straight to the object store, which redirects back here with the receipt to come.
      status.textContent = "Uploading " + input.files[0].name + " (" + input.files[0].size + " bytes)…";
      form.querySelector("button").disabled = true;
    });
  });
})();

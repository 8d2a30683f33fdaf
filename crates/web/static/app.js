// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // "Show password": reveal the fields it controls (space-separated ids).
  document.querySelectorAll("input[data-reveal]").forEach(function (box) {
    var fields = box.getAttribute("data-reveal").split(" ").map(function (id) {
      return document.getElementById(id);
    });
    var sync = function () {
      fields.forEach(function (f) { if (f) f.type = box.checked ? "text" : "password"; });
    };
    box.addEventListener("change", sync);
    sync();
  });
  // Confirmation before destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
  // Times are rendered in UTC; add the browser's own zone next to them.
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) t.title = d.toLocaleString();
  });
  // Rights matrix: Check › All / View / Create / Update / Delete, and Uncheck all.
  document.querySelectorAll("[data-check]").forEach(function (btn) {
    btn.addEventListener("click", function (e) {
      e.preventDefault();
      var what = btn.getAttribute("data-check");
      document.querySelectorAll("input[name=perm]").forEach(function (box) {
        if (what === "none") box.checked = false;
        else if (what === "all" || box.getAttribute("data-action") === what) box.checked = true;
      });
      var menu = btn.closest("details");
      if (menu) menu.open = false;
    });
  });
})();

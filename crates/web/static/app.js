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
  // Times are rendered in UTC; show them in the browser's zone with how long ago, the UTC
  // time staying on hover (title) and in exports.
  var ago = function (ms) {
    var s = Math.round(ms / 1000), future = s < 0, a = Math.abs(s), n, unit;
    if (a < 45) return future ? "in a few seconds" : "just now";
    if (a < 3600) { n = Math.round(a / 60); unit = "min"; }
    else if (a < 86400) { n = Math.round(a / 3600); unit = n === 1 ? "hour" : "hours"; }
    else if (a < 86400 * 45) { n = Math.round(a / 86400); unit = n === 1 ? "day" : "days"; }
    else return "";
    return future ? "in " + n + " " + unit : n + " " + unit + " ago";
  };
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var raw = t.getAttribute("datetime");
    var d = new Date(raw);
    if (isNaN(d) || raw.length < 11) return;
    var local = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
    t.title = "UTC: " + d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
    t.textContent = local;
    var rel = ago(Date.now() - d.getTime());
    if (rel) {
      var span = document.createElement("span");
      span.className = "ago";
      span.textContent = rel;
      t.appendChild(span);
    }
  });
  // Rights matrix: Check › All / a column, Uncheck all, and the toggles of each row and column.
  // Update, Create and Delete include View (the server adds it too): ticking one ticks View,
  // unticking View unticks them.
  var perms = function () { return Array.prototype.slice.call(document.querySelectorAll("input[name=perm]:not([disabled])")); };
  var implies = function (box) {
    var row = box.closest("tr");
    if (!row) return;
    var view = row.querySelector("input[name=perm][data-action=View]");
    var action = box.getAttribute("data-action");
    if (box.checked && view && /^(Create|Update|Delete)$/.test(action)) view.checked = true;
    if (!box.checked && action === "View") {
      row.querySelectorAll("input[name=perm]").forEach(function (b) {
        if (/^(Create|Update|Delete)$/.test(b.getAttribute("data-action"))) b.checked = false;
      });
    }
  };
  perms().forEach(function (box) { box.addEventListener("change", function () { implies(box); }); });
  var toggle = function (boxes) {
    var on = !boxes.every(function (b) { return b.checked; });
    boxes.forEach(function (b) { b.checked = on; implies(b); });
  };
  document.querySelectorAll("[data-check]").forEach(function (btn) {
    btn.addEventListener("click", function (e) {
      e.preventDefault();
      var what = btn.getAttribute("data-check");
      perms().forEach(function (box) {
        if (what === "none") box.checked = false;
        else if (what === "all" || box.getAttribute("data-action") === what) { box.checked = true; implies(box); }
      });
      var menu = btn.closest("details");
      if (menu) { menu.open = false; menu.querySelector("summary").focus(); }
    });
  });
  document.querySelectorAll("[data-toggle-row]").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      toggle(Array.prototype.slice.call(btn.closest("tr").querySelectorAll("input[name=perm]:not([disabled])")));
    });
  });
  document.querySelectorAll("[data-toggle-column]").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var a = btn.getAttribute("data-toggle-column");
      toggle(perms().filter(function (b) { return b.getAttribute("data-action") === a; }));
    });
  });
  // After a failed submit the error summary takes the focus; its links focus their field.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
    summary.querySelectorAll("a[href^='#']").forEach(function (a) {
      a.addEventListener("click", function (e) {
        var target = document.getElementById(a.getAttribute("href").slice(1));
        if (!target) return;
        e.preventDefault();
        target.focus();
        target.scrollIntoView({ block: "center" });
      });
    });
  }
  // Menus (details) close on Escape, and the focus goes back to their button.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var open = document.querySelectorAll("details[open]");
    if (!open.length) return;
    var inner = open[open.length - 1];
    var menu = document.activeElement && document.activeElement.closest ? document.activeElement.closest("details[open]") : null;
    var which = menu || inner;
    which.open = false;
    var s = which.querySelector("summary");
    if (s) s.focus();
  });
  // Groups picker: a filter box over the checkboxes, and the chosen ones as removable chips.
  document.querySelectorAll("[data-picker]").forEach(function (picker) {
    var tools = picker.querySelector("[data-picker-tools]");
    var filter = picker.querySelector("[data-picker-filter]");
    var chips = picker.querySelector("[data-picker-chips]");
    var boxes = Array.prototype.slice.call(picker.querySelectorAll("input[type=checkbox]"));
    var caption = function (b) { return b.parentNode.textContent.trim(); };
    var draw = function () {
      chips.textContent = "";
      boxes.filter(function (b) { return b.checked; }).forEach(function (b) {
        var li = document.createElement("li");
        var btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = caption(b) + " ×";
        btn.setAttribute("aria-label", "Remove " + caption(b));
        btn.addEventListener("click", function () { b.checked = false; draw(); b.focus(); });
        li.appendChild(btn);
        chips.appendChild(li);
      });
      chips.hidden = !chips.children.length;
    };
    boxes.forEach(function (b) { b.addEventListener("change", draw); });
    filter.addEventListener("input", function () {
      var q = filter.value.trim().toLowerCase();
      boxes.forEach(function (b) { b.parentNode.hidden = q !== "" && caption(b).toLowerCase().indexOf(q) < 0; });
    });
    // Enter in the filter box filters; it doesn't submit the form.
    filter.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });
    tools.hidden = false;
    draw();
  });
})();
// Passkeys (WebAuthn): a form with data-webauthn="create" or "get" runs the browser's passkey
// prompt with the options the server put in data-options, puts the answer in its hidden
// "credential" field, and submits. The server checks everything; this only carries bytes.
(function () {
  "use strict";
  var toBuffer = function (s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  };
  var toText = function (buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var create = form.getAttribute("data-webauthn") === "create";
    var field = form.querySelector("input[name=credential]");
    var problem = form.querySelector("[data-webauthn-error]");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!window.PublicKeyCredential) {
        problem.textContent = "This browser does not support passkeys.";
        problem.hidden = false;
        return;
      }
      var options = JSON.parse(form.getAttribute("data-options")).publicKey;
      // A passkey belongs to the Back Office's host name (BACKOFFICE_PUBLIC_URL): opened under
      // another name (e.g. 127.0.0.1 for localhost) the browser would refuse with a bare error.
      var rp = create ? options.rp.id : options.rpId, here = window.location.hostname;
      if (rp && here !== rp && here.slice(-rp.length - 1) !== "." + rp) {
        problem.textContent = "Passkeys work only where the address shows " + rp +
          ": open the Back Office at that address and try again.";
        problem.hidden = false;
        return;
      }
      options.challenge = toBuffer(options.challenge);
      if (options.user) options.user.id = toBuffer(options.user.id);
      (options.excludeCredentials || []).concat(options.allowCredentials || []).forEach(function (c) {
        c.id = toBuffer(c.id);
      });
      var asked = create
        ? navigator.credentials.create({ publicKey: options })
        : navigator.credentials.get({ publicKey: options });
      asked.then(function (cred) {
        var r = cred.response;
        var answer = { id: cred.id, rawId: toText(cred.rawId), type: cred.type, extensions: {},
          response: { clientDataJSON: toText(r.clientDataJSON) } };
        if (create) {
          answer.response.attestationObject = toText(r.attestationObject);
        } else {
          answer.response.authenticatorData = toText(r.authenticatorData);
          answer.response.signature = toText(r.signature);
          answer.response.userHandle = r.userHandle ? toText(r.userHandle) : null;
        }
        field.value = JSON.stringify(answer);
        form.submit();
      }).catch(function (err) {
        problem.textContent = "The passkey prompt was closed or failed (" + err.name + "). Try again.";
        problem.hidden = false;
      });
    });
  });
})();

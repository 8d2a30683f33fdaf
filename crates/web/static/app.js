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

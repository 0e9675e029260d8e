// Passkeys: the two steps of a WebAuthn ceremony for the forms marked data-passkey
// ("create" adds a passkey, "get" signs in with one). The form asks the server for the options
// (data-options, a POST with the page's CSRF token), hands them to the browser, puts the
// browser's answer in the form's hidden fields and submits the form as usual, so the server
// answers with a page like every other form. Without this script (or without WebAuthn) the
// passkey forms stay hidden and the rest of the page works as before.
"use strict";

(function () {
  // base64url (no padding) <-> ArrayBuffer: WebAuthn speaks bytes, JSON speaks text.
  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); }).buffer;
  }
  function toText(buffer) {
    var s = "";
    new Uint8Array(buffer).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function created(c) {
    return {
      id: c.id,
      rawId: toText(c.rawId),
      type: c.type,
      response: {
        attestationObject: toText(c.response.attestationObject),
        clientDataJSON: toText(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : null
      },
      extensions: {}
    };
  }
  function asserted(a) {
    var r = a.response;
    return {
      id: a.id,
      rawId: toText(a.rawId),
      type: a.type,
      response: {
        authenticatorData: toText(r.authenticatorData),
        clientDataJSON: toText(r.clientDataJSON),
        signature: toText(r.signature),
        userHandle: r.userHandle ? toText(r.userHandle) : null
      },
      extensions: {}
    };
  }

  function ceremony(kind, options) {
    var pk = options.publicKey;
    pk.challenge = toBytes(pk.challenge);
    if (kind === "create") {
      pk.user.id = toBytes(pk.user.id);
      (pk.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
      return navigator.credentials.create({ publicKey: pk }).then(created);
    }
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return navigator.credentials.get({ publicKey: pk }).then(asserted);
  }

  function say(form, message) {
    var box = form.querySelector("[data-passkey-error]");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function failure(error) {
    if (error && error.name === "NotAllowedError") {
      return "No passkey was used: the request was cancelled or timed out. Try again when you are ready.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This device already holds a passkey for your account.";
    }
    return "Your browser could not use a passkey here. Try again, or use your password.";
  }

  function start(form, event) {
    if (form.dataset.answered === "1") {
      return; // the answer is in: the browser posts the form
    }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var kind = form.dataset.passkey;
    var body = new URLSearchParams();
    body.set("csrf_token", form.querySelector("input[name=csrf_token]").value);
    fetch(form.dataset.options, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) {
            if (data.confirm) {
              window.location.assign(data.confirm);
            }
            throw { told: data.error || "Please try again." };
          }
          return data;
        }, function () {
          throw { told: "The site did not answer as expected. Please reload the page and try again." };
        });
      })
      .then(function (options) {
        form.querySelector("input[name=ceremony]").value = options.ceremony;
        return ceremony(kind, options);
      })
      .then(function (answer) {
        form.querySelector("input[name=credential]").value = JSON.stringify(answer);
        var remember = form.dataset.remember && document.getElementById(form.dataset.remember);
        if (remember) {
          form.querySelector("input[name=remember]").value = remember.checked ? "true" : "false";
        }
        form.dataset.answered = "1";
        form.submit();
      })
      .catch(function (error) {
        say(form, error && error.told ? error.told : failure(error));
        button.disabled = false;
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var supported = !!(window.PublicKeyCredential && navigator.credentials);
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      if (!supported) {
        if (!form.hidden) {
          say(form, "This browser cannot use passkeys.");
          form.querySelector("button[type=submit]").disabled = true;
        }
        return;
      }
      form.hidden = false;
      form.addEventListener("submit", function (event) { start(form, event); });
    });
  });
})();

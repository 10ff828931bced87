/*
 * Passkey buttons on the interaction pages. Plain JavaScript, no build step; served from the
 * provider's own origin (interactions/assets.ts) after @simplewebauthn/browser's UMD bundle,
 * which defines window.SimpleWebAuthnBrowser. The Content-Security-Policy allows scripts and
 * fetches from 'self' only, so nothing here is inline.
 *
 * Markup (interactions/views/passkey.ts):
 *   <form method="post" action="SUBMIT_URL">
 *     <input type="hidden" name="csrf" value="...">
 *     <input type="hidden" name="response">
 *     <button type="button" data-passkey="register|authenticate" data-options-url="..." data-csrf="..." disabled>
 *     <p data-passkey-status hidden></p>
 *   </form>
 *
 * A click POSTs the CSRF token to the options URL, hands the options to the browser
 * (navigator.credentials.create / get), writes the JSON result into the form's `response`
 * field and submits the form: the server answers as to any form, with a 303 or a page.
 */
(function () {
  'use strict';

  var MESSAGES = {
    unsupported: 'This browser cannot use passkeys. Use another sign-in method, or another browser.',
    cancelled: 'The passkey request was cancelled or timed out. Try again when you are ready, or use another method.',
    registered: 'This passkey is already registered for your account.',
    failed: 'The passkey could not be used. Try again, or use another method.',
    network: 'The server could not be reached. Check your connection and try again.',
  };

  function showStatus(el, text) {
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    el.setAttribute('role', 'alert');
  }

  /** Words for a failed browser ceremony (the library's codes, then the DOMException names). */
  function messageFor(err, ceremony) {
    var code = err && err.code;
    var name = err && err.name;
    if (code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED' || (ceremony === 'register' && name === 'InvalidStateError')) return MESSAGES.registered;
    if (code === 'ERROR_CEREMONY_ABORTED' || name === 'NotAllowedError' || name === 'AbortError') return MESSAGES.cancelled;
    if (name === 'NotSupportedError' || name === 'SecurityError') return MESSAGES.unsupported;
    return MESSAGES.failed;
  }

  function fetchOptions(url, csrf) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'csrf=' + encodeURIComponent(csrf),
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok || !body || typeof body.challenge !== 'string') {
          var e = new Error('options refused');
          e.userMessage = body && typeof body.message === 'string' ? body.message : MESSAGES.failed;
          throw e;
        }
        return body;
      });
    }, function () {
      var e = new Error('network');
      e.userMessage = MESSAGES.network;
      throw e;
    });
  }

  function wire(button) {
    var form = button.form;
    var status = form && form.querySelector('[data-passkey-status]');
    var field = form && form.elements.namedItem('response');
    var lib = window.SimpleWebAuthnBrowser;
    var ceremony = button.getAttribute('data-passkey');
    if (!form || !field || (ceremony !== 'register' && ceremony !== 'authenticate')) return;
    if (!lib || !lib.browserSupportsWebAuthn()) {
      button.disabled = true;
      showStatus(status, MESSAGES.unsupported);
      return;
    }
    var submitUrl = button.getAttribute('data-submit-url');
    if (submitUrl) form.action = submitUrl;
    button.disabled = false;
    button.addEventListener('click', function () {
      if (button.disabled) return;
      button.disabled = true;
      if (status) status.hidden = true;
      fetchOptions(button.getAttribute('data-options-url'), button.getAttribute('data-csrf'))
        .then(function (optionsJSON) {
          return ceremony === 'register'
            ? lib.startRegistration({ optionsJSON: optionsJSON })
            : lib.startAuthentication({ optionsJSON: optionsJSON });
        })
        .then(function (result) {
          field.value = JSON.stringify(result);
          form.submit();
        })
        .catch(function (err) {
          button.disabled = false;
          showStatus(status, err && err.userMessage ? err.userMessage : messageFor(err, ceremony));
        });
    });
  }

  function init() {
    var buttons = document.querySelectorAll('button[data-passkey]');
    for (var i = 0; i < buttons.length; i += 1) wire(buttons[i]);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
}());

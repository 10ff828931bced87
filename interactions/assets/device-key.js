/*
 * The device key of this browser (interactions/device-key.ts). Plain JavaScript, no build
 * step; served from the provider's own origin (interactions/assets.ts), so the
 * Content-Security-Policy stays `script-src 'self'`.
 *
 * Markup (interactions/views/login.ts), inside the password form:
 *   <input type="hidden" name="device_proof" value="" data-device-nonce="..." data-device-message="...">
 *
 * On page load: open IndexedDB, load this origin's ECDSA P-256 key pair or create one whose
 * private key is not extractable (WebCrypto generateKey with extractable = false: the page
 * can sign with it, nobody can read it out, not even this script), sign the server's message
 * and write { nonce, jwk, sig } into the field, before the user has finished typing. The key
 * pair is stored as CryptoKey objects (IndexedDB keeps them by structured clone), never as
 * bytes. Without WebCrypto or IndexedDB (an insecure origin, some private windows), or on any
 * error, the field stays empty and the login works as it did without this script.
 */
(function () {
  'use strict';

  var DB_NAME = 'adaptive-idp';
  var STORE = 'device-key';
  var RECORD = 'v1';
  /** Longest a submit waits for a signature still being made (first visit: a key to generate). */
  var SUBMIT_WAIT_MS = 1500;
  /**
   * How long after the form went out a second submit (a double click) is held back: it would
   * post the same single-use nonce again, which the server refuses as a replay, and the
   * browser would show the answer to that second post, scored as a copied cookie. After
   * this, a submit goes out again (the first navigation may have been stopped).
   */
  var RESUBMIT_MS = 5000;

  var fields = Array.prototype.slice.call(document.querySelectorAll('input[data-device-message]'));
  if (fields.length === 0) return;
  var subtle = window.isSecureContext && window.crypto && window.crypto.subtle;
  if (!subtle || !window.indexedDB || typeof window.TextEncoder !== 'function') return;

  function request(r) {
    return new Promise(function (resolve, reject) {
      r.onsuccess = function () { resolve(r.result); };
      r.onerror = function () { reject(r.error); };
    });
  }

  function openDb() {
    return new Promise(function (resolve, reject) {
      var r = window.indexedDB.open(DB_NAME, 1);
      r.onupgradeneeded = function () { r.result.createObjectStore(STORE); };
      r.onsuccess = function () { resolve(r.result); };
      r.onerror = function () { reject(r.error); };
      r.onblocked = function () { reject(new Error('blocked')); };
    });
  }

  function usable(pair) {
    return Boolean(pair && pair.privateKey && pair.publicKey && pair.privateKey.type === 'private'
      && pair.privateKey.extractable === false && pair.privateKey.algorithm && pair.privateKey.algorithm.namedCurve === 'P-256');
  }

  /**
   * Stores `pair` unless another tab stored one first (read and write in one readwrite
   * transaction, which IndexedDB runs one at a time): every tab ends up with the same key.
   */
  function keep(db, pair) {
    return new Promise(function (resolve, reject) {
      var tx = db.transaction(STORE, 'readwrite');
      var store = tx.objectStore(STORE);
      var kept = pair;
      var existing = store.get(RECORD);
      existing.onsuccess = function () {
        if (usable(existing.result)) kept = existing.result;
        else store.put(pair, RECORD);
      };
      tx.oncomplete = function () { resolve(kept); };
      tx.onerror = function () { reject(tx.error); };
      tx.onabort = function () { reject(tx.error); };
    });
  }

  function keyPair() {
    return openDb().then(function (db) {
      return request(db.transaction(STORE, 'readonly').objectStore(STORE).get(RECORD)).then(function (pair) {
        if (usable(pair)) return pair;
        // extractable = false: applies to the private key (a public key is always exportable).
        return subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']).then(function (fresh) {
          return keep(db, fresh);
        });
      }).finally(function () { db.close(); });
    });
  }

  function base64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var s = '';
    for (var i = 0; i < bytes.length; i += 1) s += String.fromCharCode(bytes[i]);
    return window.btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function prove(field, pair) {
    var message = new window.TextEncoder().encode(field.getAttribute('data-device-message'));
    return Promise.all([
      subtle.exportKey('jwk', pair.publicKey),
      // WebCrypto returns ECDSA signatures as r || s (IEEE P1363), 64 bytes for P-256.
      subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, message),
    ]).then(function (r) {
      var jwk = r[0];
      field.value = JSON.stringify({
        nonce: field.getAttribute('data-device-nonce'),
        jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
        sig: base64url(r[1]),
      });
    });
  }

  var settled = false;
  var proofs;
  try {
    proofs = keyPair().then(function (pair) {
      return Promise.all(fields.map(function (f) { return prove(f, pair); }));
    });
  } catch (e) {
    proofs = Promise.reject(e);
  }
  // A failure leaves the fields empty: the server then treats the browser as unproven.
  proofs = proofs.catch(function () {
    fields.forEach(function (f) { f.value = ''; });
  }).then(function () { settled = true; });

  // A submit before the signature is ready (a password manager fills and submits at once)
  // waits for it briefly, then goes on with or without it. The page's other scripts that hold
  // a submit back (behaviour.js) resume it with requestSubmit too, so every listener sees the
  // final submit; `sent` keeps this one from submitting a form that already went.
  fields.forEach(function (field) {
    var form = field.form;
    if (!form) return;
    var waiting = false;
    var released = false;
    var sent = false;
    var sentAt = -Infinity;
    form.addEventListener('submit', function (event) {
      if (sent && Date.now() - sentAt < RESUBMIT_MS) {
        event.preventDefault();
        return;
      }
      if (settled || released) return;
      event.preventDefault();
      if (waiting) return;
      waiting = true;
      var timeout = new Promise(function (resolve) { window.setTimeout(resolve, SUBMIT_WAIT_MS); });
      Promise.race([proofs, timeout]).then(function () {
        released = true;
        if (sent) return;
        if (typeof form.requestSubmit === 'function') form.requestSubmit();
        else form.submit();
      });
    });
    // After every listener of the form: a submit nobody held back goes out.
    window.addEventListener('submit', function (event) {
      if (event.target === form && !event.defaultPrevented) {
        sent = true;
        sentAt = Date.now();
      }
    });
  });
}());

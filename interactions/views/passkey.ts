/**
 * The passkey button: a form the page's script (interactions/assets/passkey.js) fills with
 * the browser's WebAuthn result and submits. Without JavaScript or WebAuthn the button stays
 * disabled and a message says why, so the page never offers a button that does nothing.
 */
import { assetUrl } from '../assets.ts';
import { html, type SafeHtml } from '../html.ts';
import { deviceProofField, type DeviceProofView } from './device-proof.ts';

export interface PasskeyFormView {
  /** Where the form posts the result: /interaction/:uid/passkey. */
  action: string;
  /** Where the script fetches the ceremony's options: /interaction/:uid/passkey/options. */
  optionsAction: string;
  csrf: string;
  ceremony: 'register' | 'authenticate';
  /** The button's text: "Use a passkey", "Create a passkey". */
  label: string;
  /** A message from the previous attempt (a WebAuthnError's words). */
  error?: string | undefined;
  /** Styled as the page's alternative, when another button is its main action. */
  secondary?: boolean | undefined;
  /** The sign-in page's device-key proof: a passkey sign-in proves the browser's key too. */
  deviceProof?: DeviceProofView | undefined;
}

/** The two scripts, in order (deferred, so they run in order once the page is parsed). */
export function passkeyScripts(): SafeHtml {
  return html`<script src="${assetUrl('webauthn-browser.js')}" defer></script>
<script src="${assetUrl('passkey.js')}" defer></script>`;
}

export function passkeyForm(v: PasskeyFormView): SafeHtml {
  return html`<form method="post" action="${v.action}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <input type="hidden" name="response" value="">
  ${deviceProofField(v.deviceProof)}
  <button type="button" ${v.secondary ? html`class="secondary" ` : ''}data-passkey="${v.ceremony}" data-options-url="${v.optionsAction}" data-csrf="${v.csrf}" disabled>${v.label}</button>
  <p class="error" data-passkey-status ${v.error ? html`role="alert"` : html`hidden`}>${v.error ?? ''}</p>
  <noscript><p class="muted">Passkeys need JavaScript, which is turned off in this browser.</p></noscript>
</form>
${passkeyScripts()}`;
}

import { assetUrl } from '../assets.ts';
import { html, type SafeHtml } from '../html.ts';
import { deviceKeyScript, deviceProofField, type DeviceProofView } from './device-proof.ts';
import { layout } from './layout.ts';
import { passkeyForm } from './passkey.ts';

export interface LoginView {
  action: string;
  abortAction: string;
  csrf: string;
  clientName: string;
  username?: string | undefined;
  /** Message about the attempt as a whole (wrong credentials, paused), shown under the fields. */
  error?: string | undefined;
  /** A field left empty: the message is tied to that field. */
  fieldError?: { field: 'username' | 'password'; message: string } | undefined;
  /** Shown above the form when a policy decision stopped the login. */
  notice?: string | undefined;
  /** Username-less sign-in with a passkey, when browsers can use passkeys with this issuer. */
  passkey?: { optionsAction: string; action: string } | undefined;
  /** A refused passkey sign-in, shown under its button. */
  passkeyError?: string | undefined;
  /** The nonce and message the device-key script signs (interactions/device-key.ts). */
  deviceProof?: DeviceProofView | undefined;
}

export function loginPage(v: LoginView): SafeHtml {
  const err = v.error;
  const fe = v.fieldError;
  // WCAG 2.2 SC 3.3.1: an error is identified in text and tied to its field.
  const describedBy = (f: 'username' | 'password') => {
    if (fe?.field === f) return html`aria-invalid="true" aria-describedby="${f}-error"`;
    return err ? html`aria-invalid="true" aria-describedby="login-error"` : '';
  };
  const fieldMessage = (f: 'username' | 'password') =>
    fe?.field === f ? html`<p id="${f}-error" class="error" role="alert">${fe.message}</p>` : '';
  // Focus goes where the user has to act next.
  const focus = fe?.field ?? (v.username ? 'password' : 'username');
  return layout('Sign in', html`
<h1>Sign in</h1>
<p class="muted">to continue to <strong>${v.clientName}</strong></p>
${v.notice ? html`<p class="alert" role="alert">${v.notice}</p>` : ''}
<form method="post" action="${v.action}" autocomplete="on" novalidate>
  <input type="hidden" name="csrf" value="${v.csrf}">
  <input type="hidden" name="behaviour" value="">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false"
    required maxlength="256" value="${v.username ?? ''}" ${focus === 'username' ? html`autofocus` : ''}
    ${describedBy('username')}>
  ${fieldMessage('username')}
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"
    ${focus === 'password' ? html`autofocus` : ''} ${describedBy('password')}>
  ${fieldMessage('password')}
  ${err ? html`<p id="login-error" class="error" role="alert">${err}</p>` : ''}
  ${deviceProofField(v.deviceProof)}
  <button type="submit">Sign in</button>
</form>
${deviceKeyScript(v.deviceProof)}
<script src="${assetUrl('behaviour.js')}" defer></script>
${v.passkey ? html`<p class="muted">Or, without typing a password:</p>
${passkeyForm({ ...v.passkey, csrf: v.csrf, ceremony: 'authenticate', label: 'Sign in with a passkey', error: v.passkeyError, secondary: true, deviceProof: v.deviceProof })}` : ''}
<form method="post" action="${v.abortAction}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit" class="secondary">Cancel</button>
</form>`);
}

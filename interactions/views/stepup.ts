/**
 * Pages of the second step: a second factor, enrolling one, recovery codes. Every
 * one-time-code field is named `code`, with `autocomplete="one-time-code"` and a numeric
 * keyboard where only digits are expected (WCAG 2.2 SC 1.3.5 input purpose).
 */
import { html, type SafeHtml as Html } from '../html.ts';
import { errorText, recoveryCodeList, totpSetupSteps } from './factor-parts.ts';
import { layout } from './layout.ts';
import { passkeyForm } from './passkey.ts';

interface Common {
  csrf: string;
  clientName: string;
  abortAction: string;
  /** Why this step is asked for, in words: "This sign-in needs a second step." */
  why: string;
  error?: string | undefined;
}

export interface SecondFactorView extends Common {
  totpAction?: string | undefined;
  recoveryAction?: string | undefined;
  /** Set when the account has a passkey that can meet the level (and browsers can use passkeys here). */
  passkey?: { optionsAction: string; action: string } | undefined;
  /** Which form the error belongs to. */
  errorFor?: 'totp' | 'recovery' | 'passkey' | undefined;
}

const cancel = (v: Common) => html`
<form method="post" action="${v.abortAction}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit" class="secondary">Cancel sign-in</button>
</form>`;


export function secondFactorPage(v: SecondFactorView): Html {
  const err = (f: SecondFactorView['errorFor']) => (v.error && v.errorFor === f ? v.error : undefined);
  const invalid = (f: SecondFactorView['errorFor'], id: string) => (err(f) ? html`aria-invalid="true" aria-describedby="${id}"` : '');
  // Focus goes where the user acts next: the field whose code was refused, else the app's code.
  const recoveryOpen = Boolean(err('recovery')) || (!v.totpAction && !v.passkey);
  const totp = v.totpAction ? html`
<form method="post" action="${v.totpAction}" autocomplete="off" novalidate>
  <input type="hidden" name="csrf" value="${v.csrf}">
  <label for="code">Code from your authenticator app</label>
  <p class="muted" id="code-help">Open the app you set up for this account and enter the 6-digit code it shows.</p>
  <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="9" required
    ${recoveryOpen ? '' : html`autofocus`} ${err('totp') ? html`aria-invalid="true" aria-describedby="code-help code-error"` : html`aria-describedby="code-help"`}>
  ${errorText('code-error', err('totp'))}
  <button type="submit">Verify</button>
</form>` : '';
  const passkey = v.passkey ? html`
<p class="muted">${v.totpAction
    ? 'Or use a passkey saved on this device or a security key:'
    : 'Use the passkey saved on this device, or your security key. Your device may ask for its screen lock (fingerprint, face or PIN).'}</p>
${passkeyForm({ ...v.passkey, csrf: v.csrf, ceremony: 'authenticate', label: 'Use a passkey', error: err('passkey'), secondary: Boolean(v.totpAction) })}` : '';
  const recovery = v.recoveryAction ? html`
<details ${recoveryOpen ? html`open` : ''}>
  <summary>Lost your device? Use a recovery code</summary>
  <form method="post" action="${v.recoveryAction}" autocomplete="off" novalidate>
    <input type="hidden" name="csrf" value="${v.csrf}">
    <label for="recovery-code">Recovery code</label>
    <input id="recovery-code" name="code" type="text" autocapitalize="none" spellcheck="false" maxlength="64" required
      ${recoveryOpen ? html`autofocus` : ''} ${invalid('recovery', 'recovery-error')}>
    ${errorText('recovery-error', err('recovery'))}
    <button type="submit" class="secondary">Use recovery code</button>
  </form>
</details>` : '';
  return layout('Confirm it is you', html`
<h1>Confirm it is you</h1>
<p>${v.why}</p>
<p class="muted">Signing in to <strong>${v.clientName}</strong></p>
${totp}${passkey}${recovery}
${cancel(v)}`);
}

export interface EnrolView extends Common {
  /**
   * Setting up an authenticator app: the QR code (inline SVG of the otpauth:// URI), the secret
   * as text, where the code goes. Absent when an app cannot meet the level (phishing-resistant).
   */
  app?: { qrSvg: string; secret: string; action: string } | undefined;
  /** Present when the user may skip (policy `enrolment.prompt: offer`). */
  skipAction?: string | undefined;
  /** Present when a passkey can be registered instead. */
  passkey?: { optionsAction: string; action: string } | undefined;
  /** A refused passkey registration, shown under its button. */
  passkeyError?: string | undefined;
}


export function enrolPage(v: EnrolView): Html {
  const err = v.error;
  return layout('Set up a second step', html`
<h1>Set up a second step</h1>
<p>${v.why}</p>
<p class="muted">Signing in to <strong>${v.clientName}</strong></p>
${v.app ? html`<h2>Authenticator app</h2>
${totpSetupSteps(v.app.qrSvg, v.app.secret)}
<form method="post" action="${v.app.action}" autocomplete="off" novalidate>
  <input type="hidden" name="csrf" value="${v.csrf}">
  <label for="code">6-digit code</label>
  <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="9" required
    ${err ? html`autofocus aria-invalid="true" aria-describedby="code-error"` : ''}>
  ${errorText('code-error', err)}
  <button type="submit">Turn on</button>
</form>` : ''}
${v.passkey ? html`
<h2>${v.app ? 'Or a passkey' : 'A passkey'}</h2>
<p class="muted">Use this device's screen lock (fingerprint, face or PIN), or a security key.</p>
${passkeyForm({ ...v.passkey, csrf: v.csrf, ceremony: 'register', label: 'Create a passkey', error: v.passkeyError })}` : ''}
${v.skipAction ? html`
<form method="post" action="${v.skipAction}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit" class="secondary">Not now</button>
</form>` : cancel(v)}`);
}

export interface RecoveryCodesView {
  codes: string[];
  continueAction: string;
  csrf: string;
}

export function recoveryCodesPage(v: RecoveryCodesView): Html {
  return layout('Save your recovery codes', html`
<h1>Save your recovery codes</h1>
<p>Your second step is on. If you lose your device, each of these codes lets you sign in once.
Store them somewhere safe, such as a password manager. They will not be shown again.</p>
${recoveryCodeList(v.codes)}
<form method="post" action="${v.continueAction}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit">I have saved them, continue</button>
</form>`);
}

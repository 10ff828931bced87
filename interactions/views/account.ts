/**
 * The account page and its steps: the user's sign-in methods, adding an authenticator app or
 * a passkey, new recovery codes (shown once), and the confirmation before removing the last
 * second step. Same frame and classes as the sign-in pages (layout.ts); navigation is by
 * buttons in GET forms, like every other action here, so the pages need no link styles and
 * no script (the passkey button's script is the sign-in pages' own, served from 'self').
 */
import { html, type SafeHtml as Html } from '../html.ts';
import { errorText, recoveryCodeList, totpSetupSteps } from './factor-parts.ts';
import { layout } from './layout.ts';
import { passkeyForm } from './passkey.ts';

export const ACCOUNT_PATH = '/account';

/** One sign-in method as the page lists it: no secret, only what identifies it to its owner. */
export interface FactorView {
  id: string;
  kind: 'totp' | 'webauthn' | 'recovery';
  label: string;
  /** "2026-03-05 09:20 UTC". */
  created: string;
  lastUsed?: string | undefined;
  enrolledVia: 'self' | 'admin' | 'login';
  /** Recovery codes: how many are left. */
  left?: number | undefined;
}

export interface AccountView {
  username: string;
  name?: string | undefined;
  csrf: string;
  factors: FactorView[];
  /** A confirmation of what was just done (role=status). */
  notice?: string | undefined;
  error?: string | undefined;
  /** Passkeys can be added (a domain over https, or localhost). */
  passkeys: boolean;
  /** New recovery codes can be made (the account has an authenticator app or a passkey). */
  recovery: boolean;
  /** The session may change methods without confirming again. */
  fresh: boolean;
  /** oidc-provider's end_session endpoint. */
  signOutAction: string;
}

const KIND: Record<FactorView['kind'], string> = { totp: 'Authenticator app', webauthn: 'Passkey', recovery: 'Recovery codes' };
const VIA: Record<FactorView['enrolledVia'], string> = { self: 'by you', admin: 'by an administrator', login: 'during a sign-in' };

const hidden = (csrf: string) => html`<input type="hidden" name="csrf" value="${csrf}">`;
const back = (label = 'Back to your account') => html`
<form method="get" action="${ACCOUNT_PATH}">
  <button type="submit" class="secondary">${label}</button>
</form>`;

function factorItem(v: AccountView, f: FactorView): Html {
  const title = f.kind === 'recovery' ? KIND.recovery : f.label;
  const kind = f.kind === 'recovery' ? `${f.left ?? 0} of them left` : KIND[f.kind];
  return html`
<li>
  <strong>${title}</strong> <span class="muted">(${kind})</span><br>
  <span class="muted">Added ${f.created} ${VIA[f.enrolledVia]}; ${f.lastUsed ? `last used ${f.lastUsed}` : 'never used'}</span>
  <form method="post" action="${ACCOUNT_PATH}/remove">
    ${hidden(v.csrf)}
    <input type="hidden" name="factor" value="${f.id}">
    <button type="submit" class="secondary" aria-label="${`Remove ${title} (${kind})`}">Remove</button>
  </form>
</li>`;
}

export function accountPage(v: AccountView): Html {
  return layout('Your account', html`
<h1>Your account</h1>
<p>Signed in as <strong>${v.username}</strong>${v.name ? html` (${v.name})` : ''}</p>
${v.notice ? html`<p role="status">${v.notice}</p>` : ''}
${v.error ? html`<p class="error" role="alert">${v.error}</p>` : ''}
<h2>Your second steps</h2>
${v.factors.length
    ? html`<ul aria-label="Your sign-in methods besides your password">${v.factors.map((f) => factorItem(v, f))}</ul>`
    : html`<p>You sign in with your password only. Add a second step: even someone who learns your password cannot sign in without it.</p>`}
<h2>Add a second step</h2>
<form method="get" action="${ACCOUNT_PATH}/totp">
  <button type="submit">Add an authenticator app</button>
</form>
${v.passkeys ? html`
<form method="get" action="${ACCOUNT_PATH}/passkey">
  <button type="submit" class="secondary">Add a passkey</button>
</form>` : ''}
${v.recovery ? html`
<form method="post" action="${ACCOUNT_PATH}/recovery">
  ${hidden(v.csrf)}
  <button type="submit" class="secondary">Get new recovery codes</button>
</form>` : ''}
<p class="muted">${v.fresh
    ? 'You signed in a moment ago, so you can make changes now.'
    : 'Before a change you will be asked to confirm it is you.'}</p>
<form method="get" action="${v.signOutAction}">
  <button type="submit" class="secondary">Sign out</button>
</form>`);
}

export interface AddTotpView {
  csrf: string;
  /** Inline SVG of the otpauth:// URI (server-rendered; no remote image under the CSP). */
  qrSvg: string;
  secret: string;
  error?: string | undefined;
  notice?: string | undefined;
  /** What the user typed as a name, kept across a wrong code. */
  label?: string | undefined;
}


export function addTotpPage(v: AddTotpView): Html {
  return layout('Add an authenticator app', html`
<h1>Add an authenticator app</h1>
${v.notice ? html`<p role="status">${v.notice}</p>` : ''}
${totpSetupSteps(v.qrSvg, v.secret)}
<form method="post" action="${ACCOUNT_PATH}/totp" autocomplete="off" novalidate>
  ${hidden(v.csrf)}
  <label for="code">6-digit code</label>
  <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="9" required
    ${v.error ? html`aria-invalid="true" aria-describedby="code-error"` : ''}>
  ${errorText('code-error', v.error)}
  <label for="label">Name it (optional)</label>
  <p class="muted" id="label-help">So you can tell it apart later, for example "Work phone".</p>
  <input id="label" name="label" type="text" maxlength="64" autocomplete="off" aria-describedby="label-help" value="${v.label ?? ''}">
  <button type="submit">Turn on</button>
</form>
${back('Cancel')}`);
}

export interface AddPasskeyView {
  csrf: string;
  optionsAction: string;
  action: string;
  error?: string | undefined;
  notice?: string | undefined;
}

export function addPasskeyPage(v: AddPasskeyView): Html {
  return layout('Add a passkey', html`
<h1>Add a passkey</h1>
${v.notice ? html`<p role="status">${v.notice}</p>` : ''}
<p>Use this device's screen lock (fingerprint, face or PIN), or a security key. Next time you sign in,
you can use it instead of a code.</p>
${passkeyForm({ optionsAction: v.optionsAction, action: v.action, csrf: v.csrf, ceremony: 'register', label: 'Create a passkey', error: v.error })}
${back('Cancel')}`);
}

export function newRecoveryCodesPage(v: { codes: string[]; replaced: boolean; notice?: string | undefined }): Html {
  return layout('Your recovery codes', html`
<h1>Your recovery codes</h1>
${v.notice ? html`<p role="status">${v.notice}</p>` : ''}
<p>If you lose your device, each of these codes lets you sign in once.
Store them somewhere safe, such as a password manager. They will not be shown again.</p>
${v.replaced ? html`<p><strong>Your earlier recovery codes no longer work.</strong></p>` : ''}
${recoveryCodeList(v.codes)}
${back('I have saved them, back to your account')}`);
}

export interface ConfirmRemoveView {
  csrf: string;
  factor: FactorView;
  /** Recovery codes go with the last authenticator (they recover a second step that no longer exists). */
  recoveryToo: boolean;
}

export function confirmRemovePage(v: ConfirmRemoveView): Html {
  const what = v.factor.kind === 'recovery' ? html`Your recovery codes are` : html`“${v.factor.label}” is`;
  return layout('Turn off your second step?', html`
<h1>Turn off your second step?</h1>
<p class="alert">${what} the last second step on your account. Without it, your password alone
signs you in, and anyone who learns it can too.</p>
${v.recoveryToo ? html`<p>Your recovery codes will stop working as well.</p>` : ''}
<p class="muted">A sign-in that needs a second step will ask you to set one up again, or be refused.</p>
<form method="post" action="${ACCOUNT_PATH}/remove">
  ${hidden(v.csrf)}
  <input type="hidden" name="factor" value="${v.factor.id}">
  <input type="hidden" name="confirm" value="yes">
  <button type="submit">Yes, remove it</button>
</form>
${back('No, keep it')}`);
}

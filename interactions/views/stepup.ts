import { html, type SafeHtml } from '../html.ts';
import { layout } from './layout.ts';

/**
 * Shown when the risk policy requires more assurance than a password gives. The methods
 * (TOTP, passkeys, recovery codes) are wired in by the step-up issue; until then the login
 * stops here and the decision is recorded.
 */
export function stepUpPage(v: { clientName: string; abortAction: string; csrf: string }): SafeHtml {
  return layout('Additional verification required', html`
<h1>Additional verification required</h1>
<p role="alert">Signing in to <strong>${v.clientName}</strong> from here needs a second factor.
No second factor is set up for this account yet, so the sign-in cannot continue.
If this was you, contact your administrator.</p>
<form method="post" action="${v.abortAction}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit" class="secondary">Back to the application</button>
</form>`);
}

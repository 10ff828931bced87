/**
 * Fragments the sign-in pages (stepup.ts) and the account page (account.ts) share, so that
 * setting up an authenticator app or reading recovery codes looks and reads the same in both.
 */
import { html, SafeHtml } from '../html.ts';

/** An error tied to its field by `id` (WCAG 2.2 SC 3.3.1), or nothing. */
export const errorText = (id: string, message: string | undefined) => (message ? html`<p id="${id}" class="error" role="alert">${message}</p>` : '');

/** Groups of four characters: easier to copy by hand. */
const grouped = (s: string) => s.replace(/(.{4})(?=.)/g, '$1 ');

/**
 * How to add the account to an authenticator app: the QR code (inline SVG of the otpauth://
 * URI, server-rendered; the CSP allows no remote image) and the secret as text.
 */
export const totpSetupSteps = (qrSvg: string, secret: string) => html`<ol>
  <li>Open an authenticator app (for example one from your phone's app store) and add an account.</li>
  <li>Scan this code with it:
    <figure class="qr" aria-label="QR code for your authenticator app">${new SafeHtml(qrSvg)}</figure>
    <p class="muted">Cannot scan? Enter this key instead:</p>
    <p><code id="secret" class="secret">${grouped(secret)}</code></p>
  </li>
  <li>Enter the 6-digit code the app now shows.</li>
</ol>`;

/** Recovery codes, shown once. */
export const recoveryCodeList = (codes: readonly string[]) => html`<ul class="codes" aria-label="Recovery codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>`;

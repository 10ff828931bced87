/** Error, logout and post-logout pages. */
import { html, SafeHtml } from '../html.ts';
import { layout } from './layout.ts';

export function errorPage(title: string, message: string, code: string): SafeHtml {
  return layout(title, html`
<h1>${title}</h1>
<p role="alert">${message}</p>
<p class="muted">Error code: <code>${code}</code></p>`);
}

/**
 * oidc-provider's logout confirmation. `providerForm` is oidc-provider's own form markup
 * (it carries its own xsrf token); it is trusted output of the library, not user input.
 */
export function logoutPage(host: string, providerForm: string): SafeHtml {
  return layout('Sign out', html`
<h1>Sign out of ${host}?</h1>
${new SafeHtml(providerForm)}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`);
}

export function loggedOutPage(clientName: string | undefined): SafeHtml {
  return layout('Signed out', html`
<h1>Signed out</h1>
<p>You have been signed out${clientName ? html` of <strong>${clientName}</strong>` : ''}.</p>`);
}

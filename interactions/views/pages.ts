/** Error, logout and post-logout pages. */
import { html, SafeHtml } from '../html.ts';
import { layout } from './layout.ts';

export function errorPage(title: string, message: string, code: string): SafeHtml {
  return layout(title, html`
<h1>${title}</h1>
<p role="alert">${message}</p>
<p class="muted">Error code: <code>${code}</code>. If this keeps happening, give this code to the support of the application you came from.</p>`);
}

/**
 * oidc-provider's logout confirmation. `providerForm` is oidc-provider's own form markup
 * (it carries its own xsrf token); it is trusted output of the library, not user input.
 * `appName`: the application that sent the user here (client_name, else client_id), named
 * as the login page names it; undefined when the request did not say which one.
 */
export function logoutPage(appName: string | undefined, providerForm: string): SafeHtml {
  return layout('Sign out', html`
<h1>${appName ? html`Sign out of ${appName}?` : 'Sign out?'}</h1>
${new SafeHtml(providerForm)}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`);
}

export function loggedOutPage(clientName: string | undefined): SafeHtml {
  return layout('Signed out', html`
<h1>Signed out</h1>
<p>You have been signed out${clientName ? html` of <strong>${clientName}</strong>` : ''}.</p>
<p class="muted">You can close this page now.</p>`);
}

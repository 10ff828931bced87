import { html, type SafeHtml } from '../html.ts';
import { layout } from './layout.ts';

export interface LoginView {
  action: string;
  abortAction: string;
  csrf: string;
  clientName: string;
  username?: string | undefined;
  /** Neutral message shown next to the fields after a failed attempt. */
  error?: string | undefined;
  /** Shown when a step-up or a policy decision stopped the login (issue 3 onwards). */
  notice?: string | undefined;
}

export function loginPage(v: LoginView): SafeHtml {
  const err = v.error;
  return layout('Sign in', html`
<h1>Sign in</h1>
<p class="muted">to continue to <strong>${v.clientName}</strong></p>
${v.notice ? html`<p class="alert" role="alert">${v.notice}</p>` : ''}
<form method="post" action="${v.action}" autocomplete="on" novalidate>
  <input type="hidden" name="csrf" value="${v.csrf}">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false"
    required maxlength="256" value="${v.username ?? ''}" ${v.username ? '' : html`autofocus`}
    ${err ? html`aria-invalid="true" aria-describedby="login-error"` : ''}>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"
    ${v.username ? html`autofocus` : ''} ${err ? html`aria-invalid="true" aria-describedby="login-error"` : ''}>
  ${err ? html`<p id="login-error" class="error" role="alert">${err}</p>` : ''}
  <button type="submit">Sign in</button>
</form>
<form method="post" action="${v.abortAction}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit" class="secondary">Cancel</button>
</form>`);
}

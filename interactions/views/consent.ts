import { html, type SafeHtml } from '../html.ts';
import { layout } from './layout.ts';

export interface ConsentView {
  action: string;
  abortAction: string;
  csrf: string;
  clientName: string;
  scopes: string[];
  claims: string[];
}

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Confirm your identity',
  profile: 'Your name and username',
  email: 'Your email address',
  offline_access: 'Stay connected while you are away (refresh tokens)',
  risk: 'How risky this sign-in looked (a score and its reasons)',
};

export function consentPage(v: ConsentView): SafeHtml {
  return layout('Allow access', html`
<h1>Allow access</h1>
<p><strong>${v.clientName}</strong> asks for:</p>
<ul>
  ${v.scopes.map((s) => html`<li>${SCOPE_TEXT[s] ?? s}</li>`)}
  ${v.claims.length ? html`<li>These details: ${v.claims.join(', ')}</li>` : ''}
</ul>
<form method="post" action="${v.action}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit">Allow</button>
</form>
<form method="post" action="${v.abortAction}">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit" class="secondary">Deny</button>
</form>`);
}

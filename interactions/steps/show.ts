/** GET /interaction/:uid — renders the page for the prompt oidc-provider asks for. */
import type { Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { clientName, loadInteraction, renderPage, type InteractionDeps } from '../context.ts';
import { loginPage } from '../views/login.ts';
import { consentPage } from '../views/consent.ts';

export function show(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider);
    const csrf = deps.csrf.issue(ctx, details.uid);
    const name = await clientName(deps.provider, details.params.client_id);
    const base = `/interaction/${details.uid}`;
    switch (details.prompt.name) {
      case 'login': {
        const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint.slice(0, 256) : undefined;
        renderPage(ctx, loginPage({ action: `${base}/login`, abortAction: `${base}/abort`, csrf, clientName: name, username: hint }));
        return;
      }
      case 'consent': {
        const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
        renderPage(ctx, consentPage({
          action: `${base}/confirm`, abortAction: `${base}/abort`, csrf, clientName: name,
          scopes: d.missingOIDCScope ?? [], claims: (d.missingOIDCClaims ?? []).filter((c) => !['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss'].includes(c)),
        }));
        return;
      }
      default:
        throw new UserError('interaction_out_of_date');
    }
  };
}

/** POST /interaction/:uid/confirm — records the user's consent in a Grant. */
import type { Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { loadInteraction, type InteractionDeps } from '../context.ts';
import { readForm } from '../form.ts';

export function confirm(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider, 'consent');
    const form = await readForm(ctx, deps.maxFormBytes);
    deps.csrf.verify(ctx, details.uid, form.get('csrf'));
    const accountId = details.session?.accountId;
    if (!accountId) throw new UserError('interaction_out_of_date');

    const { provider } = deps;
    const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    const grant = existing ?? new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, { consent: existing ? {} : { grantId } }, {
      mergeWithLastSubmission: true,
    });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  };
}

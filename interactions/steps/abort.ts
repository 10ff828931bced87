/** POST /interaction/:uid/abort — the user cancelled: the RP gets access_denied (OIDC Core §3.1.2.6). */
import type { Middleware } from 'koa';
import { loadInteraction, type InteractionDeps } from '../context.ts';
import { readForm } from '../form.ts';

export function abort(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider);
    const form = await readForm(ctx, deps.maxFormBytes);
    deps.csrf.verify(ctx, details.uid, form.get('csrf'));
    // A login under way ends here: its state must not be resumable.
    await deps.transactions.delete(details.uid);
    const redirectTo = await deps.provider.interactionResult(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  };
}

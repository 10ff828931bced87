/**
 * POST /account/remove — removes one of the user's sign-in methods. The factor is looked up
 * under the session's account (FactorStore.remove(accountId, id)), so an id of another
 * account's factor is "not found", whatever the form says. Removing the last authenticator
 * app or passkey (or the codes of an account that has nothing else) turns the second step
 * off: that asks for an explicit confirmation first, and takes the recovery codes with it,
 * since they would otherwise be a second step on their own.
 */
import type { Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import type { FactorRecord } from '../../models/types.ts';
import { renderPage } from '../context.ts';
import { field } from '../form.ts';
import { confirmRemovePage } from '../views/account.ts';
import { freshness, loadPost, type AccountDeps } from './session.ts';
import { factorView } from './show.ts';
import { startSignIn } from './signin.ts';
import { factorChange } from '../audit.ts';

const isAuthenticator = (f: FactorRecord) => f.kind === 'totp' || f.kind === 'webauthn';

export function removeFactor(deps: AccountDeps): Middleware {
  return async (ctx) => {
    const { s, form } = await loadPost(deps, ctx);
    const id = field(form, 'factor', 128);
    const factors = await deps.storage.factors.list(s.account.id);
    const factor = factors.find((f) => f.id === id);
    if (!factor) throw new UserError('factor_not_found');
    const f = freshness(deps, s, factors);
    if (!f.fresh) return startSignIn(deps, ctx, { returnTo: '/account', reauth: { acr: f.level.acr } });

    const last = !factors.some((x) => x.id !== id && isAuthenticator(x));
    const recoveryToo = last && isAuthenticator(factor) && factors.some((x) => x.kind === 'recovery');
    if (last && form.get('confirm') !== 'yes') {
      renderPage(ctx, confirmRemovePage({ csrf: deps.csrf.issue(ctx, s.uid), factor: factorView(factor), recoveryToo }));
      return;
    }
    if (!(await deps.storage.factors.remove(s.account.id, id))) throw new UserError('factor_not_found');
    const recoveryRemoved = recoveryToo ? await deps.storage.factors.removeAll(s.account.id, 'recovery') : 0;
    // The audit trail: a second step turned off is what an account takeover would do next.
    deps.events.emit('mfa.removed', {
      account: s.account.id, client: 'account', kind: factor.kind, factor: id, via: 'self', last, recoveryRemoved,
    }, last ? 'warn' : 'info');
    await deps.audit(factorChange(ctx, s.account.id, 'factor.remove', factor, { via: 'self', client: 'account', last, recoveryRemoved }));
    ctx.status = 303;
    ctx.redirect(`/account?done=${last ? 'off' : 'removed'}`);
  };
}

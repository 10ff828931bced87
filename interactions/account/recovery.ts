/**
 * POST /account/recovery — a new set of recovery codes in place of the old one (NIST SP
 * 800-63B-4 §3.1.2 look-up secrets): shown once, in this response, stored as keyed hashes;
 * the earlier codes stop working. Also what follows adding an authenticator on the account
 * page: its first second factor brings recovery codes, as at a sign-in (steps/enrol.ts).
 */
import crypto from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { renderPage } from '../context.ts';
import { newRecoveryFactor, replaceRecoveryCodes } from '../methods/recovery.ts';
import { newRecoveryCodesPage } from '../views/account.ts';
import type { FactorRecord } from '../../models/types.ts';
import { factorChange } from '../audit.ts';
import { freshness, loadPost, type AccountDeps, type SignedIn } from './session.ts';
import { startSignIn } from './signin.ts';

const ADDED = {
  totp_added: 'Your authenticator app is on.',
  passkey_added: 'Your passkey is on.',
} as const;

/**
 * An authenticator was added: recorded in the audit trail (`mfa.enrolled`, via `self`), then
 * the recovery codes if the account has none yet, else back to the page.
 */
export async function afterAdding(deps: AccountDeps, ctx: Context, s: SignedIn, added: { kind: 'totp' | 'webauthn'; factor: Pick<FactorRecord, 'id' | 'kind' | 'label' | 'enrolledVia'>; done: keyof typeof ADDED }): Promise<void> {
  deps.events.emit('mfa.enrolled', { account: s.account.id, client: 'account', kind: added.kind, factor: added.factor.id, via: 'self', flagged: false });
  const [factors] = await Promise.all([
    deps.storage.factors.list(s.account.id),
    deps.audit(factorChange(ctx, s.account.id, 'factor.enrol', added.factor, { via: 'self', client: 'account' })),
  ]);
  if (factors.some((f) => f.kind === 'recovery')) {
    ctx.status = 303;
    ctx.redirect(`/account?done=${added.done}`);
    return;
  }
  const { factor, codes } = newRecoveryFactor(deps.recoveryKey, { id: crypto.randomUUID(), accountId: s.account.id, enrolledVia: 'self' });
  await deps.storage.factors.add(factor);
  deps.events.emit('mfa.enrolled', { account: s.account.id, client: 'account', kind: 'recovery', factor: factor.id, via: 'self', flagged: false });
  await deps.audit(factorChange(ctx, s.account.id, 'factor.enrol', factor, { via: 'self', client: 'account' }));
  // Shown once, in this response: never stored in the clear, never in a redirect.
  renderPage(ctx, newRecoveryCodesPage({ codes, replaced: false, notice: ADDED[added.done] }));
}

export function newRecoveryCodes(deps: AccountDeps): Middleware {
  return async (ctx) => {
    const { s } = await loadPost(deps, ctx);
    const factors = await deps.storage.factors.list(s.account.id);
    // Codes recover an authenticator app or a passkey; alone they would be the second step.
    if (!factors.some((f) => f.kind === 'totp' || f.kind === 'webauthn')) throw new UserError('account_out_of_date');
    const f = freshness(deps, s, factors);
    if (!f.fresh) return startSignIn(deps, ctx, { returnTo: '/account', reauth: { acr: f.level.acr } });
    const replaced = factors.some((x) => x.kind === 'recovery');
    const { factor, codes } = await replaceRecoveryCodes(deps.storage.factors, deps.recoveryKey, { id: crypto.randomUUID(), accountId: s.account.id, enrolledVia: 'self' });
    deps.events.emit('mfa.enrolled', { account: s.account.id, client: 'account', kind: 'recovery', factor: factor.id, via: 'self', flagged: false, replaced });
    await deps.audit(factorChange(ctx, s.account.id, 'factor.enrol', factor, { via: 'self', client: 'account', replaced }));
    renderPage(ctx, newRecoveryCodesPage({ codes, replaced }));
  };
}

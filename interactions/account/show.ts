/**
 * GET /account — the signed-in user's sign-in methods besides the password: each with its
 * kind, name, when and how it was added and when it was last used (recovery codes: how many
 * are left), never a secret; and what can be added. Signed out: into the sign-in (signin.ts).
 */
import { signInName } from '../methods/ldap.ts';
import type { Context, Middleware } from 'koa';
import type { FactorRecord } from '../../models/types.ts';
import { renderPage } from '../context.ts';
import { accountPage, type FactorView } from '../views/account.ts';
import { freshness, signedIn, type AccountDeps, type SignedIn } from './session.ts';
import { startSignIn } from './signin.ts';

/** What `?done=` may say: fixed words, never text from the request. */
const DONE = {
  confirmed: 'You confirmed it is you. You can change how you sign in for the next few minutes.',
  not_confirmed: 'You did not confirm it is you, so nothing was changed.',
  removed: 'The sign-in method was removed.',
  off: 'Your second step is off: your password alone signs you in.',
  totp_added: 'Your authenticator app is on. Next time a sign-in asks for a second step, enter the code it shows.',
  passkey_added: 'Your passkey is on. Next time a sign-in asks for a second step, you can use it.',
} as const;

export function doneText(ctx: Context): string | undefined {
  const done = ctx.query.done;
  return typeof done === 'string' && Object.hasOwn(DONE, done) ? DONE[done as keyof typeof DONE] : undefined;
}

export const when = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

export function factorView(f: FactorRecord): FactorView {
  return {
    id: f.id, kind: f.kind, label: f.label, created: when(f.createdAt), lastUsed: f.lastUsedAt ? when(f.lastUsedAt) : undefined,
    enrolledVia: f.enrolledVia, left: f.recovery ? f.recovery.hashes.length - f.recovery.used.length : undefined,
  };
}

export async function renderAccount(deps: AccountDeps, ctx: Context, s: SignedIn, state: { notice?: string | undefined; error?: string | undefined; status?: number } = {}): Promise<void> {
  const factors = await deps.storage.factors.list(s.account.id);
  renderPage(ctx, accountPage({
    username: signInName(s.account), name: s.account.name, csrf: deps.csrf.issue(ctx, s.uid),
    factors: factors.map(factorView), notice: state.notice, error: state.error,
    passkeys: deps.webauthn.supported,
    recovery: factors.some((f) => f.kind === 'totp' || f.kind === 'webauthn'),
    fresh: freshness(deps, s, factors).fresh,
    signOutAction: deps.provider.pathFor('end_session'),
  }), state.status ?? 200);
}

export function show(deps: AccountDeps): Middleware {
  return async (ctx) => {
    const s = await signedIn(deps, ctx);
    if (!s) return startSignIn(deps, ctx, { returnTo: '/account' });
    return renderAccount(deps, ctx, s, { notice: doneText(ctx) });
  };
}

/**
 * The start of a page that changes something (GET /account/totp, /account/passkey): signed in
 * and fresh, or sent to sign in (again) and back. Returns undefined when it answered itself.
 * Back from a confirmation that still left the session short (it cannot happen through the
 * assurance check, but a loop must not), the account page says so instead of asking again.
 */
export async function freshOrSignIn(deps: AccountDeps, ctx: Context, returnTo: '/account/totp' | '/account/passkey'): Promise<SignedIn | undefined> {
  const s = await signedIn(deps, ctx);
  if (!s) {
    await startSignIn(deps, ctx, { returnTo });
    return undefined;
  }
  const f = freshness(deps, s, await deps.storage.factors.list(s.account.id));
  if (f.fresh) return s;
  if (ctx.query.done === 'confirmed') {
    await renderAccount(deps, ctx, s, { error: 'Your sign-in could not be confirmed at the level this change needs. Try again.', status: 403 });
    return undefined;
  }
  await startSignIn(deps, ctx, { returnTo, reauth: { acr: f.level.acr } });
  return undefined;
}

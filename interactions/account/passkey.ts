/**
 * GET /account/passkey, POST /account/passkey/options and /account/passkey — adds a passkey
 * with the login's own ceremony handlers (steps/passkey.ts). Here the subject is the signed-in
 * session: its uid binds the CSRF token and the challenge, and `load` refuses (before reading
 * anything) a signed-out or no longer fresh session, so a registration can only complete
 * within the confirmation window.
 */
import type { Context, Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { renderPage } from '../context.ts';
import { passkeyOptions, passkeyVerify, type PasskeyCallbacks } from '../steps/passkey.ts';
import { addPasskeyPage } from '../views/account.ts';
import { afterAdding } from './recovery.ts';
import { freshness, signedIn, type AccountDeps, type SignedIn } from './session.ts';
import { doneText, freshOrSignIn } from './show.ts';

const OPTIONS_ACTION = '/account/passkey/options';
const ACTION = '/account/passkey';

function render(deps: AccountDeps, ctx: Context, s: SignedIn, state: { error?: string; status?: number } = {}): void {
  renderPage(ctx, addPasskeyPage({
    csrf: deps.csrf.issue(ctx, s.uid), optionsAction: OPTIONS_ACTION, action: ACTION, error: state.error, notice: doneText(ctx),
  }), state.status ?? 200);
}

export function showAddPasskey(deps: AccountDeps): Middleware {
  return async (ctx) => {
    // Browsers run WebAuthn only for a domain over https or localhost (methods/webauthn.ts).
    if (!deps.webauthn.supported) throw new UserError('not_found');
    const s = await freshOrSignIn(deps, ctx, '/account/passkey');
    if (s) render(deps, ctx, s);
  };
}

async function load(deps: AccountDeps, ctx: Context): Promise<SignedIn> {
  const s = await signedIn(deps, ctx);
  if (!s) throw new UserError('account_signed_out');
  if (!freshness(deps, s, await deps.storage.factors.list(s.account.id)).fresh) throw new UserError('account_reauth_required');
  return s;
}

function callbacks(deps: AccountDeps): PasskeyCallbacks<SignedIn> {
  return {
    async ceremony(_ctx, s) {
      if (!deps.webauthn.supported) return undefined;
      return { kind: 'register', account: s.account, userVerification: 'preferred', enrolledVia: 'self' };
    },
    async onVerified(ctx, s, result) {
      if (result.kind !== 'register') throw new UserError('account_out_of_date');
      return afterAdding(deps, ctx, s, { kind: 'webauthn', factor: result.factor, done: 'passkey_added' });
    },
    async onFailed(ctx, s, error) {
      deps.log.info('account passkey refused', { account: s.account.id, reason: error.code });
      render(deps, ctx, s, { error: error.message, status: 400 });
    },
  };
}

export function passkeyRoutes(deps: AccountDeps): { options: Middleware; verify: Middleware } {
  const stepDeps = { csrf: deps.csrf, webauthn: deps.webauthn, maxFormBytes: deps.maxFormBytes, load: (ctx: Context) => load(deps, ctx) };
  const cb = callbacks(deps);
  return { options: passkeyOptions(stepDeps, cb), verify: passkeyVerify(stepDeps, cb) };
}

/**
 * Signing in to the account page: an ordinary OpenID Connect authorization of the built-in
 * client (client.ts), so the account page gets exactly the login of any application: the
 * login steps, the risk engine, the assurance check.
 *
 * - start: a random `state` and PKCE verifier (RFC 7636 §4.1: 256 bits), kept server-side
 *   for 10 minutes under the state, which also goes into a signed, HttpOnly cookie under
 *   /account: the callback must come back to the browser that started it (RFC 6749 §10.12,
 *   RFC 9700 §2.1). For a re-authentication before a change, `max_age` and `acr_values` ask
 *   for a fresh sign-in at the level required (session.ts).
 * - callback: checks the cookie against `state` and consumes the record once, atomically
 *   (a replayed callback is refused), checks `iss` (RFC 9207), then redeems the code in
 *   process as the token endpoint would (client, redirect URI, PKCE S256, single use,
 *   expiry) and checks it was issued to this browser's session. No tokens are minted: the
 *   page needs none, only proof that the authorization it asked for completed.
 */
import crypto from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { ACCOUNT_CLIENT_ID, accountCallbackUrl } from './client.ts';
import { REAUTH_WINDOW_SECONDS, signedIn, type AccountDeps } from './session.ts';

const FLOW_MODEL = 'AccountSignIn';
const FLOW_COOKIE = 'idp_account_signin';
const FLOW_TTL_MS = 10 * 60_000;
/** Where a sign-in may return to: fixed pages, never a URL from the request. */
export const RETURN_PATHS = ['/account', '/account/totp', '/account/passkey'] as const;
export type ReturnPath = (typeof RETURN_PATHS)[number];

interface Flow {
  v: 1;
  verifier: string;
  returnTo: ReturnPath;
  /** A re-authentication before a change (not the first sign-in to the page). */
  reauth: boolean;
}

const s256 = (verifier: string) => crypto.createHash('sha256').update(verifier).digest('base64url');

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** Sends the browser to the authorization endpoint (303); `reauth`: the level to confirm at. */
export async function startSignIn(deps: AccountDeps, ctx: Context, opts: { returnTo: ReturnPath; reauth?: { acr: string } }): Promise<void> {
  const state = crypto.randomBytes(32).toString('base64url');
  const verifier = crypto.randomBytes(32).toString('base64url');
  const flow: Flow = { v: 1, verifier, returnTo: opts.returnTo, reauth: Boolean(opts.reauth) };
  await deps.storage.oidc.upsert({ model: FLOW_MODEL, id: state, payload: { ...flow }, expiresAt: Date.now() + FLOW_TTL_MS });
  ctx.cookies.set(FLOW_COOKIE, state, {
    httpOnly: true, sameSite: 'lax', secure: deps.secure, path: '/account', signed: true, maxAge: FLOW_TTL_MS, overwrite: true,
  });
  const params = new URLSearchParams({
    client_id: ACCOUNT_CLIENT_ID, response_type: 'code', scope: 'openid', redirect_uri: accountCallbackUrl(deps.issuer),
    state, code_challenge: s256(verifier), code_challenge_method: 'S256',
  });
  if (opts.reauth) {
    // OIDC Core §3.1.2.1: past max_age the user must authenticate again; the assurance
    // check (idp/assurance-check.ts) honours acr_values, so the level is met again too.
    params.set('max_age', String(REAUTH_WINDOW_SECONDS));
    params.set('acr_values', opts.reauth.acr);
  }
  ctx.status = 303;
  ctx.redirect(`${deps.provider.pathFor('authorization')}?${params.toString()}`);
}

/** GET /account/callback */
export function callback(deps: AccountDeps): Middleware {
  return async (ctx) => {
    const q = ctx.query;
    const state = typeof q.state === 'string' ? q.state : undefined;
    const cookie = ctx.cookies.get(FLOW_COOKIE, { signed: true });
    if (!state || !cookie || !equal(state, cookie)) throw new UserError('account_signin_expired');
    const rec = await deps.storage.oidc.find(FLOW_MODEL, state, Date.now());
    const flow = rec?.payload as Flow | undefined;
    if (!rec || flow?.v !== 1 || !(await deps.storage.oidc.consume(FLOW_MODEL, state, Math.floor(Date.now() / 1000)))) {
      throw new UserError('account_signin_expired');
    }
    ctx.cookies.set(FLOW_COOKIE, null, { path: '/account', signed: true, overwrite: true });
    await deps.storage.oidc.destroy(FLOW_MODEL, state);

    // RFC 9207 §2.4: a response naming another issuer is not ours to act on.
    if (q.iss !== undefined && q.iss !== deps.provider.issuer) throw new UserError('account_signin_failed');
    if (q.error !== undefined) {
      // Cancelled, or the level could not be met: no change is made. A signed-in user goes
      // back to the page, which says so; anyone else gets the error page (no loop).
      const s = await signedIn(deps, ctx);
      if (!s) throw new UserError('account_signin_failed');
      ctx.status = 303;
      ctx.redirect(flow.reauth ? '/account?done=not_confirmed' : '/account');
      return;
    }
    if (typeof q.code !== 'string' || !(await redeem(deps, ctx, q.code, flow))) throw new UserError('account_signin_failed');
    ctx.status = 303;
    ctx.redirect(flow.reauth ? `${flow.returnTo}?done=confirmed` : flow.returnTo);
  };
}

/** The token endpoint's checks of an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6), and its single use. */
async function redeem(deps: AccountDeps, ctx: Context, value: string, flow: Flow): Promise<boolean> {
  const code = await deps.provider.AuthorizationCode.find(value);
  // `isValid`: not consumed, not expired.
  if (!code?.isValid) return false;
  if (code.clientId !== ACCOUNT_CLIENT_ID || code.redirectUri !== accountCallbackUrl(deps.issuer)) return false;
  if (code.codeChallengeMethod !== 'S256' || !code.codeChallenge || !equal(code.codeChallenge, s256(flow.verifier))) return false;
  try {
    // Atomic in the store: of two redemptions of one code one wins (adapters/oidc-adapter.ts).
    await code.consume();
  } catch {
    return false;
  }
  // Issued to this browser's session, for its account: not a code carried over from elsewhere.
  const s = await signedIn(deps, ctx);
  return s !== undefined && s.account.id === code.accountId && s.uid === code.sessionUid;
}

/**
 * GET and POST /account/totp — adds an authenticator app. The secret is made on the server
 * when the page is first shown and kept sealed (SecretBox, bound to the session, the account
 * and this attempt) for 10 minutes under the session's uid, never in a form field; the page
 * shows it once as a QR code and as text. A code from the app proves the app holds it
 * (RFC 6238), and that code's time step is spent at once (§5.2). The pending secret is
 * claimed atomically, so two submissions of the right code add one app, not two.
 */
import { signInName } from '../methods/ldap.ts';
import crypto from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { renderPage } from '../context.ts';
import { field } from '../form.ts';
import { matchStep, newTotpFactor, newTotpSecret, otpauthUri, qrSvg } from '../methods/totp.ts';
import { addTotpPage } from '../views/account.ts';
import { afterAdding } from './recovery.ts';
import { freshness, loadPost, type AccountDeps, type SignedIn } from './session.ts';
import { doneText, freshOrSignIn } from './show.ts';
import { startSignIn } from './signin.ts';

const PENDING_MODEL = 'AccountPendingTotp';
/** One record per pending secret, consumed once when the app is added. */
const CLAIM_MODEL = 'AccountTotpClaim';
const PENDING_TTL_MS = 10 * 60_000;
const DEFAULT_LABEL = 'Authenticator app';

interface Pending {
  v: 1;
  accountId: string;
  claim: string;
  sealed: string;
}

const sealContext = (s: SignedIn, claim: string) => `account-totp:${s.uid}:${s.account.id}:${claim}`;

/** The session's pending secret, if it has one not yet used. */
async function findPending(deps: AccountDeps, s: SignedIn): Promise<{ secret: string; claim: string } | undefined> {
  const now = Date.now();
  const p = (await deps.storage.oidc.find(PENDING_MODEL, s.uid, now))?.payload as Pending | undefined;
  if (p?.v !== 1 || p.accountId !== s.account.id) return undefined;
  const claim = await deps.storage.oidc.find(CLAIM_MODEL, p.claim, now);
  if (!claim || claim.consumed !== undefined) return undefined;
  return { secret: deps.box.open(p.sealed, sealContext(s, p.claim)), claim: p.claim };
}

/** The session's pending secret, made now if there is none (or it was used). */
async function pendingSecret(deps: AccountDeps, s: SignedIn): Promise<{ secret: string; claim: string }> {
  const found = await findPending(deps, s);
  if (found) return found;
  const now = Date.now();
  const secret = newTotpSecret();
  const claim = crypto.randomUUID();
  const expiresAt = now + PENDING_TTL_MS;
  await deps.storage.oidc.upsert({ model: CLAIM_MODEL, id: claim, payload: { accountId: s.account.id }, expiresAt });
  const pending: Pending = { v: 1, accountId: s.account.id, claim, sealed: deps.box.seal(secret, sealContext(s, claim)) };
  await deps.storage.oidc.upsert({ model: PENDING_MODEL, id: s.uid, payload: { ...pending }, expiresAt });
  return { secret, claim };
}

async function render(deps: AccountDeps, ctx: Context, s: SignedIn, state: { error?: string; label?: string; status?: number } = {}): Promise<void> {
  const { secret } = await pendingSecret(deps, s);
  const uri = otpauthUri(secret, { issuer: deps.issuerName, account: signInName(s.account) });
  renderPage(ctx, addTotpPage({
    csrf: deps.csrf.issue(ctx, s.uid), qrSvg: await qrSvg(uri), secret, error: state.error, label: state.label, notice: doneText(ctx),
  }), state.status ?? 200);
}

export function showAddTotp(deps: AccountDeps): Middleware {
  return async (ctx) => {
    const s = await freshOrSignIn(deps, ctx, '/account/totp');
    if (s) await render(deps, ctx, s);
  };
}

export function addTotp(deps: AccountDeps): Middleware {
  return async (ctx) => {
    const { s, form } = await loadPost(deps, ctx);
    const factors = await deps.storage.factors.list(s.account.id);
    const f = freshness(deps, s, factors);
    // Confirming takes the user back to this page, with the same secret (still pending).
    if (!f.fresh) return startSignIn(deps, ctx, { returnTo: '/account/totp', reauth: { acr: f.level.acr } });
    const label = (form.has('label') ? field(form, 'label', 64, { allowEmpty: true }).trim() : '') || DEFAULT_LABEL;
    const code = field(form, 'code', 64, { allowEmpty: true }).trim();
    if (!code) return render(deps, ctx, s, { error: 'Enter the 6-digit code your authenticator app shows.', label, status: 400 });
    const pending = await findPending(deps, s);
    if (!pending) return render(deps, ctx, s, { error: 'The key shown before has expired. Add this new one to your app, then enter its code.', label, status: 400 });
    const { secret, claim } = pending;
    const now = Date.now();
    const step = matchStep(secret, code, now);
    if (step === undefined) {
      return render(deps, ctx, s, { error: 'That code is not right. Check that the app added the account, then enter the code it shows now.', label, status: 400 });
    }
    // Exactly one submission adds the app (storage port: consume is atomic, also across instances).
    if (!(await deps.storage.oidc.consume(CLAIM_MODEL, claim, Math.floor(now / 1000)))) throw new UserError('account_out_of_date');
    await deps.storage.oidc.destroy(PENDING_MODEL, s.uid);
    const { factor } = newTotpFactor(deps.box, { id: crypto.randomUUID(), accountId: s.account.id, label, enrolledVia: 'self', secret });
    await deps.storage.factors.add(factor);
    // The code just used is spent: the factor starts at its time step (RFC 6238 §5.2).
    await deps.storage.factors.advance(factor.id, step, new Date(now));
    return afterAdding(deps, ctx, s, { kind: 'totp', factor, done: 'totp_added' });
  };
}

/**
 * The required-level step: after each proven method, compare what the login has proven
 * (its `amr`, policies/assurance.ts) with the level required, and go on:
 * - met → the enrolment prompt if policy asks for one and the account has no second
 *   factor, else the finish step;
 * - not met, and the account holds a method that can close the gap → the second-factor page;
 * - not met, and it holds none → the policy's `missing_factor`: enrol one now (only up to the
 *   configured risk level; flagged in the audit trail), or refuse.
 * A refusal of a first login looks exactly like a wrong password (it stays counted as a
 * failure): it must not tell a password-guesser that the password was right.
 */
import { signInName } from '../methods/ldap.ts';
import type { Context } from 'koa';
import { ERROR_CODES } from '../../idp/errors.ts';
import type { FactorRecord } from '../../models/types.ts';
import { knowledgeOnly, levelIndexOf, type AssuranceLevel } from '../../policies/assurance.ts';
import { RISK_LEVELS } from '../../policies/schema.ts';
import { clientName, renderPage, type Details, type InteractionDeps } from '../context.ts';
import { finishLogin } from '../finish.ts';
import { newTotpSecret, otpauthUri, qrSvg } from '../methods/totp.ts';
import { ENROLMENT_MARKER, enrolmentMarkerId, pendingTotpContext, provenAmr, type LoginTransaction } from '../transaction.ts';
import { loginForm } from './login-view.ts';
import { enrolPage, secondFactorPage } from '../views/stepup.ts';

/**
 * Which of the account's factors, added to what the login has proven, meet `level`: a method
 * is offered only if it closes the gap (a code after a passkey without user verification adds
 * nothing: both are held factors, assurance.ts strengthOf).
 */
export function usableFactors(level: AssuranceLevel, factors: readonly FactorRecord[], passkeys: boolean, proven: readonly string[] = ['pwd']): { totp: boolean; recovery: boolean; passkey: boolean } {
  const hasUnusedCodes = (f: FactorRecord) => f.kind === 'recovery' && (f.recovery?.hashes.length ?? 0) > (f.recovery?.used.length ?? 0);
  const closes = (amr: string[]) => levelIndexOf([...proven, ...amr], [level]) === 0;
  // Browsers run WebAuthn only for a domain over https (or localhost): methods/webauthn.ts
  // `supported`. A passkey is asked with user verification when the level needs it.
  const passkey = passkeys && factors.some((f) => f.kind === 'webauthn') && closes(['hwk', 'user']);
  return {
    totp: factors.some((f) => f.kind === 'totp') && closes(['otp']),
    recovery: factors.some(hasUnusedCodes) && closes(['otp']),
    passkey,
  };
}

const rank = (l: string) => RISK_LEVELS.indexOf(l as (typeof RISK_LEVELS)[number]);

/** The interaction's expiry (epoch ms): the transaction dies with it. */
export const expiryOf = (details: Details) => (typeof details.exp === 'number' ? details.exp * 1000 : Date.now() + 600_000);

/** Words for why the second step is asked, for the user (not the reasons: those stay in the audit trail). */
function why(tx: LoginTransaction, level: AssuranceLevel): string {
  if (tx.mode === 'stepup') return level.phishing_resistant
    ? 'The application asks for a stronger sign-in with a passkey for what you are about to do.'
    : 'The application asks you to confirm it is you before going on.';
  return 'This sign-in needs a second step to confirm it is you.';
}

export interface PageState {
  error?: string | undefined;
  errorFor?: 'totp' | 'recovery' | 'passkey' | undefined;
  status?: number;
}

/** Renders the page the transaction is at: the second factor, or enrolment. */
/** `known`: the usable methods, when the caller has just worked them out. */
export async function renderStep(
  deps: InteractionDeps, ctx: Context, details: Details, tx: LoginTransaction, state: PageState = {}, known?: ReturnType<typeof usableFactors>,
): Promise<void> {
  const levels = deps.risk.policy.assurance.levels;
  const level = levels[Math.max(tx.required, 0)]!;
  const base = `/interaction/${details.uid}`;
  const csrf = deps.csrf.issue(ctx, details.uid);
  const name = await clientName(deps.provider, details.params.client_id);
  const common = { csrf, clientName: name, abortAction: `${base}/abort`, error: state.error };
  const passkeyActions = { optionsAction: `${base}/passkey/options`, action: `${base}/passkey` };
  if (tx.enrolment === 'required' || tx.enrolment === 'offer' || tx.enrolment === 'require') {
    // An app cannot meet a phishing-resistant level the login needs: then only a passkey.
    const appAllowed = !(tx.enrolment === 'required' && level.phishing_resistant);
    renderPage(ctx, enrolPage({
      ...common,
      why: tx.enrolment === 'required'
        ? 'This sign-in needs a second step, and your account does not have one yet. Set one up now to continue.'
        : tx.enrolment === 'require'
          ? 'Your organisation requires a second step for your account. Set one up now to continue.'
          : 'Protect your account with a second step: even someone who learns your password cannot sign in without it.',
      app: appAllowed ? { ...(await pendingApp(deps, details, tx)), action: `${base}/enrol/totp` } : undefined,
      skipAction: tx.enrolment === 'offer' ? `${base}/enrol/skip` : undefined,
      passkey: deps.webauthn.supported ? passkeyActions : undefined,
      error: state.errorFor === 'passkey' ? undefined : state.error,
      passkeyError: state.errorFor === 'passkey' ? state.error : undefined,
    }), state.status ?? 200);
    return;
  }
  const usable = known ?? usableFactors(level, await deps.storage.factors.list(tx.accountId), deps.webauthn.supported, provenAmr(tx));
  renderPage(ctx, secondFactorPage({
    ...common, why: why(tx, level), errorFor: state.errorFor,
    totpAction: usable.totp ? `${base}/totp` : undefined,
    recoveryAction: usable.recovery ? `${base}/recovery` : undefined,
    passkey: usable.passkey ? passkeyActions : undefined,
  }), state.status ?? 200);
}

/**
 * The authenticator app the enrolment page offers: its secret made once per login, kept
 * sealed in the login's state with a marker its one enrolment consumes (steps/enrol.ts).
 */
async function pendingApp(deps: InteractionDeps, details: Details, tx: LoginTransaction): Promise<{ qrSvg: string; secret: string }> {
  if (!tx.pendingTotp) {
    tx.pendingTotp = deps.box.seal(newTotpSecret(), pendingTotpContext(tx));
    await deps.transactions.put(tx, expiryOf(details));
    await deps.storage.oidc.upsert({ model: ENROLMENT_MARKER, id: enrolmentMarkerId(tx), payload: {}, expiresAt: expiryOf(details) });
  }
  const secret = deps.box.open(tx.pendingTotp, pendingTotpContext(tx));
  const account = await deps.storage.accounts.findById(tx.accountId);
  const uri = otpauthUri(secret, { issuer: deps.issuerName, account: account ? signInName(account) : tx.accountId });
  return { qrSvg: await qrSvg(uri), secret };
}

/**
 * Moves the login on after a method was proven (or at its start): see the file comment.
 * `typed`: the username as typed in this request's sign-in form, for a refusal's page.
 */
export async function proceed(deps: InteractionDeps, ctx: Context, details: Details, tx: LoginTransaction, typed?: { username: string }): Promise<void> {
  const policy = deps.risk.policy;
  const levels = policy.assurance.levels;
  const have = levelIndexOf(provenAmr(tx), levels);
  // Read only where a decision needs them: a login that meets its level with no enrolment to
  // offer finishes without it.
  let factors: FactorRecord[] | undefined;
  const accountFactors = async () => (factors ??= await deps.storage.factors.list(tx.accountId));

  // A step-up must prove something now: carried methods alone never renew a session (a
  // session idle past its level's limit keeps what the user knows; the held factor is asked).
  if (tx.mode === 'stepup' && tx.proven.length === 0 && have >= tx.required) {
    tx.carried = knowledgeOnly(tx.carried);
    if (levelIndexOf(tx.carried, levels) >= tx.required) tx.carried = [];
    if (!tx.carried.length) return refuse(deps, ctx, details, tx, 'fresh_authentication_needed', typed);
    return proceed(deps, ctx, details, tx, typed);
  }

  if (have >= tx.required) {
    const prompt = policy.assurance.enrolment.prompt;
    // The offer is made only up to the risk at which policy lets a login bind an
    // authenticator at all (missing_factor.enroll_max_level): whoever holds only the password
    // at a riskier moment must not bind their own.
    const mayEnrol = rank(tx.risk.level) <= rank(policy.assurance.enrolment.missing_factor.enroll_max_level);
    if (tx.mode === 'login' && tx.enrolment === undefined && prompt !== 'off' && mayEnrol
      && !(await accountFactors()).some((f) => f.kind === 'totp' || f.kind === 'webauthn')) {
      tx.enrolment = prompt;
      await deps.transactions.put(tx, expiryOf(details));
      return renderStep(deps, ctx, details, tx);
    }
    // An enrolment asked for and not yet done (or declined, where that is allowed) holds the login.
    if (tx.enrolment === 'offer' || tx.enrolment === 'require' || tx.enrolment === 'required') return renderStep(deps, ctx, details, tx);
    return finishLogin(deps, ctx, details, tx);
  }

  const level = levels[tx.required]!;
  const usable = usableFactors(level, await accountFactors(), deps.webauthn.supported, provenAmr(tx));
  if (usable.totp || usable.recovery || usable.passkey) {
    await deps.transactions.put(tx, expiryOf(details));
    deps.events.emit('stepup.required', { account: tx.accountId, client: details.params.client_id, required: level.name, mode: tx.mode, event: tx.eventId });
    // The funnel's top: each method the page offers.
    if (usable.totp) deps.events.metrics.stepup('totp', 'prompted');
    if (usable.passkey) deps.events.metrics.stepup('webauthn', 'prompted');
    if (usable.recovery) deps.events.metrics.stepup('recovery', 'prompted');
    return renderStep(deps, ctx, details, tx, {}, usable);
  }

  // The account cannot meet the level with what it holds.
  const rule = policy.assurance.enrolment.missing_factor;
  // An authenticator app gives a second factor but is not phishing-resistant: that level
  // can be enrolled only with a passkey, where browsers can use them.
  const enrollable = !level.phishing_resistant || deps.webauthn.supported;
  if (rule.action === 'enroll' && enrollable && rank(tx.risk.level) <= rank(rule.enroll_max_level)) {
    tx.enrolment = 'required';
    await deps.transactions.put(tx, expiryOf(details));
    deps.events.emit('stepup.required', { account: tx.accountId, client: details.params.client_id, required: level.name, mode: tx.mode, enrol: true, event: tx.eventId });
    deps.events.metrics.stepup('enrolment', 'prompted');
    return renderStep(deps, ctx, details, tx);
  }
  await refuse(deps, ctx, details, tx, 'missing_factor', typed);
}

/**
 * Ends the login without a token. A first login is answered like a wrong password, and its
 * attempt stays counted; a step-up of an existing session (the password was proven before)
 * goes back to the RP with `unmet_authentication_requirements` (OIDC Core errata §3.1.2.6).
 */
export async function refuse(deps: InteractionDeps, ctx: Context, details: Details, tx: LoginTransaction, reason: 'missing_factor' | 'fresh_authentication_needed', typed?: { username: string }): Promise<void> {
  await deps.transactions.delete(details.uid);
  deps.events.emit('stepup.refused', { account: tx.accountId, client: details.params.client_id, reason, mode: tx.mode, event: tx.eventId }, 'warn');
  deps.events.metrics.stepupRefused(reason);
  if (tx.mode === 'stepup') {
    const redirectTo = await deps.provider.interactionResult(ctx.req, ctx.res, {
      error: 'unmet_authentication_requirements',
      error_description: 'the account cannot meet the authentication level required',
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(redirectTo);
    return;
  }
  // The page of a wrong password, exactly (login-view.ts).
  renderPage(ctx, await loginForm(deps, ctx, details, { username: typed?.username, error: ERROR_CODES.invalid_credentials.message }), ERROR_CODES.invalid_credentials.status);
}

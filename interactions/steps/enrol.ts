/**
 * Enrolment during a login: POST /interaction/:uid/enrol/totp confirms an authenticator app
 * with a code from it; /enrol/skip declines an optional offer; /continue goes on after the
 * recovery codes were shown. The secret was generated server-side when the page was shown and
 * kept sealed in the transaction, never taken from the form. An enrolment the login needed
 * (policy `missing_factor: enroll`) is flagged in the audit trail: whoever held only the
 * password at that moment bound this authenticator.
 */
import crypto from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { renderPage, type Details, type InteractionDeps } from '../context.ts';
import type { AuthMethod } from '../methods/method.ts';
import type { FactorRecord } from '../../models/types.ts';
import { factorChange } from '../audit.ts';
import { field } from '../form.ts';
import { newRecoveryFactor } from '../methods/recovery.ts';
import { matchStep, newTotpFactor, totpMethod } from '../methods/totp.ts';
import { ENROLMENT_MARKER, enrolmentMarkerId, pendingTotpContext, type LoginTransaction } from '../transaction.ts';
import { recoveryCodesPage } from '../views/stepup.ts';
import { expiryOf, proceed, renderStep } from './level.ts';
import { loadStep } from './second-factor.ts';

const enrolling = (e: string | undefined) => e === 'required' || e === 'offer' || e === 'require';

export function enrolTotp(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const { details, form, tx } = await loadStep(deps, ctx);
    if (!enrolling(tx.enrolment) || !tx.pendingTotp) throw new UserError('interaction_out_of_date');
    const level = deps.risk.policy.assurance.levels[Math.max(tx.required, 0)];
    if (tx.enrolment === 'required' && level?.phishing_resistant) throw new UserError('interaction_out_of_date');
    const code = field(form, 'code', 64, { allowEmpty: true }).trim();
    if (!code) return renderStep(deps, ctx, details, tx, { status: 400, error: 'Enter the 6-digit code your authenticator app shows.' });
    const secret = deps.box.open(tx.pendingTotp, pendingTotpContext(tx));
    const now = Date.now();
    const step = matchStep(secret, code, now);
    if (step === undefined) {
      // The funnel of an enrolment the level needed (prompted and passed are counted too).
      if (tx.enrolment === 'required') deps.events.metrics.stepup('enrolment', 'failed');
      return renderStep(deps, ctx, details, tx, { error: 'That code is not right. Check that the app added the account, then enter the code it shows now.' });
    }
    // One enrolment per pending secret, also under parallel submissions and across instances:
    // the marker written with the secret is consumed once (port.ts OidcStore.consume).
    if (!(await deps.storage.oidc.consume(ENROLMENT_MARKER, enrolmentMarkerId(tx), Math.floor(now / 1000)))) throw new UserError('interaction_out_of_date');
    const via = tx.enrolment === 'required' ? 'login' : 'self';
    const { factor } = newTotpFactor(deps.box, { id: crypto.randomUUID(), accountId: tx.accountId, label: 'Authenticator app', enrolledVia: via, secret });
    await deps.storage.factors.add(factor);
    // The code just used is spent: the factor starts at its time step (RFC 6238 §5.2).
    await deps.storage.factors.advance(factor.id, step, new Date(now));
    return afterEnrolment(deps, ctx, details, tx, { kind: 'totp', method: totpMethod.id, amr: [...totpMethod.amr], at: now, factor });
  };
}

/**
 * A second factor was enrolled in this login (an authenticator app, or a passkey via
 * steps/passkey-login.ts): recorded in the audit trail, counted as proven (the user just
 * showed they hold it), and, with the account's first second factor, the recovery codes.
 */
export async function afterEnrolment(
  deps: InteractionDeps, ctx: Context, details: Details, tx: LoginTransaction,
  enrolled: { kind: 'totp' | 'webauthn'; method: AuthMethod['id']; amr: string[]; at: number; factor: Pick<FactorRecord, 'id' | 'kind' | 'label' | 'enrolledVia'> },
): Promise<void> {
  const via = tx.enrolment === 'required' ? 'login' : 'self';
  // Flagged: bound by whoever held the password at a moment the engine found risky.
  const flagged = via === 'login' || tx.risk.level !== 'low';
  const client = typeof details.params.client_id === 'string' ? details.params.client_id : undefined;
  deps.events.emit('mfa.enrolled', {
    account: tx.accountId, client, kind: enrolled.kind, via, flagged, risk: tx.risk.level, event: tx.eventId,
  }, flagged ? 'warn' : 'info');
  // The enrolment a level needed is that step-up's factor (idp_stepup_total method=enrolment).
  if (tx.enrolment === 'required') deps.events.metrics.stepup('enrolment', 'passed');
  const during = { via, flagged, risk: tx.risk.level, event: tx.eventId, client };
  await deps.audit(factorChange(ctx, tx.accountId, 'factor.enrol', enrolled.factor, during));
  // An authenticator bound in this very login proves only that the enrolling browser holds
  // it. It counts towards this login's level only where the login needed it and policy let it
  // be enrolled (missing_factor: enroll); an optional enrolment leaves the login at what it
  // proved before (a password alone stays AAL1).
  if (tx.enrolment === 'required') tx.proven.push({ method: enrolled.method, amr: enrolled.amr, at: enrolled.at, enrolled: true });
  tx.enrolment = 'done';
  tx.pendingTotp = undefined;

  // Recovery codes come with the first second factor: the way back in when the device is lost.
  const existing = await deps.storage.factors.list(tx.accountId);
  if (existing.some((f) => f.kind === 'recovery')) return proceed(deps, ctx, details, tx);
  const { factor: codesFactor, codes } = newRecoveryFactor(deps.recoveryKey, { id: crypto.randomUUID(), accountId: tx.accountId, enrolledVia: via });
  await deps.storage.factors.add(codesFactor);
  await Promise.all([
    deps.audit(factorChange(ctx, tx.accountId, 'factor.enrol', codesFactor, during)),
    deps.transactions.put(tx, expiryOf(details)),
  ]);
  // Shown once, in this response: never stored in the clear, never in a redirect.
  renderPage(ctx, recoveryCodesPage({ codes, continueAction: `/interaction/${details.uid}/continue`, csrf: deps.csrf.issue(ctx, details.uid) }));
}

export function skipEnrolment(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const { details, tx } = await loadStep(deps, ctx);
    // Only an offer can be declined; a required enrolment cannot be skipped by a crafted POST.
    if (tx.enrolment !== 'offer') throw new UserError('interaction_out_of_date');
    tx.enrolment = 'skipped';
    tx.pendingTotp = undefined;
    deps.events.emit('mfa.enrolment_skipped', { account: tx.accountId, client: details.params.client_id });
    return proceed(deps, ctx, details, tx);
  };
}

export function continueLogin(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const { details, tx } = await loadStep(deps, ctx);
    // Only after an enrolment (the recovery codes page): never a way round one.
    if (tx.enrolment !== 'done') throw new UserError('interaction_out_of_date');
    return proceed(deps, ctx, details, tx);
  };
}

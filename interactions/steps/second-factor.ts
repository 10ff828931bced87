/**
 * POST /interaction/:uid/totp and /recovery — the second factor. In order: form + CSRF →
 * the login's transaction (a first factor or a session already identified the account) →
 * throttle (the account's second-factor bucket, counted before the check) → verify, with
 * replay refused atomically in the store → the required-level step (level.ts).
 */
import type { Context, Middleware } from 'koa';
import { ERROR_CODES, UserError } from '../../idp/errors.ts';
import { loadInteraction, type Details, type InteractionDeps } from '../context.ts';
import { field, readForm } from '../form.ts';
import { recoveryMethod, useRecoveryCode } from '../methods/recovery.ts';
import { totpMethod, verifyTotp } from '../methods/totp.ts';
import type { LoginTransaction } from '../transaction.ts';
import { proceed, renderStep, type PageState } from './level.ts';
import { waitText } from './wait.ts';

/** The common start of every POST after the first factor. */
export async function loadStep(deps: InteractionDeps, ctx: Context): Promise<{ details: Details; form: Map<string, string>; tx: LoginTransaction }> {
  const details = await loadInteraction(ctx, deps.provider, 'login');
  const form = await readForm(ctx, deps.maxFormBytes);
  deps.csrf.verify(ctx, details.uid, form.get('csrf'));
  const tx = await deps.transactions.get(details.uid);
  // No first factor yet, or the login already finished or was refused.
  if (!tx) throw new UserError('interaction_out_of_date');
  return { details, form, tx };
}

/** Counts the attempt, or says how long to wait (RFC 6585 §4: 429 + Retry-After). */
async function throttled(deps: InteractionDeps, ctx: Context, tx: LoginTransaction, errorFor: PageState['errorFor']): Promise<PageState | undefined> {
  const r = await deps.throttle.beginFactor(tx.accountId);
  if ('ok' in r) return undefined;
  deps.events.emit('login.throttled', { account: tx.accountId, factor: errorFor });
  deps.events.metrics.throttled(errorFor === 'recovery' ? 'recovery' : 'totp');
  const wait = r.until === undefined ? undefined : r.until - Date.now();
  if (wait !== undefined) ctx.set('retry-after', String(Math.max(1, Math.ceil(wait / 1000))));
  return {
    status: ERROR_CODES.login_paused.status, errorFor,
    error: `${ERROR_CODES.login_paused.message} ${wait === undefined ? 'Ask an administrator to unlock the account.' : `Try again in ${waitText(wait)}.`}`,
  };
}

function codeField(form: Map<string, string>): string {
  return field(form, 'code', 64, { allowEmpty: true }).trim();
}

export function totp(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const { details, form, tx } = await loadStep(deps, ctx);
    const code = codeField(form);
    if (!code) return renderStep(deps, ctx, details, tx, { status: 400, errorFor: 'totp', error: 'Enter the 6-digit code from your authenticator app.' });
    const paused = await throttled(deps, ctx, tx, 'totp');
    if (paused) return renderStep(deps, ctx, details, tx, paused);
    const now = Date.now();
    let result: 'ok' | 'invalid' | 'replayed' = 'invalid';
    for (const f of await deps.storage.factors.list(tx.accountId)) {
      if (f.kind !== 'totp') continue;
      result = await verifyTotp(deps.storage.factors, deps.box, f, code, now);
      if (result !== 'invalid') break;
    }
    if (result !== 'ok') {
      deps.events.emit('stepup.failed', { account: tx.accountId, client: details.params.client_id, method: 'totp', reason: result, event: tx.eventId });
      deps.events.metrics.stepup('totp', 'failed');
      return renderStep(deps, ctx, details, tx, {
        errorFor: 'totp',
        error: result === 'replayed'
          ? 'That code was already used. Wait for the app to show a new one and enter it.'
          : 'That code is not right. Enter the code your authenticator app shows now.',
      });
    }
    tx.proven.push({ method: totpMethod.id, amr: [...totpMethod.amr], at: now });
    deps.events.emit('stepup.passed', { account: tx.accountId, client: details.params.client_id, method: 'totp', event: tx.eventId });
    deps.events.metrics.stepup('totp', 'passed');
    return proceed(deps, ctx, details, tx);
  };
}

export function recovery(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const { details, form, tx } = await loadStep(deps, ctx);
    const code = codeField(form);
    if (!code) return renderStep(deps, ctx, details, tx, { status: 400, errorFor: 'recovery', error: 'Enter one of your recovery codes.' });
    const paused = await throttled(deps, ctx, tx, 'recovery');
    if (paused) return renderStep(deps, ctx, details, tx, paused);
    const now = Date.now();
    const used = await useRecoveryCode(deps.storage.factors, deps.recoveryKey, tx.accountId, code, new Date(now));
    if (!used) {
      deps.events.emit('stepup.failed', { account: tx.accountId, client: details.params.client_id, method: 'recovery', event: tx.eventId });
      deps.events.metrics.stepup('recovery', 'failed');
      return renderStep(deps, ctx, details, tx, { errorFor: 'recovery', error: 'That recovery code is not right, or it was already used.' });
    }
    const left = (used.recovery?.hashes.length ?? 0) - (used.recovery?.used.length ?? 0);
    tx.proven.push({ method: recoveryMethod.id, amr: [...recoveryMethod.amr], at: now });
    // Audit trail: a recovery code is the way in of someone who lost their device, or of
    // someone who found the codes.
    deps.events.emit('mfa.recovery_used', { account: tx.accountId, client: details.params.client_id, left, event: tx.eventId }, 'warn');
    deps.events.metrics.stepup('recovery', 'passed');
    return proceed(deps, ctx, details, tx);
  };
}

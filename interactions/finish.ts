/**
 * The finish step: the only place trust is written (ARCHITECTURE.md "One login"). It runs
 * once the whole login has succeeded (every factor the level needs proven, the risk decision
 * met), never on the way: a right password that the engine blocked or challenged leaves the
 * failure counters counted, the browser unrecognised and the trusted history unchanged until
 * the challenge is passed.
 */
import type { Context } from 'koa';
import { assertedAmr, levelIndexOf } from '../policies/assurance.ts';
import { UserError } from '../idp/errors.ts';
import { saveInteractionResult, type Details, type InteractionDeps } from './context.ts';
import { saveLoginRecord } from './login-record.ts';
import { provenAmr, type LoginTransaction } from './transaction.ts';

/** Number of recognised browsers remembered per account. */
const TRUSTED_DEVICES_KEPT = 20;

/** Methods that prove something held, beyond what is known (a password, LDAP). */
const POSSESSION: ReadonlySet<string> = new Set(['totp', 'recovery', 'webauthn']);

/**
 * Whether this interaction proved a factor the account already had: then the person is the
 * user, whatever the risk, and the login's behaviour and device key may join the templates.
 * A factor enrolled in this very login does not count: whoever holds the password can bind
 * their own authenticator where policy lets a risky login enrol (assurance.yml
 * missing_factor: enroll), and must not teach the engine their typing or device that way.
 */
const steppedUp = (tx: LoginTransaction) => tx.proven.some((p) => POSSESSION.has(p.method) && !p.enrolled);

export async function finishLogin(deps: InteractionDeps, ctx: Context, details: Details, tx: LoginTransaction): Promise<void> {
  const levels = deps.risk.policy.assurance.levels;
  const methods = provenAmr(tx);
  const level = levelIndexOf(methods, levels);
  // The steps finish only when the level is met; anything else is a bug, never a weaker token.
  if (level < 0 || level < tx.required) throw new Error(`finish reached below the required level (${level} < ${tx.required})`);
  // RFC 8176: the methods used, `mfa` for two factors or more, `rba` since the risk engine
  // assessed this login. A new auth_time: the user authenticated now (OIDC Core §2).
  if (tx.session) {
    // A step-up carries the session's methods over: only onto that same session, still live.
    const session = await deps.provider.Session.get(ctx as unknown as Parameters<typeof deps.provider.Session.get>[0]);
    if (session.accountId !== tx.accountId || session.uid !== tx.session.uid || session.authTime() !== tx.session.authTime) {
      await deps.transactions.delete(tx.uid);
      throw new UserError('interaction_out_of_date');
    }
  }
  const amr = assertedAmr(methods, true);
  const authTime = Math.floor(Date.now() / 1000);
  // Before the result: no token of this login may exist without the record its `risk` claim
  // is read from.
  const device = tx.context.deviceKey !== undefined ? { id: tx.deviceId, key: tx.context.deviceKey } : undefined;
  await saveLoginRecord(deps.storage, { accountId: tx.accountId, authTime, risk: tx.risk, amr, device }, deps.loginRecordTtl);
  // The result first: if the interaction can no longer be finished (expired meanwhile), the
  // login did not succeed and no trust is written.
  const redirectTo = await saveInteractionResult(details, {
    login: { accountId: tx.accountId, acr: levels[level]!.acr, amr, ts: authTime },
  });
  await Promise.all([
    deps.throttle.succeeded(tx.ticket, tx.accountId),
    // A browser that is the account's newest recognised one already needs no write.
    tx.deviceNewest ? undefined : deps.storage.accounts.addTrustedDevice(tx.accountId, tx.deviceId, TRUSTED_DEVICES_KEPT),
    deps.risk.trust(tx.context, { level: tx.risk.level, monitorLevel: tx.monitorLevel, steppedUp: steppedUp(tx) }),
    deps.transactions.discard(tx),
  ]);
  // A login (not a step-up of a session) finished: with a second factor or enrolment it asked for, or without.
  if (tx.mode === 'login') deps.events.metrics.login('success', steppedUp(tx) || tx.proven.some((p) => p.enrolled) ? 'step_up' : 'allow');
  deps.events.emit('login.succeeded', {
    account: tx.accountId, client: details.params.client_id, acr: levels[level]!.name, amr: amr.join(' '), mode: tx.mode, event: tx.eventId,
  });
  ctx.status = 303;
  ctx.redirect(redirectTo);
}

/**
 * The finish step: the only place trust is written (ARCHITECTURE.md "One login"). It runs
 * once the whole login has succeeded (first factor right, the risk decision met), never on
 * the way: a right password that the engine blocked or challenged leaves the failure
 * counters counted, the browser unrecognised and the trusted history unchanged.
 */
import type { Context } from 'koa';
import type { Account } from '../models/types.ts';
import type { InteractionDeps } from './context.ts';
import type { RiskResult } from './risk.ts';
import type { Ticket } from './throttle.ts';
import type { AuthMethod } from './methods/method.ts';
import { riskClaim, saveLoginRecord } from './login-record.ts';

/** Number of recognised browsers remembered per account. */
const TRUSTED_DEVICES_KEPT = 20;

interface FinishedLogin {
  account: Account;
  ticket: Ticket;
  risk: RiskResult;
  deviceId: string;
  methods: readonly AuthMethod[];
  clientId: string | undefined;
}

export async function finishLogin(deps: InteractionDeps, ctx: Context, f: FinishedLogin): Promise<void> {
  // What a password proves: the weakest level of the policy snapshot that scored it.
  const achieved = f.risk.policy.assurance.levels[0]!;
  const amr = [...new Set(f.methods.flatMap((m) => m.amr))];
  const ts = Math.floor(Date.now() / 1000);
  // Before the result: no token of this login may exist without the record its `risk` claim
  // is read from.
  await saveLoginRecord(deps.storage, { accountId: f.account.id, authTime: ts, risk: riskClaim(f.risk.assessment), amr }, deps.loginRecordTtl);
  // The result first: if the interaction can no longer be finished (expired meanwhile), the
  // login did not succeed and no trust is written.
  const redirectTo = await deps.provider.interactionResult(ctx.req, ctx.res, {
    login: { accountId: f.account.id, acr: achieved.acr, amr, ts },
  }, { mergeWithLastSubmission: false });
  await Promise.all([
    deps.throttle.succeeded(f.ticket, f.account.id),
    deps.storage.accounts.addTrustedDevice(f.account.id, f.deviceId, TRUSTED_DEVICES_KEPT),
    deps.risk.trust(f.risk),
  ]);
  deps.events.emit('login.succeeded', { account: f.account.id, client: f.clientId, event: f.risk.eventId });
  ctx.status = 303;
  ctx.redirect(redirectTo);
}

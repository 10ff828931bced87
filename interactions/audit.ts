/**
 * What the interaction steps and the account page put on the audit trail (idp/audit.ts; README
 * "Audit trail"): factor enrolments and removals, by the user themselves. The trail receives
 * the factor's description only, never its secret (a TOTP seed, the codes' hashes, a passkey's
 * key); it masks secrets again itself.
 */
import type { Context } from 'koa';
import type { AuditInput, FactorRecord } from '../models/types.ts';
import { clientIp } from './context.ts';

/** What the trail keeps of a factor. */
export function factorSummary(f: Pick<FactorRecord, 'id' | 'kind' | 'label' | 'enrolledVia'>): Record<string, unknown> {
  return { id: f.id, kind: f.kind, label: f.label, enrolledVia: f.enrolledVia };
}

/** A factor the user enrolled (`factor.enrol`) or removed (`factor.remove`) on their own account, from this request. */
export function factorChange(
  ctx: Context, accountId: string, action: 'factor.enrol' | 'factor.remove',
  factor: Pick<FactorRecord, 'id' | 'kind' | 'label' | 'enrolledVia'>, detail: Record<string, unknown> = {},
): AuditInput {
  return {
    actor: { kind: 'user', id: accountId, ip: clientIp(ctx) },
    action,
    outcome: 'success',
    target: { type: 'user', id: accountId },
    ...(action === 'factor.enrol' ? { after: factorSummary(factor) } : { before: factorSummary(factor) }),
    detail,
  };
}

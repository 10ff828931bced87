/**
 * What one completed login proved and how risky it looked, kept for the tokens that login
 * will produce: the `risk` claim of its ID tokens (idp/tokens.ts) is read from here, by
 * account and `auth_time`, whenever oidc-provider mints one (code exchange, refresh,
 * userinfo). Written once, by the finish step, before the login result is handed to
 * oidc-provider, so no token of the login can exist without its record.
 *
 * Stored through the generic store of oidc-provider artefacts (model `LoginRecord`), keyed
 * `<accountId>:<auth_time>`, and dropped when no token of the login can be minted any more.
 */
import type { Storage } from '../adapters/storage/port.ts';
import type { RiskLevel } from '../policies/schema.ts';
import type { Assessment } from '../policies/types.ts';

const MODEL = 'LoginRecord';

/**
 * The `risk` claim (README "The risk claim"): no `detail` of the reasons, which may name
 * places or networks; and only what was enforced: parts in monitor mode are left out.
 */
export interface RiskClaim {
  score: number;
  level: RiskLevel;
  reasons: { factor: string; contribution: number }[];
  policy_version: string;
  model_version: string;
}

export interface LoginRecord {
  accountId: string;
  /** Epoch seconds: the `ts` of the login result, which becomes the session's and the tokens' `auth_time`. */
  authTime: number;
  risk: RiskClaim;
  /** RFC 8176 values the login proved. */
  amr: string[];
  /**
   * The device key the login proved (its RFC 7638 thumbprint) and the device cookie it came
   * with: a later authorization on the session, from the same browser, is scored with it
   * (interactions/risk.ts `sessionDeviceKey`), since no form is posted there to prove it again.
   */
  device?: { id: string; key: string } | undefined;
}

/** Four decimals: enough to compare, without pretending to more precision than the engine has. */
const round = (x: number) => Math.round(x * 10_000) / 10_000;

export function riskClaim(a: Assessment): RiskClaim {
  return {
    score: round(a.score),
    level: a.level,
    reasons: a.reasons.filter((r) => !r.monitor).map((r) => ({ factor: r.factor, contribution: round(r.contribution) })),
    policy_version: a.policyVersion,
    model_version: a.modelVersion,
  };
}

const recordId = (accountId: string, authTime: number) => `${accountId}:${authTime}`;

/**
 * `ttlSeconds`: how long tokens of this login can still be minted after `authTime` (the
 * longer of the session's absolute lifetime and the refresh tokens').
 */
export async function saveLoginRecord(storage: Storage, record: LoginRecord, ttlSeconds: number): Promise<void> {
  await storage.oidc.upsert({
    model: MODEL,
    id: recordId(record.accountId, record.authTime),
    payload: { risk: record.risk, amr: record.amr, ...(record.device ? { device: record.device } : {}) },
    expiresAt: (record.authTime + ttlSeconds) * 1000,
    // Deleted with the account (OidcStore.removeByAccount): it holds the login's risk and device.
    accountId: record.accountId,
  });
}

const isRiskClaim = (x: unknown): x is RiskClaim =>
  typeof x === 'object' && x !== null && typeof (x as RiskClaim).score === 'number' && Array.isArray((x as RiskClaim).reasons);

export async function findLoginRecord(storage: Storage, accountId: string, authTime: number): Promise<LoginRecord | undefined> {
  const rec = await storage.oidc.find(MODEL, recordId(accountId, authTime), Date.now());
  if (!rec || !isRiskClaim(rec.payload.risk)) return undefined;
  const amr = Array.isArray(rec.payload.amr) ? rec.payload.amr.filter((v): v is string => typeof v === 'string') : [];
  const d = rec.payload.device as { id?: unknown; key?: unknown } | undefined;
  const device = typeof d?.id === 'string' && typeof d.key === 'string' ? { id: d.id, key: d.key } : undefined;
  return { accountId, authTime, risk: rec.payload.risk, amr, device };
}

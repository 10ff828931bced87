/**
 * Assurance levels as data: what a set of authentication methods proves, what a request
 * asks for, and what a session still meets after time has passed. Pure functions over the
 * policy's `assurance.levels` (schema.ts); the interaction-policy check, the login steps and
 * the engine all use these, so the level a token asserts is always computed the same way
 * from the methods actually used (NIST SP 800-63B-4: a level is earned by authenticators,
 * never set by hand; a risk check may raise the requirement but never counts as a factor).
 */
import type { AssurancePolicy } from './schema.ts';

export type AssuranceLevel = AssurancePolicy['levels'][number];

/** RFC 8176 §2 values that prove something the user knows. */
const KNOWLEDGE: ReadonlySet<string> = new Set(['pwd', 'pin', 'kba']);
/** ... something the user holds (an authenticator app, a recovery code, a key, a phone). */
const POSSESSION: ReadonlySet<string> = new Set(['otp', 'hwk', 'swk', 'sms', 'tel', 'sc']);
/** Proof of possession of a key bound to the origin: WebAuthn (hardware- or software-secured). */
const CRYPTOGRAPHIC: ReadonlySet<string> = new Set(['hwk', 'swk']);
/** Values that describe the login rather than prove a factor: never carried, never counted. */
const DERIVED: ReadonlySet<string> = new Set(['mfa', 'rba']);

export interface Strength {
  /** Distinct factors: knowledge, possession, and a passkey's own user verification. */
  factors: number;
  /** A passkey / security key with user verification (NIST SP 800-63B-4 §3.2.5). */
  phishingResistant: boolean;
}

export function strengthOf(amr: readonly string[]): Strength {
  const knows = amr.some((v) => KNOWLEDGE.has(v));
  const holds = amr.some((v) => POSSESSION.has(v));
  const crypto = amr.some((v) => CRYPTOGRAPHIC.has(v));
  // `user` (RFC 8176: user presence *and* verification by the authenticator, e.g. a PIN or
  // a biometric) makes a passkey a multi-factor cryptographic authenticator (NIST SP
  // 800-63B-4 §3.1.7): its verification counts as a factor only together with the key.
  const verified = crypto && amr.includes('user');
  return { factors: Number(knows) + Number(holds) + Number(verified), phishingResistant: verified };
}

const meets = (s: Strength, l: AssuranceLevel) => s.factors >= l.factors && (!l.phishing_resistant || s.phishingResistant);

/** Index of the strongest level these methods meet, or -1 when none (no factor at all). */
export function levelIndexOf(amr: readonly string[], levels: readonly AssuranceLevel[]): number {
  const s = strengthOf(amr);
  let best = -1;
  levels.forEach((l, i) => {
    if (meets(s, l)) best = i;
  });
  return best;
}

/**
 * What `amr` a login result asserts: the methods used, plus `mfa` when two or more factors
 * were used and `rba` when the risk engine took part (RFC 8176 §2), without duplicates.
 */
export function assertedAmr(methods: readonly string[], riskAssessed: boolean): string[] {
  const out = [...new Set(methods.filter((v) => !DERIVED.has(v)))];
  if (strengthOf(out).factors >= 2) out.push('mfa');
  if (riskAssessed) out.push('rba');
  return out;
}

/** The session as the level computations see it (epoch seconds). */
export interface SessionAuth {
  amr: readonly string[];
  /** auth_time of the session's last authentication. */
  authTime: number;
  /** When the session was last used (for idle limits); undefined = unknown, not idle. */
  lastActive?: number | undefined;
}

const overallExpired = (l: AssuranceLevel, s: SessionAuth, now: number) => l.reauth !== undefined && now - s.authTime > l.reauth.max_hours * 3600;
const idleExpired = (l: AssuranceLevel, s: SessionAuth, now: number) =>
  l.reauth?.idle_minutes !== undefined && s.lastActive !== undefined && now - s.lastActive > l.reauth.idle_minutes * 60;

/** Index of the strongest level the session meets now, its reauthentication limits included; -1 = none. */
export function sessionLevelIndex(s: SessionAuth, levels: readonly AssuranceLevel[], now: number): number {
  const strength = strengthOf(s.amr);
  let best = -1;
  levels.forEach((l, i) => {
    if (meets(strength, l) && !overallExpired(l, s, now) && !idleExpired(l, s, now)) best = i;
  });
  return best;
}

/**
 * The session's methods that still count towards level `required` in a step-up: all of
 * them; none when the level's overall limit (or the RP's `max_age`, OIDC Core §3.1.2.1)
 * has passed since the authentication, i.e. a fresh login; only what the user knows when
 * the level's idle limit has passed, so a held factor is presented again but the password
 * is not (NIST SP 800-63B-4 §2.2.3). Derived values (`mfa`, `rba`) are never carried.
 */
export function carriedAmr(s: SessionAuth, required: AssuranceLevel, now: number, maxAge?: number): string[] {
  const amr = s.amr.filter((v) => !DERIVED.has(v));
  if (maxAge !== undefined && now - s.authTime > maxAge) return [];
  if (overallExpired(required, s, now)) return [];
  if (idleExpired(required, s, now)) return knowledgeOnly(amr);
  return amr;
}

/** The methods that prove something the user knows: what an idle session keeps. */
export const knowledgeOnly = (amr: readonly string[]): string[] => amr.filter((v) => KNOWLEDGE.has(v));

/** What a relying party asked for (OIDC Core §3.1.2.1 acr_values, §5.5.1.1 essential acr). */
export interface AcrRequest {
  /** `acr_values`, in the RP's order of preference (voluntary). */
  acrValues?: readonly string[] | undefined;
  /** `claims.id_token.acr` with `essential: true`: its `value` and/or `values`. */
  essential?: readonly string[] | undefined;
  /** The client's minimum (`idp client add --min-acr`). */
  clientMinimum?: string | undefined;
}

export type Requested =
  | { ok: true; index: number; because: string[]; accepted: readonly string[] | undefined }
  | { ok: false; reason: string };

/**
 * The level a request requires, -1 when it asks for nothing. Of several listed ACR values
 * any one satisfies the RP (OIDC Core §5.5.1.1: the acr returned matches one of them), so the
 * weakest known one is required and `accepted` lists them for the assertion. Unknown values
 * in voluntary `acr_values` are ignored; an essential request none of whose values the
 * provider knows cannot be met (`unmet_authentication_requirements`).
 */
export function requestedLevel(req: AcrRequest, levels: readonly AssuranceLevel[]): Requested {
  const index = (acr: string) => levels.findIndex((l) => l.acr === acr);
  let best = -1;
  const because: string[] = [];
  let accepted: readonly string[] | undefined;
  const consider = (i: number, source: string) => {
    if (i > best) {
      best = i;
      because.length = 0;
    }
    if (i === best && i >= 0) because.push(source);
  };
  if (req.essential?.length) {
    const known = req.essential.map(index).filter((i) => i >= 0);
    if (!known.length) return { ok: false, reason: `none of the requested ACR values is supported (${req.essential.join(', ')})` };
    consider(Math.min(...known), 'claims.id_token.acr');
    accepted = req.essential.filter((v) => index(v) >= 0);
  }
  if (req.acrValues?.length) {
    const known = req.acrValues.map(index).filter((i) => i >= 0);
    if (known.length) {
      consider(Math.min(...known), 'acr_values');
      accepted ??= req.acrValues.filter((v) => index(v) >= 0);
    }
  }
  if (req.clientMinimum !== undefined) {
    const i = index(req.clientMinimum);
    // A client minimum the policy no longer defines is an error on the safe side.
    if (i < 0) return { ok: false, reason: `the client's minimum ACR ${req.clientMinimum} is not a level of the policy` };
    consider(i, 'client.min_acr');
  }
  return { ok: true, index: best, because, accepted };
}

/**
 * The `acr` to assert for a session at level `sessionIndex`: with a request that listed ACR
 * values, the strongest of them the session meets (OIDC Core §5.5.1.1 asks the returned
 * value to be one of them); otherwise the session's own level.
 */
export function assertedAcr(sessionIndex: number, levels: readonly AssuranceLevel[], accepted?: readonly string[]): string | undefined {
  if (sessionIndex < 0) return undefined;
  const fits = (accepted ?? []).map((acr) => levels.findIndex((l) => l.acr === acr)).filter((i) => i >= 0 && i <= sessionIndex);
  return levels[fits.length ? Math.max(...fits) : sessionIndex]!.acr;
}

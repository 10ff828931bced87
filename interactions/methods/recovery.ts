/**
 * Recovery codes: NIST 800-63B-4 §3.1.2 look-up secrets, ten single-use codes shown once,
 * for when the authenticator app or passkey is lost.
 *
 * Strength: each code is 120 random bits, at or above the 112 bits below which §3.1.2.2
 * requires a salted password hash; so a keyed hash is enough (HMAC-SHA-256 under a key
 * derived from the data key, which lives in the key file, apart from the database: a stolen
 * database alone cannot even test a guess). Being above 64 bits also keeps them out of reach
 * of online guessing; attempts are throttled all the same (§3.1.2.2, §3.2.2).
 *
 * Format: 24 characters of Crockford's base32 (no I, L, O, U), in six groups of four:
 * `7k2m-q9xd-...`. Typing is forgiving: case, spaces and dashes are ignored, and the
 * letters people mistake for digits (o → 0, i and l → 1) are read as Crockford reads them.
 */
import crypto from 'node:crypto';
import type { FactorRecord, NewFactor } from '../../models/types.ts';
import type { FactorStore } from '../../adapters/storage/port.ts';
import type { AuthMethod } from './method.ts';

/**
 * RFC 8176 §2 has no value for look-up secrets; `otp` ("one-time password") is the nearest:
 * each code is a one-time secret the user holds (NIST's look-up secrets are something you have).
 */
export const recoveryMethod: AuthMethod = { id: 'recovery', amr: ['otp'], factor: 'possession' };

export const RECOVERY_CODE_COUNT = 10;
/** Crockford's base32 alphabet, lower case. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_CHARS = 24;
const GROUP = 4;

/** One code: 15 random bytes = 120 bits = 24 base32 characters, grouped by four. */
function newCode(): string {
  const bytes = crypto.randomBytes((CODE_CHARS * 5) / 8);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = '';
  for (let i = CODE_CHARS - 1; i >= 0; i -= 1) out += ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)];
  return out.match(new RegExp(`.{${GROUP}}`, 'g'))!.join('-');
}

/** Ten fresh codes, all different. Shown once; only their hashes are stored. */
export function newRecoveryCodes(): string[] {
  const codes = new Set<string>();
  while (codes.size < RECOVERY_CODE_COUNT) codes.add(newCode());
  return [...codes];
}

/** The code as issued, from what was typed: case, spaces and dashes dropped; o → 0, i/l → 1. */
export function normaliseRecoveryCode(code: string): string {
  return code.normalize('NFKC').toLowerCase().replace(/[\s\-_]+/gu, '').replace(/o/g, '0').replace(/[il]/g, '1');
}

/** Whether a typed code can be a recovery code at all (checked before any lookup). */
export function isRecoveryCodeShape(code: string): boolean {
  return new RegExp(`^[${ALPHABET}]{${CODE_CHARS}}$`).test(normaliseRecoveryCode(code));
}

/**
 * The stored form: HMAC-SHA-256 of the normalised code, base64url. `key` is
 * `deriveKey(dataKey, 'recovery')` (adapters/keys.ts): never the data key itself.
 */
export function hashRecoveryCode(key: Buffer, code: string): string {
  return crypto.createHmac('sha256', key).update(normaliseRecoveryCode(code), 'utf8').digest('base64url');
}

/** A recovery-code factor ready for FactorStore.add, and its codes, to be shown once. */
export function newRecoveryFactor(key: Buffer, opts: {
  id: string; accountId: string; enrolledVia: FactorRecord['enrolledVia']; label?: string;
}): { factor: NewFactor; codes: string[] } {
  const codes = newRecoveryCodes();
  return {
    codes,
    factor: {
      id: opts.id,
      accountId: opts.accountId,
      kind: 'recovery',
      label: opts.label ?? 'Recovery codes',
      enrolledVia: opts.enrolledVia,
      recovery: { hashes: codes.map((c) => hashRecoveryCode(key, c)), used: [] },
    },
  };
}

/**
 * Gives the account a new set of codes in place of any it had. The new set is stored before
 * the old one is removed, so the account is never without codes if this stops half-way.
 */
export async function replaceRecoveryCodes(factors: FactorStore, key: Buffer, opts: {
  id: string; accountId: string; enrolledVia: FactorRecord['enrolledVia'];
}): Promise<{ factor: FactorRecord; codes: string[] }> {
  const before = (await factors.list(opts.accountId)).filter((f) => f.kind === 'recovery');
  const { factor, codes } = newRecoveryFactor(key, opts);
  const added = await factors.add(factor);
  for (const old of before) await factors.remove(opts.accountId, old.id);
  return { factor: added, codes };
}

/**
 * Uses one of the account's recovery codes: the record it belongs to (after the use), or
 * undefined when the code is not one of them or was used before. The store marks it used
 * atomically: of parallel submissions of one code exactly one succeeds (NIST 800-63B-4
 * §3.1.2.2: a look-up secret SHALL be used successfully only once).
 */
export async function useRecoveryCode(factors: FactorStore, key: Buffer, accountId: string, code: string, now: Date): Promise<FactorRecord | undefined> {
  if (!isRecoveryCodeShape(code)) return undefined;
  const hash = hashRecoveryCode(key, code);
  for (const f of await factors.list(accountId)) {
    if (f.kind !== 'recovery' || !f.recovery?.hashes.includes(hash)) continue;
    if (await factors.useRecoveryCode(f.id, hash, now)) return (await factors.find(accountId, f.id)) ?? f;
    return undefined;
  }
  return undefined;
}

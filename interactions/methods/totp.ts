/**
 * TOTP (RFC 6238), the authenticator-app second factor: the seed, the `otpauth://` URI and
 * its QR code for enrolment, and the check of a code, accepted once per account.
 *
 * Parameters are the ones every authenticator app supports (and the Key Uri Format's
 * defaults): HMAC-SHA-1, 6 digits, 30-second steps. The seed is stored encrypted with the
 * data key (adapters/crypto.ts), bound to its account and factor.
 */
import QRCode from 'qrcode';
import { generateSecret, verifySync } from 'otplib';
import type { SecretBox } from '../../adapters/crypto.ts';
import type { FactorRecord, NewFactor } from '../../models/types.ts';
import type { FactorStore } from '../../adapters/storage/port.ts';
import type { AuthMethod } from './method.ts';

/** RFC 8176 §2 `otp`: a one-time password. An authenticator app is something you have (NIST 800-63B-4 §3.1.4). */
export const totpMethod: AuthMethod = { id: 'totp', amr: ['otp'], factor: 'possession' };

export const TOTP_PERIOD = 30;
export const TOTP_DIGITS = 6;
/** RFC 4226 §4 R6: the shared secret SHOULD be 160 bits. */
const SECRET_BYTES = 20;

/** A new seed: 160 random bits, base32 (RFC 4648 §6, no padding), as authenticator apps take it. */
export function newTotpSecret(): string {
  return generateSecret({ length: SECRET_BYTES });
}

/** What the seed's ciphertext is bound to (AES-GCM associated data): it opens only on its own record. */
export function totpSeedContext(accountId: string, factorId: string): string {
  return `totp_seed:${accountId}:${factorId}`;
}

export function encryptSeed(box: SecretBox, secret: string, f: { accountId: string; id: string }): string {
  return box.seal(secret, totpSeedContext(f.accountId, f.id));
}

/** The factor's seed. Throws, without the seed or ciphertext in the message, when it cannot be opened. */
export function decryptSeed(box: SecretBox, factor: Pick<FactorRecord, 'id' | 'accountId' | 'totp'>): string {
  if (!factor.totp) throw new Error(`factor ${factor.id} is not a TOTP factor`);
  try {
    return box.open(factor.totp.secretCiphertext, totpSeedContext(factor.accountId, factor.id));
  } catch {
    throw new Error(`the TOTP seed of factor ${factor.id} cannot be decrypted (another data key, or a tampered record)`);
  }
}

/**
 * A TOTP factor ready for FactorStore.add, with a fresh seed unless one is given (an enrolment
 * page shows the seed first and saves it once the user typed a code). The seed is returned
 * beside the record for the one moment it is shown; the record holds it only encrypted.
 */
export function newTotpFactor(box: SecretBox, opts: {
  id: string; accountId: string; label: string; enrolledVia: FactorRecord['enrolledVia']; secret?: string;
}): { factor: NewFactor; secret: string } {
  const secret = opts.secret ?? newTotpSecret();
  return {
    secret,
    factor: {
      id: opts.id,
      accountId: opts.accountId,
      kind: 'totp',
      label: opts.label,
      enrolledVia: opts.enrolledVia,
      totp: { secretCiphertext: encryptSeed(box, secret, { accountId: opts.accountId, id: opts.id }), algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD },
    },
  };
}

/** The name authenticator apps show for this provider: the issuer URL's host name. */
export function totpIssuerName(issuerUrl: string): string {
  return new URL(issuerUrl).hostname;
}

/**
 * The Key Uri Format (Google Authenticator wiki, "Key-Uri-Format"):
 * `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
 * The label prefix and the `issuer` parameter carry the same issuer, as the format recommends.
 * Neither part may contain a colon (the label separator): any is replaced by a space.
 */
export function otpauthUri(secret: string, { issuer, account }: { issuer: string; account: string }): string {
  const clean = (s: string) => s.replaceAll(':', ' ').trim();
  const enc = (s: string) => encodeURIComponent(clean(s));
  return `otpauth://totp/${enc(issuer)}:${enc(account)}?secret=${secret}&issuer=${enc(issuer)}`
    + `&algorithm=SHA1&digits=${TOTP_DIGITS}&period=${TOTP_PERIOD}`;
}

/**
 * The URI as an SVG QR code, to embed in the page itself (the CSP allows no remote images).
 * Error correction M (15%): still reads on a smudged or low-resolution screen.
 */
export function qrSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/** A code as people type it: digits, possibly in full width or with spaces ("123 456"). */
export function normaliseCode(code: string): string {
  return code.normalize('NFKC').replace(/\s+/gu, '');
}

/**
 * The RFC 6238 time step T = floor(unixtime / 30) the code belongs to, or undefined.
 * One step either side is accepted (RFC 6238 §5.2: a clock drift and the time to type it).
 * Anything but exactly 6 ASCII digits after normalisation is refused before any HMAC.
 * otplib compares each candidate code with its constant-time comparison.
 */
export function matchStep(secret: string, code: string, nowMs: number): number | undefined {
  const token = normaliseCode(code);
  if (!/^[0-9]{6}$/.test(token)) return undefined;
  try {
    // epochTolerance of one period: the steps of now - 30 s, now and now + 30 s.
    const epoch = Math.floor(nowMs / 1000);
    const r = verifySync({ secret, token, epoch, epochTolerance: TOTP_PERIOD, period: TOTP_PERIOD, digits: TOTP_DIGITS, algorithm: 'sha1' });
    // `delta`: the matching step's offset from the current one (T0 = 0).
    return r.valid ? Math.floor(epoch / TOTP_PERIOD) + r.delta : undefined;
  } catch {
    // A malformed seed or time: no match, never an exception to the page.
    return undefined;
  }
}

export type TotpResult = 'ok' | 'invalid' | 'replayed';

/**
 * Checks a code against a TOTP factor and, if right, records its time step in one atomic
 * compare-and-set (FactorStore.advance): a code is accepted once, and so is any code of the
 * same or an earlier step (RFC 6238 §5.2: the verifier MUST NOT accept the second attempt of
 * the same OTP after the first succeeded). Of parallel submissions of one code exactly one
 * gets 'ok'. Throttling failures is the caller's job (NIST 800-63B-4 §3.2.2).
 */
export async function verifyTotp(factors: FactorStore, box: SecretBox, factor: FactorRecord, code: string, nowMs: number): Promise<TotpResult> {
  if (factor.kind !== 'totp' || !factor.totp) return 'invalid';
  const step = matchStep(decryptSeed(box, factor), code, nowMs);
  if (step === undefined) return 'invalid';
  if (step <= factor.counter) return 'replayed';
  return (await factors.advance(factor.id, step, new Date(nowMs))) ? 'ok' : 'replayed';
}

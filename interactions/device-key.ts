/**
 * Device keys: proof that the browser posting the login form is the one that made a key
 * before, which a copied device cookie (interactions/device.ts) cannot give.
 *
 * The page's script (assets/device-key.js) keeps a non-extractable ECDSA P-256 key pair in
 * IndexedDB and signs `deviceProofMessage(issuer, uid, nonce)` for a nonce issued with each
 * rendering of the password form; the form posts `{ nonce, jwk, sig }` in `device_proof`.
 * The server checks, in this order: the field's shape (strict, ≤ 1 KB, a P-256 public JWK with
 * 32-byte coordinates, a 64-byte IEEE P1363 signature), that the nonce was issued for this
 * interaction (its MAC) and has not expired, spends it (exactly once, also across instances:
 * OidcStore.claim), then the signature. Consumed before the signature is checked, so a
 * failed proof burns the nonce too and nobody gets a second try at it; a replayed signature
 * is refused because its nonce is spent. The result is the key's RFC 7638 thumbprint, which
 * the risk engine knows the device by (policies/signals.ts `device`).
 *
 * A proof that fails for any reason is only absent: the login goes on as "cookie only" or
 * "new", never to an error page. Nothing here logs key material; the caller logs the reason
 * and at most the thumbprint.
 */
import crypto from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { z } from 'zod';
import type { OidcStore } from '../adapters/storage/port.ts';
import type { InteractionDeps } from './context.ts';

/** The generic-store model nonces are kept under (adapters/storage: one of its models). */
export const DEVICE_NONCE_MODEL = 'DeviceNonce';
/** The login form's hidden field the script fills. */
export const DEVICE_PROOF_FIELD = 'device_proof';
/** Largest proof accepted: a minimal P-256 proof is about 300 characters. */
export const MAX_PROOF_CHARS = 1024;
/**
 * How long a nonce may be answered; never past the interaction's own expiry. The script signs
 * at page load, so this bounds how long a login page may stay open and still prove its key.
 */
const NONCE_TTL_MS = 10 * 60_000;

/** Why a proof was not accepted. `absent`: the form carried none (no script, no WebCrypto). */
export type ProofRefusal = 'absent' | 'malformed' | 'unknown_nonce' | 'wrong_interaction' | 'replayed' | 'bad_signature';

export type ProofResult =
  | { ok: true; thumbprint: string }
  | { ok: false; reason: ProofRefusal; thumbprint?: string | undefined };

/**
 * What the browser signs: purpose and version, then the issuer, the interaction and the nonce,
 * one per line, so a signature made for one of them is worth nothing for another.
 */
export function deviceProofMessage(issuer: string, uid: string, nonce: string): string {
  return `adaptive-idp device-proof v1\n${issuer}\n${uid}\n${nonce}`;
}

/** Unpadded base64url of exactly `bytes` bytes, in its one canonical spelling. */
const b64u = (bytes: number) => z.string().length(Math.ceil((bytes * 4) / 3)).regex(/^[A-Za-z0-9_-]+$/)
  .refine((s) => Buffer.from(s, 'base64url').toString('base64url') === s, 'not canonical base64url');

/** 32 random bytes (256 bits) per nonce. */
const NONCE_BYTES = 32;

const proofSchema = z.strictObject({
  nonce: b64u(NONCE_BYTES),
  // Exactly the RFC 7638 §3.2 required members of an EC key: nothing a verifier could misread.
  jwk: z.strictObject({ kty: z.literal('EC'), crv: z.literal('P-256'), x: b64u(32), y: b64u(32) }),
  // IEEE P1363 r || s: 32 bytes each for P-256 (WebCrypto's ECDSA signature format).
  sig: b64u(64),
});

/**
 * A nonce carries its own expiry and proof, so issuing one writes nothing (a login page costs
 * no store write, and loading it in a loop fills nothing): 32 bytes =
 * expiry (4, epoch seconds) ‖ interaction tag (4: the first bytes of SHA-256 of its uid, to tell
 * another interaction's nonce from a made-up one) ‖ random (8) ‖ MAC (16: HMAC-SHA-256 under
 * a key derived from the data key, over purpose, uid and the first 16 bytes). Its single use
 * is a unique record written when it is answered (OidcStore.claim), living until its expiry.
 */
const MAC_BYTES = 16;

export class DeviceKeys {
  readonly #oidc: OidcStore;
  readonly #issuer: string;
  /** A KeyObject, made once (see csrf.ts). */
  readonly #key: crypto.KeyObject;
  readonly #now: () => number;

  /** `key`: the MAC key (adapters/keys.ts deriveKey of the data key, 'device-nonce'). */
  constructor(oidc: OidcStore, issuer: string, key: Buffer, now: () => number = Date.now) {
    this.#oidc = oidc;
    this.#issuer = issuer;
    this.#key = crypto.createSecretKey(key);
    this.#now = now;
  }

  #mac(uid: string, head: Buffer): Buffer {
    return crypto.createHmac('sha256', this.#key).update('device-nonce v1\n').update(uid).update('\n').update(head).digest().subarray(0, MAC_BYTES);
  }

  /**
   * A fresh nonce for one rendering of interaction `uid`'s password form, and the message the
   * page's script is to sign. `interactionExpiresAt` (epoch ms) caps the nonce's life.
   */
  async issue(uid: string, interactionExpiresAt?: number): Promise<{ nonce: string; message: string }> {
    const expiresAt = Math.min(this.#now() + NONCE_TTL_MS, interactionExpiresAt ?? Number.POSITIVE_INFINITY);
    const head = Buffer.alloc(NONCE_BYTES - MAC_BYTES);
    head.writeUInt32BE(Math.floor(expiresAt / 1000), 0);
    uidTag(uid).copy(head, 4);
    crypto.randomFillSync(head, 8, 8);
    const nonce = Buffer.concat([head, this.#mac(uid, head)]).toString('base64url');
    return { nonce, message: deviceProofMessage(this.#issuer, uid, nonce) };
  }

  /** Checks the form's `device_proof` for interaction `uid`; see the top of the file for the order. */
  async verify(uid: string, raw: string | undefined): Promise<ProofResult> {
    if (raw === undefined || raw === '') return { ok: false, reason: 'absent' };
    if (raw.length > MAX_PROOF_CHARS) return { ok: false, reason: 'malformed' };
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    const parsed = proofSchema.safeParse(json);
    if (!parsed.success) return { ok: false, reason: 'malformed' };
    const { nonce, jwk, sig } = parsed.data;

    let key: crypto.KeyObject;
    let thumbprint: string;
    try {
      // Rejects coordinates that are not a point on P-256.
      key = crypto.createPublicKey({ key: { ...jwk }, format: 'jwk' });
      thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
    } catch {
      return { ok: false, reason: 'malformed' };
    }

    const now = this.#now();
    const bytes = Buffer.from(nonce, 'base64url');
    const head = bytes.subarray(0, NONCE_BYTES - MAC_BYTES);
    // Another interaction's nonce is left alone: it is that page's to use (its MAC can only be
    // checked with its own uid, so a forged one is told apart from it only by its tag).
    if (!head.subarray(4, 8).equals(uidTag(uid))) return { ok: false, reason: 'wrong_interaction', thumbprint };
    // Never issued (its MAC is not ours), or expired.
    const expiresAt = head.readUInt32BE(0) * 1000;
    if (!crypto.timingSafeEqual(bytes.subarray(NONCE_BYTES - MAC_BYTES), this.#mac(uid, head)) || expiresAt <= now) {
      return { ok: false, reason: 'unknown_nonce', thumbprint };
    }
    if (!(await this.#oidc.claim(DEVICE_NONCE_MODEL, nonce, expiresAt))) return { ok: false, reason: 'replayed', thumbprint };

    const message = Buffer.from(deviceProofMessage(this.#issuer, uid, nonce), 'utf8');
    // WebCrypto's ECDSA signatures are IEEE P1363 (r || s), not DER (W3C WebCrypto §23.4 "ECDSA").
    const good = crypto.verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
    return good ? { ok: true, thumbprint } : { ok: false, reason: 'bad_signature', thumbprint };
  }
}

const uidTag = (uid: string) => crypto.createHash('sha256').update(uid).digest().subarray(0, 4);

/**
 * The device key a sign-in form's post proves for interaction `uid` (its thumbprint), or
 * undefined; a proof that was sent and refused is logged as `device.proof_refused` with its
 * reason and at most the thumbprint (an expired page or a garbled field at `info`; a replay,
 * another interaction's nonce or a bad signature at `warn`).
 */
export async function provenDeviceKey(deps: Pick<InteractionDeps, 'storage' | 'provider' | 'events' | 'deviceNonceKey'>, uid: string, raw: string | undefined, clientId: string | undefined): Promise<string | undefined> {
  const proof = await new DeviceKeys(deps.storage.oidc, deps.provider.issuer, deps.deviceNonceKey).verify(uid, raw);
  if (proof.ok) return proof.thumbprint;
  if (proof.reason !== 'absent') {
    const quiet = proof.reason === 'unknown_nonce' || proof.reason === 'malformed';
    deps.events.emit('device.proof_refused', { client: clientId, reason: proof.reason, thumbprint: proof.thumbprint }, quiet ? 'info' : 'warn');
  }
  return undefined;
}

/**
 * Device keys: proof that the browser posting the login form is the one that made a key
 * before, which a copied device cookie (interactions/device.ts) cannot give.
 *
 * The page's script (assets/device-key.js) keeps a non-extractable ECDSA P-256 key pair in
 * IndexedDB and signs `deviceProofMessage(issuer, uid, nonce)` for a nonce issued with each
 * rendering of the password form; the form posts `{ nonce, jwk, sig }` in `device_proof`.
 * The server checks, in this order: the field's shape (strict, ≤ 1 KB, a P-256 public JWK with
 * 32-byte coordinates, a 64-byte IEEE P1363 signature), that the nonce was issued for this
 * interaction and has not expired, consumes it (exactly once, also across instances:
 * OidcStore.consume), then the signature. Consumed before the signature is checked, so a
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

interface NoncePayload {
  v: 1;
  uid: string;
}

export class DeviceKeys {
  readonly #oidc: OidcStore;
  readonly #issuer: string;
  readonly #now: () => number;

  constructor(oidc: OidcStore, issuer: string, now: () => number = Date.now) {
    this.#oidc = oidc;
    this.#issuer = issuer;
    this.#now = now;
  }

  /**
   * A fresh nonce for one rendering of interaction `uid`'s password form, and the message the
   * page's script is to sign. `interactionExpiresAt` (epoch ms) caps the nonce's life.
   */
  async issue(uid: string, interactionExpiresAt?: number): Promise<{ nonce: string; message: string }> {
    const nonce = crypto.randomBytes(NONCE_BYTES).toString('base64url');
    const now = this.#now();
    const payload: NoncePayload = { v: 1, uid };
    await this.#oidc.upsert({
      model: DEVICE_NONCE_MODEL, id: nonce, uid, payload: { ...payload },
      expiresAt: Math.min(now + NONCE_TTL_MS, interactionExpiresAt ?? Number.POSITIVE_INFINITY),
    });
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
    const rec = await this.#oidc.find(DEVICE_NONCE_MODEL, nonce, now);
    // Never issued, or expired (the store filters expired records on read).
    if (!rec) return { ok: false, reason: 'unknown_nonce', thumbprint };
    const p = rec.payload as Partial<NoncePayload>;
    // Another interaction's nonce is left alone: it is that page's to use.
    if (p.v !== 1 || p.uid !== uid || rec.uid !== uid) return { ok: false, reason: 'wrong_interaction', thumbprint };
    if (rec.consumed !== undefined) return { ok: false, reason: 'replayed', thumbprint };
    if (!(await this.#oidc.consume(DEVICE_NONCE_MODEL, nonce, Math.floor(now / 1000)))) return { ok: false, reason: 'replayed', thumbprint };

    const message = Buffer.from(deviceProofMessage(this.#issuer, uid, nonce), 'utf8');
    // WebCrypto's ECDSA signatures are IEEE P1363 (r || s), not DER (W3C WebCrypto §23.4 "ECDSA").
    const good = crypto.verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
    return good ? { ok: true, thumbprint } : { ok: false, reason: 'bad_signature', thumbprint };
  }
}

/**
 * The device key a sign-in form's post proves for interaction `uid` (its thumbprint), or
 * undefined; a proof that was sent and refused is logged as `device.proof_refused` with its
 * reason and at most the thumbprint (an expired page or a garbled field at `info`; a replay,
 * another interaction's nonce or a bad signature at `warn`).
 */
export async function provenDeviceKey(deps: Pick<InteractionDeps, 'storage' | 'provider' | 'events'>, uid: string, raw: string | undefined, clientId: string | undefined): Promise<string | undefined> {
  const proof = await new DeviceKeys(deps.storage.oidc, deps.provider.issuer).verify(uid, raw);
  if (proof.ok) return proof.thumbprint;
  if (proof.reason !== 'absent') {
    const quiet = proof.reason === 'unknown_nonce' || proof.reason === 'malformed';
    deps.events.emit('device.proof_refused', { client: clientId, reason: proof.reason, thumbprint: proof.thumbprint }, quiet ? 'info' : 'warn');
  }
  return undefined;
}

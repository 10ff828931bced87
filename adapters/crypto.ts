/**
 * Encryption of secrets at rest (client secrets), AES-256-GCM with the key file's data key.
 * Format: `v1.<iv>.<ciphertext>.<tag>` (base64url parts). The associated data binds a
 * ciphertext to its record, so one client's secret cannot be pasted onto another.
 */
import crypto from 'node:crypto';

/** GCM's full tag. NIST SP 800-38D §5.2.1.2 allows shorter ones; we never issue them, so we never accept them. */
const TAG_BYTES = 16;
/** 96-bit IVs, the length NIST SP 800-38D §8.2 recommends and seal() uses. */
const IV_BYTES = 12;

export class SecretBox {
  readonly #key: Buffer;

  constructor(dataKeyB64u: string) {
    this.#key = Buffer.from(dataKeyB64u, 'base64url');
    if (this.#key.length !== 32) throw new Error('data key must be 32 bytes');
  }

  seal(plaintext: string, context: string): string {
    const iv = crypto.randomBytes(IV_BYTES);
    const c = crypto.createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    c.setAAD(Buffer.from(context));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return ['v1', iv, ct, c.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** Throws on tampering, on a truncated tag or on the wrong context. */
  open(sealed: string, context: string): string {
    const [v, ivB64, ct, tagB64, extra] = sealed.split('.');
    if (v !== 'v1' || !ivB64 || ct === undefined || !tagB64 || extra !== undefined) throw new Error('unrecognised ciphertext format');
    const iv = Buffer.from(ivB64, 'base64url');
    const tag = Buffer.from(tagB64, 'base64url');
    // A truncated tag is a prefix of the right one and would verify: each byte cut off
    // makes forgery 256 times easier. Only the full 16 bytes are accepted.
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('unrecognised ciphertext format');
    const d = crypto.createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    d.setAAD(Buffer.from(context));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}

/**
 * Encryption of secrets at rest (client secrets), AES-256-GCM with the key file's data key.
 * Format: `v1.<iv>.<ciphertext>.<tag>` (base64url parts). The associated data binds a
 * ciphertext to its record, so one client's secret cannot be pasted onto another.
 */
import crypto from 'node:crypto';

export class SecretBox {
  readonly #key: Buffer;

  constructor(dataKeyB64u: string) {
    this.#key = Buffer.from(dataKeyB64u, 'base64url');
    if (this.#key.length !== 32) throw new Error('data key must be 32 bytes');
  }

  seal(plaintext: string, context: string): string {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.#key, iv);
    c.setAAD(Buffer.from(context));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return ['v1', iv, ct, c.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** Throws on tampering or on the wrong context. */
  open(sealed: string, context: string): string {
    const [v, iv, ct, tag] = sealed.split('.');
    if (v !== 'v1' || !iv || ct === undefined || !tag) throw new Error('unrecognised ciphertext format');
    const d = crypto.createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(context));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}

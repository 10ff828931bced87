/**
 * The key file: signing keys (private JWKs), cookie-signing keys and the data-encryption
 * key for secrets at rest. Created on first start with owner-only permissions, reused
 * afterwards; never committed (.gitignore covers certs/ and data/).
 *
 * Rotation: `idp keys rotate` puts a new signing key of each algorithm first (oidc-provider
 * signs with the first key of an algorithm) and keeps the previous ones published in the
 * JWKS, so tokens they signed still verify, until `idp keys retire` removes them.
 * A running server reads the file at start: restart instances one at a time after rotating.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface StoredKey {
  /** Private JWK including kid, alg and use. */
  jwk: { [param: string]: unknown; kid: string; alg: string; use: 'sig'; kty: string };
  createdAt: string;
  /** 'current' keys sign; 'previous' keys are only published for verification. */
  state: 'current' | 'previous';
}

export interface KeyFile {
  version: 1;
  signing: StoredKey[];
  /** Newest first; oidc-provider signs cookies with the first and accepts all. */
  cookieKeys: string[];
  /** base64url of 32 random bytes: AES-256-GCM key for secrets at rest. */
  dataKey: string;
}

export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

const b64u = (buf: Buffer) => buf.toString('base64url');

function newSigningKeys(): StoredKey[] {
  const createdAt = new Date().toISOString();
  const make = (alg: 'RS256' | 'ES256') => {
    const { privateKey } = alg === 'RS256'
      ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
      : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' });
    // RFC 7638 thumbprint as kid: stable, and reveals nothing but the public key.
    const pub = alg === 'RS256' ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
    const kid = b64u(crypto.createHash('sha256').update(JSON.stringify(pub)).digest());
    return { jwk: { ...jwk, kty: String(jwk.kty), kid, alg, use: 'sig' as const }, createdAt, state: 'current' as const };
  };
  // RS256 because OIDC Core §15.1 requires it as the default ID token algorithm; ES256 for
  // clients that ask for a shorter, faster signature.
  return [make('RS256'), make('ES256')];
}

function validate(data: unknown, file: string): KeyFile {
  const d = data as Partial<KeyFile>;
  if (d?.version !== 1 || !Array.isArray(d.signing) || !Array.isArray(d.cookieKeys) || typeof d.dataKey !== 'string') {
    throw new KeyFileError(`${file}: not a key file of this provider (expected version 1 with signing, cookieKeys, dataKey)`);
  }
  if (!d.signing.some((k) => k.state === 'current')) throw new KeyFileError(`${file}: no current signing key`);
  if (Buffer.from(d.dataKey, 'base64url').length !== 32) throw new KeyFileError(`${file}: dataKey must be 32 bytes`);
  // Cookies are signed with the first key: an empty list or a short key would let anyone forge them.
  if (d.cookieKeys.length === 0 || !d.cookieKeys.every((k) => typeof k === 'string' && Buffer.from(k, 'base64url').length >= 32)) {
    throw new KeyFileError(`${file}: cookieKeys must hold at least one key of 32 bytes or more`);
  }
  return d as KeyFile;
}

function writeAtomic(file: string, data: KeyFile): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
}

/** Reads the key file, creating it (mode 0600) on first use. Safe when several processes start at once. */
export function loadOrCreateKeys(file: string): KeyFile {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  if (!fs.existsSync(file)) {
    const fresh: KeyFile = {
      version: 1,
      signing: newSigningKeys(),
      cookieKeys: [b64u(crypto.randomBytes(32))],
      dataKey: b64u(crypto.randomBytes(32)),
    };
    try {
      // 'wx' fails if another process created the file first; then we read theirs.
      fs.writeFileSync(file, `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      return fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new KeyFileError(`${file}: permissions ${mode.toString(8)} are too open; run: chmod 600 ${file}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new KeyFileError(`${file}: not valid JSON`);
  }
  return validate(parsed, file);
}

/** A 32-byte subkey of the data key for one purpose (HKDF, RFC 5869), so no two uses share a key. */
export function deriveKey(dataKey: string, purpose: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(dataKey, 'base64url'), Buffer.alloc(0), `adaptive-idp ${purpose}`, 32));
}

/** The JWKS handed to oidc-provider: current keys first, then previous ones. */
export function providerJwks(keys: KeyFile): { keys: StoredKey['jwk'][] } {
  const ordered = [...keys.signing.filter((k) => k.state === 'current'), ...keys.signing.filter((k) => k.state !== 'current')];
  return { keys: ordered.map((k) => k.jwk) };
}

/** Adds a new current key per algorithm; demotes the old ones to previous. Returns the new kids. */
export function rotateKeys(file: string): { added: string[]; previous: string[] } {
  const keys = loadOrCreateKeys(file);
  const fresh = newSigningKeys();
  const demoted = keys.signing.map((k) => ({ ...k, state: 'previous' as const }));
  keys.signing = [...fresh, ...demoted];
  // Cookie keys rotate with them; the old one still verifies cookies already issued.
  keys.cookieKeys = [b64u(crypto.randomBytes(32)), ...keys.cookieKeys].slice(0, 3);
  writeAtomic(file, keys);
  return { added: fresh.map((k) => k.jwk.kid), previous: demoted.map((k) => k.jwk.kid) };
}

/** Removes previous (non-signing) keys, or only the one named. Returns the removed kids. */
export function retireKeys(file: string, kid?: string): string[] {
  const keys = loadOrCreateKeys(file);
  const target = keys.signing.filter((k) => k.state === 'previous' && (kid === undefined || k.jwk.kid === kid));
  if (kid !== undefined && target.length === 0) {
    const current = keys.signing.some((k) => k.jwk.kid === kid);
    throw new KeyFileError(current ? `key ${kid} is a current signing key; rotate first` : `no key with kid ${kid}`);
  }
  keys.signing = keys.signing.filter((k) => !target.includes(k));
  writeAtomic(file, keys);
  return target.map((k) => k.jwk.kid);
}

/** Public view for `idp keys list`: no private parameters. */
export function describeKeys(keys: KeyFile) {
  return keys.signing.map((k) => ({ kid: k.jwk.kid, alg: k.jwk.alg, state: k.state, createdAt: k.createdAt }));
}

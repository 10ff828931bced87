/**
 * The key file: signing keys (private JWKs), cookie-signing keys and the data-encryption
 * key for secrets at rest. Created on first start with owner-only permissions, reused
 * afterwards; never committed (.gitignore covers certs/ and data/).
 *
 * Rotation is in three steps, because several instances share one file and each must
 * publish every key any of them may sign with (OIDC Core §10.1.1: a verifier re-fetches
 * the JWKS when it sees an unknown kid, so the kid must already be there):
 *   1. `idp keys rotate` stages new keys as `next`: published, not signing.
 *   2. Every running instance notices the file changed (watchKeyFile, polling every
 *      KEYS_RELOAD_INTERVAL) and publishes them. `idp keys activate`, allowed once two
 *      intervals have passed, makes them `current`; the old current keys become `previous`
 *      (published, no longer signing) and instances switch within one more interval.
 *   3. `idp keys retire` removes previous keys once no instance can still be signing with
 *      them and the ID tokens they signed have expired; never a current or staged key.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type KeyState = 'next' | 'current' | 'previous';

export interface StoredKey {
  /** Private JWK including kid, alg and use. */
  jwk: { [param: string]: unknown; kid: string; alg: string; use: 'sig'; kty: string };
  /** For a `next` key, when it was staged. */
  createdAt: string;
  /** 'next': published, not yet signing; 'current': signs; 'previous': published for verification only. */
  state: KeyState;
  /** When a `previous` key stopped being current (absent in files of older versions: retirable). */
  demotedAt?: string | undefined;
}

export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

export interface KeyFile {
  version: 1;
  signing: StoredKey[];
  /** Newest first; oidc-provider signs cookies with the first and accepts all. */
  cookieKeys: string[];
  /** Staged with the `next` signing keys: accepted at once, signs from activation. */
  nextCookieKey?: string | undefined;
  /** base64url of 32 random bytes: AES-256-GCM key for secrets at rest. */
  dataKey: string;
  /** +1 with every rotation step (absent in files of older versions: 0); the admin API's If-Match. */
  revision?: number | undefined;
}

/** The key file changed since the revision the caller read (the admin API answers 412). */
export class KeyRevisionError extends KeyFileError {
  readonly current: number;
  constructor(current: number) {
    super(`the keys changed meanwhile (now revision ${current}); read them again`);
    this.current = current;
  }
}

/** Checks the caller's revision (when given) and advances it, before a rotation step writes. */
function advanceRevision(keys: KeyFile, ifRevision: number | undefined): void {
  const current = keys.revision ?? 0;
  if (ifRevision !== undefined && ifRevision !== current) throw new KeyRevisionError(current);
  keys.revision = current + 1;
}

/** Timing of a rotation; from KEYS_RELOAD_INTERVAL and ID_TOKEN_TTL (see keyTimings). */
export interface KeyTimings {
  /** How long staged keys must have been published before they may sign. */
  activateAfterMs: number;
  /** How long after demotion a previous key may still sign somewhere or verify a live token. */
  retireAfterMs: number;
}

/**
 * Instances poll every `reloadSeconds`, so two intervals after a change every instance has
 * seen it. A previous key may verify ID tokens for their lifetime after that.
 */
export function keyTimings(reloadSeconds: number, idTokenTtlSeconds: number): KeyTimings {
  return { activateAfterMs: 2 * reloadSeconds * 1000, retireAfterMs: (2 * reloadSeconds + idTokenTtlSeconds) * 1000 };
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
    return { jwk: { ...jwk, kty: String(jwk.kty), kid, alg, use: 'sig' as const }, createdAt, state: 'current' as KeyState };
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
  if (!d.signing.every((k) => ['next', 'current', 'previous'].includes(k.state) && typeof k.jwk?.kid === 'string')) {
    throw new KeyFileError(`${file}: every signing key needs a kid and a state of next, current or previous`);
  }
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
  return readKeyFile(file);
}

/**
 * Reads and validates an existing key file (mode, JSON, contents); creates nothing. For
 * whatever must never make a key file: the live reload, `idp config check`.
 */
export function readKeyFile(file: string): KeyFile {
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

/**
 * The JWKS handed to oidc-provider, which publishes all of it and signs with the first key
 * of each algorithm: current keys first, then staged, then previous ones.
 */
export function providerJwks(keys: KeyFile): { keys: StoredKey['jwk'][] } {
  const order: KeyState[] = ['current', 'next', 'previous'];
  return { keys: order.flatMap((state) => keys.signing.filter((k) => k.state === state)).map((k) => k.jwk) };
}

/** Cookie keys for oidc-provider: the first signs, all verify (a staged one verifies already). */
export function providerCookieKeys(keys: KeyFile): string[] {
  return keys.nextCookieKey ? [...keys.cookieKeys, keys.nextCookieKey] : [...keys.cookieKeys];
}

const kidsOf = (keys: StoredKey[]) => keys.map((k) => k.jwk.kid);
const iso = (ms: number) => new Date(ms).toISOString();

/*
 * The three steps read the key file and never make one (readKeyFile): a step taken when the
 * file is missing (replaced by hand, a volume remounting) must fail, not write a fresh file
 * whose new data key would orphan every stored secret and seal at the next start.
 */

/** Step 1: stages a new key per algorithm (and a cookie key), published but not signing. */
export function rotateKeys(file: string, timings: KeyTimings, now = Date.now(), ifRevision?: number): { staged: string[]; activateAfter: string } {
  const keys = readKeyFile(file);
  const staged = keys.signing.filter((k) => k.state === 'next');
  if (staged.length) throw new KeyFileError(`keys ${kidsOf(staged).join(', ')} are already staged; run: idp keys activate`);
  advanceRevision(keys, ifRevision);
  const fresh = newSigningKeys().map((k) => ({ ...k, createdAt: iso(now), state: 'next' as const }));
  keys.signing = [...keys.signing, ...fresh];
  keys.nextCookieKey = b64u(crypto.randomBytes(32));
  writeAtomic(file, keys);
  return { staged: kidsOf(fresh), activateAfter: iso(now + timings.activateAfterMs) };
}

/**
 * Step 2: staged keys become current once every instance has had time to publish them;
 * the current ones become previous (still published). Refused before that time.
 */
export function activateKeys(file: string, timings: KeyTimings, now = Date.now(), ifRevision?: number): { activated: string[]; previous: string[]; retireAfter: string } {
  const keys = readKeyFile(file);
  const staged = keys.signing.filter((k) => k.state === 'next');
  if (!staged.length) throw new KeyFileError('no staged keys; run: idp keys rotate');
  const ready = Math.max(...staged.map((k) => Date.parse(k.createdAt))) + timings.activateAfterMs;
  if (now < ready) {
    throw new KeyFileError(`keys ${kidsOf(staged).join(', ')} were staged too recently for every instance to publish them; activate after ${iso(ready)}`);
  }
  advanceRevision(keys, ifRevision);
  const demoted = keys.signing.filter((k) => k.state === 'current');
  keys.signing = keys.signing.map((k) => {
    if (k.state === 'next') return { ...k, state: 'current' as const };
    if (k.state === 'current') return { ...k, state: 'previous' as const, demotedAt: iso(now) };
    return k;
  });
  if (keys.nextCookieKey) {
    // The old cookie keys still verify cookies already issued.
    keys.cookieKeys = [keys.nextCookieKey, ...keys.cookieKeys].slice(0, 3);
    delete keys.nextCookieKey;
  }
  writeAtomic(file, keys);
  return { activated: kidsOf(staged), previous: kidsOf(demoted), retireAfter: iso(now + timings.retireAfterMs) };
}

/**
 * Step 3: removes previous keys (all that are due, or only the one named). A key no instance
 * can be signing with any more and whose ID tokens have expired is due; a current or staged
 * key never is. Returns the removed kids and those kept, with the time they become due.
 */
export function retireKeys(file: string, timings: KeyTimings, opts: { kid?: string | undefined; now?: number; ifRevision?: number | undefined } = {}): { retired: string[]; kept: { kid: string; retireAfter: string }[] } {
  const now = opts.now ?? Date.now();
  const keys = readKeyFile(file);
  const dueAt = (k: StoredKey) => (k.demotedAt ? Date.parse(k.demotedAt) + timings.retireAfterMs : 0);
  if (opts.kid !== undefined) {
    const key = keys.signing.find((k) => k.jwk.kid === opts.kid);
    if (!key) throw new KeyFileError(`no key with kid ${opts.kid}`);
    if (key.state === 'current') throw new KeyFileError(`key ${opts.kid} is a current signing key; rotate and activate first`);
    if (key.state === 'next') throw new KeyFileError(`key ${opts.kid} is staged to sign next; it cannot be retired`);
    if (dueAt(key) > now) {
      throw new KeyFileError(`key ${opts.kid} may still be signing on an instance that has not reloaded, or verify ID tokens not yet expired; retire after ${iso(dueAt(key))}`);
    }
  }
  const previous = keys.signing.filter((k) => k.state === 'previous' && (opts.kid === undefined || k.jwk.kid === opts.kid));
  const target = previous.filter((k) => dueAt(k) <= now);
  const kept = previous.filter((k) => dueAt(k) > now).map((k) => ({ kid: k.jwk.kid, retireAfter: iso(dueAt(k)) }));
  if (opts.ifRevision !== undefined && opts.ifRevision !== (keys.revision ?? 0)) throw new KeyRevisionError(keys.revision ?? 0);
  if (target.length) {
    advanceRevision(keys, opts.ifRevision);
    keys.signing = keys.signing.filter((k) => !target.includes(k));
    writeAtomic(file, keys);
  }
  return { retired: kidsOf(target), kept };
}

/**
 * Calls `onChange` with the key file's new contents whenever it changes (checked every
 * `intervalMs` by stat, which also works on the network filesystems a shared key file
 * lives on, where change notifications do not arrive). An unreadable or invalid file is
 * reported to `onError` and the keys in use stay; so is a changed data key, which would
 * make every stored secret unreadable and is never taken over live.
 */
export function watchKeyFile(file: string, current: KeyFile, intervalMs: number, onChange: (keys: KeyFile) => void, onError: (err: Error) => void): { close(): void } {
  const signature = () => {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  };
  let seen: string;
  try {
    seen = signature();
  } catch {
    seen = '';
  }
  const dataKey = current.dataKey;
  const timer = setInterval(() => {
    let now: string;
    try {
      now = signature();
    } catch (err) {
      if (seen !== 'missing') onError(new KeyFileError(`${file}: ${(err as Error).message}; keeping the keys in use`));
      seen = 'missing';
      return;
    }
    if (now === seen) return;
    seen = now;
    let next: KeyFile;
    try {
      // Never loadOrCreateKeys here: a file replaced non-atomically could vanish for a moment,
      // and a fresh key file with a new data key must not be made by a running instance.
      next = readKeyFile(file);
    } catch (err) {
      onError(err as Error);
      return;
    }
    if (next.dataKey !== dataKey) {
      onError(new KeyFileError(`${file}: the data key changed; it is never replaced on a running instance (restart to use it), keeping the keys in use`));
      return;
    }
    onChange(next);
  }, intervalMs);
  timer.unref();
  return { close: () => clearInterval(timer) };
}

/** Public view for `idp keys list`: no private parameters. */
export function describeKeys(keys: KeyFile) {
  return keys.signing.map((k) => ({ kid: k.jwk.kid, alg: k.jwk.alg, state: k.state, createdAt: k.createdAt, ...(k.demotedAt ? { demotedAt: k.demotedAt } : {}) }));
}

/** The public half of every published key (with kid, alg, use): what verifies this provider's signatures. */
export function publicJwks(keys: KeyFile): { keys: Record<string, unknown>[] } {
  return {
    keys: providerJwks(keys).keys.map((k) => ({
      ...crypto.createPublicKey({ key: k as import("node:crypto").JsonWebKeyInput["key"], format: 'jwk' }).export({ format: 'jwk' }),
      kid: k.kid, alg: k.alg, use: k.use,
    })),
  };
}

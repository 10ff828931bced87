/**
 * Masks secrets in what goes on the audit trail (before/after of a change, details). The trail
 * keeps who changed what, never the secret itself: a password, its hash, a TOTP seed, a client
 * secret, a key, a token, a recovery code or its hash. Applied by AuditTrail.record to every
 * record whatever the caller did (idp/audit.ts), and exported for callers that show a change
 * elsewhere (the admin API's responses).
 *
 * By key name, so a field added later is masked without anyone remembering to: a key is split
 * into words (camelCase, snake_case, kebab-case) and masked when
 * - any word is a strong secret word (password, passphrase, secret, seed), so
 *   `client_secret_expires_at` is masked too (harmless), or
 * - its last word names a secret (token, code, key, hash, pin, otp, ciphertext, jwk, cookie,
 *   nonce, salt, signature, authorization, assertion), so `refresh_token` and `passwordHash`
 *   are masked but `token_endpoint_auth_method` and `codes_left` are not;
 * plus any dotted path the caller names (`*` matches one key or array index).
 * A value that is null, empty or a boolean says only whether there is a secret: kept.
 */

/** What a masked value becomes. */
export const MASKED = '[masked]';

const STRONG = new Set(['password', 'passwords', 'passwd', 'passphrase', 'secret', 'secrets', 'seed', 'seeds']);
const LAST = new Set([
  'token', 'tokens', 'code', 'codes', 'key', 'keys', 'hash', 'hashes', 'pin', 'otp', 'ciphertext', 'jwk', 'jwks',
  'cookie', 'cookies', 'nonce', 'salt', 'signature', 'authorization', 'assertion', 'pwd',
]);

function words(key: string): string[] {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/** Whether a key of this name holds a secret. */
export function isSecretKey(key: string): boolean {
  const w = words(key);
  return w.some((x) => STRONG.has(x)) || (w.length > 0 && LAST.has(w[w.length - 1]!));
}

const keepsNothing = (v: unknown) => v === null || v === undefined || v === '' || typeof v === 'boolean';

function matches(pattern: readonly string[], path: readonly string[]): boolean {
  return pattern.length === path.length && pattern.every((p, i) => p === '*' || p === path[i]);
}

/**
 * A plain-JSON copy of `value` (Dates as ISO strings, undefined members left out) with every
 * secret replaced by MASKED. `paths`: further dotted paths to mask, e.g. `metadata.jwks`.
 */
export function maskSecrets(value: unknown, opts: { paths?: readonly string[] } = {}): unknown {
  if (value === undefined) return undefined;
  const patterns = (opts.paths ?? []).map((p) => p.split('.'));
  const plain: unknown = JSON.parse(JSON.stringify(value) ?? 'null');
  const walk = (v: unknown, path: string[]): unknown => {
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, String(i)]));
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = [...path, k];
      out[k] = (isSecretKey(k) || patterns.some((pat) => matches(pat, p))) && !keepsNothing(x) ? MASKED : walk(x, p);
    }
    return out;
  };
  return walk(plain, []);
}

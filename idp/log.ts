/**
 * The logger: JSON lines through pino, one object per line with `time` (ISO 8601), `level`
 * (its name), `msg` and the event's fields at top level. Secrets are kept out twice over:
 * pino's `redact` censors the known secret fields by path, and every field whose *name*
 * looks like a secret is censored at any depth before that (a `clientSecret` nested three
 * levels down has no path, but still has a name). Errors are written as `{ name, message }`.
 *
 * Lines written while serving a request carry `req_id`, and `login_id` once the request is
 * known to belong to a login (idp/request-log.ts): both are read from an AsyncLocalStorage
 * scope, so no caller threads them by hand. This file is part of the kernel lower layers may
 * import (ARCHITECTURE.md), hence the scope lives here and not in the HTTP module.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import { pino, stdTimeFunctions, type DestinationStream } from 'pino';

type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** What a line written while serving a request carries (idp/request-log.ts opens the scope). */
export interface RequestScope {
  readonly reqId: string;
  /** The login the request belongs to: see `enterLogin`. Set once, as early as known. */
  loginId?: string;
}

const scopes = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` with every log line it writes (and its callbacks write) tagged with the scope. */
export function runInScope<T>(scope: RequestScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

export function currentScope(): RequestScope | undefined {
  return scopes.getStore();
}

/**
 * The `login_id` of an oidc-provider interaction: a digest of its uid rather than the uid
 * itself, which is also the value of the `_interaction` cookies; the digest correlates the
 * lines of one login without writing any cookie value to the log.
 */
export function loginIdOf(interactionUid: string): string {
  return crypto.createHash('sha256').update(`login:${interactionUid}`).digest('base64url').slice(0, 16);
}

/** Marks the current request as part of the login of this interaction (first call wins). */
export function enterLogin(interactionUid: string): void {
  adoptLoginId(loginIdOf(interactionUid));
}

/** Marks the current request with a login id already derived (e.g. read back from a login record). */
export function adoptLoginId(loginId: string): void {
  const scope = scopes.getStore();
  if (scope && scope.loginId === undefined) scope.loginId = loginId;
}

/** The current request's login id, to keep with what the login leaves behind. */
export function currentLoginId(): string | undefined {
  return scopes.getStore()?.loginId;
}

/** The safety net: a field whose name looks like a secret is censored wherever it sits. */
const SECRET = /pass(word|phrase)?|secret|token|code_verifier|^codes?$|recovery_?codes?|cookie|authorization|assertion|private|seed|otp|jwk|key$/i;
const CENSOR = '[redacted]';
/** Beyond this depth a value is not written at all: nothing below it is checked. */
const MAX_DEPTH = 8;
/** The line's own fields: an event's fields of these names are dropped, never written over them. */
const RESERVED = new Set(['time', 'level', 'msg']);
/** The scope's fields: set by the server, not by an event. */
const SCOPED = new Set(['req_id', 'login_id']);

/**
 * The known secret fields, censored by pino's `redact`: form fields (OIDC Core §3.1.3.1 code
 * exchange, RFC 7636 §4.5 code_verifier, RFC 6749 §2.3.1 client_secret), tokens, our own
 * second factors, key material (a JWK's private `d` and CRT members, RFC 7518 §6.3.2) and
 * HTTP credentials. Explicit paths only: each wildcard path (`*.password`) costs about 1 µs
 * a line (measured: 4.3 µs a line with these, 48 µs with each also one level down), and
 * nested fields are the name-based walk's (`scrub`) to catch, at any depth.
 */
const SECRET_FIELDS = [
  'password', 'new_password', 'current_password', 'otp', 'code', 'codes', 'code_verifier', 'client_secret', 'client_assertion',
  'refresh_token', 'access_token', 'id_token', 'logout_token', 'token', 'authorization', 'cookie', 'set-cookie', 'seed', 'secret',
  'private_key', 'privateKey', 'jwk', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'recovery_code', 'recovery_codes', 'recoveryCodes',
];
const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'];
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_FIELDS.map((f) => `["${f}"]`),
  ...['headers', 'req.headers', 'request.headers', 'res.headers', 'response.headers'].flatMap((h) => SECRET_HEADERS.map((name) => `${h}["${name}"]`)),
];
/** A JWK's private members (RFC 7518 §6.2.2, §6.3.2, §6.4.1): censored in any object with a `kty`. */
const JWK_PRIVATE = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

/**
 * Censors secret-looking names at any depth; Errors → `{ name, message }` (no stack, no
 * properties a driver may have filled with the query); cycles and very deep values are cut.
 */
export function scrub(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  // A URL's query may hold a code or a token (OAuth 2.0 redirects): origin and path only.
  if (value instanceof URL) return `${value.origin}${value.pathname}`;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  let out: unknown;
  if (Array.isArray(value) || value instanceof Set) out = [...value].map((v) => scrub(v, depth + 1, seen));
  else {
    const entries = value instanceof Map ? [...value].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
    const jwk = typeof (value as { kty?: unknown }).kty === 'string';
    out = Object.fromEntries(entries.map(([k, v]) => [k, SECRET.test(k) || (jwk && JWK_PRIVATE.has(k)) ? CENSOR : scrub(v, depth + 1, seen)]));
  }
  seen.delete(value);
  return out;
}

/** A line's fields: scrubbed, without the line's own names, with the scope's ids (the server's, not an event's). */
function lineFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (RESERVED.has(k) || SCOPED.has(k)) continue;
    out[k] = SECRET.test(k) ? CENSOR : scrub(v, 1);
  }
  const scope = scopes.getStore();
  if (scope) {
    out.req_id = scope.reqId;
    if (scope.loginId !== undefined) out.login_id = scope.loginId;
  }
  return out;
}

/**
 * `write` receives each line (with its newline) once: tests keep them in memory. Without it,
 * lines go to stdout synchronously, so the last lines before a crash are not lost in a buffer.
 */
export function createLogger(level: Level | 'silent', write?: (line: string) => void): Logger {
  const destination: DestinationStream = write ? { write } : pino.destination({ dest: 1, sync: true });
  const p = pino({
    level,
    base: null,
    messageKey: 'msg',
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...REDACT_PATHS], censor: CENSOR },
    // Our own error shape (scrub); pino's default `err` serializer would add the stack.
    serializers: { err: (v: unknown) => v },
  }, destination);
  const emit = (lvl: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (!p.isLevelEnabled(lvl)) return;
    p[lvl](lineFields(fields), msg);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

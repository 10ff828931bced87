/**
 * oidc-provider configuration: what the OP offers, and nothing more. Protocol behaviour is
 * oidc-provider's; this file only chooses.
 */
import Provider, { errors, interactionPolicy, type AdapterPayload, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { ClientCache } from '../adapters/client-cache.ts';
import type { Storage } from '../adapters/storage/port.ts';
import type { SecretBox } from '../adapters/crypto.ts';
import { createAdapterClass } from '../adapters/oidc-adapter.ts';
import { providerCookieKeys, providerJwks, type KeyFile } from '../adapters/keys.ts';
import { CookieKeys } from '../adapters/cookie-keys.ts';
import type { Settings } from './settings.ts';
import type { Logger } from './log.ts';
import { errorPage, loggedOutPage, logoutPage } from '../interactions/views/pages.ts';
import { ERROR_CODES } from './errors.ts';
import { loggedPath } from './request-log.ts';
import { acrRequestOf, installAssuranceCheck, sessionAuthOf, type AssuranceCheckDeps } from './assurance-check.ts';
import { assertedAcr, requestedLevel, sessionLevelIndex } from '../policies/assurance.ts';
import { tokenConfiguration, type TokenOptions } from './tokens.ts';
import { ACCOUNT_CLIENT_ID, accountClientMetadata } from '../interactions/account/client.ts';

/** A client registered with `first_party: true` (`idp client add --first-party`). */
const isFirstParty = (client: { metadata(): Record<string, unknown> }) => client.metadata().first_party === true;

type GrantInstance = InstanceType<Provider['Grant']>;

/**
 * The grant of a client that needs no consent: the session's grant for it, or a new one,
 * given whatever this request asks for that it lacks (OIDC scopes, claims of the claims
 * parameter, resource scopes); saved only when something was added.
 */
async function firstPartyGrant(ctx: KoaContextWithOIDC, existing: GrantInstance | undefined, accountId: string): Promise<GrantInstance> {
  const clientId = ctx.oidc.client!.clientId;
  const grant = existing && existing.accountId === accountId && existing.clientId === clientId ? existing : new ctx.oidc.provider.Grant({ clientId, accountId });
  let changed = grant !== existing;
  const scopes = new Set(grant.getOIDCScopeEncountered().split(' '));
  const missingScopes = [...ctx.oidc.requestParamOIDCScopes].filter((s) => !scopes.has(s));
  if (missingScopes.length) { grant.addOIDCScope(missingScopes.join(' ')); changed = true; }
  const claims = new Set(grant.getOIDCClaimsEncountered());
  const missingClaims = [...ctx.oidc.requestParamClaims].filter((c) => !claims.has(c));
  if (missingClaims.length) { grant.addOIDCClaims(missingClaims); changed = true; }
  for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
    const had = new Set(grant.getResourceScopeEncountered(indicator).split(' '));
    const missing = (server.scope ?? '').split(' ').filter((s) => s && !had.has(s));
    if (missing.length) { grant.addResourceScope(indicator, missing.join(' ')); changed = true; }
  }
  if (changed) await grant.save();
  return grant;
}

/** Adds our checks to the login prompt (STYLE.md §2: extend oidc-provider's own machinery). */
function buildPolicy(settings: Settings, assurance: AssuranceCheckDeps | undefined) {
  const policy = interactionPolicy.base();
  // prompt=consent asks for the consent page (OIDC Core §3.1.2.1: the server SHOULD prompt),
  // and relying parties must send it to be given offline_access (§11). A first-party client
  // has its consent by registration, which §11 allows as "other conditions": no page for it.
  // A native first-party client still gets oidc-provider's native_client_prompt (a custom-
  // scheme redirect can be claimed by another app; the page shows the user what they sign into).
  const consent = policy.get('consent');
  const requested = consent?.checks.get('consent_prompt');
  if (!consent || !requested) throw new Error('oidc-provider base policy has no consent prompt check');
  const asked = requested.check.bind(requested);
  requested.check = (ctx: KoaContextWithOIDC) => (ctx.oidc.client && isFirstParty(ctx.oidc.client) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : asked(ctx));
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider base policy has no login prompt');
  // A session whose account is gone (a user removed or disabled in their directory:
  // findAccount answers undefined, idp/tokens.ts) is no session: sign in again, or
  // `login_required` with prompt=none (OIDC Core §3.1.2.6). oidc-provider's own no_session
  // looks only at the session's account id. Right after no_session, before anything reads
  // the account.
  login.checks.add(
    new interactionPolicy.Check('account_not_found', 'End-User authentication is required', 'login_required', (ctx: KoaContextWithOIDC) =>
      (ctx.oidc.session?.accountId && !ctx.oidc.account ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT)),
    login.checks.findIndex((c) => c.reason === 'no_session') + 1,
  );
  if (assurance) installAssuranceCheck(login, assurance);
  // NIST 800-63B-4 §2.2.3: reauthentication at a fixed interval however active the user
  // is. Session TTL handles inactivity; this handles the absolute limit.
  login.checks.add(
    new interactionPolicy.Check('session_max_age', 'End-User authentication is too old', (ctx: KoaContextWithOIDC) => {
      const authTime = ctx.oidc.session?.authTime();
      if (!ctx.oidc.session?.accountId || authTime === undefined) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const age = Math.floor(Date.now() / 1000) - authTime;
      return age > settings.sessionMaxAge ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}

/**
 * What the app believes about a request's origin and its client's address.
 *
 * Origin: oidc-provider builds every absolute URL it emits (discovery endpoints, the
 * interaction return URL, logout forms) from the request's scheme and host (`ctx.href`).
 * Left to Koa those come from the Host header (or X-Forwarded-Host/-Proto under a trusted
 * proxy), so `Host: evil.example` would publish `http://evil.example/auth`. They come from
 * ISSUER instead, for every request, whatever its headers say: like Keycloak's strict
 * hostname or Hydra's configured public URL, and unlike refusing foreign Hosts this keeps
 * working behind proxies that rewrite Host (nginx's default sends the upstream's name) and
 * for health checks by IP. OIDC Discovery 1.0 §3: endpoints are the issuer's.
 *
 * Client address: Koa takes the first of the last `maxIpsCount` X-Forwarded-For entries,
 * i.e. the one `TRUST_PROXY_HOPS` places from the right, which our own proxies appended.
 * Entries left of it are the client's claim, which must not choose its throttling bucket
 * or its risk signals.
 */
function pinRequestOrigin(provider: Provider, settings: Settings): void {
  const issuer = new URL(settings.issuer);
  const origin = issuer.origin;
  const scheme = issuer.protocol.slice(0, -1);
  provider.proxy = settings.trustProxy;
  provider.maxIpsCount = settings.trustProxy ? settings.trustProxyHops : 0;
  // app.request is the prototype of every ctx.request (Koa's documented extension point).
  Object.defineProperties(provider.request, {
    host: { get: () => issuer.host, configurable: true },
    hostname: { get: () => issuer.hostname, configurable: true },
    protocol: { get: () => scheme, configurable: true },
    href: {
      get(this: { originalUrl: string }) {
        // An absolute-form request target (RFC 9112 §3.2.2) keeps only its path and query.
        const target = /^https?:\/\//i.test(this.originalUrl) ? new URL(this.originalUrl) : undefined;
        return `${origin}${target ? `${target.pathname}${target.search}` : this.originalUrl}`;
      },
      configurable: true,
    },
    URL: {
      get(this: { href: string }) {
        return new URL(this.href);
      },
      configurable: true,
    },
  });
}

/**
 * The `acr` oidc-provider puts in codes and ID tokens is `ctx.oidc.acr`, the session's acr
 * from its last login. A session serves many requests: one RP may list ACR values and must get
 * one of them back if the session meets it (OIDC Core §5.5.1.1), another asks nothing and gets
 * the session's own level. So the value is computed per request from the session's methods
 * (policies/assurance.ts), never the stored string. `OIDCContext` is the class of
 * `ctx.oidc` (oidc-provider exposes it on the provider instance).
 */
function assertAcrPerRequest(provider: Provider, deps: AssuranceCheckDeps): void {
  const proto = (provider as unknown as { OIDCContext: { prototype: object } }).OIDCContext.prototype;
  Object.defineProperty(proto, 'acr', {
    configurable: true,
    get(this: KoaContextWithOIDC['oidc']) {
      const session = this.session;
      if (!session?.accountId) return undefined;
      const levels = deps.policies.current().assurance.levels;
      // Idle limits count too: the session's last use before this request (its save comes after).
      const level = sessionLevelIndex(sessionAuthOf(session as Parameters<typeof sessionAuthOf>[0], deps.sessionIdleTtl), levels, Math.floor(Date.now() / 1000));
      let accepted: readonly string[] | undefined;
      try {
        const req = requestedLevel(acrRequestOf({ oidc: this } as KoaContextWithOIDC), levels);
        if (req.ok) accepted = req.accepted;
      } catch {
        // A malformed acr request was refused by the check already.
      }
      return assertedAcr(level, levels, accepted) ?? session.acr;
    },
  });
}

/**
 * `acrValues`: the ACR values the policy's assurance levels assert, weakest first
 * (published in discovery as acr_values_supported). `resourceScopes`: the scopes of
 * resource servers (tokens.ts resourceScopeNames). `assurance`: what the assurance check
 * needs; omitted only by the CLI, which builds a provider to validate client metadata with
 * and never serves it.
 */
export function buildProvider(
  settings: Settings, storage: Storage, keys: KeyFile, box: SecretBox, log: Logger, acrValues: string[],
  resourceScopes: readonly string[] = [], assurance?: AssuranceCheckDeps,
  { clientCache, ...accounts }: Pick<TokenOptions, 'directories' | 'events' | 'accountCache'> & { clientCache?: ClientCache<AdapterPayload> | undefined } = {},
): Provider {
  const secure = settings.issuer.startsWith('https:');
  // Scopes, claims (the risk claim among them), access-token contents, resource servers.
  const { resourceIndicators, ...tokens } = tokenConfiguration({ settings, storage, resourceScopes, ...accounts });
  const configuration: Configuration = {
    ...tokens,
    adapter: createAdapterClass(storage, box, clientCache),
    // The account page's own client (interactions/account/client.ts): configuration, not a
    // stored client, so no `idp client add` can replace it.
    clients: [accountClientMetadata(settings.issuer)],
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      const client = ctx.oidc.client!;
      const accountId = ctx.oidc.session?.accountId;
      // The provider's own account page asks the user nothing about themselves, and a
      // first-party client (`first_party`, README "Clients") is the operator's own
      // application: no consent page for either, as for a first-party client in
      // oidc-provider's docs. Their grant is what the request asks for (already cut down to
      // the client's allowed scopes by oidc-provider), added to at each authorization.
      if (accountId && (client.clientId === ACCOUNT_CLIENT_ID || isFirstParty(client))) {
        return firstPartyGrant(ctx, grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined, accountId);
      }
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      return undefined;
    },
    jwks: providerJwks(keys) as Configuration['jwks'],
    cookies: {
      // A signer, not the array: oidc-provider hands it to koa's cookies as is, which then
      // does not build a keygrip (adapters/cookie-keys.ts says why, and that the signatures are the same).
      keys: new CookieKeys(providerCookieKeys(keys)) as unknown as string[],
      long: { httpOnly: true, sameSite: 'lax', signed: true, secure },
      short: { httpOnly: true, sameSite: 'lax', signed: true, secure },
    },
    acrValues,
    // `min_acr`: the weakest ACR a client accepts (`idp client add --min-acr`); every
    // authorization of the client requires at least that level (idp/assurance-check.ts).
    // `first_party`: the operator's own application, which gets no consent page (above).
    extraClientMetadata: {
      properties: ['min_acr', 'first_party'],
      validator(_ctx, key, value) {
        if (key === 'min_acr' && value !== undefined && (typeof value !== 'string' || !acrValues.includes(value))) {
          throw new errors.InvalidClientMetadata(`min_acr must be one of ${acrValues.join(', ')}`);
        }
        if (key === 'first_party' && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata('first_party must be true or false');
        }
      },
    },
    // Only the authorization code flow: no implicit or hybrid response types (OAuth 2.0
    // Security BCP, RFC 9700 §2.1.2). There is no password grant in oidc-provider at all.
    responseTypes: ['code'],
    pkce: {
      // RFC 9700 §2.1.1: PKCE required for public clients; oidc-provider only implements
      // S256, so `plain` is refused for everyone.
      required: (_ctx, client) => client.clientAuthMethod === 'none',
    },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §2.1: only the client a token was issued to may introspect it.
        allowedPolicy: async (_ctx, client, token) => !token.clientId || token.clientId === client.clientId,
      },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.set('cache-control', 'no-store');
          // The client is known from id_token_hint or client_id (RP-Initiated Logout 1.0 §2).
          ctx.body = logoutPage(ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId, form).value;
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = loggedOutPage(ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId).value;
        },
      },
      // Request objects are accepted (OIDC Core §6) but must be signed: `alg: none` is not
      // in the enabled algorithms, and signatures are checked against the client's keys.
      requestObjects: { enabled: true, requireSignedRequestObject: false },
      registration: { enabled: false },
      resourceIndicators,
    },
    enabledJWA: {
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    },
    interactions: {
      policy: buildPolicy(settings, assurance),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Every rotation is mandatory (RFC 9700 §4.14.2): a refresh token is single-use.
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: {
      AccessToken: settings.accessTokenTtl,
      AuthorizationCode: 60,
      ClientCredentials: settings.accessTokenTtl,
      IdToken: settings.idTokenTtl,
      Interaction: settings.interactionTtl,
      Session: settings.sessionIdleTtl,
      Grant: settings.refreshTokenTtl,
      RefreshToken(ctx) {
        // Rotation never extends the lifetime: the new token inherits what was left.
        const rotated = ctx?.oidc?.entities.RotatedRefreshToken;
        if (rotated) return Math.max(rotated.remainingTTL, 1);
        return settings.refreshTokenTtl;
      },
    },
    // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection) by
    // attaching a checking dispatcher; hosts the operator listed are exempt.
    fetch(url, options) {
      const u = new URL(url instanceof Request ? url.url : url);
      const allowed = settings.outboundPrivateHosts.includes(u.hostname.toLowerCase()) || settings.outboundPrivateHosts.includes(u.host.toLowerCase());
      if (allowed) delete (options as { dispatcher?: unknown }).dispatcher;
      return globalThis.fetch(url, options);
    },
    async renderError(ctx, out, error) {
      ctx.type = 'html';
      ctx.set('cache-control', 'no-store');
      if (ctx.status >= 500) log.error('provider error', { error: error as Error, path: loggedPath(ctx.path) });
      const status = ctx.status >= 500 ? ERROR_CODES.internal : undefined;
      // The OAuth error code and description are shown, escaped; never a stack trace.
      ctx.body = errorPage(
        'Sign-in error',
        status ? status.message : (out.error_description ?? 'The request could not be processed.'),
        out.error ?? 'server_error',
      ).value;
    },
  };

  const provider = new Provider(settings.issuer, configuration);
  pinRequestOrigin(provider, settings);
  if (assurance) assertAcrPerRequest(provider, assurance);
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'backchannel.error', 'end_session.error'] as const) {
    (provider as unknown as NodeJS.EventEmitter).on(event, (...args: unknown[]) => {
      const err = args.find((a): a is Error => a instanceof Error);
      const level = event === 'server_error' ? 'error' : 'info';
      const cause = err?.cause instanceof Error ? err.cause.message : undefined;
      log[level](event, { error: err ? { name: err.name, message: err.message, ...(cause ? { cause } : {}) } : undefined });
    });
  }
  return provider;
}

/**
 * Tokens and claims: the scopes the provider accepts, the claims each releases, the `risk`
 * claim, and what access tokens for resource servers and introspection responses carry.
 * provider.ts spreads this into the oidc-provider configuration; protocol behaviour stays
 * oidc-provider's.
 *
 * - OIDC scopes (`openid`, `profile`, `email`, `address`, `phone`, `offline_access`, `groups`,
 *   `risk`) release claims (OIDC Core §5.4).
 * - Resource scopes: every operation `assurance.yml` names (e.g. `payments:write`) plus
 *   RESOURCE_SCOPES. They are static scopes of oidc-provider, so a client can be registered
 *   with them (its `scope` metadata is the allow-list oidc-provider enforces) and they reach
 *   the interaction, hence the risk engine, whether or not the RP names a resource.
 * - Resource servers (RESOURCE_SERVERS, RFC 8707 resource indicators) get JWT access tokens
 *   (RFC 9068) carrying `acr`, `amr` and `auth_time` (RFC 9068 §2.2.1, RFC 9470 §3), and only
 *   the resource scopes the client is registered for.
 * - Opaque access tokens (for userinfo) carry the same three in introspection (RFC 7662 §2.2,
 *   RFC 9470 §6.2).
 *
 * Scope names are read at start: a new operation in the policy or a new RESOURCE_SCOPES
 * entry needs a restart (discovery publishes them, and the provider is built once).
 */
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Storage } from '../adapters/storage/port.ts';
import type { Directories } from '../adapters/directory/index.ts';
import type { AccountCache, CachedAccount } from '../adapters/account-cache.ts';
import type { Events } from './events.ts';
import { findLoginRecord } from '../interactions/login-record.ts';
import { SCOPE_TOKEN, type Settings } from './settings.ts';
import { ADMIN_SCOPE_NAMES } from './admin/route.ts';

/** The scopes that release claims about the user or the login (OIDC Core §5.4). */
export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'address', 'phone', 'groups', 'risk'] as const;

/** OIDC Core §5.4: the claims the `profile` scope requests. */
export const PROFILE_CLAIMS = [
  'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website',
  'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
] as const;

/**
 * Every claim the account has, for oidc-provider to cut down to what the scopes and the claims
 * parameter ask for (OIDC Core §5.4, §5.5). A claim the user lacks is left out, never sent
 * empty (§5.1: claims without a value are omitted); `*_verified` goes with its claim.
 */
export function accountClaims(account: CachedAccount): Record<string, unknown> {
  const { preferred_username: preferred, groups, phone_number_verified: phoneVerified, ...rest } = account.claims ?? {};
  const out: Record<string, unknown> = {};
  if (account.email) Object.assign(out, { email: account.email, email_verified: account.emailVerified });
  if (account.name) out.name = account.name;
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && v !== null && v !== '') out[k] = v;
  if (rest.phone_number) out.phone_number_verified = phoneVerified === true;
  // A linked account's stored username is an internal key: the directory's name for the user.
  const preferredUsername = preferred ?? (account.directory ? undefined : account.username);
  if (preferredUsername) out.preferred_username = preferredUsername;
  if (groups) out.groups = groups;
  // OIDC Core §5.1: seconds since the epoch of the last change of the user's information.
  out.updated_at = Math.floor(account.profileUpdatedAt.getTime() / 1000);
  return out;
}

/** The claim that carries the login's risk assessment (README "The risk claim"). */
export const RISK_CLAIM = 'risk';

/**
 * Resource scopes: the operations the policy names and the configured ones, without the
 * OIDC scopes. A policy key that is not a valid scope token (RFC 6749 §3.3) could never be
 * requested, so it is left out rather than published.
 */
export function resourceScopeNames(operations: readonly string[], configured: readonly string[]): string[] {
  const oidc = new Set<string>(OIDC_SCOPES);
  return [...new Set([...operations, ...configured, ...ADMIN_SCOPE_NAMES])].filter((s) => SCOPE_TOKEN.test(s) && !oidc.has(s)).sort();
}

/** The admin API's resource indicator (RFC 8707): the audience of its access tokens (idp/admin/auth.ts). */
export function adminAudience(issuer: string): string {
  return `${issuer}/admin/api`;
}

type ClaimsRequest = Record<string, unknown>;

/**
 * Whether this token may carry the `risk` claim: never unless the client asked. In the ID
 * token when the `risk` scope was granted or the claims parameter asked for it there
 * (`{"id_token":{"risk":null}}`); in userinfo only when asked there through the claims
 * parameter (`{"userinfo":{"risk":null}}`): it describes one login, not the user.
 */
export function wantsRisk(use: string, scope: string, claims: ClaimsRequest | undefined): boolean {
  const asked = claims !== undefined && Object.hasOwn(claims, RISK_CLAIM);
  if (use === 'id_token') return asked || scope.split(' ').includes('risk');
  return use === 'userinfo' && asked;
}

/** `auth_time` of the login a token (or the current session) belongs to. */
function authTimeOf(ctx: KoaContextWithOIDC, token: unknown): number | undefined {
  const t = token as { authTime?: unknown; extra?: { auth_time?: unknown } } | undefined;
  const value = t?.authTime ?? t?.extra?.auth_time ?? ctx.oidc?.session?.authTime();
  return typeof value === 'number' ? value : undefined;
}

/**
 * RFC 8707 §2: the resource indicator the RP sent, matched against the configured ones as
 * URLs (so `https://api.example` and `https://api.example/` are one), answered with the
 * configured spelling as the audience.
 */
function matchResource(configured: readonly string[], indicator: string): string | undefined {
  const norm = (u: string) => (URL.canParse(u) ? new URL(u).href : u);
  const wanted = norm(indicator);
  return configured.find((c) => norm(c) === wanted);
}

export interface TokenOptions {
  settings: Settings;
  storage: Storage;
  /** resourceScopeNames(...) */
  resourceScopes: readonly string[];
  /** Directories whose linked accounts are checked at every use (absent: none configured). */
  directories?: Directories | undefined;
  events?: Events | undefined;
  /** Accounts recently read (adapters/account-cache.ts); absent: every use reads the store. */
  accountCache?: AccountCache | undefined;
}

/**
 * RFC 6749 §4.1.2.1 `temporarily_unavailable`, as a 503: the directory behind the account
 * could not say whether it may still be used. oidc-provider renders it like its own errors
 * (an error page, or a redirect to the RP), never as a 500.
 */
function directoryUnavailable(): Error {
  const err = new errors.CustomOIDCProviderError('temporarily_unavailable', 'the user directory is not answering; try again shortly');
  Object.assign(err, { status: 503, statusCode: 503, expose: true });
  return err;
}

/**
 * A directory-linked account is usable while its entry exists and is not disabled or
 * expired: checked at every use (session, code and refresh grants, userinfo), so a user
 * removed from the directory is signed out and their refresh tokens stop at their next use.
 */
async function stillLinked(account: CachedAccount, o: TokenOptions): Promise<boolean> {
  if (!account.directory) return true;
  if (!o.directories) return false;
  const state = await o.directories.sessionState(account.directory.name, account.directory.id, o.settings.directorySessionGrace * 1000);
  if (state === 'unavailable') {
    o.events?.emit('directory.unavailable', { directory: account.directory.name, during: 'account check', account: account.id }, 'warn');
    o.events?.count('idp_directory_errors_total', { directory: account.directory.name, kind: 'account_check' });
    throw directoryUnavailable();
  }
  if (state === 'ended') o.events?.emit('directory.session_ended', { directory: account.directory.name, account: account.id }, 'warn');
  return state === 'active';
}

/** The token and claims part of the oidc-provider configuration. */
export function tokenConfiguration(options: TokenOptions) {
  const { settings, storage, resourceScopes } = options;
  const resourceScopeSet = new Set(resourceScopes);
  const adminScopes = new Set<string>(ADMIN_SCOPE_NAMES);
  return {
    scopes: [...OIDC_SCOPES, ...resourceScopes],
    // OIDC Core §5.4: standard claims by scope. acr, amr and auth_time ride on `openid`, so
    // every ID token states how and when the user authenticated (OIDC Core §2 makes them
    // optional unless requested; relying parties of an adaptive OP need them every time).
    // The account never supplies them, so userinfo does not carry them. `risk` is listed under
    // `openid` too, because oidc-provider puts only `openid`'s claims into an ID token issued
    // with an access token (conformIdTokenClaims, OIDC Core §5.4); whether it is actually
    // released is decided per token by wantsRisk() in findAccount.
    claims: {
      openid: ['sub', 'acr', 'amr', 'auth_time', RISK_CLAIM],
      email: ['email', 'email_verified'],
      profile: [...PROFILE_CLAIMS],
      address: ['address'],
      phone: ['phone_number', 'phone_number_verified'],
      // Not an OIDC Core claim: the directory's group names (README "Directories").
      groups: ['groups'],
      risk: [RISK_CLAIM],
      sid: null,
    },
    async findAccount(ctx, sub, token) {
      const { accountCache } = options;
      const account = accountCache
        ? await accountCache.get(sub, (id) => storage.accounts.findById(id))
        : await storage.accounts.findById(sub);
      // A disabled account is no account: its sessions end at their next use (the
      // account_not_found check, idp/provider.ts), its codes and refresh tokens are refused.
      if (!account || account.disabled || !(await stillLinked(account, options))) return undefined;
      return {
        accountId: account.id,
        async claims(use, scope, claims) {
          let risk: object | undefined;
          if (wantsRisk(use, scope, claims)) {
            const authTime = authTimeOf(ctx, token);
            if (authTime !== undefined) risk = (await findLoginRecord(storage, account.id, authTime))?.risk;
          }
          return {
            sub: account.id,
            ...accountClaims(account),
            ...(risk ? { [RISK_CLAIM]: risk } : {}),
          };
        },
      };
    },
    /**
     * `acr`, `amr` and `auth_time` of the login behind a user's access token: in a JWT access
     * token's payload (RFC 9068 §2.2.1) and in the introspection response of an opaque one
     * (RFC 9470 §6). The source is the code or refresh token being exchanged, which carry
     * what the login proved. Client-credentials tokens have no login, hence none.
     */
    async extraTokenClaims(ctx, token) {
      if (token.kind !== 'AccessToken') return undefined;
      const source = ctx?.oidc?.entities.AuthorizationCode ?? ctx?.oidc?.entities.RefreshToken;
      if (!source || source.authTime === undefined) return undefined;
      return {
        ...(source.acr ? { acr: source.acr } : {}),
        ...(source.amr?.length ? { amr: source.amr } : {}),
        auth_time: source.authTime,
      };
    },
    resourceIndicators: {
      enabled: true,
      /**
       * RFC 8707 §2: an unknown resource is `invalid_target`. The token's scope is the
       * resource scopes the client is registered for (its `scope` metadata; all of them when
       * it has none, as oidc-provider treats static scopes).
       */
      async getResourceServerInfo(ctx, indicator, client) {
        const admin = adminAudience(settings.issuer);
        const audience = matchResource([admin, ...settings.resourceServers], indicator);
        if (!audience) throw new errors.InvalidTarget('unknown resource server');
        const registered = client.scope?.split(' ');
        // Admin scopes only ever for the admin API, and only to a client registered for them
        // by name: never by default, and never in a token for another resource server.
        let allowed = audience === admin
          ? (registered ?? []).filter((s) => adminScopes.has(s))
          : (registered ?? resourceScopes).filter((s) => resourceScopeSet.has(s) && !adminScopes.has(s));
        // An administrator's token carries only the admin roles their account holds (the admin
        // API cuts to them again at every request, when a role may have been taken away since).
        const entities = ctx.oidc?.entities;
        const accountId = entities?.AuthorizationCode?.accountId ?? entities?.RefreshToken?.accountId ?? entities?.DeviceCode?.accountId;
        if (audience === admin && accountId) {
          const roles = new Set((await storage.roles.get(accountId)).scopes);
          allowed = allowed.filter((s) => roles.has(s));
        }
        return {
          audience,
          scope: allowed.join(' '),
          accessTokenFormat: 'jwt' as const,
          accessTokenTTL: settings.accessTokenTtl,
          // RFC 9068 §2.1: RS256 is what every resource server must support.
          jwt: { sign: { alg: 'RS256' as const } },
        };
      },
    },
  } satisfies Pick<Configuration, 'scopes' | 'claims' | 'findAccount' | 'extraTokenClaims'> & {
    resourceIndicators: NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;
  };
}

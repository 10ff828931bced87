/**
 * For resource servers (APIs) that accept this provider's JWT access tokens: check how and
 * when the user authenticated, and when that is not enough, answer as RFC 9470 ("OAuth 2.0
 * Step Up Authentication Challenge Protocol") §3 says, so the client can send the user back
 * to the provider for more and retry.
 *
 *   import { requireAuthentication } from 'adaptive-idp/resource-server';
 *   router.post('/payments', requireAuthentication({ issuer, audience, scope: 'payments:write',
 *     acr: 'urn:adaptive-idp:aal2', maxAge: 900 }), handler);   // claims in ctx.state.accessToken
 *
 * - `checkAuthentication(claims, requirement)`: plain function over already verified claims.
 * - `requireAuthentication(options)`: Koa middleware; verifies the bearer token as RFC 9068
 *   §4 asks (signature against the issuer's JWKS, `typ` at+jwt, `iss`, `aud`, `exp`), then
 *   the scope (RFC 6750 §3.1) and the authentication (RFC 9470 §3).
 *
 * Stand-alone on purpose: it imports nothing of the provider, only `jose`.
 */
import * as jose from 'jose';
import type { Context, Middleware, Next } from 'koa';

/** What an endpoint needs of the user's authentication. */
export interface AuthenticationRequirement {
  /**
   * The weakest acceptable ACR: the token's `acr` must be this one or one after it in
   * `levels` (assurance levels are ordered: aal1 < aal2 < aal3).
   */
  acr?: string | undefined;
  /** The ACR values in order, weakest first. Required with `acr` (the middleware defaults it to the issuer's `acr_values_supported`). */
  levels?: readonly string[] | undefined;
  /** Alternatively, the acceptable ACR values as a plain list, in order of preference. */
  acrValues?: readonly string[] | undefined;
  /** Seconds since the user last authenticated (`auth_time`) after which a new authentication is needed. */
  maxAge?: number | undefined;
  /** Epoch seconds; default: now. */
  now?: number | undefined;
}

export type AuthenticationCheck =
  | { ok: true }
  | {
    ok: false;
    status: 401;
    error: 'insufficient_user_authentication';
    errorDescription: string;
    /** What to send back to the provider as `acr_values` (space-separated), in order of preference. */
    acrValues?: string[];
    /** What to send back to the provider as `max_age`. */
    maxAge?: number;
    /** The whole `WWW-Authenticate` header value (RFC 9470 §3). */
    wwwAuthenticate: string;
  };

/** RFC 9110 §11.2 / §5.6.4: an auth-param value as a quoted-string. */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A `Bearer` challenge (RFC 6750 §3) from auth-params; undefined values are left out. */
export function bearerChallenge(params: Record<string, string | number | undefined>): string {
  const list = Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${quoted(String(v))}`);
  return list.length ? `Bearer ${list.join(', ')}` : 'Bearer';
}

function acceptable(req: AuthenticationRequirement): string[] | undefined {
  if (req.acrValues !== undefined) return [...req.acrValues];
  if (req.acr === undefined) return undefined;
  const i = req.levels?.indexOf(req.acr) ?? -1;
  // Misconfiguration, not a user's failing: say so loudly (STYLE.md §4).
  if (!req.levels || i < 0) throw new TypeError(`acr "${req.acr}" is not one of the levels [${(req.levels ?? []).join(', ')}]`);
  return req.levels.slice(i);
}

/**
 * Whether verified access-token claims meet `req`. When they do not: the 401 and the
 * `WWW-Authenticate` header of RFC 9470 §3, with `acr_values` (the acceptable ACR values,
 * the weakest first) and/or `max_age` for the client to send in its next authorization
 * request. A token without `acr` fails an ACR requirement; one without `auth_time` fails a
 * `maxAge` (RFC 9470 §6: the resource server cannot tell otherwise).
 */
export function checkAuthentication(claims: Readonly<Record<string, unknown>>, req: AuthenticationRequirement): AuthenticationCheck {
  const wanted = acceptable(req);
  const now = req.now ?? Math.floor(Date.now() / 1000);
  const acrFails = wanted !== undefined && (typeof claims.acr !== 'string' || !wanted.includes(claims.acr));
  const ageFails = req.maxAge !== undefined && (typeof claims.auth_time !== 'number' || now - claims.auth_time > req.maxAge);
  if (!acrFails && !ageFails) return { ok: true };
  // The descriptions are RFC 9470 §3's examples.
  const errorDescription = acrFails && ageFails
    ? 'A different authentication level and a more recent authentication are required'
    : acrFails ? 'A different authentication level is required' : 'More recent authentication is required';
  const acrValues = acrFails ? wanted : undefined;
  const maxAge = ageFails ? req.maxAge : undefined;
  return {
    ok: false,
    status: 401,
    error: 'insufficient_user_authentication',
    errorDescription,
    ...(acrValues ? { acrValues } : {}),
    ...(maxAge !== undefined ? { maxAge } : {}),
    wwwAuthenticate: bearerChallenge({
      error: 'insufficient_user_authentication',
      error_description: errorDescription,
      acr_values: acrValues?.join(' '),
      max_age: maxAge,
    }),
  };
}

export interface ResourceServerOptions extends Omit<AuthenticationRequirement, 'now'> {
  /** The provider's issuer identifier, exactly as in its discovery document. */
  issuer: string;
  /** This API's resource indicator, as configured in the provider's RESOURCE_SERVERS (the token's `aud`). */
  audience: string;
  /** Scopes the token must all carry (RFC 6750 §3.1 `insufficient_scope` otherwise). */
  scope?: string | readonly string[] | undefined;
  /** Default: the `jwks_uri` of the issuer's discovery document. */
  jwksUri?: string | undefined;
  /** Accepted signature algorithms. Default: RS256 (RFC 9068 §2.1), PS256, ES256, EdDSA. */
  algorithms?: readonly string[] | undefined;
  /** Seconds of clock skew tolerated for `exp`/`iat`. Default 5. */
  clockTolerance?: number | undefined;
}

interface IssuerInfo {
  jwks: ReturnType<typeof jose.createRemoteJWKSet>;
  levels: string[] | undefined;
}

/** OIDC Discovery 1.0 §4: the issuer's metadata, whose `issuer` must be the one configured. */
async function discover(issuer: string, jwksUri: string | undefined): Promise<IssuerInfo> {
  if (jwksUri) return { jwks: jose.createRemoteJWKSet(new URL(jwksUri)), levels: undefined };
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`discovery of ${issuer} answered ${res.status}`);
  const meta = await res.json() as { issuer?: unknown; jwks_uri?: unknown; acr_values_supported?: unknown };
  if (meta.issuer !== issuer) throw new Error(`discovery of ${issuer} names another issuer`);
  if (typeof meta.jwks_uri !== 'string') throw new Error(`discovery of ${issuer} has no jwks_uri`);
  const levels = Array.isArray(meta.acr_values_supported) ? meta.acr_values_supported.filter((v): v is string => typeof v === 'string') : undefined;
  return { jwks: jose.createRemoteJWKSet(new URL(meta.jwks_uri)), levels };
}

function deny(ctx: Context, status: 401 | 403, challenge: string, body?: { error: string; error_description: string }): void {
  ctx.status = status;
  ctx.set('www-authenticate', challenge);
  ctx.set('cache-control', 'no-store');
  if (body) ctx.body = body;
}

/**
 * Koa middleware: a valid JWT access token of `issuer` for `audience` that meets the
 * requirement, or the answer RFC 6750 §3 / RFC 9470 §3 give. On success the verified claims
 * are in `ctx.state.accessToken`. The issuer's metadata is fetched on first use (and again
 * after a failure, answered 503 meanwhile); keys are cached and refetched on an unknown `kid`.
 */
export function requireAuthentication(options: ResourceServerOptions): Middleware {
  const required = typeof options.scope === 'string' ? options.scope.split(' ').filter(Boolean) : [...(options.scope ?? [])];
  const algorithms = [...(options.algorithms ?? ['RS256', 'PS256', 'ES256', 'EdDSA'])];
  let info: Promise<IssuerInfo> | undefined;
  const issuerInfo = () => {
    info ??= discover(options.issuer, options.jwksUri).catch((err: unknown) => {
      info = undefined;
      throw err;
    });
    return info;
  };
  // A misconfigured requirement fails at construction, not at the first request.
  if (options.levels) acceptable(options);
  else if (options.acr !== undefined && options.jwksUri) throw new TypeError('with jwksUri (no discovery), give the ACR levels in order as `levels`');

  return async (ctx: Context, next: Next) => {
    // RFC 6750 §2.1; the scheme is case-insensitive (RFC 9110 §11.1).
    const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(ctx.get('authorization'));
    if (!match) return deny(ctx, 401, 'Bearer'); // RFC 6750 §3.1: no error code without credentials.
    let issuerMeta: IssuerInfo;
    try {
      issuerMeta = await issuerInfo();
    } catch {
      ctx.status = 503;
      ctx.set('retry-after', '5');
      ctx.body = { error: 'temporarily_unavailable', error_description: 'The authorization server cannot be reached to verify the token' };
      return undefined;
    }
    let claims: jose.JWTPayload;
    try {
      ({ payload: claims } = await jose.jwtVerify(match[1]!, issuerMeta.jwks, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt', // RFC 9068 §4: reject anything but an access token (e.g. an ID token).
        algorithms,
        clockTolerance: options.clockTolerance ?? 5,
        requiredClaims: ['exp', 'iat', 'sub', 'client_id', 'jti'],
      }));
    } catch (err) {
      const description = err instanceof jose.errors.JWTExpired ? 'The access token expired' : 'The access token is not valid for this resource';
      return deny(ctx, 401, bearerChallenge({ error: 'invalid_token', error_description: description }), { error: 'invalid_token', error_description: description });
    }
    const granted = new Set(typeof claims.scope === 'string' ? claims.scope.split(' ') : []);
    const missing = required.filter((s) => !granted.has(s));
    if (missing.length) {
      const description = 'The access token does not carry the scope this request needs';
      return deny(ctx, 403, bearerChallenge({ error: 'insufficient_scope', error_description: description, scope: required.join(' ') }), { error: 'insufficient_scope', error_description: description });
    }
    const check = checkAuthentication(claims, { ...options, levels: options.levels ?? issuerMeta.levels });
    if (!check.ok) return deny(ctx, check.status, check.wwwAuthenticate, { error: check.error, error_description: check.errorDescription });
    ctx.state.accessToken = claims;
    return next();
  };
}

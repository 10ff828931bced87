/**
 * Who may call the admin API: the bearer of a JWT access token (RFC 9068) this provider
 * issued for the admin API's resource indicator (RFC 8707), checked locally against the
 * provider's own signing keys. Two kinds of principal:
 * - a client with the `client_credentials` grant, registered with admin scopes; its token
 *   has no `auth_time` and `sub` = its client id (RFC 9068 §2.2);
 * - an administrator signed in through a client: the token names the account (`sub`), how
 *   and when they authenticated (`acr`, `auth_time`, RFC 9470). Their session must meet
 *   ADMIN_ACR, and ADMIN_SENSITIVE_ACR within ADMIN_SENSITIVE_MAX_AGE for the operations
 *   marked sensitive; otherwise the answer is RFC 9470 §3's challenge so the client can send
 *   them back for a step-up.
 * The scopes that count are the token's, cut to what the client is registered for NOW and,
 * for an administrator, to the admin scopes their account holds NOW: a client removed, an
 * account disabled or a role taken away stops working within the client cache's life, not
 * at the token's expiry.
 */
import * as jose from 'jose';
import { bearerChallenge, checkAuthentication } from '../resource-server.ts';
import { Problem } from './problem.ts';
import type { AdminRoute, Principal } from './route.ts';

export interface AdminAuthOptions {
  issuer: string;
  /** The admin API's resource indicator: the `aud` its tokens carry. */
  audience: string;
  /** The provider's current verification keys (they change with a rotation). */
  keys(): jose.JWTVerifyGetKey;
  /** The ACR values of the policy, weakest first. */
  levels(): readonly string[];
  acr: string;
  sensitiveAcr: string;
  sensitiveMaxAge: number;
  /** The scopes a client is registered for; undefined when it no longer exists. */
  clientScopes(clientId: string): Promise<ReadonlySet<string> | undefined>;
  /** The admin scopes an account holds; undefined when it no longer exists or is disabled. */
  accountScopes(accountId: string): Promise<ReadonlySet<string> | undefined>;
}

const REALM = 'admin';

function invalidToken(description: string): Problem {
  return new Problem('unauthorized', description, {
    headers: { 'www-authenticate': bearerChallenge({ realm: REALM, error: 'invalid_token', error_description: description }) },
  });
}

export async function authenticate(authorization: string | undefined, route: AdminRoute, o: AdminAuthOptions, ip: string): Promise<Principal> {
  // RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
  if (!authorization) throw new Problem('unauthorized', 'send an access token: Authorization: Bearer <token>', { headers: { 'www-authenticate': bearerChallenge({ realm: REALM }) } });
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization);
  if (!m) throw invalidToken('the Authorization header is not a Bearer token (RFC 6750 §2.1)');
  let claims: jose.JWTPayload;
  try {
    ({ payload: claims } = await jose.jwtVerify(m[1]!, o.keys(), {
      issuer: o.issuer,
      audience: o.audience,
      // RFC 9068 §4: the type, so an ID token or a logout token is never taken for an access token.
      typ: 'at+jwt',
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      clockTolerance: 5,
    }));
  } catch (err) {
    const reason = err instanceof jose.errors.JWTExpired ? 'the access token has expired'
      : err instanceof jose.errors.JWTClaimValidationFailed ? `the access token is not for this API (${err.claim})`
        : 'the access token is not valid';
    throw invalidToken(reason);
  }
  const clientId = typeof claims.client_id === 'string' ? claims.client_id : undefined;
  const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
  if (!clientId || !sub) throw invalidToken('the access token names no client or subject');
  const granted = new Set(typeof claims.scope === 'string' ? claims.scope.split(' ') : []);
  const registered = await o.clientScopes(clientId);
  if (!registered) throw invalidToken('the client the token was issued to no longer exists');
  const isClient = claims.auth_time === undefined && sub === clientId;
  let held: ReadonlySet<string> | undefined = registered;
  if (!isClient) {
    const roles = await o.accountScopes(sub);
    if (!roles) throw invalidToken('the account the token was issued for no longer exists or is disabled');
    held = new Set([...registered].filter((s) => roles.has(s)));
  }
  const scopes = new Set([...granted].filter((s) => held.has(s)));
  if (!scopes.has(route.scope)) {
    throw new Problem('insufficient_scope', `this operation needs the scope ${route.scope}`, {
      headers: { 'www-authenticate': bearerChallenge({ realm: REALM, error: 'insufficient_scope', scope: route.scope }) },
    });
  }
  if (!isClient) {
    const check = checkAuthentication(claims, {
      levels: o.levels(),
      acr: route.sensitive ? o.sensitiveAcr : o.acr,
      ...(route.sensitive ? { maxAge: o.sensitiveMaxAge } : {}),
    });
    if (!check.ok) throw new Problem('insufficient_user_authentication', check.errorDescription, { headers: { 'www-authenticate': check.wwwAuthenticate } });
  }
  return {
    actor: { kind: isClient ? 'client' : 'user', id: isClient ? clientId : sub, ip },
    kind: isClient ? 'client' : 'user',
    scopes,
    clientId,
  };
}

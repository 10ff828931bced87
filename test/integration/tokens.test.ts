/**
 * What tokens say about a login, with a real provider, openid-client as the RP and a real
 * resource server (Koa + the exported helper) over HTTP:
 * - resource scopes (the policy's operations, RESOURCE_SCOPES) are registrable on a client
 *   with `idp client add --scope` and reach the risk engine (the recorded login event);
 * - JWT access tokens for a RESOURCE_SERVERS audience (RFC 9068) and introspection of opaque
 *   ones (RFC 7662) carry `acr`, `amr`, `auth_time` (RFC 9470 §3, §6);
 * - the `risk` claim, only when asked for (scope `risk` or the claims parameter);
 * - the resource-server helper's RFC 9470 challenge, read back by openid-client as the RP
 *   would before retrying, and its success case.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, it } from 'node:test';
import Koa from 'koa';
import * as client from 'openid-client';
import * as jose from 'jose';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { runNode } from '../helpers/process.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { Browser } from '../helpers/browser.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { requireAuthentication } from '../../idp/resource-server.ts';
import type { RiskClaim } from '../../interactions/login-record.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';
const SECRET = 'a-client-secret-that-is-long-enough-0123456789';
const API = 'https://api.example.test/';
const AAL1 = 'urn:adaptive-idp:aal1';
const AAL2 = 'urn:adaptive-idp:aal2';
const AAL3 = 'urn:adaptive-idp:aal3';
const BIN = path.join(import.meta.dirname, '..', '..', 'idp', 'bin.js');

/** A resource server on loopback, protected by the exported middleware. */
async function resourceServer(issuer: string) {
  const app = new Koa();
  const routes: Record<string, Koa.Middleware> = {
    '/aal1': requireAuthentication({ issuer, audience: API, acr: AAL1 }),
    '/aal2': requireAuthentication({ issuer, audience: API, acr: AAL2 }),
    '/fresh': requireAuthentication({ issuer, audience: API, maxAge: 0 }),
    '/payments': requireAuthentication({ issuer, audience: API, scope: 'payments:write' }),
    '/orders': requireAuthentication({ issuer, audience: API, scope: 'orders:read' }),
  };
  app.use(async (ctx, next) => {
    const guard = routes[ctx.path];
    if (!guard) return;
    await guard(ctx, async () => {
      const claims = ctx.state.accessToken as jose.JWTPayload;
      ctx.body = { sub: claims.sub, acr: claims.acr };
      await next();
    });
  });
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

for (const store of STORES) {
  describeOrSkip(store.skip, `tokens: resource scopes, JWT access tokens, introspection, the risk claim, the RS helper (${store.kind} store)`, () => {
    let srv: TestServer;
    let rs: Awaited<ReturnType<typeof resourceServer>>;
    let config: client.Configuration;
    let jwks: ReturnType<typeof jose.createRemoteJWKSet>;
    let sub: string;
    let totpSecret: string;

    before(async () => {
      // The shipped policy, with payments:write allowed at AAL1 (a password): these tests are
      // about tokens; test/integration/stepup.test.ts is about what each level asks.
      const policy = makePolicyDir((f) => {
        f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
        f.assurance.operations['payments:write'] = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
      });
      srv = await startTestServer(store.kind, { POLICY_DIR: policy, RESOURCE_SERVERS: `${API} https://other.example.test`, RESOURCE_SCOPES: 'orders:read' });
      sub = await srv.addUser('alice', PASSWORD, { email: 'alice@example.com' });
      totpSecret = await srv.addTotp(sub);
      await srv.addClient('rp', {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic', scope: 'openid offline_access profile email risk orders:read',
      }, SECRET);
      config = await discover(srv.issuer, 'rp', SECRET);
      jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
      rs = await resourceServer(srv.issuer);
    });
    after(async () => {
      await rs?.close();
      await srv?.close();
    });

    const login = async (params: Record<string, string>, tokenParams?: Record<string, string>, cfg = config) => {
      const l = await loginThroughForm(cfg, 'alice', PASSWORD, params);
      const tokens = await client.authorizationCodeGrant(cfg, l.callback, { pkceCodeVerifier: l.verifier, expectedNonce: l.nonce, expectedState: l.state }, tokenParams);
      return { ...l, tokens };
    };
    const verifyAccessToken = (at: string, audience = API) => jose.jwtVerify(at, jwks, { issuer: srv.issuer, audience, typ: 'at+jwt' });

    it('publishes the resource scopes (policy operations and RESOURCE_SCOPES) and the risk claim in discovery', () => {
      const m = config.serverMetadata();
      for (const s of ['openid', 'risk', 'payments:write', 'orders:read']) assert.ok(m.scopes_supported?.includes(s), s);
      assert.ok(m.claims_supported?.includes('risk'));
    });

    it('registers payments:write on a client with `idp client add --scope`; the scope reaches the engine and the JWT access token', async () => {
      const env = { PATH: process.env.PATH ?? '', ...srv.env };
      const refused = await runNode([BIN, 'client', 'add', '--id', 'bad', '--redirect-uri', REDIRECT_URI, '--scope', 'openid payments:wrote'], { env });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /unsupported scope\(s\): payments:wrote .*payments:write/);
      const added = await runNode([BIN, 'client', 'add', '--id', 'pay', '--redirect-uri', REDIRECT_URI, '--scope', 'openid payments:write'], { env });
      assert.equal(added.code, 0, added.stderr);
      const printed = JSON.parse(added.stdout) as { client_secret: string; scope: string };
      assert.equal(printed.scope, 'openid payments:write');

      const pay = await discover(srv.issuer, 'pay', printed.client_secret);
      const since = Date.now();
      const l = await login({ scope: 'openid payments:write', resource: API }, { resource: API }, pay);
      // RFC 9068: a JWT for the API, with the resource scope and the login's acr/amr/auth_time.
      const { payload, protectedHeader } = await verifyAccessToken(l.tokens.access_token);
      assert.equal(protectedHeader.typ, 'at+jwt');
      assert.equal(protectedHeader.alg, 'RS256');
      assert.equal(payload.aud, API);
      assert.equal(payload.sub, sub);
      assert.equal(payload.client_id, 'pay');
      assert.equal(payload.scope, 'payments:write');
      assert.equal(payload.acr, AAL1);
      assert.deepEqual(payload.amr, ['pwd', 'rba']);
      assert.equal(payload.auth_time, l.tokens.claims()!.auth_time);

      // The recorded login event (what `idp events export` prints) shows the scope the engine saw.
      const events = [];
      for await (const e of srv.storage.events.list({ since })) events.push(e);
      const ok = events.filter((e) => e.success && e.clientId === 'pay');
      assert.equal(ok.length, 1);
      assert.equal(ok[0]!.scope, 'openid payments:write');
      const exported = await runNode([BIN, 'events', 'export', '--since', new Date(since).toISOString()], { env });
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stdout, /"scope":"openid payments:write"/);
    });

    it('refuses a scope the client is not registered for, and a resource that is not configured', async () => {
      // Both are refused at the authorization endpoint, before any login page.
      const browser = new Browser();
      const url = (params: Record<string, string>) => client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's', ...params,
      });
      const notRegistered = await browser.navigate(url({ scope: 'openid payments:write' }), {}, REDIRECT_URI);
      assert.equal(notRegistered.url.searchParams.get('error'), 'invalid_scope');
      const unknown = await browser.navigate(url({ scope: 'openid orders:read', resource: 'https://unknown.example.test/' }), {}, REDIRECT_URI);
      assert.equal(unknown.url.searchParams.get('error'), 'invalid_target');
    });

    it('puts acr, amr and auth_time into introspection of an opaque access token, and into JWT access tokens after a refresh', async () => {
      const l = await login({ scope: 'openid offline_access orders:read', resource: API });
      const idt = l.tokens.claims()!;
      // Without `resource` at the token endpoint: the opaque token for userinfo.
      assert.equal(l.tokens.access_token.split('.').length, 1, 'opaque');
      const intro = await client.tokenIntrospection(config, l.tokens.access_token);
      assert.equal(intro.active, true);
      assert.equal(intro.acr, AAL1);
      assert.deepEqual(intro.amr, ['pwd', 'rba']);
      assert.equal(intro.auth_time, idt.auth_time);

      // A refresh names the API: the JWT carries the original login's values, not the refresh's time.
      await new Promise((r) => setTimeout(r, 1100));
      const refreshed = await client.refreshTokenGrant(config, l.tokens.refresh_token!, { resource: API });
      const { payload } = await verifyAccessToken(refreshed.access_token);
      assert.equal(payload.scope, 'orders:read');
      assert.equal(payload.acr, AAL1);
      assert.equal(payload.auth_time, idt.auth_time);
      // RFC 9068 §4: an access token for another audience is refused.
      await assert.rejects(verifyAccessToken(refreshed.access_token, 'https://other.example.test'));
    });

    it('sends the risk claim only when asked: scope `risk`, or the claims parameter', async () => {
      const none = await login({ scope: 'openid email' });
      assert.equal(none.tokens.claims()!.risk, undefined, 'not asked: no risk claim');
      assert.equal((await client.fetchUserInfo(config, none.tokens.access_token, sub)).risk, undefined);

      const since = Date.now();
      const byScope = await login({ scope: 'openid risk offline_access' });
      const risk = byScope.tokens.claims()!.risk as unknown as RiskClaim;
      assert.ok(risk, 'scope risk: the ID token carries it');
      assert.deepEqual(Object.keys(risk).sort(), ['level', 'model_version', 'policy_version', 'reasons', 'score']);
      assert.ok(typeof risk.score === 'number' && risk.score >= 0 && risk.score <= 1);
      assert.ok(['low', 'medium', 'high', 'critical'].includes(risk.level));
      assert.ok(risk.reasons.length > 0);
      for (const r of risk.reasons) assert.deepEqual(Object.keys(r).sort(), ['contribution', 'factor'], 'no detail: it may name places');
      assert.equal(risk.policy_version, srv.policies.current().version);
      assert.equal(risk.model_version, srv.policies.current().forest.version);
      // It is this login's assessment, as recorded.
      const events = [];
      for await (const e of srv.storage.events.list({ since })) events.push(e);
      const recorded = events.find((e) => e.success)?.assessment;
      assert.ok(recorded);
      assert.equal(risk.level, recorded.level);
      assert.ok(Math.abs(risk.score - recorded.score) < 1e-4);
      // Userinfo does not repeat it unless asked there.
      assert.equal((await client.fetchUserInfo(config, byScope.tokens.access_token, sub)).risk, undefined);
      // An ID token from a refresh describes the same login.
      const refreshed = await client.refreshTokenGrant(config, byScope.tokens.refresh_token!);
      assert.deepEqual(refreshed.claims()!.risk, risk);

      const byClaims = await login({
        scope: 'openid',
        claims: JSON.stringify({ id_token: { risk: null }, userinfo: { risk: null } }),
      });
      const asked = byClaims.tokens.claims()!.risk as unknown as RiskClaim;
      assert.ok(asked, 'claims parameter: the ID token carries it');
      assert.equal(asked.policy_version, srv.policies.current().version);
      assert.deepEqual((await client.fetchUserInfo(config, byClaims.tokens.access_token, sub)).risk, asked);
    });

    it('the resource-server helper: 401 with the RFC 9470 challenge the RP retries with, 403 for a missing scope, and access when met', async () => {
      const l = await login({ scope: 'openid orders:read', resource: API }, { resource: API });
      const at = l.tokens.access_token;
      const call = (p: string, token = at) => client.fetchProtectedResource(config, token, new URL(`${rs.url}${p}`), 'GET');

      // Met: aal1 is what a password proves.
      const okRes = await call('/aal1');
      assert.equal(okRes.status, 200);
      assert.deepEqual(await okRes.json(), { sub, acr: AAL1 });
      assert.equal((await call('/orders')).status, 200);

      // Not met: RFC 9470 §3, read as the RP reads it.
      const challenge = async (p: string, token = at) => {
        const err = await call(p, token).then(() => assert.fail('expected a challenge'), (e: unknown) => e);
        assert.ok(err instanceof client.WWWAuthenticateChallengeError, String(err));
        return { status: err.status, header: err.response.headers.get('www-authenticate'), c: err.cause[0]! };
      };
      const step = await challenge('/aal2');
      assert.equal(step.status, 401);
      assert.equal(step.header, `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="${AAL2} ${AAL3}"`);
      assert.equal(step.c.scheme, 'bearer');
      assert.equal(step.c.parameters.error, 'insufficient_user_authentication');
      // The RP's retry: a new authorization request with the values from the header.
      const acrValues = step.c.parameters.acr_values!;
      const verifier = client.randomPKCECodeVerifier();
      const retry = client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid orders:read', resource: API, acr_values: acrValues,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      assert.equal(retry.searchParams.get('acr_values'), `${AAL2} ${AAL3}`);
      // The same browser, its session at aal1: only the missing factor is asked.
      const second = await l.browser.navigate(retry, {}, REDIRECT_URI);
      assert.ok(!second.body.includes('name="password"'), 'no password again');
      const back = await l.browser.submit(second, '/totp', { code: totpCode(totpSecret) }, REDIRECT_URI);
      assert.ok(back.url.href.startsWith(REDIRECT_URI), back.body.slice(0, 300));
      const raised = await client.authorizationCodeGrant(config, back.url, { pkceCodeVerifier: verifier }, { resource: API });
      assert.equal(raised.claims()!.acr, AAL2);
      const met = await call('/aal2', raised.access_token);
      assert.equal(met.status, 200);
      assert.deepEqual(await met.json(), { sub, acr: AAL2 });

      await new Promise((r) => setTimeout(r, 1100));
      const stale = await challenge('/fresh');
      assert.equal(stale.status, 401);
      assert.equal(stale.c.parameters.max_age, '0');
      assert.equal(stale.c.parameters.acr_values, undefined);

      const scope = await challenge('/payments');
      assert.equal(scope.status, 403);
      assert.equal(scope.c.parameters.error, 'insufficient_scope');
      assert.equal(scope.c.parameters.scope, 'payments:write');

      // Not an access token for this API: the ID token, an opaque token, another audience.
      for (const bad of [l.tokens.id_token!, (await login({ scope: 'openid' })).tokens.access_token]) {
        const r = await challenge('/aal1', bad);
        assert.equal(r.status, 401);
        assert.equal(r.c.parameters.error, 'invalid_token');
      }
      const other = await login({ scope: 'openid orders:read', resource: 'https://other.example.test' }, { resource: 'https://other.example.test' });
      assert.equal((await challenge('/aal1', other.tokens.access_token)).c.parameters.error, 'invalid_token');
      // No credentials: a bare challenge (RFC 6750 §3.1).
      const bare = await fetch(`${rs.url}/aal1`);
      assert.equal(bare.status, 401);
      assert.equal(bare.headers.get('www-authenticate'), 'Bearer');
    });
  });
}

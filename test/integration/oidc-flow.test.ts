/**
 * A real relying party (openid-client) against the running provider over HTTP: code +
 * PKCE through the HTML login form, ID token validation, userinfo, refresh rotation,
 * introspection, revocation, RP-initiated logout and back-channel logout.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import * as jose from 'jose';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';

const PASSWORD = 'correct horse battery staple';
const SECRET = 'a-client-secret-that-is-long-enough-0123456789';

/** A test RP endpoint that records back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.5). */
async function logoutReceiver() {
  const tokens: string[] = [];
  let notify: () => void = () => {};
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method === 'POST' && token && req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
        tokens.push(token);
        notify();
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/backchannel`,
    tokens,
    next: () => new Promise<void>((r) => { notify = r; }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

for (const store of STORES) {
  describeOrSkip(store.skip, `OIDC code flow with openid-client (${store.kind} store)`, () => {
    let srv: TestServer;
    let receiver: Awaited<ReturnType<typeof logoutReceiver>>;
    let config: client.Configuration;
    let sub: string;

    before(async () => {
      srv = await startTestServer(store.kind);
      receiver = await logoutReceiver();
      sub = await srv.addUser('alice', PASSWORD, { email: 'alice@example.com', name: 'Alice Liddell' });
      await srv.addClient('rp', {
        redirect_uris: [REDIRECT_URI],
        post_logout_redirect_uris: ['http://127.0.0.1:9/bye'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid profile email offline_access',
        backchannel_logout_uri: receiver.url,
        backchannel_logout_session_required: true,
      }, SECRET);
      config = await discover(srv.issuer, 'rp', SECRET);
    });
    after(async () => {
      await receiver?.close();
      await srv?.close();
    });

    it('discovery advertises the protocol surface', () => {
      const m = config.serverMetadata();
      assert.equal(m.issuer, srv.issuer);
      assert.deepEqual(m.response_types_supported, ['code']);
      assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
      for (const c of ['acr', 'amr', 'auth_time', 'email', 'preferred_username']) assert.ok(m.claims_supported?.includes(c), c);
      assert.ok(!m.grant_types_supported?.includes('password'));
      assert.ok(!m.grant_types_supported?.includes('implicit'));
      assert.equal(m.registration_endpoint, undefined, 'dynamic registration is off');
      assert.equal(m.authorization_response_iss_parameter_supported, true);
      assert.equal(m.backchannel_logout_supported, true);
    });

    it('logs in end to end, validates the ID token, reads userinfo, rotates refresh tokens, introspects, revokes and logs out', async () => {
      const login = await loginThroughForm(config, 'alice', PASSWORD, { max_age: '300' });
      // RFC 9207: the issuer comes back with the code.
      assert.equal(login.callback.searchParams.get('iss'), srv.issuer);

      // openid-client checks the signature (against /jwks), iss, aud, exp, nonce, and with
      // maxAge the presence and age of auth_time.
      const tokens = await client.authorizationCodeGrant(config, login.callback, {
        pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state, maxAge: 300, idTokenExpected: true,
      });
      const claims = tokens.claims();
      assert.ok(claims);
      assert.equal(claims.sub, sub);
      assert.equal(claims.iss, srv.issuer);
      assert.equal(claims.aud, 'rp');
      assert.equal(claims.nonce, login.nonce);
      assert.ok(typeof claims.auth_time === 'number' && Math.abs(claims.auth_time - Date.now() / 1000) < 60);
      assert.equal(claims.acr, 'urn:adaptive-idp:aal1');
      assert.deepEqual(claims.amr, ['pwd', 'rba']);
      assert.notEqual(sub, 'alice', 'sub is opaque, not the username');

      const info = await client.fetchUserInfo(config, tokens.access_token, sub);
      assert.equal(info.email, 'alice@example.com');
      assert.equal(info.email_verified, true);
      assert.equal(info.name, 'Alice Liddell');
      assert.equal(info.preferred_username, 'alice');

      // Refresh rotation: each refresh token works once and is replaced.
      const rt1 = tokens.refresh_token;
      assert.ok(rt1);
      const refreshed = await client.refreshTokenGrant(config, rt1);
      const rt2 = refreshed.refresh_token;
      assert.ok(rt2 && rt2 !== rt1);

      const active = await client.tokenIntrospection(config, refreshed.access_token);
      assert.equal(active.active, true);
      assert.equal(active.sub, sub);
      assert.equal(active.client_id, 'rp');

      const again = await client.refreshTokenGrant(config, rt2);
      assert.ok(again.refresh_token && again.refresh_token !== rt2);
      // Replaying a used refresh token is refused and, being a sign of theft, revokes the
      // whole grant: the newest refresh token dies with it (RFC 9700 §4.14.2).
      await assert.rejects(client.refreshTokenGrant(config, rt1), (err: client.ResponseBodyError) => err.error === 'invalid_grant');
      await assert.rejects(client.refreshTokenGrant(config, again.refresh_token), (err: client.ResponseBodyError) => err.error === 'invalid_grant');
      assert.equal((await client.tokenIntrospection(config, again.access_token)).active, false);

      // RP-initiated logout, which also notifies the RP over the back channel.
      const delivered = receiver.next();
      const endUrl = client.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/bye', state: 'xyz',
      });
      const confirm = await login.browser.navigate(endUrl);
      assert.equal(confirm.status, 200);
      assert.match(confirm.body, /Sign out/);
      const done = await login.browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, 'http://127.0.0.1:9/bye');
      assert.equal(done.url.origin + done.url.pathname, 'http://127.0.0.1:9/bye');
      assert.equal(done.url.searchParams.get('state'), 'xyz');

      await Promise.race([delivered, new Promise((_, rej) => setTimeout(() => rej(new Error('no back-channel logout within 5 s')), 5000))]);
      const logoutToken = receiver.tokens.at(-1)!;
      const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
      const { payload, protectedHeader } = await jose.jwtVerify(logoutToken, jwks, { issuer: srv.issuer, audience: 'rp' });
      assert.equal(protectedHeader.typ, 'logout+jwt');
      assert.equal(payload.sub, sub);
      assert.equal(payload.sid, claims.sid);
      assert.ok((payload.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout']);
      assert.equal(payload.nonce, undefined, 'a logout token carries no nonce');

      // The session is gone: a new authorization request shows the login form again.
      const relogin = await login.browser.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }), {}, REDIRECT_URI);
      assert.match(relogin.body, /name="password"/);
    });

    it('asks for the password again with prompt=login, keeps auth_time fresh, and revokes tokens', async () => {
      const first = await loginThroughForm(config, 'alice', PASSWORD);
      const t1 = await client.authorizationCodeGrant(config, first.callback, { pkceCodeVerifier: first.verifier, expectedNonce: first.nonce, expectedState: first.state });
      await new Promise((r) => setTimeout(r, 1100));
      // The session exists, but prompt=login must show the form again (OIDC Core §3.1.2.1).
      const second = await loginThroughForm(config, 'alice', PASSWORD, { prompt: 'login consent' }, first.browser);
      const t2 = await client.authorizationCodeGrant(config, second.callback, { pkceCodeVerifier: second.verifier, expectedNonce: second.nonce, expectedState: second.state });
      assert.ok(t2.claims()!.auth_time! > t1.claims()!.auth_time!);

      // A login from another browser: another session, another grant.
      const other = await loginThroughForm(config, 'alice', PASSWORD);
      const t3 = await client.authorizationCodeGrant(config, other.callback, { pkceCodeVerifier: other.verifier, expectedNonce: other.nonce, expectedState: other.state });

      // Revocation (RFC 7009): the access token stops working, and oidc-provider revokes
      // the rest of its grant with it, refresh token included.
      assert.equal((await client.tokenIntrospection(config, t2.access_token)).active, true);
      await client.tokenRevocation(config, t2.access_token);
      assert.equal((await client.tokenIntrospection(config, t2.access_token)).active, false);
      await assert.rejects(client.fetchUserInfo(config, t2.access_token, t2.claims()!.sub));
      await assert.rejects(client.refreshTokenGrant(config, t2.refresh_token!), (err: client.ResponseBodyError) => err.error === 'invalid_grant');
      // The same browser's earlier tokens belong to the same grant and go too; the other
      // browser's grant is untouched.
      assert.equal((await client.tokenIntrospection(config, t1.access_token)).active, false);
      assert.equal((await client.tokenIntrospection(config, t3.access_token)).active, true);
    });

    it('returns requested claims through the claims parameter', async () => {
      const login = await loginThroughForm(config, 'alice', PASSWORD, {
        scope: 'openid',
        claims: JSON.stringify({ id_token: { email: null, acr: { essential: true, values: ['urn:adaptive-idp:aal1'] } } }),
      });
      const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
      assert.equal(tokens.claims()!.email, 'alice@example.com');
      assert.equal(tokens.claims()!.acr, 'urn:adaptive-idp:aal1');
    });

    it('issues client-credentials tokens to a confidential client', async () => {
      await srv.addClient('svc', {
        redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
      }, SECRET);
      const svc = await discover(srv.issuer, 'svc', SECRET);
      const t = await client.clientCredentialsGrant(svc, {});
      assert.ok(t.access_token);
      assert.equal(t.token_type.toLowerCase(), 'bearer');
    });
  });
}

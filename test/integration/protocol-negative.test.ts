/**
 * Negative protocol cases, each a test: what a hostile or broken client sends must be
 * refused the way the specifications say.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser } from '../helpers/browser.ts';

const PASSWORD = 'correct horse battery staple';
const SECRET = 'a-client-secret-that-is-long-enough-0123456789';

describe('negative protocol cases', () => {
  let srv: TestServer;
  let confidential: client.Configuration;
  let publicRp: client.Configuration;
  let jarKey: CryptoKey;
  const jarKid = 'rp-jar-key';

  before(async () => {
    srv = await startTestServer('embedded');
    await srv.addUser('bob', PASSWORD);
    const pair = await jose.generateKeyPair('ES256', { extractable: true });
    jarKey = pair.privateKey;
    const publicJwk = { ...(await jose.exportJWK(pair.publicKey)), kid: jarKid, alg: 'ES256', use: 'sig' };
    await srv.addClient('conf', {
      redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic', jwks: { keys: [publicJwk] }, request_object_signing_alg: 'ES256',
    }, SECRET);
    await srv.addClient('spa', {
      redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
    });
    confidential = await discover(srv.issuer, 'conf', SECRET);
    publicRp = await discover(srv.issuer, 'spa');
  });
  after(() => srv?.close());

  async function authorize(params: Record<string, string>) {
    const url = new URL('/auth', srv.issuer);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return fetch(url, { redirect: 'manual' });
  }

  it('shows an error page, and does not redirect, for an unregistered redirect_uri', async () => {
    const res = await authorize({ client_id: 'conf', response_type: 'code', scope: 'openid', redirect_uri: 'https://evil.example/cb' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    const body = await res.text();
    assert.match(body, /redirect_uri did not match any of the client&#39;s registered redirect_uris/);
    assert.match(body, /invalid_redirect_uri/);
    assert.doesNotMatch(body, /at .*\.js:\d+/, 'no stack trace');
  });

  it('refuses a public client without PKCE', async () => {
    const res = await authorize({ client_id: 'spa', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, state: 's1' });
    assert.equal(res.status, 303);
    const loc = new URL(res.headers.get('location')!);
    assert.equal(loc.origin + loc.pathname, REDIRECT_URI);
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
    assert.match(loc.searchParams.get('error_description')!, /requires PKCE/);
    assert.equal(loc.searchParams.get('state'), 's1');
    assert.equal(loc.searchParams.get('iss'), srv.issuer, 'RFC 9207: errors carry iss too');
  });

  it('refuses PKCE method plain', async () => {
    const res = await authorize({
      client_id: 'spa', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI,
      code_challenge: 'a'.repeat(43), code_challenge_method: 'plain',
    });
    const loc = new URL(res.headers.get('location')!);
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
    assert.match(loc.searchParams.get('error_description')!, /plain|code_challenge_method/);
  });

  it('refuses the implicit flow', async () => {
    const res = await authorize({ client_id: 'conf', response_type: 'id_token token', scope: 'openid', redirect_uri: REDIRECT_URI, nonce: 'n' });
    const loc = res.headers.get('location');
    const text = loc ? decodeURIComponent(loc) : await res.text();
    assert.match(text, /unsupported_response_type/);
  });

  it('refuses a reused authorization code and revokes the tokens of its first use', async () => {
    const login = await loginThroughForm(confidential, 'bob', PASSWORD);
    const tokens = await client.authorizationCodeGrant(confidential, login.callback, {
      pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state,
    });
    assert.equal((await client.tokenIntrospection(confidential, tokens.access_token)).active, true);
    await assert.rejects(
      client.authorizationCodeGrant(confidential, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state }),
      (err: client.ResponseBodyError) => err.error === 'invalid_grant',
    );
    // RFC 6749 §4.1.2: the tokens issued from that code SHOULD be revoked.
    assert.equal((await client.tokenIntrospection(confidential, tokens.access_token)).active, false);
    await assert.rejects(client.refreshTokenGrant(confidential, tokens.refresh_token!));
  });

  it('refuses the token request when the PKCE verifier does not match', async () => {
    const login = await loginThroughForm(publicRp, 'bob', PASSWORD, { scope: 'openid' });
    await assert.rejects(
      client.authorizationCodeGrant(publicRp, login.callback, {
        pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedNonce: login.nonce, expectedState: login.state,
      }),
      (err: client.ResponseBodyError) => err.error === 'invalid_grant',
    );
  });

  it('accepts a request object signed with the client key (control case)', async () => {
    const url = await client.buildAuthorizationUrlWithJAR(confidential, {
      redirect_uri: REDIRECT_URI, scope: 'openid', response_type: 'code', nonce: 'n1',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }, { key: jarKey, kid: jarKid });
    const page = await new Browser().navigate(url, {}, REDIRECT_URI);
    assert.equal(page.status, 200);
    assert.match(page.body, /name="password"/);
  });

  async function jarRequest(header: jose.JWTHeaderParameters, sign: (jwt: jose.SignJWT) => Promise<string>) {
    const claims = {
      iss: 'conf', aud: srv.issuer, client_id: 'conf', response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 'st',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    };
    const jwt = await sign(new jose.SignJWT(claims).setProtectedHeader(header).setIssuedAt().setExpirationTime('5m'));
    return authorize({ client_id: 'conf', request: jwt, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, state: 'st' });
  }

  function expectRequestObjectRefused(res: Response) {
    const loc = res.headers.get('location');
    assert.ok(loc, `expected an error redirect, got ${res.status}`);
    const u = new URL(loc);
    assert.equal(u.searchParams.get('error'), 'invalid_request_object');
    assert.equal(u.searchParams.get('code'), null);
  }

  it('refuses an unsigned (alg: none) request object', async () => {
    const claims = { iss: 'conf', aud: srv.issuer, client_id: 'conf', response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid' };
    const unsigned = `${jose.base64url.encode(JSON.stringify({ alg: 'none' }))}.${jose.base64url.encode(JSON.stringify(claims))}.`;
    const res = await authorize({ client_id: 'conf', request: unsigned, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI });
    expectRequestObjectRefused(res);
  });

  it('refuses a request object with a forged signature', async () => {
    const attacker = await jose.generateKeyPair('ES256');
    const res = await jarRequest({ alg: 'ES256', kid: jarKid, typ: 'oauth-authz-req+jwt' }, (j) => j.sign(attacker.privateKey));
    expectRequestObjectRefused(res);
  });

  it('refuses a forged id_token_hint at the authorization and logout endpoints', async () => {
    const login = await loginThroughForm(confidential, 'bob', PASSWORD);
    const tokens = await client.authorizationCodeGrant(confidential, login.callback, {
      pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state,
    });
    const [h, p, s] = tokens.id_token!.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.sub = crypto.randomUUID();
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    const noneHint = `${jose.base64url.encode(JSON.stringify({ alg: 'none' }))}.${p}.`;

    for (const hint of [forged, noneHint]) {
      const res = await login.browser.request(client.buildAuthorizationUrl(confidential, {
        redirect_uri: REDIRECT_URI, scope: 'openid', id_token_hint: hint, prompt: 'none',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }));
      const loc = new URL(res.headers.get('location')!);
      assert.equal(loc.searchParams.get('error'), 'invalid_request');
      assert.match(loc.searchParams.get('error_description')!, /id_token_hint/);

      const end = await login.browser.request(client.buildEndSessionUrl(confidential, { id_token_hint: hint }));
      assert.equal(end.status, 400);
      assert.match(await end.text(), /id_token_hint/);
    }
    // The genuine hint still works: the session was not ended by the forgeries.
    assert.equal((await client.tokenIntrospection(confidential, tokens.access_token)).active, true);
  });

  it('returns iss with the authorization response, leaving state to the client (RFC 9207)', async () => {
    const login = await loginThroughForm(confidential, 'bob', PASSWORD, { state: 'state-from-rp' });
    assert.equal(login.callback.searchParams.get('iss'), srv.issuer);
    assert.equal(login.callback.searchParams.get('state'), 'state-from-rp');
    // A mismatched state is for the RP to catch; openid-client does.
    await assert.rejects(client.authorizationCodeGrant(confidential, login.callback, {
      pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: 'another-state',
    }));
    // So is an authorization response from another issuer.
    const mixup = new URL(login.callback);
    mixup.searchParams.set('iss', 'https://attacker.example');
    await assert.rejects(client.authorizationCodeGrant(confidential, mixup, {
      pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: 'state-from-rp',
    }));
  });

  it('refuses the password grant', async () => {
    const res = await fetch(new URL('/token', srv.issuer), {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`conf:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'bob', password: PASSWORD }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'unsupported_grant_type');
  });

  it('refuses a wrong client secret', async () => {
    const wrong = await discover(srv.issuer, 'conf', 'not-the-secret-not-the-secret-not-the-secret');
    // RFC 6749 §5.2: invalid_client with 401 and a WWW-Authenticate challenge for Basic auth.
    await assert.rejects(client.clientCredentialsGrant(wrong), (err: client.WWWAuthenticateChallengeError) =>
      err.status === 401 && err.cause.some((c) => c.parameters.error === 'invalid_client'));
  });
});

/**
 * What a first-party client (`first_party: true`, idp/provider.ts firstPartyGrant) may get
 * without a consent page, and what it may not: nothing beyond its registered scopes, no
 * resource scope it did not ask for in its tokens (RFC 8707 §2, RFC 6749 §6 for a refresh),
 * no grant of another account after the browser changed accounts, no silent token for a
 * native app (its consent page stays), and a clear OAuth error, never a 500, for the rest.
 * Also (any client): another account signing in in the same browser finishes its login.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import * as jose from 'jose';
import { Browser } from '../helpers/browser.ts';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { REDIRECT_URI, discover, loginThroughForm, startAuthorization } from '../helpers/rp.ts';

const SECRET = 'first-party-bounds-secret-0123456789abcdef';
const PASSWORD = 'a first-party bounds password';
const API = 'https://api.example.test/';

for (const { kind, skip } of STORES) {
  describeOrSkip(skip, `first-party clients stay within their bounds (${kind})`, () => {
    let srv: TestServer;
    let alice: string;
    let bob: string;
    let config: client.Configuration;
    before(async () => {
      // payments:write at a password, so these tests are about grants, not step-up.
      const policy = makePolicyDir((f) => {
        f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
        f.assurance.operations['payments:write'] = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
      });
      srv = await startTestServer(kind, { POLICY_DIR: policy, RESOURCE_SERVERS: API, RESOURCE_SCOPES: 'orders:read' });
      alice = await srv.addUser('fp-alice', PASSWORD);
      bob = await srv.addUser('fp-bob', PASSWORD);
      await srv.addClient('first', {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        scope: 'openid offline_access profile orders:read payments:write', first_party: true,
      }, SECRET);
      await srv.addClient('third', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid profile' }, SECRET);
      await srv.addClient('native', {
        redirect_uris: ['com.example.app:/cb'], application_type: 'native', token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid profile', first_party: true,
      });
      config = await discover(srv.issuer, 'first', SECRET);
    });
    after(async () => srv?.close());

    const redeem = async (l: Awaited<ReturnType<typeof loginThroughForm>>, params?: Record<string, string>) =>
      client.authorizationCodeGrant(config, l.callback, { pkceCodeVerifier: l.verifier, expectedNonce: l.nonce, expectedState: l.state }, params);

    it('refuses a scope the client is not registered for with invalid_scope at the client, not a page or a 500', async () => {
      const browser = new Browser();
      const { page } = await startAuthorization(config, browser, { scope: 'openid risk' });
      assert.ok(page.url.href.startsWith(REDIRECT_URI), `${page.status} ${page.url}`);
      assert.equal(page.url.searchParams.get('error'), 'invalid_scope');
    });

    it('puts only the requested resource scope in the access token, and a refresh cannot widen it', async () => {
      const l = await loginThroughForm(config, 'fp-alice', PASSWORD, { scope: 'openid offline_access orders:read', resource: API });
      const tokens = await redeem(l, { resource: API });
      const at = jose.decodeJwt(tokens.access_token);
      assert.equal(at.sub, alice);
      assert.equal(at.scope, 'orders:read');
      await assert.rejects(
        client.refreshTokenGrant(config, tokens.refresh_token!, { resource: API, scope: 'payments:write' }),
        (err: { error?: string }) => err.error === 'invalid_scope',
      );
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!, { resource: API });
      assert.equal(jose.decodeJwt(refreshed.access_token).scope, 'orders:read');
    });

    it('answers prompt=none silently for the signed-in account, and never with the grant of the account signed in before', async () => {
      const browser = new Browser();
      const first = await loginThroughForm(config, 'fp-alice', PASSWORD, { scope: 'openid profile' }, browser);
      assert.equal((await redeem(first)).claims()?.sub, alice);
      const silent = await startAuthorization(config, browser, { scope: 'openid profile', prompt: 'none' });
      assert.ok(silent.page.url.searchParams.get('code'), `${silent.page.status} ${silent.page.url}`);
      // Another account in the same browser: its own grant, its own subject.
      const second = await loginThroughForm(config, 'fp-bob', PASSWORD, { scope: 'openid profile', prompt: 'login' }, browser);
      const t = await redeem(second);
      assert.equal(t.claims()?.sub, bob);
      const info = await client.fetchUserInfo(config, t.access_token, bob);
      assert.equal(info.sub, bob);
    });

    it('lets another account sign in in the same browser on a client the first one consented to (the interaction outlives the logout of the first)', async () => {
      const third = await discover(srv.issuer, 'third', SECRET);
      const browser = new Browser();
      const first = await loginThroughForm(third, 'fp-alice', PASSWORD, { scope: 'openid profile' }, browser);
      assert.ok(first.callback.searchParams.get('code'));
      // Alice's grant for `third` is loaded into the new authorization; signing in as Bob logs
      // Alice out (revoking her grants) and resumes it.
      const second = await loginThroughForm(third, 'fp-bob', PASSWORD, { scope: 'openid profile', prompt: 'login' }, browser);
      const t = await client.authorizationCodeGrant(third, second.callback, { pkceCodeVerifier: second.verifier, expectedNonce: second.nonce, expectedState: second.state });
      assert.equal(t.claims()?.sub, bob);
    });

    it('still shows a native first-party app the consent page', async () => {
      const native = await discover(srv.issuer, 'native');
      const browser = new Browser();
      const verifier = client.randomPKCECodeVerifier();
      const url = client.buildAuthorizationUrl(native, {
        redirect_uri: 'com.example.app:/cb', scope: 'openid profile',
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      let page = await browser.navigate(url, {}, 'com.example.app:');
      page = await browser.submit(page, '/login', { username: 'fp-alice', password: PASSWORD }, 'com.example.app:');
      // The shipped policy offers an account without a second factor to set one up: "Not now".
      if (page.body.includes('/enrol/skip')) page = await browser.submit(page, '/enrol/skip', {}, 'com.example.app:');
      assert.ok(page.body.includes('/confirm'), `consent page expected, got ${page.status} ${page.url} ${page.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 600)}`);
    });
  });
}

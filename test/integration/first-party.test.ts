/**
 * Issue 10: what a login costs in requests and store work.
 * - A first-party client (`first_party: true`) gets no consent page, not even with
 *   `prompt=consent`, and still gets its refresh token (OIDC Core §11); a third-party client
 *   still gets the consent page; a first-party client asking later for a scope its grant lacks
 *   (within its registered ones) gets it without a page.
 * - A login is the requests the protocol needs: authorize → login page → credentials → back to
 *   the authorization → the client (3 redirects), and the token request.
 * - Clients come from the verified cache: N token requests of one client read it from the store
 *   at most a few times, and a client added by `idp client add` (another process) works at once.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { Browser } from '../helpers/browser.ts';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { REDIRECT_URI, discover, loginThroughForm } from '../helpers/rp.ts';
import path from 'node:path';
import { runNode } from '../helpers/process.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'idp', 'bin.js');

const SECRET = 'first-party-test-secret-0123456789abcdef';
const PASSWORD = 'a first-party test password';

async function metric(issuer: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${issuer}/metrics`)).text();
  return Number(line.exec(text)?.[1] ?? 0);
}

for (const { kind, skip } of STORES) {
  describeOrSkip(skip, `first-party clients and the cost of a login (${kind})`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer(kind, { CLIENT_CACHE_MS: '1000' });
      await srv.addUser('fp-user', PASSWORD);
      const base = { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], response_types: ['code'], scope: 'openid offline_access profile email' };
      await srv.addClient('first', { ...base, first_party: true }, SECRET);
      await srv.addClient('third', base, SECRET);
    });
    after(async () => srv?.close());

    it('logs a first-party client in without a consent page, in 3 redirects, with a refresh token for prompt=consent', async () => {
      const config = await discover(srv.issuer, 'first', SECRET);
      const browser = new Browser();
      const seen: string[] = [];
      const request = browser.request.bind(browser);
      browser.request = async (url, init) => {
        const res = await request(url, init);
        seen.push(`${init?.method ?? 'GET'} ${new URL(url).pathname} ${res.status}`);
        return res;
      };
      const login = await loginThroughForm(config, 'fp-user', PASSWORD, { scope: 'openid offline_access profile', prompt: 'consent' }, browser);
      assert.ok(!seen.some((s) => s.includes('/confirm')), `no consent page: ${seen.join(', ')}`);
      assert.equal(seen.filter((s) => / 30[23]$/.test(s)).length, 3, seen.join(', '));
      assert.equal(seen.length, 4, seen.join(', '));
      const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
      assert.ok(tokens.refresh_token, 'offline_access granted without a consent page');
      assert.deepEqual(new Set(tokens.scope?.split(' ')), new Set(['openid', 'offline_access', 'profile']));
      // Later, a scope the grant lacks but the client is registered for: granted, still no page.
      const more = await loginThroughForm(config, 'fp-user', PASSWORD, { scope: 'openid email', prompt: 'login' }, browser);
      const t2 = await client.authorizationCodeGrant(config, more.callback, { pkceCodeVerifier: more.verifier, expectedNonce: more.nonce, expectedState: more.state });
      assert.ok(t2.scope?.split(' ').includes('email'), String(t2.scope));
    });

    it('still shows a third-party client the consent page', async () => {
      const config = await discover(srv.issuer, 'third', SECRET);
      const browser = new Browser();
      const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid profile', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      let page = await browser.navigate(url, {}, REDIRECT_URI);
      page = await browser.submit(page, '/login', { username: 'fp-user', password: PASSWORD }, REDIRECT_URI);
      assert.ok(page.body.includes('/confirm'), `consent page expected, got ${page.status} ${page.url}`);
    });

    it('answers 50 token requests of one client from the verified cache, not the store', async () => {
      const before = await metric(srv.issuer, /^idp_client_lookups_total\{source="store"\} (\d+)$/m);
      const hits0 = await metric(srv.issuer, /^idp_client_lookups_total\{source="cache"\} (\d+)$/m);
      const basic = `Basic ${Buffer.from(`first:${SECRET}`).toString('base64')}`;
      const started = Date.now();
      for (let i = 0; i < 50; i += 1) {
        const res = await fetch(`${srv.issuer}/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
        assert.equal(res.status, 200);
      }
      const storeReads = (await metric(srv.issuer, /^idp_client_lookups_total\{source="store"\} (\d+)$/m)) - before;
      const hits = (await metric(srv.issuer, /^idp_client_lookups_total\{source="cache"\} (\d+)$/m)) - hits0;
      // A read after each verification that emptied it at most (none here: nothing changed),
      // and one per CLIENT_CACHE_MS that passed (an entry lives that long: client-cache.ts).
      const lives = Math.ceil((Date.now() - started) / 1000);
      assert.ok(storeReads <= 2 + lives, `store reads ${storeReads} in ${lives} s`);
      assert.ok(hits >= 48, `cache hits ${hits}`);
    });

    it('serves a client added by `idp client add` in another process at once, and a wrong secret is still refused', async () => {
      const out = await runNode([BIN, 'client', 'add', '--id', 'late', '--secret', SECRET, '--grant-type', 'client_credentials', '--scope', 'openid', '--first-party'],
        { env: { PATH: process.env.PATH ?? '', ...srv.env } });
      assert.equal(out.code, 0, out.stderr);
      assert.equal((JSON.parse(out.stdout) as { first_party?: boolean }).first_party, true);
      const ok = await fetch(`${srv.issuer}/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`late:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
      assert.equal(ok.status, 200);
      const bad = await fetch(`${srv.issuer}/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`late:${SECRET}x`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
      assert.equal(bad.status, 401);
    });
  });
}

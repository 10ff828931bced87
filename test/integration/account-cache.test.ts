/**
 * Issue 10's account cache (adapters/account-cache.ts, ACCOUNT_CACHE_MS): a login reads its
 * account once (the sign-in), not again at the resume and the code exchange; and the cache
 * never serves an account beyond its stated life: one disabled straight in the database
 * (another process, another instance) has its refresh token refused within the life however
 * busy it is meanwhile, and one disabled through this instance at once. Both stores.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, it } from 'node:test';
import { MongoClient } from 'mongodb';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm } from '../helpers/rp.ts';

const LIFE_MS = 400;
const SECRET = 'account-cache-test-secret-0123456789abcd';
const PASSWORD = 'an account cache test password';

async function lookups(issuer: string): Promise<{ cache: number; store: number }> {
  const text = await (await fetch(`${issuer}/metrics`)).text();
  const n = (source: string) => Number(new RegExp(`^idp_account_lookups_total\\{source="${source}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { cache: n('cache'), store: n('store') };
}

for (const { kind, skip } of STORES) {
  describeOrSkip(skip, `the account cache (${kind})`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    /** Disables an account the way another process would: straight in the database. */
    let disableDirectly: (id: string) => Promise<void>;
    let closeDirect: () => Promise<void>;
    before(async () => {
      srv = await startTestServer(kind, { ACCOUNT_CACHE_MS: String(LIFE_MS) });
      await srv.addClient('acache', {
        redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        scope: 'openid offline_access profile email', first_party: true,
      }, SECRET);
      config = await discover(srv.issuer, 'acache', SECRET);
      const disabled = { at: new Date().toISOString(), reason: 'disabled in the database' };
      if (kind === 'embedded') {
        const db = new DatabaseSync(path.join(srv.settings.dataDir, 'idp.sqlite'), { timeout: 10_000 });
        disableDirectly = async (id) => { db.prepare('UPDATE accounts SET disabled = ? WHERE id = ?').run(JSON.stringify(disabled), id); };
        closeDirect = async () => db.close();
      } else {
        const mc = await MongoClient.connect(srv.settings.mongodbUri!);
        const accounts = mc.db().collection<{ _id: string }>('accounts');
        disableDirectly = async (id) => { await accounts.updateOne({ _id: id }, { $set: { disabled: { at: new Date(disabled.at), reason: disabled.reason } } }); };
        closeDirect = async () => mc.close();
      }
    });
    after(async () => {
      await closeDirect?.();
      await srv?.close();
    });

    const signIn = async (username: string) => {
      const login = await loginThroughForm(config, username, PASSWORD, { scope: 'openid offline_access profile' });
      return client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
    };

    it('reads the account once per login: the resume and the code exchange use the sign-in\'s read', async () => {
      await srv.addUser('acache-once', PASSWORD);
      const before = await lookups(srv.issuer);
      const tokens = await signIn('acache-once');
      assert.ok(tokens.refresh_token);
      const after = await lookups(srv.issuer);
      assert.equal(after.store - before.store, 0, 'no findAccount read of the store');
      assert.equal(after.cache - before.cache, 2, 'the resume and the code exchange');
    });

    it('refuses the refresh token of an account disabled in the database within ACCOUNT_CACHE_MS, however busy', async () => {
      const id = await srv.addUser('acache-direct', PASSWORD);
      let tokens = await signIn('acache-direct');
      await disableDirectly(id);
      const disabledAt = Date.now();
      let refusedAfter: number | undefined;
      // Refreshes back to back: served from the cache at most until the entry's life ends.
      while (refusedAfter === undefined && Date.now() - disabledAt < LIFE_MS * 5) {
        try {
          tokens = await client.refreshTokenGrant(config, tokens.refresh_token!);
        } catch (err) {
          assert.ok(err instanceof client.ResponseBodyError, String(err));
          assert.equal(err.error, 'invalid_grant');
          refusedAfter = Date.now() - disabledAt;
        }
      }
      assert.ok(refusedAfter !== undefined && refusedAfter <= LIFE_MS + 200, `refused after ${refusedAfter} ms (life ${LIFE_MS} ms)`);
    });

    it('refuses at once an account disabled through this instance, however long the cache\'s life', async () => {
      // A life no test outlasts: only the eviction of a change made here can refuse in time.
      const long = await startTestServer(kind, { ACCOUNT_CACHE_MS: '60000' });
      try {
        await long.addClient('acache', {
          redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
          scope: 'openid offline_access profile email', first_party: true,
        }, SECRET);
        const longConfig = await discover(long.issuer, 'acache', SECRET);
        const id = await long.addUser('acache-local', PASSWORD);
        const login = await loginThroughForm(longConfig, 'acache-local', PASSWORD, { scope: 'openid offline_access profile' });
        const tokens = await client.authorizationCodeGrant(longConfig, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
        // Cached now: a refresh is served without a read of the store.
        const before = await lookups(long.issuer);
        const again = await client.refreshTokenGrant(longConfig, tokens.refresh_token!);
        assert.equal((await lookups(long.issuer)).store, before.store, 'the refresh was served from the cache');
        const account = (await long.storage.accounts.findById(id))!;
        await long.storage.accounts.setDisabled(id, { at: new Date(), reason: 'left', by: 'test' }, account.version);
        await assert.rejects(client.refreshTokenGrant(longConfig, again.refresh_token!), (err: unknown) => err instanceof client.ResponseBodyError && err.error === 'invalid_grant');
      } finally {
        await long.close();
      }
    });

    it('gives the claims an administrator changed through this instance\'s admin API to the very next userinfo and refresh, however long the cache\'s life', async () => {
      const long = await startTestServer(kind, { ACCOUNT_CACHE_MS: '60000' });
      try {
        const clientMeta = { redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: 'openid offline_access profile email', first_party: true };
        await long.addClient('acache', clientMeta, SECRET);
        await long.addClient('acache-admin', { redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'admin:read admin:write' }, SECRET);
        const longConfig = await discover(long.issuer, 'acache', SECRET);
        const adminToken = (await client.clientCredentialsGrant(await discover(long.issuer, 'acache-admin', SECRET), { scope: 'admin:read admin:write', resource: `${long.issuer}/admin/api` })).access_token;
        const id = await long.addUser('acache-profile', PASSWORD);
        const login = await loginThroughForm(longConfig, 'acache-profile', PASSWORD, { scope: 'openid offline_access profile email' });
        const tokens = await client.authorizationCodeGrant(longConfig, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
        const before = await lookups(long.issuer);
        const first = await client.fetchUserInfo(longConfig, tokens.access_token, id);
        assert.equal((await lookups(long.issuer)).store, before.store, 'userinfo was served from the cache');
        assert.equal(first.given_name, undefined);
        const { version } = (await long.storage.accounts.findById(id))!;
        // updated_at is in seconds (OIDC Core §5.1): a change in the same second would not move it.
        await new Promise((r) => setTimeout(r, 1100));
        const patched = await fetch(`${long.url}/admin/api/v1/users/${id}`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', 'if-match': `"${version}"` },
          body: JSON.stringify({ claims: { given_name: 'Grace', email: 'grace@example.com' } }),
        });
        assert.equal(patched.status, 200, await patched.text());
        const info = await client.fetchUserInfo(longConfig, tokens.access_token, id);
        assert.equal(info.given_name, 'Grace');
        assert.equal(info.email, 'grace@example.com');
        assert.ok(Number(info.updated_at) > Number(first.updated_at), `updated_at moved: ${String(first.updated_at)} -> ${String(info.updated_at)}`);
        const refreshed = await client.refreshTokenGrant(longConfig, tokens.refresh_token!);
        assert.equal(refreshed.claims()?.given_name, undefined, 'the ID token carries only openid claims with an access token (OIDC Core §5.4)');
        assert.equal((await client.fetchUserInfo(longConfig, refreshed.access_token, id)).given_name, 'Grace');
      } finally {
        await long.close();
      }
    });
  });
}

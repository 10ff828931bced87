/**
 * Directory federation end to end (issue 9): a real OpenLDAP (test/helpers/slapd.ts, StartTLS
 * with a generated CA, memberOf, ppolicy), the provider over real HTTP on both stores, and
 * openid-client as the relying party. What a directory user's sign-in must do: link by the
 * entry's immutable id (a rename keeps `sub`), carry the mapped claims and groups, refuse
 * disabled, locked and deleted users (and end a deleted user's sessions and refresh tokens),
 * throttle below the directory's own lockout, match nothing with filter metacharacters, and
 * show "temporarily unavailable" (never a 500 or a hang) when the directory is down or mute,
 * while local users keep signing in.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { describeOrSkip, STORES, tempDir } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser, type Page } from '../helpers/browser.ts';
import { hangingLdapServer, slapdMissing, startSlapd, type Slapd } from '../helpers/slapd.ts';
import { directoryYaml } from '../helpers/directory.ts';
import { directoryAccountId } from '../../adapters/directory/index.ts';
import { LoginThrottle } from '../../interactions/throttle.ts';
import { UserService } from '../../idp/admin/users.ts';

const LOCAL_PASSWORD = 'a local password, long enough';
const UNAVAILABLE = /Sign-in is temporarily unavailable/;
const INCORRECT = /The username or password is incorrect\./;

/** The login page of a new authorization request. */
async function openLogin(config: client.Configuration, browser = new Browser()): Promise<{ browser: Browser; page: Page }> {
  const page = await browser.navigate(client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'login',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  }));
  return { browser, page };
}

async function attempt(config: client.Configuration, username: string, password: string): Promise<Page> {
  const { browser, page } = await openLogin(config);
  return browser.submit(page, '/login', { username, password }, REDIRECT_URI);
}

async function signIn(config: client.Configuration, username: string, password: string, scope = 'openid profile email groups offline_access') {
  const login = await loginThroughForm(config, username, password, { scope });
  const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
  const claims = tokens.claims()!;
  // With a code flow the ID token carries the openid scope's claims; the rest is userinfo's (OIDC Core §5.4).
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return { tokens, claims, info, browser: login.browser };
}

function writeConfig(slapd: Slapd, extra: Parameters<typeof directoryYaml>[2] = {}): string {
  const dir = tempDir('idp-directory-');
  const passwordFile = path.join(dir, 'bind-password');
  fs.writeFileSync(passwordFile, `${slapd.servicePassword}\n`, { mode: 0o600 });
  const file = path.join(dir, 'directories.yml');
  fs.writeFileSync(file, directoryYaml(slapd, passwordFile, extra));
  return file;
}

const missing = slapdMissing;

for (const store of STORES) {
  describeOrSkip(store.skip || missing, `directory users sign in through the provider (${store.kind} store)`, () => {
    let slapd: Slapd;
    let srv: TestServer;
    let config: client.Configuration;

    before(async () => {
      slapd = await startSlapd();
      srv = await startTestServer(store.kind, {
        DIRECTORY_CONFIG: writeConfig(slapd, { overrides: { timeouts: { connect_seconds: 1, operation_seconds: 1 } } }),
        // Many sign-ins from one address in this file: keep the IP bucket out of the way.
        THROTTLE_IP_FREE: '10000', THROTTLE_IP_MAX: '100000',
        // No grace: while the directory is down, a directory user's tokens are refused at once
        // (the grace itself is unit-tested in test/unit/directory-session.test.ts).
        DIRECTORY_SESSION_GRACE: '0',
      });
      await srv.addUser('localuser', LOCAL_PASSWORD);
      await srv.addClient('web', {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
        scope: 'openid profile email groups offline_access',
      });
      config = await discover(srv.issuer, 'web');
    });
    after(async () => {
      await srv?.close();
      await slapd?.close();
    });

    it('a directory user signs in; the ID token and userinfo carry the mapped claims and nested groups; sub is the entry\'s immutable id', async () => {
      const alice = slapd.users.alice;
      const entry = await slapd.read(alice.dn, ['entryUUID']);
      const entryUUID = entry!.entryuuid![0]!;
      const { claims, info } = await signIn(config, alice.uid, alice.password);
      assert.equal(claims.sub, directoryAccountId('corp', entryUUID));
      assert.ok((claims.amr as string[]).includes('pwd'), 'a password (RFC 8176), checked by the directory');
      assert.equal(info.email, alice.mail);
      assert.equal(info.email_verified, false, 'the example directory does not vouch for mail');
      assert.equal(info.given_name, alice.givenName);
      assert.equal(info.family_name, alice.sn);
      assert.equal(info.name, alice.cn);
      assert.equal(info.preferred_username, alice.uid);
      assert.deepEqual(info.groups, ['engineering', 'staff'], 'engineering, and staff through engineering');
      // The claims parameter puts them into the ID token too (OIDC Core §5.5).
      const login = await loginThroughForm(config, alice.uid, alice.password, { scope: 'openid groups email', claims: JSON.stringify({ id_token: { groups: null, email: null } }) });
      const viaIdToken = (await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state })).claims()!;
      assert.deepEqual(viaIdToken.groups, ['engineering', 'staff']);
      assert.equal(viaIdToken.email, alice.mail);
      const account = await srv.storage.accounts.findById(claims.sub);
      assert.equal(account?.directory?.id, entryUUID.toLowerCase());
      assert.equal(account?.passwordHash.startsWith('$argon2'), false, 'no password of a directory user is stored');
      assert.ok(!JSON.stringify(srv.logs).includes(alice.password), 'the password is not logged');
      assert.ok(!JSON.stringify(srv.logs).includes(slapd.servicePassword), 'the service password is not logged');
    });

    it('a renamed user keeps their sub; the new name signs in, the old one no longer does; claims follow the directory', async () => {
      const bob = slapd.users.bob;
      const before = await signIn(config, bob.uid, bob.password);
      await slapd.renameUser(bob.uid, 'robert');
      await slapd.modify(`dn: uid=robert,${slapd.peopleDn}\nchangetype: modify\nreplace: mail\nmail: robert@example.test\n`);
      const after = await signIn(config, 'robert', bob.password);
      assert.equal(after.claims.sub, before.claims.sub);
      assert.equal(after.info.preferred_username, 'robert');
      assert.equal(after.info.email, 'robert@example.test');
      assert.match((await attempt(config, bob.uid, bob.password)).body, INCORRECT);
      await slapd.renameUser('robert', bob.uid);
    });

    it('disabled, locked and password-reset users are refused with the neutral message; the log says why', async () => {
      for (const [key, reason] of [['disabled', 'disabled'], ['locked', 'locked'], ['mustChange', 'must_change_password']] as const) {
        const u = slapd.users[key];
        const before = srv.logs.length;
        const page = await attempt(config, u.uid, u.password);
        assert.ok(!page.url.href.startsWith(REDIRECT_URI), `${key} is not let in`);
        assert.match(page.body, INCORRECT, `${key}: the same words as a wrong password`);
        const failed = srv.logs.slice(before).find((l) => l.msg === 'login.failed');
        assert.equal(failed?.reason, reason, `${key}: the log names the reason`);
        assert.equal(failed?.directory, 'corp');
      }
    });

    it('a user deleted from the directory cannot sign in, and their session, refresh token and access token stop at the next use', async () => {
      const zoe = slapd.users.zoe;
      const { tokens, claims, browser } = await signIn(config, zoe.uid, zoe.password);
      // Still fine before the deletion.
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      await slapd.deleteUser(zoe.uid);
      await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token!), (err: client.ResponseBodyError) => err.error === 'invalid_grant');
      await assert.rejects(client.fetchUserInfo(config, refreshed.access_token, claims.sub), (err: client.WWWAuthenticateChallengeError) => err.status === 401);
      // The browser's session no longer signs them in silently.
      const silent = await browser.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'none',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }), {}, REDIRECT_URI);
      assert.equal(silent.url.searchParams.get('error'), 'login_required');
      assert.match((await attempt(config, zoe.uid, zoe.password)).body, INCORRECT);
    });

    it('filter metacharacters in the username match nothing (RFC 4515), and a uid made of them signs in as itself', async () => {
      const alice = slapd.users.alice;
      for (const u of ['*', '*)(uid=*', 'alice)(|(uid=*', 'al*', '*)(objectClass=*', 'alice\\2a', 'alic\\65', 'alice)']) {
        const page = await attempt(config, u, alice.password);
        assert.ok(!page.url.href.startsWith(REDIRECT_URI), `${JSON.stringify(u)} signs in no one`);
        assert.match(page.body, INCORRECT);
      }
      // A NUL is refused by the form itself: an error page, not a 500 and not a sign-in.
      const nul = await attempt(config, 'alice\u0000', alice.password);
      assert.ok(!nul.url.href.startsWith(REDIRECT_URI) && nul.status < 500);
      const meta = slapd.users.meta;
      const { info } = await signIn(config, meta.uid, meta.password);
      assert.equal(info.preferred_username, meta.uid);
    });

    it('100 parallel wrong passwords: the provider stops below the directory\'s lockout, so the directory never locks the user', async () => {
      const u = slapd.users.alice;
      const pages = await Promise.all(Array.from({ length: 100 }, () => attempt(config, u.uid, 'not the password at all')));
      const paused = pages.filter((p) => p.status === 429).length;
      const failures = await slapd.failureCount(u.uid);
      const max = slapd.policy.maxFailure - 2;
      assert.ok(failures <= max, `the directory counted ${failures} failed binds; the provider allows ${max} (< ${slapd.policy.maxFailure})`);
      assert.ok(paused >= 100 - max, `${paused} attempts were paused before any bind`);
      // On MongoDB a burst may end below the limit: parallel attempts that saw each other
      // withdraw (mongo.ts reserve, the strict side). Wrong passwords one at a time fill the
      // bucket to the provider's limit, which is still below the directory's.
      for (let i = 0; i < max && (await attempt(config, u.uid, 'not the password at all')).status !== 429; i += 1);
      const topped = await slapd.failureCount(u.uid);
      assert.ok(topped <= max, `the directory counted ${topped} failed binds; the provider allows ${max}`);
      const entry = await slapd.read(u.dn, ['pwdAccountLockedTime']);
      assert.equal(entry?.pwdaccountlockedtime, undefined, 'not locked in the directory');
      // The right password is paused too until an administrator unlocks (or the window passes).
      assert.equal((await attempt(config, u.uid, u.password)).status, 429);
      await new LoginThrottle(srv.storage.attempts, srv.settings).unlock(directoryAccountId('corp', (await slapd.read(u.dn, ['entryUUID']))!.entryuuid![0]!));
      await slapd.unlockUser(u.uid);
      await signIn(config, u.uid, u.password);
    });

    it('20 first sign-ins of a new directory user at once link exactly one account', async () => {
      await slapd.modify(`dn: uid=newbie,${slapd.peopleDn}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: newbie\ncn: New Bie\nsn: Bie\nmail: newbie@example.test\n`);
      await slapd.setPassword('newbie', 'Newbie-pw-1');
      // ppolicy marks a password an administrator set as one to change (pwdMustChange): as if the user had.
      await slapd.modify(`dn: uid=newbie,${slapd.peopleDn}\nchangetype: modify\ndelete: pwdReset\n`);
      const id = directoryAccountId('corp', (await slapd.read(`uid=newbie,${slapd.peopleDn}`, ['entryUUID']))!.entryuuid![0]!);
      assert.equal(await srv.storage.accounts.findById(id), undefined, 'not linked yet');
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => signIn(config, 'newbie', 'Newbie-pw-1', 'openid')));
      assert.equal(srv.logs.filter((l) => l.msg === 'directory.linked' && l.account === id).length, 1, 'the link is logged once');
      const subs = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.claims.sub] : [])));
      assert.deepEqual([...subs], [id], 'every sign-in that got through is the same account');
      assert.equal((await srv.storage.accounts.list()).filter((a) => a.id === id).length, 1, 'one account for the entry');
    });

    it('maps phone, address, website and locale from inetOrgPerson attributes; updated_at moves only when the entry changed; an administrator can disable the account (issue 11)', async () => {
      const simone = { uid: 'simone', password: 'Simone-pw-1', dn: `uid=simone,${slapd.peopleDn}` };
      await slapd.modify(`dn: ${simone.dn}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: simone\ncn: Simone Weil\nsn: Weil\n`
        + 'telephoneNumber: +33 1 42 68 53 00\npostalAddress: 2 rue Simone Weil$75013 Paris\nstreet: 2 rue Simone Weil\nl: Paris\nst: Ile-de-France\n'
        + 'postalCode: 75013\nlabeledURI: https://simone.example.test/ Simone\'s page\npreferredLanguage: fr-FR, en;q=0.5\n');
      await slapd.setPassword(simone.uid, simone.password);
      // ppolicy marks a password an administrator set as one to change (pwdMustChange): as if the user had.
      await slapd.modify(`dn: ${simone.dn}\nchangetype: modify\ndelete: pwdReset\n`);
      await srv.addClient('contacts', {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
        scope: 'openid profile email address phone',
      });
      const contacts = await discover(srv.issuer, 'contacts');
      const scope = 'openid profile email address phone';
      const first = await signIn(contacts, simone.uid, simone.password, scope);
      assert.equal(first.info.phone_number, '+33 1 42 68 53 00');
      assert.equal(first.info.phone_number_verified, false, 'the example directory does not vouch for numbers');
      assert.deepEqual(first.info.address, {
        formatted: '2 rue Simone Weil\n75013 Paris', street_address: '2 rue Simone Weil', locality: 'Paris', region: 'Ile-de-France', postal_code: '75013',
      });
      assert.equal(first.info.website, 'https://simone.example.test/');
      assert.equal(first.info.locale, 'fr-FR');
      assert.equal(first.info.preferred_username, simone.uid);
      await new Promise((r) => setTimeout(r, 1100));
      const unchanged = await signIn(contacts, simone.uid, simone.password, scope);
      assert.equal(unchanged.info.updated_at, first.info.updated_at, 'a sign-in alone is not a change of the user\'s information');
      await slapd.modify(`dn: ${simone.dn}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +33 1 00 00 00 00\n`);
      const changed = await signIn(contacts, simone.uid, simone.password, scope);
      assert.equal(changed.info.phone_number, '+33 1 00 00 00 00');
      assert.ok((changed.info.updated_at as number) > (first.info.updated_at as number), 'updated_at follows the directory\'s change');

      // Disabled here, whatever the directory says: refused like a wrong password.
      const users = new UserService({ storage: srv.storage, settings: srv.settings, audit: async () => {} });
      await users.disable({ kind: 'cli', id: 'test' }, first.claims.sub, { reason: 'directory user disabled locally' });
      assert.match((await attempt(config, simone.uid, simone.password)).body, INCORRECT);
      assert.ok(srv.logs.some((l) => l.msg === 'login.failed' && l.reason === 'account_disabled' && l.directory === 'corp'));
      await users.enable({ kind: 'cli', id: 'test' }, first.claims.sub);
      await signIn(config, simone.uid, simone.password, 'openid');
    });

    it('the directory stopped: the unavailable page (503) within the timeout, local users still sign in; back up, directory users sign in again', async () => {
      const before = await signIn(config, slapd.users.alice.uid, slapd.users.alice.password);
      await slapd.stop();
      try {
        const t = performance.now();
        const page = await attempt(config, slapd.users.alice.uid, slapd.users.alice.password);
        const elapsed = performance.now() - t;
        assert.equal(page.status, 503);
        assert.match(page.body, UNAVAILABLE);
        assert.ok(page.headers.get('retry-after'), 'Retry-After');
        assert.ok(elapsed < 5000, `answered in ${elapsed.toFixed(0)} ms`);
        const failed = srv.logs.filter((l) => l.msg === 'directory.unavailable');
        assert.ok(failed.some((l) => l.directory === 'corp'), 'the log names the directory');
        const metrics = await (await fetch(`${srv.issuer}/metrics`)).text();
        assert.match(metrics, /idp_directory_errors_total\{directory="corp",kind="[a-z_]+"\} [1-9]/);
        await signIn(config, 'localuser', LOCAL_PASSWORD, 'openid');
        // A directory user's refresh token and session: "temporarily unavailable" (RFC 6749
        // §4.1.2.1), a 503, never a 500, and nothing revoked.
        const refresh = await fetch(`${srv.issuer}/token`, {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: before.tokens.refresh_token!, client_id: 'web' }),
        });
        assert.equal(refresh.status, 503);
        assert.equal(((await refresh.json()) as { error: string }).error, 'temporarily_unavailable');
        const silent = await before.browser.navigate(client.buildAuthorizationUrl(config, {
          redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'none',
          code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
        }), {}, REDIRECT_URI);
        assert.ok(silent.status < 500 || silent.status === 503, `no 500 (${silent.status})`);
        assert.ok(silent.url.searchParams.get('error') === 'temporarily_unavailable' || /temporarily/i.test(silent.body), silent.body.slice(0, 300));
      } finally {
        await slapd.restart();
      }
      // Back up: the same refresh token works (nothing was revoked during the outage).
      await client.refreshTokenGrant(config, before.tokens.refresh_token!);
      await signIn(config, slapd.users.alice.uid, slapd.users.alice.password);
    });
  });
}

describeOrSkip(missing, 'a directory that accepts the connection and never answers', () => {
  let srv: TestServer;
  let config: client.Configuration;
  let hang: Awaited<ReturnType<typeof hangingLdapServer>>;
  let slapd: Slapd;

  before(async () => {
    slapd = await startSlapd();
    hang = await hangingLdapServer();
    srv = await startTestServer('embedded', {
      DIRECTORY_CONFIG: writeConfig(slapd, { overrides: { urls: [hang.url], timeouts: { connect_seconds: 1, operation_seconds: 1 } } }),
    });
    await srv.addUser('localuser', LOCAL_PASSWORD);
    await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    config = await discover(srv.issuer, 'web');
  });
  after(async () => {
    await srv?.close();
    await hang?.close();
    await slapd?.close();
  });

  it('shows the unavailable page within the configured timeout, and local users still sign in', async () => {
    const t = performance.now();
    const page = await attempt(config, 'alice', 'whatever it is');
    const elapsed = performance.now() - t;
    assert.equal(page.status, 503);
    assert.match(page.body, UNAVAILABLE);
    // connect 1 s + operation 1 s, with slack for a loaded machine; never a hang.
    assert.ok(elapsed < 6000, `answered in ${elapsed.toFixed(0)} ms`);
    assert.ok(hang.connections >= 1, 'the server was reached');
    await signIn(config, 'localuser', LOCAL_PASSWORD, 'openid');
  });
});

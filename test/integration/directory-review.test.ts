/**
 * Attacks on the directory federation (issue 9) that the sign-in tests do not cover, against
 * a real OpenLDAP (test/helpers/slapd.ts) and the provider over real HTTP: a directory user
 * disabled or removed after signing in must lose the provider's own account page too (it
 * reads the session directly, not through oidc-provider's findAccount).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { describeOrSkip, STORES, tempDir } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { Browser, type Page } from '../helpers/browser.ts';
import { slapdMissing, startSlapd, type Slapd } from '../helpers/slapd.ts';
import { directoryYaml } from '../helpers/directory.ts';

function writeConfig(slapd: Slapd): string {
  const dir = tempDir('idp-directory-review-');
  const passwordFile = path.join(dir, 'bind-password');
  fs.writeFileSync(passwordFile, `${slapd.servicePassword}\n`, { mode: 0o600 });
  const file = path.join(dir, 'directories.yml');
  fs.writeFileSync(file, directoryYaml(slapd, passwordFile, { overrides: { timeouts: { connect_seconds: 1, operation_seconds: 1 } } }));
  return file;
}

/** Opens /account in `b`, signing in with the form when asked. */
async function openAccount(srv: TestServer, b: Browser, username: string, password: string): Promise<Page> {
  const page = await b.navigate(`${srv.url}/account`);
  return page.body.includes('name="password"') ? b.submit(page, '/login', { username, password }) : page;
}

for (const store of STORES) {
  describeOrSkip(store.skip || slapdMissing, `directory federation under attack (${store.kind} store)`, () => {
    let slapd: Slapd;
    let srv: TestServer;

    before(async () => {
      slapd = await startSlapd();
      srv = await startTestServer(store.kind, { DIRECTORY_CONFIG: writeConfig(slapd), THROTTLE_IP_FREE: '10000', THROTTLE_IP_MAX: '100000' });
    });
    after(async () => {
      await srv?.close();
      await slapd?.close();
    });

    it('a directory user disabled, then deleted, after signing in loses the account page at its next use', async () => {
      const { alice, bob } = slapd.users;
      const b = new Browser();
      const page = await openAccount(srv, b, alice.uid, alice.password);
      assert.equal(page.url.pathname, '/account');
      assert.match(page.body, /Signed in as <strong>alice<\/strong>/);
      await slapd.disableUser(alice.uid);
      const disabled = await b.navigate(`${srv.url}/account`);
      assert.doesNotMatch(disabled.body, /Signed in as/, 'a disabled directory user is signed out of the account page');
      assert.ok(disabled.status < 500);

      const bb = new Browser();
      assert.match((await openAccount(srv, bb, bob.uid, bob.password)).body, /Signed in as <strong>bob<\/strong>/);
      await slapd.deleteUser(bob.uid);
      const deleted = await bb.navigate(`${srv.url}/account`);
      assert.doesNotMatch(deleted.body, /Signed in as/, 'a deleted directory user is signed out of the account page');
      assert.ok(deleted.status < 500);
    });
  });
}

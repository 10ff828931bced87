/**
 * The page a directory user sees when their directory does not answer (issue 9), in a real
 * browser at phone width, light and dark: a 503 that says sign-in is temporarily
 * unavailable, keeps the typed username, has no accessibility violation (axe-core), and is
 * screenshotted to test/e2e/artifacts/ like every other page. The directory is a loopback
 * port nothing listens on, so no slapd is needed here.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { describeOrSkip, tempDir } from '../helpers/env.ts';
import { chromiumMissing, launchChromium, openTab, type Tab } from '../helpers/chromium.ts';
import { checkPage, PHONE, violationsOf } from '../helpers/axe.ts';
import { refusedPort } from '../helpers/slapd.ts';

describeOrSkip(chromiumMissing, 'the sign-in page when the directory does not answer', () => {
  let srv: TestServer;
  let browser: Browser;
  let tab: Tab;
  let page: Page;

  before(async () => {
    const dir = tempDir('idp-directory-e2e-');
    fs.writeFileSync(path.join(dir, 'bind-password'), 'service password\n', { mode: 0o600 });
    const file = path.join(dir, 'directories.yml');
    fs.writeFileSync(file, [
      'directories:',
      '  - name: corp',
      '    preset: openldap',
      `    urls: [${(await refusedPort()).url}]`,
      '    bind_dn: cn=idp,ou=services,dc=example,dc=test',
      '    bind_password_file: bind-password',
      '    base_dn: ou=people,dc=example,dc=test',
      '',
    ].join('\n'));
    srv = await startTestServer('embedded', { DIRECTORY_CONFIG: file });
    await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    browser = await launchChromium();
    tab = await openTab(browser, { context: { viewport: PHONE }, redirectUri: REDIRECT_URI });
    page = tab.page;
  });
  after(async () => {
    await tab?.context.close();
    await browser?.close();
    await srv?.close();
  });

  it('says sign-in is temporarily unavailable (503) above the form, keeps the username, marks no field invalid, and passes axe in light and dark mode', async () => {
    const config = await discover(srv.issuer, 'web');
    await page.goto(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid', state: client.randomState(),
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }).href);
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('whatever she typed');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/login')),
      page.getByLabel('Password').press('Enter'),
    ]);
    assert.equal(response.status(), 503);
    const notice = page.getByRole('alert');
    assert.match(await notice.innerText(), /Sign-in is temporarily unavailable/);
    assert.equal(await page.getByLabel('Username').inputValue(), 'alice', 'the username is kept for the retry');
    // Nothing the user typed was wrong: the fields are not marked invalid.
    assert.equal(await page.getByLabel('Username').getAttribute('aria-invalid'), null);
    assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), null);
    assert.deepEqual(violationsOf(await checkPage(page, 'login-directory-unavailable')), []);
  });
});

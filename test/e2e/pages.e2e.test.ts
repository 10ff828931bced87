/**
 * Every page a user can see, in a real browser at phone width, in light and dark mode:
 * axe-core finds no accessibility violation (contrast included: WCAG 2.2 AA asks 4.5:1 for
 * text, SC 1.4.3), and a screenshot of each lands in test/e2e/artifacts/ for a human to look at.
 * Also: the logout page names the application, as the login page does.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { AxeResults } from 'axe-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { describeOrSkip } from '../helpers/env.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { chromiumMissing, launchChromium } from '../helpers/chromium.ts';

const PASSWORD = 'correct horse battery staple';
/** Source tree, not dist/: the folder is git-ignored and easy to find. */
const ARTIFACTS = path.join(import.meta.dirname, '..', '..', '..', 'test', 'e2e', 'artifacts');
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
/** An iPhone-sized viewport: the narrowest common phone layout. */
const VIEWPORT = { width: 390, height: 844 };

interface Checked { page: string; scheme: 'light' | 'dark'; violations: string[] }

/**
 * Runs axe-core (every rule) on the page in light and dark mode and screenshots both.
 * Returns the violations, each as one readable line.
 */
async function check(page: Page, name: string): Promise<Checked[]> {
  const out: Checked[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.addScriptTag({ content: AXE_SOURCE });
    const results = await page.evaluate<AxeResults>('axe.run(document, { resultTypes: ["violations"] })');
    out.push({
      page: name,
      scheme,
      violations: results.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => `${n.target.join(' ')}${n.failureSummary ? ` [${n.failureSummary.replace(/\s+/g, ' ')}]` : ''}`).join('; ')}`),
    });
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${scheme}.png`), fullPage: true });
  }
  return out;
}

async function authorize(page: Page, config: client.Configuration) {
  await page.goto(client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: 'openid email profile', state: client.randomState(), prompt: 'login consent',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  }).href);
}

describeOrSkip(chromiumMissing, 'every page, light and dark, at phone width', () => {
  let srv: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const results: Checked[] = [];

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // A second client whose logins always need a second factor (which nobody can have yet).
    const policy = makePolicyDir((f) => {
      f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
      f.assurance.clients = { 'strict-app': { low: 'aal2', medium: 'aal2', high: 'aal2' } };
    });
    srv = await startTestServer('embedded', { POLICY_DIR: policy });
    await srv.addUser('frida', PASSWORD, { email: 'frida@example.com', name: 'Frida' });
    for (const [id, name] of [['browser-app', 'Browser App'], ['strict-app', 'Payroll']]) {
      await srv.addClient(id!, {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
        client_name: name,
      });
    }
    browser = await launchChromium();
    // Our pages' CSP forbids inline and foreign scripts; axe-core is injected by the test only.
    context = await browser.newContext({ viewport: VIEWPORT, bypassCSP: true });
    page = await context.newPage();
    await page.route(`${REDIRECT_URI}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'callback reached' }));
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await srv?.close();
  });

  it('sign-in, its errors, consent, logout, signed-out and the error page', async () => {
    const config = await discover(srv.issuer, 'browser-app');
    await authorize(page, config);
    assert.equal(await page.title(), 'Sign in');
    results.push(...await check(page, 'login'));

    await page.getByLabel('Username').fill('frida');
    await page.getByLabel('Password').fill('not the password');
    await page.getByLabel('Password').press('Enter');
    await page.waitForSelector('#login-error');
    results.push(...await check(page, 'login-error'));

    // Enter in an empty password field: the form again, with the field's error.
    await page.getByLabel('Password').fill('');
    await page.getByLabel('Password').press('Enter');
    await page.waitForSelector('#password-error');
    results.push(...await check(page, 'login-empty-field'));

    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.waitForSelector('text=Allow access');
    results.push(...await check(page, 'consent'));
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);

    // RP-initiated logout names the application that sent the user, not the provider's host;
    // without id_token_hint or client_id it does not know one (RP-Initiated Logout 1.0 §2).
    await page.goto(`${srv.issuer}/session/end`);
    assert.equal(await page.textContent('h1'), 'Sign out?');
    await page.goto(`${srv.issuer}/session/end?client_id=browser-app`);
    const heading = await page.textContent('h1');
    assert.match(heading ?? '', /Browser App/);
    assert.doesNotMatch(heading ?? '', /127\.0\.0\.1/);
    results.push(...await check(page, 'logout'));
    await page.getByRole('button', { name: /Yes, sign me out/ }).click();
    await page.waitForSelector('text=Signed out');
    results.push(...await check(page, 'logged-out'));

    await page.goto(`${srv.issuer}/auth?client_id=no-such-app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`);
    await page.waitForSelector('code');
    results.push(...await check(page, 'error'));

    await authorize(page, await discover(srv.issuer, 'strict-app'));
    await page.getByLabel('Username').fill('frida');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    // Until a second factor can be offered, a challenged login must not show that the
    // password was right: the same words as a wrong one.
    await page.waitForSelector('#login-error');
    assert.equal(await page.textContent('#login-error'), 'The username or password is incorrect.');

    const pages = new Set(results.map((r) => r.page));
    assert.deepEqual([...pages], ['login', 'login-error', 'login-empty-field', 'consent', 'logout', 'logged-out', 'error']);
    const failed = results.filter((r) => r.violations.length).map((r) => `${r.page} (${r.scheme}):\n  ${r.violations.join('\n  ')}`);
    assert.deepEqual(failed, [], `axe-core violations:\n${failed.join('\n')}`);
  });

});

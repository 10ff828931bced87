/**
 * The account page in a real browser (Debian Chromium, phone width, a virtual authenticator):
 * sign in, add a passkey, then an authenticator app (which asks to confirm with the passkey
 * first, since the account now holds a second factor), remove one, and the confirmation
 * before removing the last. Under the provider's own Content-Security-Policy (not bypassed):
 * no violation and no script error. axe-core (run through DevTools, which the CSP does not
 * govern) finds no accessibility violation on any of these pages in light and dark mode, and
 * a screenshot of each lands in test/e2e/artifacts/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { AxeResults } from 'axe-core';
import type { Browser, Page } from 'playwright-core';
import { describeOrSkip } from '../helpers/env.ts';
import { chromiumMissing, launchChromium } from '../helpers/chromium.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = path.join(import.meta.dirname, '..', '..', '..', 'test', 'e2e', 'artifacts');
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core in light and dark mode, with a screenshot of each; the violations, one line each. */
async function check(page: Page, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
    const results = await page.evaluate<AxeResults>('axe.run(document, { resultTypes: ["violations"] })');
    out.push(...results.violations.map((v) => `${name} (${scheme}): ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`));
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return out;
}

describeOrSkip(chromiumMissing, 'account page in a real browser', () => {
  let srv: TestServer;
  let browser: Browser;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // Passkeys need a domain: the issuer is localhost.
    srv = await startTestServer('embedded', { ISSUER: 'http://localhost:$PORT' });
    await srv.addUser('gus', PASSWORD, { name: 'Gus' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('adds a passkey and an app, removes them (the last after a confirmation), under the CSP', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    const problems: string[] = [];
    // Failed loads are counted by URL below (the browser's own /favicon.ico request is no page's).
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
    page.on('response', (r) => { if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') problems.push(`${r.status()} ${r.url()}`); });
    page.on('pageerror', (e) => problems.push(e.message));
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    const violations: string[] = [];

    await page.goto(`${srv.issuer}/account`);
    await page.getByLabel('Username').fill('gus');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.waitForURL(`${srv.issuer}/account`);
    assert.equal(await page.textContent('h1'), 'Your account');
    violations.push(...await check(page, 'account-empty'));

    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
    violations.push(...await check(page, 'account-add-passkey'));
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.waitForSelector('text=Your passkey is on.');
    assert.equal(await page.locator('ul.codes li').count(), 10);
    violations.push(...await check(page, 'account-recovery-codes'));
    await page.getByRole('button', { name: /back to your account/ }).click();
    // A GET form without fields: /account?
    await page.waitForURL(/\/account\??$/);

    // The account now holds a second factor: adding another asks for it first. The session
    // is fresh, so only the missing factor: the passkey, no password.
    await page.getByRole('button', { name: 'Add an authenticator app' }).click();
    await page.waitForSelector('text=Confirm it is you');
    assert.equal(await page.getByLabel('Password').count(), 0);
    await page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL(/\/account\/totp\?done=confirmed$/);
    violations.push(...await check(page, 'account-add-app'));
    const secret = (await page.textContent('#secret'))!.replace(/\s+/g, '');
    await page.getByLabel('6-digit code').fill(totpCode(secret));
    await page.getByLabel('Name it (optional)').fill('Gus\'s phone');
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.waitForURL(/\/account\?done=totp_added$/);
    violations.push(...await check(page, 'account-list'));
    assert.match(await page.textContent('main') ?? '', /Gus's phone/);

    await page.getByRole('button', { name: /^Remove .*\(Passkey\)$/ }).click();
    await page.waitForURL(/\/account\?done=removed$/);
    await page.getByRole('button', { name: /^Remove Gus's phone/ }).click();
    await page.waitForSelector('text=Turn off your second step?');
    violations.push(...await check(page, 'account-confirm-remove'));
    await page.getByRole('button', { name: 'Yes, remove it' }).click();
    await page.waitForURL(/\/account\?done=off$/);

    const gus = (await srv.storage.accounts.findByUsername('gus'))!.id;
    assert.deepEqual(await srv.storage.factors.list(gus), []);
    assert.deepEqual(problems, [], 'no CSP violation, no script error');
    assert.deepEqual(violations, [], `axe-core violations:\n${violations.join('\n')}`);
    await context.close();
  });
});

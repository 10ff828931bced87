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
import { after, before, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { describeOrSkip } from '../helpers/env.ts';
import { chromiumMissing, launchChromium } from '../helpers/chromium.ts';
import { checkPage, PHONE, violationsOf, type Checked } from '../helpers/axe.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';

describeOrSkip(chromiumMissing, 'account page in a real browser', () => {
  let srv: TestServer;
  let browser: Browser;

  before(async () => {
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
    const context = await browser.newContext({ viewport: PHONE });
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
    const results: Checked[] = [];

    await page.goto(`${srv.issuer}/account`);
    await page.getByLabel('Username').fill('gus');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.waitForURL(`${srv.issuer}/account`);
    assert.equal(await page.textContent('h1'), 'Your account');
    results.push(...await checkPage(page, 'account-empty'));

    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForSelector('button[data-passkey]:not([disabled])');
    results.push(...await checkPage(page, 'account-add-passkey'));
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.waitForSelector('text=Your passkey is on.');
    assert.equal(await page.locator('ul.codes li').count(), 10);
    results.push(...await checkPage(page, 'account-recovery-codes'));
    await page.getByRole('button', { name: /back to your account/ }).click();
    // A GET form without fields: /account?
    await page.waitForURL(/\/account\??$/);

    // The account now holds a second factor: adding another asks for it first. The session
    // is fresh, so only the missing factor: the passkey, no password.
    await page.getByRole('button', { name: 'Add an authenticator app' }).click();
    await page.waitForSelector('text=Confirm it is you');
    assert.equal(await page.getByLabel('Password').count(), 0);
    await page.waitForSelector('button[data-passkey]:not([disabled])');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL(/\/account\/totp\?done=confirmed$/);
    results.push(...await checkPage(page, 'account-add-app'));
    const secret = (await page.textContent('#secret'))!.replace(/\s+/g, '');
    await page.getByLabel('6-digit code').fill(totpCode(secret));
    await page.getByLabel('Name it (optional)').fill('Gus\'s phone');
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.waitForURL(/\/account\?done=totp_added$/);
    results.push(...await checkPage(page, 'account-list'));
    assert.match(await page.textContent('main') ?? '', /Gus's phone/);

    await page.getByRole('button', { name: /^Remove .*\(Passkey\)$/ }).click();
    await page.waitForURL(/\/account\?done=removed$/);
    await page.getByRole('button', { name: /^Remove Gus's phone/ }).click();
    await page.waitForSelector('text=Turn off your second step?');
    results.push(...await checkPage(page, 'account-confirm-remove'));
    await page.getByRole('button', { name: 'Yes, remove it' }).click();
    await page.waitForURL(/\/account\?done=off$/);

    const gus = (await srv.storage.accounts.findByUsername('gus'))!.id;
    assert.deepEqual(await srv.storage.factors.list(gus), []);
    assert.deepEqual(problems, [], 'no CSP violation, no script error');
    const failed = violationsOf(results);
    assert.deepEqual(failed, [], `axe-core violations:\n${failed.join('\n')}`);
    await context.close();
  });
});

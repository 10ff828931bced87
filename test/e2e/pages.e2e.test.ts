/**
 * Every page a user can see, in a real browser at phone width, in light and dark mode:
 * axe-core finds no accessibility violation (contrast included: WCAG 2.2 AA asks 4.5:1 for
 * text, SC 1.4.3), and a screenshot of each lands in test/e2e/artifacts/ for a human to look
 * at (test/helpers/axe.ts). The pages are those of the shipped enrolment policy: the sign-in
 * with its passkey button (the issuer is http://localhost, where browsers allow passkeys),
 * the offer to set up a second step, consent, the enrolment a login requires, the recovery
 * codes, the second-factor page with its errors, logout, signed-out and the error page.
 * Also: the logout page names the application, as the login page does.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { describeOrSkip, localhostIssuer } from '../helpers/env.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { chromiumMissing, launchChromium, stubCallback } from '../helpers/chromium.ts';
import { checkPage, PHONE, violationsOf, type Checked } from '../helpers/axe.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';

async function authorize(page: Page, config: client.Configuration) {
  await page.goto(client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: 'openid email profile', state: client.randomState(), prompt: 'login consent',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  }).href);
}

async function signIn(page: Page, username: string, password: string) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Password').press('Enter');
}

/** Waits until the passkey button's script has run: the button is checked as users see it. */
async function passkeyReady(page: Page) {
  await page.waitForSelector('button[data-passkey]:not([disabled])');
}

describeOrSkip(chromiumMissing, 'every page, light and dark, at phone width', () => {
  let srv: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const results: Checked[] = [];

  before(async () => {
    // The shipped policy (enrolment offered, and enrolled when a login needs a factor up to
    // medium risk), with a second client whose logins always need a second factor.
    const policy = makePolicyDir((f) => {
      f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
      f.assurance.clients = { 'strict-app': { low: 'aal2', medium: 'aal2', high: 'aal2' }, vault: { low: 'aal3', medium: 'aal3', high: 'aal3' } };
    });
    srv = await startTestServer('embedded', { POLICY_DIR: policy, ...await localhostIssuer() });
    await srv.addUser('frida', PASSWORD, { email: 'frida@example.com', name: 'Frida' });
    await srv.addUser('otto', PASSWORD);
    for (const [id, name] of [['browser-app', 'Browser App'], ['strict-app', 'Payroll'], ['vault', 'Vault']]) {
      await srv.addClient(id!, {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
        client_name: name,
      });
    }
    browser = await launchChromium();
    context = await browser.newContext({ viewport: PHONE });
    page = await context.newPage();
    await stubCallback(page, REDIRECT_URI);
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await srv?.close();
  });

  it('sign-in, its errors, enrolment offer, consent, logout, signed-out and the error page', async () => {
    const config = await discover(srv.issuer, 'browser-app');
    await authorize(page, config);
    assert.equal(await page.title(), 'Sign in');
    await passkeyReady(page);
    assert.equal(await page.getByRole('button', { name: 'Sign in with a passkey' }).isEnabled(), true);
    results.push(...await checkPage(page, 'login'));

    await signIn(page, 'frida', 'not the password');
    await page.waitForSelector('#login-error');
    results.push(...await checkPage(page, 'login-error'));

    // Enter in an empty password field: the form again, with the field's error.
    await page.getByLabel('Password').fill('');
    await page.getByLabel('Password').press('Enter');
    await page.waitForSelector('#password-error');
    results.push(...await checkPage(page, 'login-empty-field'));

    // A login that needed no second factor, of an account without one: the offer.
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('heading', { name: 'Set up a second step' }).waitFor();
    await passkeyReady(page);
    results.push(...await checkPage(page, 'enrol-offer'));
    await page.getByRole('button', { name: 'Not now' }).click();

    await page.waitForSelector('text=Allow access');
    results.push(...await checkPage(page, 'consent'));
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);

    // RP-initiated logout names the application that sent the user, not the provider's host;
    // without id_token_hint or client_id it does not know one (RP-Initiated Logout 1.0 §2).
    await page.goto(`${srv.issuer}/session/end`);
    assert.equal(await page.textContent('h1'), 'Sign out?');
    await page.goto(`${srv.issuer}/session/end?client_id=browser-app`);
    const heading = await page.textContent('h1');
    assert.match(heading ?? '', /Browser App/);
    assert.doesNotMatch(heading ?? '', /localhost|127\.0\.0\.1/);
    results.push(...await checkPage(page, 'logout'));
    await page.getByRole('button', { name: /Yes, sign me out/ }).click();
    await page.waitForSelector('text=Signed out');
    results.push(...await checkPage(page, 'logged-out'));

    await page.goto(`${srv.issuer}/auth?client_id=no-such-app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`);
    await page.waitForSelector('code');
    results.push(...await checkPage(page, 'error'));
  });

  it('the enrolment a login requires, the recovery codes, and the second-factor page with its errors', async () => {
    const config = await discover(srv.issuer, 'strict-app');
    await authorize(page, config);
    await signIn(page, 'frida', PASSWORD);
    // Payroll needs two factors and Frida has only her password: she sets one up now
    // (missing_factor: enroll), and cannot skip it.
    await page.getByRole('heading', { name: 'Set up a second step' }).waitFor();
    assert.match(await page.textContent('main') ?? '', /your account does not have one yet/);
    assert.equal(await page.getByRole('button', { name: 'Not now' }).count(), 0);
    await passkeyReady(page);
    results.push(...await checkPage(page, 'enrol-required'));

    const secret = (await page.textContent('#secret'))!.replace(/\s/g, '');
    const wrong = totpCode(secret) === '000000' ? '111111' : '000000';
    await page.getByLabel('6-digit code').fill(wrong);
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.waitForSelector('#code-error');
    assert.match(await page.textContent('#code-error') ?? '', /That code is not right/);
    assert.equal(await page.getByLabel('6-digit code').getAttribute('aria-invalid'), 'true');
    // Focus goes back to the field, so a phone scrolls to it and its error.
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'code');
    results.push(...await checkPage(page, 'enrol-error'));

    await page.getByLabel('6-digit code').fill(totpCode(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    assert.equal(await page.locator('ul.codes li').count(), 10);
    results.push(...await checkPage(page, 'recovery-codes'));
    await page.getByRole('button', { name: /I have saved them/ }).click();
    await page.waitForSelector('text=Allow access');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);

    // Signing in again (prompt=login): now the second factor is asked for.
    await authorize(page, config);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('heading', { name: 'Confirm it is you' }).waitFor();
    results.push(...await checkPage(page, 'second-factor'));

    await page.getByLabel('Code from your authenticator app').fill(wrong);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForSelector('#code-error');
    assert.match(await page.textContent('#code-error') ?? '', /That code is not right/);
    results.push(...await checkPage(page, 'second-factor-error'));

    await page.getByText('Lost your device? Use a recovery code').click();
    await page.getByLabel('Recovery code').fill('not-a-recovery-code');
    await page.getByRole('button', { name: 'Use recovery code' }).click();
    await page.waitForSelector('#recovery-error');
    assert.match(await page.textContent('#recovery-error') ?? '', /not right, or it was already used/);
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'recovery-code', 'focus is at the refused code');
    results.push(...await checkPage(page, 'second-factor-recovery-error'));

    // The code of the next time step: the one shown at enrolment is spent (RFC 6238 §5.2).
    await page.getByLabel('Code from your authenticator app').fill(totpCode(secret, Date.now() + 30_000));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForSelector('text=Allow access');
  });

  it('the enrolment a phishing-resistant level requires: a passkey only', async () => {
    await authorize(page, await discover(srv.issuer, 'vault'));
    await signIn(page, 'otto', PASSWORD);
    await page.getByRole('heading', { name: 'Set up a second step' }).waitFor();
    // An authenticator app cannot meet this level, so it is not offered.
    assert.equal(await page.getByRole('heading', { name: 'Authenticator app' }).count(), 0);
    assert.equal(await page.locator('#secret').count(), 0);
    assert.equal(await page.getByRole('heading', { name: 'A passkey' }).count(), 1);
    await passkeyReady(page);
    results.push(...await checkPage(page, 'enrol-passkey-only'));
  });

  it('found no accessibility violation on any page', () => {
    const pages = new Set(results.map((r) => r.page));
    assert.deepEqual([...pages], [
      'login', 'login-error', 'login-empty-field', 'enrol-offer', 'consent', 'logout', 'logged-out', 'error',
      'enrol-required', 'enrol-error', 'recovery-codes', 'second-factor', 'second-factor-error', 'second-factor-recovery-error',
      'enrol-passkey-only',
    ]);
    const failed = violationsOf(results);
    assert.deepEqual(failed, [], `axe-core violations:\n${failed.join('\n')}`);
  });
});

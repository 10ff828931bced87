/**
 * A real browser (Debian Chromium through playwright-core) on the real pages: labels lead
 * to the fields, the error sits next to them, the keyboard alone completes the login, the
 * Content-Security-Policy holds (no violations), and the relying party gets a valid code.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Browser } from 'playwright-core';
import * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { describeOrSkip } from '../helpers/env.ts';
import { chromiumMissing, launchChromium } from '../helpers/chromium.ts';

const PASSWORD = 'correct horse battery staple';

// CI installs Chromium (.ci/run): under CI=true a missing browser fails the run.
describeOrSkip(chromiumMissing, 'login in a real browser', () => {
  let srv: TestServer;
  let browser: Browser;
  let config: client.Configuration;

  before(async () => {
    srv = await startTestServer('embedded');
    await srv.addUser('frida', PASSWORD, { email: 'frida@example.com', name: 'Frida' });
    await srv.addClient('browser-app', {
      redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
      client_name: 'Browser App',
    });
    config = await discover(srv.issuer, 'browser-app');
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('logs in with the keyboard, shows errors next to the fields, and hands the RP a code', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cspViolations: string[] = [];
    page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text()); });
    let callback: URL | undefined;
    await page.route(`${REDIRECT_URI}**`, async (route) => {
      callback = new URL(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'callback reached' });
    });

    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    await page.goto(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid email', state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    }).href);

    assert.equal(await page.title(), 'Sign in');
    assert.match(await page.textContent('main') ?? '', /Browser App/);
    // The stylesheet applied (served from our origin, allowed by the CSP).
    assert.equal(await page.evaluate('getComputedStyle(document.querySelector("button")).backgroundColor'), 'rgb(30, 91, 184)');

    await page.getByLabel('Username').fill('frida');
    await page.getByLabel('Password').fill('not the password');
    await page.getByLabel('Password').press('Enter');
    await page.waitForSelector('#login-error');
    const describedBy = await page.getByLabel('Password').getAttribute('aria-describedby');
    assert.equal(describedBy, 'login-error');
    assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByLabel('Username').inputValue(), 'frida', 'the username is kept');
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'password', 'focus goes to the password');

    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForSelector('text=Allow access');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);

    assert.ok(callback, 'the browser reached the redirect_uri');
    assert.equal(callback.searchParams.get('iss'), srv.issuer);
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    assert.equal(tokens.claims()!.acr, 'urn:adaptive-idp:aal1');
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    assert.equal(info.email, 'frida@example.com');

    const cookies = await context.cookies(srv.issuer);
    for (const c of cookies) assert.ok(c.httpOnly, `${c.name} is HttpOnly`);
    assert.deepEqual(cspViolations, []);
    await context.close();
  });
});

/**
 * Step-up end to end: the real provider at http://localhost (where browsers allow passkeys),
 * Debian's Chromium at phone width, openid-client as the relying party exchanging the codes.
 * The risk comes from where the browser is (X-Forwarded-For behind TRUST_PROXY) and is made
 * deterministic by a rules-only policy: the first login at home is low (a password), a login
 * from a new country on a new browser is medium (AAL2), and the shipped enrolment policy
 * applies (an offer after a login that needed no second factor; enrolment when a login needs
 * one the account lacks, up to medium risk).
 * - TOTP: enrolment at a login that needs it (the secret read from the page, as a user types
 *   it into an app), recovery codes, then a later risky login asks for the code, and an AAL1
 *   session asked for AAL2 by the RP takes a recovery code without the password again.
 * - Passkeys, with Chrome's virtual authenticator (DevTools `WebAuthn.addVirtualAuthenticator`):
 *   registration at the enrolment page, step-up with it, and username-less sign-in from the
 *   login page.
 * Every page is checked with axe-core and saved as a screenshot (test/helpers/axe.ts), and
 * the pages run under their own Content-Security-Policy: no violation, no script error.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Browser } from 'playwright-core';
import * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { describeOrSkip, localhostIssuer } from '../helpers/env.ts';
import { rulesOnlyPolicy } from '../helpers/policy.ts';
import { chromiumMissing, launchChromium, openTab as openBrowserTab, reachCallback, type Tab } from '../helpers/chromium.ts';
import { checkPage, PHONE, violationsOf, type Checked } from '../helpers/axe.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';
const AAL1 = 'urn:adaptive-idp:aal1';
const AAL2 = 'urn:adaptive-idp:aal2';
const AAL3 = 'urn:adaptive-idp:aal3';
const LONDON = '81.2.69.142';
const SYDNEY = '1.1.1.1';
const BRAZIL = '200.160.2.3';
const JAPAN = '202.12.27.33';
const US = '8.8.8.8';


interface Flow { verifier: string; nonce: string; state: string }

describeOrSkip(chromiumMissing, 'step-up in a real browser (TOTP, recovery codes, passkeys)', () => {
  let srv: TestServer;
  let browser: Browser;
  let config: client.Configuration;
  const results: Checked[] = [];
  const tabs: Tab[] = [];

  before(async () => {
    srv = await startTestServer('embedded', { TRUST_PROXY: 'true', POLICY_DIR: rulesOnlyPolicy(), ...await localhostIssuer() });
    assert.match(srv.issuer, /^http:\/\/localhost:\d+$/);
    await srv.addUser('ada', PASSWORD, { name: 'Ada' });
    await srv.addUser('pia', PASSWORD, { name: 'Pia' });
    await srv.addClient('web', {
      redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
      client_name: 'Web Shop',
    });
    config = await discover(srv.issuer, 'web');
    browser = await launchChromium();
  });
  after(async () => {
    for (const t of tabs) await t.context.close();
    await browser?.close();
    await srv?.close();
  });

  /** A browser of its own (a new device to the engine), at `ip`; with a passkey authenticator if asked. */
  async function openTab(ip: string, opts: { authenticator?: boolean } = {}): Promise<Tab> {
    const tab = await openBrowserTab(browser, {
      context: { viewport: PHONE, extraHTTPHeaders: { 'x-forwarded-for': ip } }, redirectUri: REDIRECT_URI,
      // A platform authenticator with user verification that keeps discoverable credentials.
      ...(opts.authenticator ? { authenticator: {} } : {}),
    });
    tabs.push(tab);
    return tab;
  }

  /** The RP sends the browser to the authorization endpoint (code flow, PKCE, nonce). */
  async function authorize(tab: Tab, params: Record<string, string> = {}): Promise<Flow> {
    const flow = { verifier: client.randomPKCECodeVerifier(), nonce: client.randomNonce(), state: client.randomState() };
    await tab.page.goto(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid', nonce: flow.nonce, state: flow.state,
      code_challenge: await client.calculatePKCECodeChallenge(flow.verifier), code_challenge_method: 'S256', ...params,
    }).href);
    return flow;
  }

  /** Waits for the RP's callback (allowing the consent of a first authorization) and exchanges the code. */
  async function tokens(tab: Tab, flow: Flow) {
    const { page } = tab;
    await reachCallback(page);
    const t = await client.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state,
    });
    const claims = t.claims();
    assert.ok(claims);
    return claims;
  }

  async function password(tab: Tab, username: string) {
    await tab.page.getByLabel('Username').fill(username);
    await tab.page.getByLabel('Password').fill(PASSWORD);
    await tab.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /**
   * The browser forgets the provider (cookies and the device key in IndexedDB: "clear site
   * data"), so the engine sees a new device; the passkey authenticator stays.
   */
  async function newDevice(tab: Tab) {
    await tab.context.clearCookies();
    await tab.page.goto(`${srv.issuer}/.well-known/openid-configuration`);
    await tab.page.evaluate(`new Promise((resolve) => { const r = indexedDB.deleteDatabase('adaptive-idp'); r.onsuccess = r.onerror = r.onblocked = () => resolve(); })`);
  }

  async function heading(tab: Tab, name: string) {
    await tab.page.getByRole('heading', { name, level: 1 }).waitFor();
  }

  async function passkeyReady(tab: Tab) {
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
  }

  /** A first login at home: low risk, a password is enough; the enrolment offer declined. */
  async function homeLogin(tab: Tab, username: string) {
    const flow = await authorize(tab);
    await password(tab, username);
    await heading(tab, 'Set up a second step');
    await tab.page.getByRole('button', { name: 'Not now' }).click();
    const claims = await tokens(tab, flow);
    assert.equal(claims.acr, AAL1);
    assert.deepEqual(claims.amr, ['pwd', 'rba']);
  }

  let adaSecret = '';
  let adaCodes: string[] = [];
  let home: Tab;

  it('enrols an authenticator app at a risky login: secret read from the page, 10 recovery codes, AAL2 with pwd + otp', async () => {
    home = await openTab(LONDON);
    await homeLogin(home, 'ada');

    const away = await openTab(SYDNEY);
    const flow = await authorize(away);
    await password(away, 'ada');
    await heading(away, 'Set up a second step');
    assert.match(await away.page.textContent('main') ?? '', /your account does not have one yet/);
    assert.equal(await away.page.getByRole('button', { name: 'Not now' }).count(), 0, 'a required enrolment cannot be skipped');
    await passkeyReady(away);
    results.push(...await checkPage(away.page, 'stepup-totp-enrol'));

    // The key as the page shows it for typing: base32 in groups of four.
    const shown = (await away.page.textContent('#secret'))!.trim();
    assert.match(shown, /^[A-Z2-7]{4}( [A-Z2-7]{1,4})+$/);
    adaSecret = shown.replace(/ /g, '');
    assert.equal(adaSecret.length, 32, '160 bits of base32');
    await away.page.getByLabel('6-digit code').fill(totpCode(adaSecret));
    await away.page.getByRole('button', { name: 'Turn on' }).click();

    await heading(away, 'Save your recovery codes');
    adaCodes = (await away.page.locator('ul.codes li').allTextContents()).map((c) => c.trim());
    assert.equal(adaCodes.length, 10);
    assert.equal(new Set(adaCodes).size, 10);
    results.push(...await checkPage(away.page, 'stepup-recovery-codes'));
    await away.page.getByRole('button', { name: /I have saved them/ }).click();

    const claims = await tokens(away, flow);
    assert.equal(claims.acr, AAL2);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
    assert.deepEqual(away.problems, []);
  });

  it('asks a later login from another new country for the code: a wrong one is refused, the right one passes', async () => {
    assert.ok(adaSecret, 'the enrolment test ran');
    const tab = await openTab(BRAZIL);
    const flow = await authorize(tab);
    await password(tab, 'ada');
    await heading(tab, 'Confirm it is you');
    // Focus is in the code field: the user can type at once.
    assert.equal(await tab.page.evaluate('document.activeElement && document.activeElement.id'), 'code');
    results.push(...await checkPage(tab.page, 'stepup-totp'));

    const code = tab.page.getByLabel('Code from your authenticator app');
    await code.fill(totpCode(adaSecret) === '000000' ? '111111' : '000000');
    await tab.page.getByRole('button', { name: 'Verify' }).click();
    await tab.page.locator('#code-error').waitFor();
    assert.match(await tab.page.textContent('#code-error') ?? '', /That code is not right/);
    // WCAG 2.2 SC 3.3.1: the error is tied to the field (with the field's help), and focus is back in it.
    assert.equal(await code.getAttribute('aria-invalid'), 'true');
    assert.equal(await code.getAttribute('aria-describedby'), 'code-help code-error');
    assert.equal(await tab.page.evaluate('document.activeElement && document.activeElement.id'), 'code');
    results.push(...await checkPage(tab.page, 'stepup-totp-error'));

    // The code the app shows next: the enrolment's is spent, and so is every earlier one (RFC 6238 §5.2).
    await code.fill(totpCode(adaSecret, Date.now() + 30_000));
    await tab.page.getByRole('button', { name: 'Verify' }).click();
    const claims = await tokens(tab, flow);
    assert.equal(claims.acr, AAL2);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
    assert.deepEqual(tab.problems, []);
  });

  it('steps the AAL1 session at home up for acr_values=aal2 with a recovery code, without the password', async () => {
    assert.equal(adaCodes.length, 10, 'the enrolment test ran');
    const flow = await authorize(home, { acr_values: AAL2 });
    await heading(home, 'Confirm it is you');
    assert.equal(await home.page.getByLabel('Password').count(), 0, 'the password is not asked again');
    await home.page.getByText('Lost your device? Use a recovery code').click();
    // Typed as people do: lower case with spaces instead of dashes.
    await home.page.getByLabel('Recovery code').fill(adaCodes[0]!.toLowerCase().replace(/-/g, ' '));
    await home.page.getByRole('button', { name: 'Use recovery code' }).click();
    const claims = await tokens(home, flow);
    assert.equal(claims.acr, AAL2);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
    assert.deepEqual(home.problems, []);
  });

  let phone: Tab;
  let piaSub = '';

  it('registers a passkey at the enrolment page of a risky login, then shows the recovery codes', async () => {
    phone = await openTab(LONDON, { authenticator: true });
    await homeLogin(phone, 'pia');

    // The same phone abroad, signing in afresh.
    await newDevice(phone);
    await phone.page.setExtraHTTPHeaders({ 'x-forwarded-for': JAPAN });
    const flow = await authorize(phone);
    await password(phone, 'pia');
    await heading(phone, 'Set up a second step');
    await passkeyReady(phone);
    results.push(...await checkPage(phone.page, 'stepup-passkey-enrol'));
    await phone.page.getByRole('button', { name: 'Create a passkey' }).click();
    await heading(phone, 'Save your recovery codes');
    assert.equal(await phone.page.locator('ul.codes li').count(), 10);
    await phone.page.getByRole('button', { name: /I have saved them/ }).click();

    const claims = await tokens(phone, flow);
    // A passkey with user verification is phishing-resistant: the session's level is AAL3,
    // more than the AAL2 the login needed (the level is computed from the amr).
    assert.equal(claims.acr, AAL3);
    assert.deepEqual(claims.amr, ['pwd', 'hwk', 'user', 'mfa', 'rba']);
    piaSub = claims.sub;
    const factors = await srv.storage.factors.list((await srv.storage.accounts.findByUsername('pia'))!.id);
    const passkey = factors.find((f) => f.kind === 'webauthn');
    assert.equal(passkey?.webauthn?.userVerified, true);
    assert.equal(passkey?.enrolledVia, 'login');
    assert.deepEqual(phone.problems, []);
  });

  it('uses the passkey for the step-up of a later risky login (amr hwk + user)', async () => {
    await newDevice(phone);
    await phone.page.setExtraHTTPHeaders({ 'x-forwarded-for': US });
    const flow = await authorize(phone);
    await password(phone, 'pia');
    await heading(phone, 'Confirm it is you');
    await passkeyReady(phone);
    assert.equal(await phone.page.getByLabel('Code from your authenticator app').count(), 0, 'Pia has no authenticator app');
    results.push(...await checkPage(phone.page, 'stepup-passkey'));
    await phone.page.getByRole('button', { name: 'Use a passkey' }).click();

    const claims = await tokens(phone, flow);
    // A passkey with user verification is phishing-resistant: the session's level is AAL3,
    // more than the AAL2 the login needed (the level is computed from the amr).
    assert.equal(claims.acr, AAL3);
    assert.deepEqual(claims.amr, ['pwd', 'hwk', 'user', 'mfa', 'rba']);
    assert.deepEqual(phone.problems, []);
  });

  it('signs in with the passkey alone from the login page: no username, no password', async () => {
    await newDevice(phone);
    await phone.page.setExtraHTTPHeaders({ 'x-forwarded-for': LONDON });
    const flow = await authorize(phone);
    await heading(phone, 'Sign in');
    await passkeyReady(phone);
    results.push(...await checkPage(phone.page, 'stepup-passkey-login'));
    await phone.page.getByRole('button', { name: 'Sign in with a passkey' }).click();

    const claims = await tokens(phone, flow);
    // The passkey and its user verification (PIN or biometric) are two factors on their own
    // (NIST SP 800-63B-4 §3.1.7), and phishing-resistant.
    assert.equal(claims.acr, AAL3);
    assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa', 'rba']);
    assert.equal(claims.sub, piaSub, 'the account the passkey was registered for');
    assert.deepEqual(phone.problems, []);
  });

  it('found no accessibility violation on these pages', () => {
    assert.deepEqual([...new Set(results.map((r) => r.page))], [
      'stepup-totp-enrol', 'stepup-recovery-codes', 'stepup-totp', 'stepup-totp-error', 'stepup-passkey-enrol', 'stepup-passkey',
      'stepup-passkey-login',
    ]);
    const failed = violationsOf(results);
    assert.deepEqual(failed, [], `axe-core violations:\n${failed.join('\n')}`);
  });
});

/**
 * The passkey button in a real browser (Debian Chromium with a virtual authenticator, DevTools
 * `WebAuthn.addVirtualAuthenticator`): the served scripts run under the provider's
 * Content-Security-Policy, fetch the options, drive navigator.credentials, post the result,
 * and the real handlers (interactions/steps/passkey.ts) verify it. Also what a user sees when
 * WebAuthn is missing, when they cancel, and when the server refuses.
 * The harness (test/helpers/passkey-harness.ts) has the real pieces but oidc-provider.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { describeOrSkip } from '../helpers/env.ts';
import { chromiumMissing, launchChromium, openTab, type Tab, type TabOptions } from '../helpers/chromium.ts';
import { ARTIFACTS, PHONE } from '../helpers/axe.ts';
import { startPasskeyHarness, UID, type PasskeyHarness } from '../helpers/passkey-harness.ts';

const alice = { id: crypto.randomUUID(), username: 'alice', name: 'Alice' };

/** A phone-sized tab, with a platform authenticator if asked, or without WebAuthn at all. */
function openPhoneTab(browser: Browser, opts: { authenticator?: TabOptions['authenticator']; noWebAuthn?: boolean } = {}): Promise<Tab> {
  return openTab(browser, {
    context: { viewport: PHONE }, authenticator: opts.authenticator,
    ...(opts.noWebAuthn ? { initScript: 'delete window.PublicKeyCredential' } : {}),
  });
}

describeOrSkip(chromiumMissing, 'passkey button in a real browser', () => {
  let h: PasskeyHarness;
  let browser: Browser;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    h = await startPasskeyHarness();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });
  beforeEach(() => {
    h.results.length = 0;
    h.failures.length = 0;
  });

  it('registers a passkey, then signs in with it without a username (hwk + user)', async () => {
    const tab = await openPhoneTab(browser, { authenticator: {} });
    h.ceremony = { kind: 'register', account: alice, enrolledVia: 'self' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    const button = tab.page.getByRole('button', { name: 'Create a passkey' });
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.screenshot({ path: path.join(ARTIFACTS, 'passkey-register.png') });
    await button.click();
    await tab.page.waitForURL(`${h.url}/done`);
    assert.equal(h.results.length, 1);
    const reg = h.results[0]!;
    assert.equal(reg.kind, 'register');
    const stored = await h.factors.list(alice.id);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.webauthn?.userVerified, true);

    h.ceremony = { kind: 'authenticate', userVerification: 'required' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.screenshot({ path: path.join(ARTIFACTS, 'passkey-signin.png') });
    await tab.page.getByRole('button', { name: 'Use a passkey' }).click();
    await tab.page.waitForURL(`${h.url}/done`);
    const auth = h.results[1]!;
    assert.equal(auth.kind, 'authenticate');
    assert.equal(auth.kind === 'authenticate' && auth.assertion.accountId, alice.id);
    assert.deepEqual(auth.kind === 'authenticate' && auth.assertion.amr, ['hwk', 'user']);
    assert.deepEqual(h.failures, []);
    assert.deepEqual(tab.problems, [], 'no CSP violation, no script error');
    await tab.context.close();
  });

  it('says the passkey is already registered when the authenticator holds one for this account', async () => {
    const tab = await openPhoneTab(browser, { authenticator: {} });
    h.ceremony = { kind: 'register', account: { ...alice, id: crypto.randomUUID(), username: 'carol' }, enrolledVia: 'self' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.getByRole('button', { name: 'Create a passkey' }).click();
    await tab.page.waitForURL(`${h.url}/done`);
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.getByRole('button', { name: 'Create a passkey' }).click();
    const status = tab.page.locator('[data-passkey-status]');
    await status.waitFor({ state: 'visible' });
    assert.match(await status.textContent() ?? '', /already registered/);
    assert.equal(await status.getAttribute('role'), 'alert');
    assert.equal(await tab.page.getByRole('button', { name: 'Create a passkey' }).isEnabled(), true, 'the user can try again');
    assert.equal(h.results.length, 1);
    await tab.context.close();
  });

  it('tells the user when the browser has no WebAuthn, and keeps the button disabled', async () => {
    const tab = await openPhoneTab(browser, { noWebAuthn: true });
    h.ceremony = { kind: 'authenticate' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    const status = tab.page.locator('[data-passkey-status]');
    await status.waitFor({ state: 'visible' });
    assert.match(await status.textContent() ?? '', /cannot use passkeys/);
    assert.equal(await tab.page.getByRole('button', { name: 'Use a passkey' }).isDisabled(), true);
    await tab.page.screenshot({ path: path.join(ARTIFACTS, 'passkey-unsupported.png') });
    await tab.context.close();
  });

  it('when the user cancels (no passkey on this device), says so and lets them try again', async () => {
    // An authenticator without any credential for this site: Chrome ends the request with
    // NotAllowedError, exactly as when the user dismisses the dialog.
    const tab = await openPhoneTab(browser, { authenticator: { hasResidentKey: false } });
    h.ceremony = { kind: 'authenticate', accountId: alice.id };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.getByRole('button', { name: 'Use a passkey' }).click();
    const status = tab.page.locator('[data-passkey-status]');
    await status.waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await status.textContent() ?? '', /cancelled or timed out/);
    assert.equal(await tab.page.getByRole('button', { name: 'Use a passkey' }).isEnabled(), true);
    assert.deepEqual(h.results, []);
    await tab.page.screenshot({ path: path.join(ARTIFACTS, 'passkey-cancelled.png') });
    await tab.context.close();
  });

  it('shows the server\'s words when it refuses the options, and the refusal page when it refuses the result', async () => {
    // A security key without user verification (no PIN, no biometric).
    const tab = await openPhoneTab(browser, { authenticator: { hasUserVerification: false } });
    h.ceremony = undefined; // not at a passkey step: the options request is refused
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.getByRole('button', { name: 'Use a passkey' }).click();
    const status = tab.page.locator('[data-passkey-status]');
    await status.waitFor({ state: 'visible' });
    assert.match(await status.textContent() ?? '', /out of date/);

    const dave = { id: crypto.randomUUID(), username: 'dave', name: undefined };
    h.ceremony = { kind: 'register', account: dave, enrolledVia: 'self' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.getByRole('button', { name: 'Create a passkey' }).click();
    await tab.page.waitForURL(`${h.url}/done`);
    assert.equal((await h.factors.list(dave.id))[0]?.webauthn?.userVerified, false);

    // The options preferred user verification; by the time the result arrives the sign-in
    // needs the phishing-resistant level (the level rose meanwhile): the server refuses it.
    let asked = 0;
    h.ceremony = () => {
      asked += 1;
      return { kind: 'authenticate', accountId: dave.id, userVerification: asked <= 2 ? 'preferred' : 'required' };
    };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForSelector('button[data-passkey]:not([disabled])');
    await tab.page.getByRole('button', { name: 'Use a passkey' }).click();
    await tab.page.locator('[data-passkey-status][role=alert]').waitFor();
    assert.equal(h.failures.length, 1);
    assert.equal(h.failures[0]!.code, 'not_allowed');
    assert.match(await tab.page.locator('[data-passkey-status]').textContent() ?? '', /PIN, fingerprint or face/);
    await tab.page.screenshot({ path: path.join(ARTIFACTS, 'passkey-refused.png') });
    assert.deepEqual(tab.problems.filter((p) => /Content.Security.Policy/i.test(p)), []);
    await tab.context.close();
  });
});

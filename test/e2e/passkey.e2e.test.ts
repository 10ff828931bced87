/**
 * The passkey button in a real browser (Debian Chromium with a virtual authenticator, DevTools
 * `WebAuthn.addVirtualAuthenticator`): the served scripts run under the provider's
 * Content-Security-Policy, fetch the options, drive navigator.credentials, post the result,
 * and the real handlers (interactions/steps/passkey.ts) verify it. Also what a user sees when
 * WebAuthn is missing, when they cancel, and when the server refuses.
 *
 * The harness is a small Koa app with the real pieces (assets, CSP, CSRF, handlers, views,
 * WebAuthn ceremonies on a store) and a stand-in for oidc-provider's interactionDetails: the
 * login flow that uses these handlers is tested with the provider in the login tests.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, it } from 'node:test';
import Koa, { type Context } from 'koa';
import Router from '@koa/router';
import type Provider from 'oidc-provider';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assetRoutes } from '../../interactions/assets.ts';
import { Csrf } from '../../interactions/csrf.ts';
import { html } from '../../interactions/html.ts';
import { WebAuthn, type WebAuthnError } from '../../interactions/methods/webauthn.ts';
import { passkeyOptions, passkeyVerify, type PasskeyCeremony, type PasskeyResult } from '../../interactions/steps/passkey.ts';
import { layout, STYLESHEET, STYLESHEET_PATH } from '../../interactions/views/layout.ts';
import { passkeyForm } from '../../interactions/views/passkey.ts';
import { CONTENT_SECURITY_POLICY } from '../../idp/server.ts';
import { describeOrSkip } from '../helpers/env.ts';
import { chromiumMissing, launchChromium } from '../helpers/chromium.ts';
import { MemoryFactorStore, MemoryOidcStore } from '../helpers/memory-store.ts';

const UID = 'e2e-interaction';
const ARTIFACTS = path.join(import.meta.dirname, '..', '..', '..', 'test', 'e2e', 'artifacts');
const alice = { id: crypto.randomUUID(), username: 'alice', name: 'Alice' };

interface Harness {
  url: string;
  factors: MemoryFactorStore;
  /** The ceremony the interaction is at; a function is asked on every request. */
  ceremony: PasskeyCeremony | undefined | (() => PasskeyCeremony | undefined);
  results: PasskeyResult[];
  failures: WebAuthnError[];
  close(): Promise<void>;
}

async function startHarness(): Promise<Harness> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // WebAuthn needs a domain for the RP ID (not an IP address); localhost is a secure context.
  const issuer = `http://localhost:${port}`;
  const factors = new MemoryFactorStore();
  const webauthn = new WebAuthn({ factors, oidc: new MemoryOidcStore() }, { issuer, rpName: 'Adaptive IdP (test)' });
  const csrf = new Csrf(crypto.randomBytes(32), false);
  // Stands in for oidc-provider: this browser's interaction, at the login prompt.
  const provider = { interactionDetails: async () => ({ uid: UID, prompt: { name: 'login' }, params: {} }) } as unknown as Provider;
  const h: Harness = { url: issuer, factors, ceremony: undefined, results: [], failures: [], close: async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  } };

  const current = () => (typeof h.ceremony === 'function' ? h.ceremony() : h.ceremony);
  const render = (ctx: Context, error?: string, status = 200) => {
    const c = current();
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = layout('Passkey', html`<h1>${c?.kind === 'register' ? 'Create a passkey' : 'Sign in with a passkey'}</h1>
${passkeyForm({
    action: `/interaction/${UID}/passkey`, optionsAction: `/interaction/${UID}/passkey/options`, csrf: csrf.issue(ctx, UID),
    ceremony: c?.kind ?? 'authenticate', label: c?.kind === 'register' ? 'Create a passkey' : 'Use a passkey', error,
  })}`).value;
  };
  const callbacks = {
    ceremony: async () => current(),
    onVerified: async (ctx: Context, _d: unknown, result: PasskeyResult) => {
      h.results.push(result);
      ctx.status = 303;
      ctx.redirect('/done');
    },
    onFailed: async (ctx: Context, _d: unknown, error: WebAuthnError) => {
      h.failures.push(error);
      render(ctx, error.message, 400);
    },
  };
  const deps = { provider, csrf, webauthn, maxFormBytes: 16384 };
  const router = new Router();
  router.get('/interaction/:uid', (ctx) => render(ctx));
  router.post('/interaction/:uid/passkey/options', passkeyOptions(deps, callbacks));
  router.post('/interaction/:uid/passkey', passkeyVerify(deps, callbacks));
  // Browsers ask for it on every page; a 404 would show as a console error.
  router.get('/favicon.ico', (ctx) => { ctx.status = 204; });
  router.get('/done', (ctx) => {
    ctx.type = 'html';
    ctx.body = layout('Done', html`<h1>Done</h1>`).value;
  });
  const app = new Koa();
  app.use(async (ctx, next) => {
    await next();
    ctx.set('x-content-type-options', 'nosniff');
    if (ctx.type === 'text/html') ctx.set('content-security-policy', CONTENT_SECURITY_POLICY);
  });
  app.use(async (ctx, next) => {
    if (ctx.path !== STYLESHEET_PATH) return next();
    ctx.type = 'text/css';
    ctx.body = STYLESHEET;
    return undefined;
  });
  app.use(assetRoutes());
  app.use(router.routes());
  server.on('request', app.callback());
  return h;
}

interface Tab {
  context: BrowserContext;
  page: Page;
  /** CSP violations and script errors the page reported. */
  problems: string[];
  authenticatorId?: string;
}

async function openTab(browser: Browser, opts: { authenticator?: { hasUserVerification?: boolean; hasResidentKey?: boolean }; noWebAuthn?: boolean } = {}): Promise<Tab> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  if (opts.noWebAuthn) await context.addInitScript('delete window.PublicKeyCredential');
  const page = await context.newPage();
  const tab: Tab = { context, page, problems: [] };
  page.on('console', (m) => { if (m.type() === 'error') tab.problems.push(m.text()); });
  page.on('pageerror', (e) => tab.problems.push(e.message));
  if (opts.authenticator) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: opts.authenticator.hasResidentKey ?? true,
        hasUserVerification: opts.authenticator.hasUserVerification ?? true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    tab.authenticatorId = authenticatorId;
  }
  return tab;
}

describeOrSkip(chromiumMissing, 'passkey button in a real browser', () => {
  let h: Harness;
  let browser: Browser;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    h = await startHarness();
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
    const tab = await openTab(browser, { authenticator: {} });
    h.ceremony = { kind: 'register', account: alice, enrolledVia: 'self' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    const button = tab.page.getByRole('button', { name: 'Create a passkey' });
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
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
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
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
    const tab = await openTab(browser, { authenticator: {} });
    h.ceremony = { kind: 'register', account: { ...alice, id: crypto.randomUUID(), username: 'carol' }, enrolledVia: 'self' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
    await tab.page.getByRole('button', { name: 'Create a passkey' }).click();
    await tab.page.waitForURL(`${h.url}/done`);
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
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
    const tab = await openTab(browser, { noWebAuthn: true });
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
    const tab = await openTab(browser, { authenticator: { hasResidentKey: false } });
    h.ceremony = { kind: 'authenticate', accountId: alice.id };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
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
    const tab = await openTab(browser, { authenticator: { hasUserVerification: false } });
    h.ceremony = undefined; // not at a passkey step: the options request is refused
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
    await tab.page.getByRole('button', { name: 'Use a passkey' }).click();
    const status = tab.page.locator('[data-passkey-status]');
    await status.waitFor({ state: 'visible' });
    assert.match(await status.textContent() ?? '', /out of date/);

    const dave = { id: crypto.randomUUID(), username: 'dave', name: undefined };
    h.ceremony = { kind: 'register', account: dave, enrolledVia: 'self' };
    await tab.page.goto(`${h.url}/interaction/${UID}`);
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
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
    await tab.page.waitForFunction('!document.querySelector("button[data-passkey]").disabled');
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

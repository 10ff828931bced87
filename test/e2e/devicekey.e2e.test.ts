/**
 * Device keys in a real browser (Debian Chromium through playwright-core) against the real
 * provider at http://localhost (a secure context, so WebCrypto is there), with openid-client
 * as the relying party: the sign-in page's script (assets/device-key.js) makes a
 * non-extractable ECDSA key in IndexedDB at the first login and proves it at every later one,
 * and the recorded assessments show the three states the engine tells apart:
 * - proven: the browser signed the page's nonce with a key of the user's trusted logins
 *   (`device_proven`);
 * - cookie only: the device cookie copied into another browser, which has no such key
 *   (`device_unproven`), whether that browser makes a key of its own or cannot make one;
 * - new: neither cookie nor key (`new_device`, once the history is confident).
 * The policy is the shipped one (3 trusted logins for a confident history) with a password
 * enough below `critical`, so every login here reaches the relying party.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { calculateJwkThumbprint } from 'jose';
import type { Browser } from 'playwright-core';
import * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { describeOrSkip, localhostIssuer } from '../helpers/env.ts';
import { chromiumMissing, launchChromium, openTab as openBrowserTab, reachCallback, type Tab } from '../helpers/chromium.ts';
import type { LoginEventRecord } from '../../models/types.ts';

const PASSWORD = 'correct horse battery staple';

interface StoredKey {
  extractable: boolean;
  usages: string[];
  curve: string;
  /** What exporting the private key gave: the error's name, or 'exported'. */
  exportPrivate: string;
  publicJwk: { kty: string; crv: string; x: string; y: string };
}

describeOrSkip(chromiumMissing, 'device keys in a real browser', () => {
  let srv: TestServer;
  let browser: Browser;
  let config: client.Configuration;
  let dora: string;
  const tabs: Tab[] = [];

  before(async () => {
    srv = await startTestServer('embedded', await localhostIssuer());
    assert.match(srv.issuer, /^http:\/\/localhost:\d+$/);
    dora = await srv.addUser('dora', PASSWORD, { name: 'Dora' });
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

  async function openTab(opts: { initScript?: string } = {}): Promise<Tab> {
    const tab = await openBrowserTab(browser, { initScript: opts.initScript, redirectUri: REDIRECT_URI });
    tabs.push(tab);
    return tab;
  }

  async function events(): Promise<LoginEventRecord[]> {
    const out: LoginEventRecord[] = [];
    for await (const e of srv.storage.events.list({})) if (e.user === dora) out.push(e);
    return out;
  }

  const reasonsOf = (e: LoginEventRecord) => e.assessment!.reasons.map((r) => r.factor);

  /**
   * One whole login through the RP (prompt=login: the password every time), the code
   * exchanged; returns the login's recorded event. `waitForProof`: type only once the
   * script has filled the proof (false: submit at once, as a password manager would).
   */
  async function login(tab: Tab, opts: { waitForProof?: boolean; wrongFirst?: boolean } = {}): Promise<LoginEventRecord> {
    const { page } = tab;
    const flow = { verifier: client.randomPKCECodeVerifier(), nonce: client.randomNonce(), state: client.randomState() };
    const before = (await events()).length;
    await page.goto(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid', nonce: flow.nonce, state: flow.state, prompt: 'login',
      code_challenge: await client.calculatePKCECodeChallenge(flow.verifier), code_challenge_method: 'S256',
    }).href);
    // Polled from here, not page.waitForFunction: a string predicate that is not true at
    // once is evaluated in the page, which its CSP (script-src 'self', no eval) refuses.
    const proofReady = async () => {
      for (let i = 0; i < 200 && (await page.inputValue('input[name=device_proof]')) === ''; i += 1) await new Promise((r) => setTimeout(r, 25));
    };
    if (opts.wrongFirst) {
      await proofReady();
      await page.getByLabel('Username').fill('dora');
      await page.getByLabel('Password').fill('not the password at all');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForSelector('#login-error');
    }
    if (opts.waitForProof ?? true) await proofReady();
    await page.getByLabel('Username').fill('dora');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await reachCallback(page);
    const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state,
    });
    assert.ok(tokens.claims()?.sub);
    const all = await events();
    assert.equal(all.length, before + (opts.wrongFirst ? 2 : 1));
    const e = all.at(-1)!;
    assert.equal(e.success, true);
    return e;
  }

  /** The key pair this tab's origin keeps in IndexedDB, as the page's own scripts can see it. */
  async function storedKey(tab: Tab): Promise<StoredKey | undefined> {
    // On the provider's origin (the tab is at the RP's callback); a string, since the test
    // compiles without the DOM library.
    await tab.page.goto(`${srv.issuer}/.well-known/openid-configuration`);
    return tab.page.evaluate(`(async () => {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open('adaptive-idp');
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const pair = await new Promise((resolve, reject) => {
        const r = db.transaction('device-key', 'readonly').objectStore('device-key').get('v1');
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      db.close();
      if (!pair) return undefined;
      const exportPrivate = await crypto.subtle.exportKey('jwk', pair.privateKey).then(() => 'exported', (e) => e.name);
      const pub = await crypto.subtle.exportKey('jwk', pair.publicKey);
      return {
        extractable: pair.privateKey.extractable, usages: pair.privateKey.usages, curve: pair.privateKey.algorithm.namedCurve,
        exportPrivate, publicJwk: { kty: pub.kty, crv: pub.crv, x: pub.x, y: pub.y },
      };
    })()`);
  }

  it('makes a non-extractable key at the first login, proves it at the next, and a copied cookie without it is "cookie only"', async () => {
    const home = await openTab();

    // 1. First login: the key is made and proven, but the user's history does not know it yet.
    const first = await login(home);
    assert.match(first.deviceKey ?? '', /^[A-Za-z0-9_-]{43}$/, 'the event records the proven key');
    const key = await storedKey(home);
    assert.ok(key, 'the key pair is in IndexedDB');
    assert.equal(key.extractable, false);
    assert.deepEqual(key.usages, ['sign']);
    assert.equal(key.curve, 'P-256');
    assert.equal(key.exportPrivate, 'InvalidAccessError', 'the private key cannot be exported, not even by the page');
    assert.equal(await calculateJwkThumbprint(key.publicJwk), first.deviceKey, 'the recorded thumbprint is the stored key\'s (RFC 7638)');
    assert.ok(!reasonsOf(first).includes('device_proven'), reasonsOf(first).join(', '));

    // 2. A wrong password spends the page's nonce; the page shown again proves with a new one.
    const second = await login(home, { wrongFirst: true });
    const failed = (await events()).at(-2)!;
    assert.equal(failed.success, false);
    assert.equal(failed.deviceKey, first.deviceKey, 'the failed attempt proved the key too');
    assert.equal(second.deviceKey, first.deviceKey);
    assert.ok(reasonsOf(second).includes('device_proven'), reasonsOf(second).join(', '));

    // 3, 4. Three trusted logins make the history confident; the same browser is still proven.
    await login(home);
    const proven = await login(home);
    assert.equal(proven.deviceKey, first.deviceKey);
    assert.ok(proven.assessment!.confidence > 0.5, `confident history (${proven.assessment!.confidence})`);
    assert.ok(reasonsOf(proven).includes('device_proven'), reasonsOf(proven).join(', '));
    assert.ok(!reasonsOf(proven).includes('new_device') && !reasonsOf(proven).includes('device_unproven'), reasonsOf(proven).join(', '));
    assert.match(proven.assessment!.reasons.find((r) => r.factor === 'device_proven')!.detail ?? '', /seen at 3 trusted logins/);
    const provenScore = proven.assessment!.score;

    // 5. The device cookie copied into another browser, which makes a key of its own, slowly
    // (its signature is delayed): the form, submitted at once, waits for the proof.
    const cookies = (await home.context.cookies(srv.issuer)).filter((c) => c.name.startsWith('idp_device'));
    assert.equal(cookies.length, 2, 'the device cookie and its signature');
    // (Init scripts run on every page: the RP's callback, on http://127.0.0.1, has no WebCrypto.)
    const copy = await openTab({ initScript: `if (window.crypto && crypto.subtle) {
      const sign = crypto.subtle.sign.bind(crypto.subtle);
      crypto.subtle.sign = (...args) => new Promise((r) => setTimeout(r, 400)).then(() => sign(...args));
    }` });
    await copy.context.addCookies(cookies);
    const copied = await login(copy, { waitForProof: false });
    assert.equal(copied.deviceId, proven.deviceId, 'the same device cookie');
    assert.match(copied.deviceKey ?? '', /^[A-Za-z0-9_-]{43}$/, 'the submit waited for the (delayed) proof');
    assert.notEqual(copied.deviceKey, first.deviceKey, 'another key: the first one never left its browser');
    assert.ok(reasonsOf(copied).includes('device_unproven'), reasonsOf(copied).join(', '));
    assert.ok(!reasonsOf(copied).includes('device_proven') && !reasonsOf(copied).includes('new_device'), reasonsOf(copied).join(', '));
    assert.ok(copied.assessment!.score > provenScore, `${copied.assessment!.score} > ${provenScore}`);

    // 6. The cookie in a browser that cannot keep a key (no IndexedDB, like some private
    // windows): the login works as before, with no key at all, and is "cookie only" too.
    const noIdb = await openTab({ initScript: 'Object.defineProperty(window, "indexedDB", { value: undefined })' });
    await noIdb.context.addCookies(cookies);
    const keyless = await login(noIdb, { waitForProof: false });
    assert.equal(await noIdb.page.evaluate('document.readyState'), 'complete');
    assert.equal(keyless.deviceKey, undefined, 'no key proven');
    assert.equal(keyless.deviceId, proven.deviceId);
    assert.ok(reasonsOf(keyless).includes('device_unproven'), reasonsOf(keyless).join(', '));

    // 7. A browser with neither cookie nor key: "new".
    const stranger = await openTab();
    const fresh = await login(stranger);
    assert.notEqual(fresh.deviceId, proven.deviceId);
    assert.ok(reasonsOf(fresh).includes('new_device'), reasonsOf(fresh).join(', '));
    assert.ok(!reasonsOf(fresh).includes('device_proven') && !reasonsOf(fresh).includes('device_unproven'), reasonsOf(fresh).join(', '));

    // 8. Back home: still proven, with the same key.
    const back = await login(home);
    assert.equal(back.deviceKey, first.deviceKey);
    assert.ok(reasonsOf(back).includes('device_proven'), reasonsOf(back).join(', '));

    for (const t of [home, copy, noIdb, stranger]) assert.deepEqual(t.problems, [], 'no CSP violation, no script error');
    // The audit log names refused proofs by reason and thumbprint only: none here.
    assert.deepEqual(srv.logs.filter((l) => l.msg === 'device.proof_refused'), []);
  });
});

/**
 * Who may teach the engine a user's behaviour and devices, over real HTTP on both stores:
 * an attacker who holds only the password must not get their typing into the user's
 * keystroke template nor their device key into the user's proven keys (README "Behavioural
 * signals": only logins that were low risk or passed a step-up join), neither by enrolling a
 * second factor of their own during the login (missing_factor: enroll), nor while the
 * policy is in monitor mode, nor where a lenient policy lets a risky login in on the password.
 */
import assert from 'node:assert/strict';
import type crypto from 'node:crypto';
import { after, before, it } from 'node:test';
import { calculateJwkThumbprint } from 'jose';
import type * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { rulesOnlyPolicy, type PolicyFiles } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI, secretOnPage, startAuthorization } from '../helpers/rp.ts';
import { Browser, type Page } from '../helpers/browser.ts';
import { totpCode } from '../helpers/totp.ts';
import type { Behaviour } from '../../policies/behaviour.ts';
import type { UserHistory } from '../../policies/types.ts';

const PASSWORD = 'correct horse battery staple';
const N = [...PASSWORD].length;
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
const LONDON = '81.2.69.142';
const SYDNEY = '1.1.1.1';
const subtle = globalThis.crypto.subtle;
type CryptoKeyPair = crypto.webcrypto.CryptoKeyPair;

function sample(hold: number, gap: number): Behaviour {
  const h = Array.from({ length: N }, (_, i) => hold + (i % 3) * 7);
  const ud = Array.from({ length: N - 1 }, (_, i) => gap + (i % 4) * 11);
  return { v: 1, keystroke: { hold: h, ud, dd: ud.map((u, i) => h[i]! + u) } };
}

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** What the page's device-key script posts, with Node's WebCrypto standing in for the browser's. */
async function proof(pair: CryptoKeyPair, page: Page): Promise<string> {
  const tag = /<input type="hidden" name="device_proof"[^>]*>/.exec(page.body)?.[0];
  assert.ok(tag, 'the sign-in form has the device_proof field');
  const nonce = unescape(/data-device-nonce="([^"]*)"/.exec(tag)![1]!);
  const message = unescape(/data-device-message="([^"]*)"/.exec(tag)![1]!);
  const jwk = await subtle.exportKey('jwk', pair.publicKey);
  const sig = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, new TextEncoder().encode(message));
  return JSON.stringify({ nonce, jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, sig: Buffer.from(sig).toString('base64url') });
}

const newPair = async () => await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']) as CryptoKeyPair;
const thumbprintOf = async (pair: CryptoKeyPair) => {
  const jwk = await subtle.exportKey('jwk', pair.publicKey);
  return calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! });
};
const atClient = (p: Page) => p.url.href.startsWith(REDIRECT_URI);
const consent = async (b: Browser, p: Page) => (!atClient(p) && p.body.includes('/confirm') ? b.submit(p, '/confirm', {}, REDIRECT_URI) : p);

async function setUp(store: (typeof STORES)[number]['kind'], patch: (f: PolicyFiles) => void) {
  const srv = await startTestServer(store, { TRUST_PROXY: 'true', POLICY_DIR: rulesOnlyPolicy(patch) });
  const id = await srv.addUser('vic', PASSWORD);
  await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
  return { srv, id, config: await discover(srv.issuer, 'web') };
}

/** The password form, posted with a behavioural sample and a device-key proof. */
async function signIn(config: client.Configuration, b: Browser, pair: CryptoKeyPair, behaviour: Behaviour): Promise<Page> {
  const { page } = await startAuthorization(config, b, { prompt: 'login' });
  return b.submit(page, '/login', { username: 'vic', password: PASSWORD, behaviour: JSON.stringify(behaviour), device_proof: await proof(pair, page) }, REDIRECT_URI);
}

const historyOf = async (srv: TestServer, id: string) => (await srv.storage.risk.getUser(id)) as UserHistory;

/** The user's own first login from home (low: nothing to compare with yet): trusted, learns. */
async function homeLogin(srv: TestServer, config: client.Configuration, id: string, pair: CryptoKeyPair) {
  const home = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
  assert.ok(atClient(await consent(home, await signIn(config, home, pair, sample(95, 140)))));
  const h = await historyOf(srv, id);
  assert.equal(h.keystroke?.samples.length, 1, 'the user\'s own low-risk login trains the template');
  assert.deepEqual(Object.keys(h.deviceKeys ?? {}), [await thumbprintOf(pair)]);
}

for (const store of STORES) {
  describeOrSkip(store.skip, `only the user trains templates and device keys (${store.kind} store)`, () => {
    const servers: TestServer[] = [];
    after(async () => { for (const s of servers) await s.close(); });
    let userKey: CryptoKeyPair;
    let attackerKey: CryptoKeyPair;
    before(async () => {
      userKey = await newPair();
      attackerKey = await newPair();
    });

    it('an attacker who enrols their own second factor during a risky login teaches neither', async () => {
      const { srv, id, config } = await setUp(store.kind, (f) => {
        f.assurance.enrolment = { prompt: 'off', missing_factor: { action: 'enroll', enroll_max_level: 'high' } };
      });
      servers.push(srv);
      await homeLogin(srv, config, id, userKey);

      const b = new Browser({ 'x-forwarded-for': SYDNEY, 'user-agent': SAFARI });
      const enrol = await signIn(config, b, attackerKey, sample(60, 400));
      assert.match(enrol.body, /your account does not have one yet/, 'the risky login must enrol a factor');
      const secret = secretOnPage(enrol)!;
      const shown = await b.submit(enrol, '/enrol/totp', { code: totpCode(secret) });
      assert.ok(atClient(await consent(b, await b.submit(shown, '/continue', {}, REDIRECT_URI))), 'the attacker got in');

      const h = await historyOf(srv, id);
      assert.equal(h.keystroke?.samples.length, 1, 'the attacker\'s typing did not join the template');
      assert.equal(h.deviceKeys?.[await thumbprintOf(attackerKey)], undefined, 'the attacker\'s device key is not one of the user\'s');
    });

    it('while the whole policy is in monitor mode, a login the policy would challenge teaches neither', async () => {
      const { srv, id, config } = await setUp(store.kind, (f) => {
        f.risk.mode = 'monitor';
        f.assurance.enrolment = { prompt: 'off' };
      });
      servers.push(srv);
      await homeLogin(srv, config, id, userKey);

      const b = new Browser({ 'x-forwarded-for': SYDNEY, 'user-agent': SAFARI });
      assert.ok(atClient(await consent(b, await signIn(config, b, attackerKey, sample(60, 400)))), 'monitor mode lets the login in');

      const h = await historyOf(srv, id);
      assert.equal(h.keystroke?.samples.length, 1);
      assert.equal(h.deviceKeys?.[await thumbprintOf(attackerKey)], undefined, 'the attacker\'s device key is not one of the user\'s');
    });

    it('a lenient policy that lets a medium-risk login in on the password alone does not learn its device key', async () => {
      const { srv, id, config } = await setUp(store.kind, (f) => {
        f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
        f.assurance.enrolment = { prompt: 'off' };
      });
      servers.push(srv);
      await homeLogin(srv, config, id, userKey);

      const b = new Browser({ 'x-forwarded-for': SYDNEY, 'user-agent': SAFARI });
      assert.ok(atClient(await consent(b, await signIn(config, b, attackerKey, sample(60, 400)))));

      const h = await historyOf(srv, id);
      assert.equal(h.keystroke?.samples.length, 1);
      assert.equal(h.deviceKeys?.[await thumbprintOf(attackerKey)], undefined, 'the attacker\'s device key is not one of the user\'s');
    });
  });
}

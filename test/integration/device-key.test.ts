/**
 * Device-key proofs over HTTP on the real provider (interactions/steps/login.ts), on both
 * stores: the sign-in page carries a fresh nonce and the message to sign; a proof is good for
 * one login attempt only, also when 100 attempts carry it at once; a proof replayed into another
 * interaction is refused, logged by reason and thumbprint without key material, and the login
 * goes on without a device key (never an error page).
 */
import assert from 'node:assert/strict';
import type crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint } from 'jose';
import * as client from 'openid-client';
import { STORES, describeOrSkip, localhostIssuer } from '../helpers/env.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';
import { WebAuthn } from '../../interactions/methods/webauthn.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser, findForm, type Page } from '../helpers/browser.ts';
import type { LoginEventRecord } from '../../models/types.ts';

const PASSWORD = 'correct horse battery staple';
const subtle = globalThis.crypto.subtle;

async function events(srv: TestServer, user: string): Promise<LoginEventRecord[]> {
  const out: LoginEventRecord[] = [];
  for await (const e of srv.storage.events.list({})) if (e.user === user) out.push(e);
  return out;
}

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The nonce and message the sign-in page gives its device-key script. */
function challengeOf(page: Page): { nonce: string; message: string } {
  const tag = /<input type="hidden" name="device_proof"[^>]*>/.exec(page.body)?.[0];
  assert.ok(tag, 'the sign-in form has the device_proof field');
  const nonce = /data-device-nonce="([^"]*)"/.exec(tag)?.[1];
  const message = /data-device-message="([^"]*)"/.exec(tag)?.[1];
  assert.ok(nonce && message);
  return { nonce: unescape(nonce), message: unescape(message) };
}

/** What the page's script does, with Node's WebCrypto standing in for the browser's. */
async function signProof(pair: CryptoKeyPair, page: Page): Promise<{ proof: string; thumbprint: string }> {
  const { nonce, message } = challengeOf(page);
  const jwk = await subtle.exportKey('jwk', pair.publicKey);
  const publicJwk = { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
  const sig = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, new TextEncoder().encode(message));
  return { proof: JSON.stringify({ nonce, jwk: publicJwk, sig: Buffer.from(sig).toString('base64url') }), thumbprint: await calculateJwkThumbprint(publicJwk) };
}

type CryptoKeyPair = crypto.webcrypto.CryptoKeyPair;

for (const store of STORES) {
  describeOrSkip(store.skip, `device-key proofs at the sign-in form (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let pair: CryptoKeyPair;

    before(async () => {
      srv = await startTestServer(store.kind);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
      pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']) as CryptoKeyPair;
    });
    after(() => srv?.close());

    /** An authorization request; with `prompt=login` (the default here) the sign-in page. */
    async function signInPage(browser: Browser, params: Record<string, string> = { prompt: 'login' }): Promise<Page> {
      return browser.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256', ...params,
      }), {}, REDIRECT_URI);
    }

    /** Allows the consent page of a first authorization, if it is shown. */
    async function consent(browser: Browser, page: Page): Promise<Page> {
      return page.body.includes('/confirm') ? browser.submit(page, '/confirm', {}, REDIRECT_URI) : page;
    }

    it('gives each rendering of the form its own nonce, bound to the issuer and the interaction', async () => {
      const browser = new Browser();
      const page = await signInPage(browser);
      const uid = /\/interaction\/([^/]+)\/login/.exec(findForm(page.body, '/login').action)?.[1];
      const a = challengeOf(page);
      assert.equal(a.message, `adaptive-idp device-proof v1\n${srv.issuer}\n${uid}\n${a.nonce}`);
      assert.equal(Buffer.from(a.nonce, 'base64url').length, 32);
      assert.match(page.body, /<script src="\/assets\/device-key\.[A-Za-z0-9_-]{12}\.js" defer><\/script>/);
      const b = challengeOf(await browser.navigate(page.url));
      assert.notEqual(b.nonce, a.nonce, 'a new nonce per rendering');
    });

    it('accepts one of 100 parallel logins carrying the same proof, across two instances: at most one records the device key', async () => {
      // A second provider on the same store, keys and issuer: another instance behind the load balancer.
      const other = await startTestServer(store.kind, {
        DATA_DIR: srv.env.DATA_DIR!, KEYS_FILE: srv.env.KEYS_FILE!, POLICY_DIR: srv.env.POLICY_DIR!, ISSUER: srv.issuer,
        ...(srv.env.MONGODB_URI ? { MONGODB_URI: srv.env.MONGODB_URI } : {}),
      });
      try {
        const id = await srv.addUser('pat', PASSWORD);
        const browser = new Browser();
        const page = await signInPage(browser);
        const { proof, thumbprint } = await signProof(pair, page);
        const form = findForm(page.body, '/login');
        const body = new URLSearchParams({ ...form.hidden, username: 'pat', password: PASSWORD, device_proof: proof }).toString();
        const logged = [srv.logs.length, other.logs.length] as const;
        const statuses = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
          const res = await browser.request(new URL(form.action, i % 2 ? other.url : srv.url), {
            method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
          });
          await res.arrayBuffer();
          return res.status;
        }));
        // Let in (303), or paused by the throttle (429): the proof is checked either way.
        assert.ok(statuses.every((s) => s === 303 || s === 429), `statuses: ${[...new Set(statuses)].join(', ')}`);
        const recorded = await events(srv, id);
        assert.equal(recorded.length, statuses.filter((s) => s === 303).length, 'every login let in is recorded');
        // The one accepted proof may have gone to an attempt the throttle then paused (no event).
        const proven = recorded.filter((e) => e.deviceKey !== undefined);
        assert.ok(proven.length <= 1, `${proven.length} logins proved the key`);
        assert.ok(proven.every((e) => e.deviceKey === thumbprint));
        const refused = [...srv.logs.slice(logged[0]), ...other.logs.slice(logged[1])].filter((l) => l.msg === 'device.proof_refused');
        assert.equal(refused.length, 99, 'exactly one of the 100 checks accepted the proof; the others were refused as replays');
        assert.ok(refused.every((l) => l.reason === 'replayed' && l.thumbprint === thumbprint && l.level === 'warn'));
        assert.ok(other.logs.slice(logged[1]).some((l) => l.msg === 'device.proof_refused'), 'both instances checked proofs');
      } finally {
        await other.close();
      }
    });

    it('refuses a proof replayed into another interaction: logged by reason and thumbprint, the login goes on without a key', async () => {
      const id = await srv.addUser('quinn', PASSWORD);
      const browser = new Browser();
      const first = await signInPage(browser);
      const { proof, thumbprint } = await signProof(pair, first);
      const logged = srv.logs.length;
      // A second authorization (another interaction) posts the first page's proof.
      const second = await signInPage(browser);
      const done = await consent(browser, await browser.submit(second, '/login', { username: 'quinn', password: PASSWORD, device_proof: proof }, REDIRECT_URI));
      assert.ok(done.url.href.startsWith(REDIRECT_URI), `the login reached the client (${done.status})`);
      const [e] = await events(srv, id);
      assert.equal(e?.success, true);
      assert.equal(e?.deviceKey, undefined);
      const lines = srv.logs.slice(logged).filter((l) => l.msg === 'device.proof_refused');
      assert.deepEqual(lines.map((l) => [l.reason, l.thumbprint]), [['wrong_interaction', thumbprint]]);
      const sig = (JSON.parse(proof) as { sig: string; jwk: { x: string } });
      const text = JSON.stringify(srv.logs);
      assert.ok(!text.includes(sig.sig) && !text.includes(sig.jwk.x), 'no signature or key material in the logs');

      // A garbled field is ignored the same way: no error page.
      const third = await signInPage(browser);
      const garbled = await consent(browser, await browser.submit(third, '/login', { username: 'quinn', password: PASSWORD, device_proof: '{"nonce":"x"' }, REDIRECT_URI));
      assert.ok(garbled.url.href.startsWith(REDIRECT_URI), `the login reached the client (${garbled.status})`);
      assert.equal((await events(srv, id)).at(-1)?.deviceKey, undefined);
    });

    it('scores a later authorization on the session with the key its login proved: proven, not a copied cookie', async () => {
      const id = await srv.addUser('rita', PASSWORD);
      const browser = new Browser();
      const page = await signInPage(browser);
      const { proof, thumbprint } = await signProof(pair, page);
      const done = await consent(browser, await browser.submit(page, '/login', { username: 'rita', password: PASSWORD, device_proof: proof }, REDIRECT_URI));
      assert.ok(done.url.href.startsWith(REDIRECT_URI));
      assert.equal((await events(srv, id)).at(-1)?.deviceKey, thumbprint);
      // The RP asks again on the same session: no form, no new proof; the session's counts.
      const logged = srv.logs.length;
      const again = await signInPage(browser, {});
      assert.ok(again.url.href.startsWith(REDIRECT_URI), 'no login needed');
      const rescored = srv.logs.slice(logged).filter((l) => l.msg === 'risk.decided' && l.on === 'session');
      assert.equal(rescored.length, 1);
      const reasons = rescored[0]!.reasons as string[];
      assert.ok(reasons.includes('device_proven') && !reasons.includes('device_unproven'), reasons.join(', '));
    });
  });
}

describe('device-key proof with a passkey sign-in from the sign-in page (embedded store)', () => {
  let srv: TestServer;
  let config: client.Configuration;

  before(async () => {
    // http://localhost: browsers offer passkeys there (methods/webauthn.ts `supported`).
    srv = await startTestServer('embedded', await localhostIssuer());
    await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    config = await discover(srv.issuer, 'web');
  });
  after(() => srv?.close());

  it('proves the device key with a username-less passkey sign-in, as with a password', async () => {
    const id = await srv.addUser('sam', PASSWORD);
    const account = (await srv.storage.accounts.findById(id))!;
    const authenticator = new SoftAuthenticator({ origin: srv.issuer, rpId: 'localhost' });
    const wa = new WebAuthn(srv.storage, { issuer: srv.issuer });
    await wa.verifyRegistration({
      binding: 'setup', account, enrolledVia: 'admin',
      response: authenticator.create(await wa.registrationOptions({ binding: 'setup', account, userVerification: 'required' })),
    });
    const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']) as CryptoKeyPair;

    const browser = new Browser();
    const page = await browser.navigate(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }));
    const passkeyForm = findForm(page.body, '/passkey');
    assert.equal(passkeyForm.hidden.device_proof, '', 'the passkey form carries the proof field too');
    const { proof, thumbprint } = await signProof(pair, page);
    const options = await browser.request(new URL(`${passkeyForm.action}/options`, page.url), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: passkeyForm.hidden.csrf! }),
    });
    assert.equal(options.status, 200);
    const response = authenticator.get(await options.json() as Parameters<SoftAuthenticator['get']>[0]);
    let done = await browser.submit(page, '/passkey', { response: JSON.stringify(response), device_proof: proof }, REDIRECT_URI);
    if (done.body.includes('/confirm')) done = await browser.submit(done, '/confirm', {}, REDIRECT_URI);
    assert.ok(done.url.href.startsWith(REDIRECT_URI), `signed in (${done.status})`);
    const [e] = await events(srv, id);
    assert.equal(e?.deviceKey, thumbprint);
  });
});

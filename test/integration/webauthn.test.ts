/**
 * The WebAuthn ceremonies on the real stores (embedded always, MongoDB when MONGODB_URI is
 * set), as two IdP instances would run them: two connections to one database, each with
 * its own WebAuthn verifier. A challenge is consumed once and a signature counter advances
 * once, whichever instance the parallel requests reach.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, it } from 'node:test';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import { CHALLENGE_MODEL, WebAuthn, WebAuthnError, type WebAuthnErrorCode } from '../../interactions/methods/webauthn.ts';
import { mongoUriForTest, STORES, describeOrSkip, tempDir } from '../helpers/env.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

const ISSUER = 'https://login.example.net';
const RP = { origin: ISSUER, rpId: 'login.example.net' };

function codes(results: PromiseSettledResult<unknown>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    const k = r.status === 'fulfilled' ? 'ok' : r.reason instanceof WebAuthnError ? r.reason.code : `unexpected: ${String(r.reason)}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: WebAuthnErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof WebAuthnError && err.code === code);
}

for (const store of STORES) {
  describeOrSkip(store.skip, `WebAuthn ceremonies on the ${store.kind} store, two instances`, () => {
    let a: Storage;
    let b: Storage;
    let clock = Date.now();
    let wa: WebAuthn;
    let wb: WebAuthn;

    before(async () => {
      const cfg = store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { mongodbUri: undefined, dataDir: tempDir('idp-webauthn-') };
      a = await openStorage(cfg);
      b = await openStorage(cfg);
      wa = new WebAuthn(a, { issuer: ISSUER, now: () => clock });
      wb = new WebAuthn(b, { issuer: ISSUER, now: () => clock });
    });
    after(async () => {
      await a?.close();
      await b?.close();
    });

    async function account(username: string) {
      return a.accounts.create({ id: crypto.randomUUID(), username, emailVerified: false, passwordHash: '$argon2id$fake' });
    }

    async function registered(username: string, opts: { synced?: boolean; counting?: boolean } = {}) {
      const acct = await account(username);
      const auth = new SoftAuthenticator({ ...RP, ...opts });
      const binding = `reg-${username}`;
      const options = await wa.registrationOptions({ binding, account: acct });
      // Registered through one instance, seen by the other.
      const factor = await wb.verifyRegistration({ binding, account: acct, response: auth.create(options), enrolledVia: 'self' });
      assert.equal((await a.factors.findByCredentialId(factor.webauthn!.credentialId))?.id, factor.id);
      return { acct, auth, factor };
    }

    it('registers and authenticates across instances, with the right amr', async () => {
      const { acct, auth } = await registered('ada');
      const options = await wa.authenticationOptions({ binding: 'i-ada', accountId: acct.id });
      const result = await wb.verifyAuthentication({ binding: 'i-ada', accountId: acct.id, response: auth.get(options) });
      assert.equal(result.accountId, acct.id);
      assert.deepEqual(result.amr, ['hwk', 'user']);
      const synced = await registered('ada-synced', { synced: true, counting: false });
      const o2 = await wb.authenticationOptions({ binding: 'i-ada-2' });
      assert.deepEqual((await wa.verifyAuthentication({ binding: 'i-ada-2', response: synced.auth.get(o2) })).amr, ['swk', 'user']);
    });

    it('100 parallel verifications of one response over two instances: exactly one succeeds', async () => {
      for (const counting of [true, false]) {
        const { acct, auth } = await registered(`bea-${counting}`, { counting, synced: !counting });
        const binding = `i-bea-${counting}`;
        const options = await wa.authenticationOptions({ binding, accountId: acct.id });
        const response = auth.get(options);
        const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => (i % 2 ? wa : wb).verifyAuthentication({ binding, response })));
        assert.deepEqual(codes(results), { ok: 1, challenge_reused: 99 }, `counting=${counting}`);
      }
    });

    it('100 fresh challenges answered with one counter value over two instances: the counter advances once', async () => {
      const { acct, auth, factor } = await registered('cy');
      const bindings = Array.from({ length: 100 }, (_, i) => `i-cy-${i}`);
      const responses = await Promise.all(bindings.map(async (binding) => auth.get(await wa.authenticationOptions({ binding, accountId: acct.id }), { counter: 7 })));
      const results = await Promise.allSettled(bindings.map((binding, i) => (i % 2 ? wa : wb).verifyAuthentication({ binding, response: responses[i] })));
      assert.deepEqual(codes(results), { ok: 1, counter_regression: 99 });
      assert.equal((await b.factors.find(acct.id, factor.id))?.counter, 7);
    });

    it('refuses a counter that does not grow (5, 5, 3), and stores 6', async () => {
      const { acct, auth, factor } = await registered('dee');
      const attempt = async (counter: number, w: WebAuthn) => {
        const options = await w.authenticationOptions({ binding: 'i-dee', accountId: acct.id });
        return w.verifyAuthentication({ binding: 'i-dee', response: auth.get(options, { counter }) });
      };
      await attempt(5, wa);
      await rejectsWith(attempt(5, wb), 'counter_regression');
      await rejectsWith(attempt(3, wa), 'counter_regression');
      assert.equal((await a.factors.find(acct.id, factor.id))?.counter, 5);
      await attempt(6, wb);
      const stored = await a.factors.find(acct.id, factor.id);
      assert.equal(stored?.counter, 6);
      assert.ok(stored?.lastUsedAt instanceof Date);
    });

    it('refuses the same response twice, an expired challenge, a wrong origin and a wrong RP ID', async () => {
      const { acct, auth } = await registered('eve');
      let options = await wa.authenticationOptions({ binding: 'i-eve', accountId: acct.id });
      const response = auth.get(options);
      await wa.verifyAuthentication({ binding: 'i-eve', response });
      await rejectsWith(wb.verifyAuthentication({ binding: 'i-eve', response }), 'challenge_reused');

      options = await wa.authenticationOptions({ binding: 'i-eve', accountId: acct.id });
      clock += 5 * 60_000 + 1;
      await rejectsWith(wb.verifyAuthentication({ binding: 'i-eve', response: auth.get(options) }), 'challenge_expired');

      options = await wa.authenticationOptions({ binding: 'i-eve', accountId: acct.id });
      await rejectsWith(wb.verifyAuthentication({ binding: 'i-eve', response: auth.get(options, { origin: 'https://login.example.net.evil.test' }) }), 'verification_failed');
      options = await wa.authenticationOptions({ binding: 'i-eve', accountId: acct.id });
      await rejectsWith(wb.verifyAuthentication({ binding: 'i-eve', response: auth.get(options, { rpId: 'evil.test' }) }), 'verification_failed');
    });

    it('refuses another account\'s passkey and a credential id registered twice', async () => {
      const fay = await registered('fay');
      const gus = await registered('gus');
      const options = await wa.authenticationOptions({ binding: 'i-fay', accountId: fay.acct.id });
      await rejectsWith(wb.verifyAuthentication({ binding: 'i-fay', response: gus.auth.get({ ...options, allowCredentials: [] }) }), 'wrong_account');

      const reg = await wa.registrationOptions({ binding: 'reg-gus-2', account: gus.acct });
      const forged = new SoftAuthenticator(RP).create(reg, { credentialId: fay.factor.webauthn!.credentialId });
      await rejectsWith(wb.verifyRegistration({ binding: 'reg-gus-2', account: gus.acct, response: forged, enrolledVia: 'self' }), 'already_registered');
      assert.equal((await a.factors.list(gus.acct.id)).length, 1);
    });

    it('keeps challenges in the store until they expire, then sweeps them', async () => {
      const acct = await account('hal');
      const options = await wa.authenticationOptions({ binding: 'i-hal', accountId: acct.id });
      const id = crypto.createHash('sha256').update(`authenticate\0i-hal\0${options.challenge}`).digest('base64url');
      const rec = await b.oidc.find(CHALLENGE_MODEL, id, clock);
      assert.equal(rec?.payload.challenge, options.challenge);
      assert.equal(rec?.payload.accountId, acct.id);
      assert.equal(await b.oidc.find(CHALLENGE_MODEL, id, clock + 5 * 60_000 + 1), undefined);
      assert.ok(await a.oidc.sweep(clock + 5 * 60_000 + 1) >= 1);
    });
  });
}

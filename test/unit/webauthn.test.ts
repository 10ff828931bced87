import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { WebAuthn, WebAuthnError, WEBAUTHN_ERRORS, webauthnAmr, type WebAuthnErrorCode } from '../../interactions/methods/webauthn.ts';
import { MemoryFactorStore, MemoryOidcStore } from '../helpers/memory-store.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

const ISSUER = 'https://id.example.com';
const ORIGIN = 'https://id.example.com';
const RP_ID = 'id.example.com';
const alice = { id: '6f1c2b1e-3d4a-4c8e-9a51-0b7e2f9d4c11', username: 'alice', name: 'Alice' };
const bob = { id: '0d9b7a52-8e1f-4f3c-a2b6-5c4d3e2f1a00', username: 'bob', name: undefined };

async function rejectsWith(p: Promise<unknown>, code: WebAuthnErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof WebAuthnError, `expected WebAuthnError(${code}), got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.message, WEBAUTHN_ERRORS[code]);
    return true;
  });
}

describe('WebAuthn ceremonies', () => {
  let factors: MemoryFactorStore;
  let oidc: MemoryOidcStore;
  let clock: number;
  let webauthn: WebAuthn;

  beforeEach(() => {
    factors = new MemoryFactorStore();
    oidc = new MemoryOidcStore();
    clock = Date.parse('2026-05-01T10:00:00Z');
    webauthn = new WebAuthn({ factors, oidc }, { issuer: ISSUER, rpName: 'Example ID', now: () => clock });
  });

  /** Registers a passkey for `account` on `auth`; returns the factor. */
  async function register(auth: SoftAuthenticator, account: typeof alice | typeof bob = alice, binding = 'uid-reg') {
    const options = await webauthn.registrationOptions({ binding, account });
    return webauthn.verifyRegistration({ binding, account, response: auth.create(options), enrolledVia: 'self' });
  }

  it('takes RP ID and origin from the issuer, never from a request', () => {
    const w = new WebAuthn({ factors, oidc }, { issuer: 'https://login.example.org:8443/tenant' });
    assert.equal(w.rpID, 'login.example.org');
    assert.equal(w.origin, 'https://login.example.org:8443');
    assert.equal(w.supported, true);
  });

  it('says when browsers cannot use passkeys with this issuer (an IP address, plain http beyond localhost)', () => {
    const supported = (issuer: string) => new WebAuthn({ factors, oidc }, { issuer }).supported;
    assert.equal(supported('http://localhost:3000'), true);
    assert.equal(supported('http://id.localhost:3000'), true);
    assert.equal(supported('http://127.0.0.1:3000'), false);
    assert.equal(supported('https://[::1]:3000'), false);
    assert.equal(supported('https://192.0.2.1'), false);
    assert.equal(supported('http://id.example.com'), false);
    assert.equal(new WebAuthn({ factors, oidc }, { issuer: 'https://[::1]:3000' }).rpID, '::1');
  });

  describe('registration', () => {
    it('offers discoverable, attestation-free options with an opaque user handle, and stores the passkey', async () => {
      const options = await webauthn.registrationOptions({ binding: 'uid-1', account: alice });
      assert.equal(options.rp.id, RP_ID);
      assert.equal(options.rp.name, 'Example ID');
      assert.equal(options.attestation, 'none');
      assert.equal(options.authenticatorSelection?.residentKey, 'preferred');
      assert.equal(options.authenticatorSelection?.userVerification, 'preferred');
      assert.equal(options.user.name, 'alice');
      // WebAuthn L3 §14.6.1: the user handle is the random account id, not the username or email.
      assert.equal(options.user.id, WebAuthn.userHandle(alice.id));
      assert.ok(!Buffer.from(options.user.id, 'base64url').toString().includes('alice'));
      assert.deepEqual(options.excludeCredentials, []);

      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const factor = await webauthn.verifyRegistration({ binding: 'uid-1', account: alice, response: auth.create(options), enrolledVia: 'login' });
      assert.equal(factor.kind, 'webauthn');
      assert.equal(factor.accountId, alice.id);
      assert.equal(factor.enrolledVia, 'login');
      assert.equal(factor.counter, 0);
      assert.equal(factor.webauthn?.credentialId, auth.credentials[0]!.id.toString('base64url'));
      assert.equal(factor.webauthn?.deviceType, 'singleDevice');
      assert.equal(factor.webauthn?.userVerified, true);
      assert.deepEqual(factor.webauthn?.transports, ['internal']);
      assert.match(factor.label, /^Passkey added 2026-05-01$/);
      assert.equal((await factors.list(alice.id)).length, 1);
    });

    it('records a synced passkey as multiDevice and backed up', async () => {
      const factor = await register(new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID, synced: true }));
      assert.equal(factor.webauthn?.deviceType, 'multiDevice');
      assert.equal(factor.webauthn?.backedUp, true);
    });

    it('excludes the account\'s existing passkeys from new options', async () => {
      const first = await register(new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID }));
      const options = await webauthn.registrationOptions({ binding: 'uid-2', account: alice });
      assert.deepEqual(options.excludeCredentials?.map((c) => c.id), [first.webauthn!.credentialId]);
    });

    it('refuses a credential id already registered, also to another account (WebAuthn L3 §7.1)', async () => {
      const first = await register(new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID }), alice);
      // An attacker's own key presented under alice's credential id, so that her later
      // assertions would be looked up as theirs.
      const options = await webauthn.registrationOptions({ binding: 'uid-2b', account: bob });
      const forged = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID }).create(options, { credentialId: first.webauthn!.credentialId });
      await rejectsWith(webauthn.verifyRegistration({ binding: 'uid-2b', account: bob, response: forged, enrolledVia: 'self' }), 'already_registered');
      assert.deepEqual(await factors.list(bob.id), []);
    });

    it('requires user verification when asked for the phishing-resistant level', async () => {
      const options = await webauthn.registrationOptions({ binding: 'uid-3', account: alice, userVerification: 'required' });
      assert.equal(options.authenticatorSelection?.userVerification, 'required');
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID, userVerifying: false });
      await rejectsWith(webauthn.verifyRegistration({ binding: 'uid-3', account: alice, response: auth.create(options), enrolledVia: 'self' }), 'not_allowed');
      assert.equal((await factors.list(alice.id)).length, 0);
    });

    it('refuses a wrong origin and a wrong RP ID', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      let options = await webauthn.registrationOptions({ binding: 'uid-4', account: alice });
      await rejectsWith(webauthn.verifyRegistration({ binding: 'uid-4', account: alice, response: auth.create(options, { origin: 'https://id.example.com.evil.test' }), enrolledVia: 'self' }), 'verification_failed');
      options = await webauthn.registrationOptions({ binding: 'uid-4', account: alice });
      await rejectsWith(webauthn.verifyRegistration({ binding: 'uid-4', account: alice, response: auth.create(options, { rpId: 'evil.test' }), enrolledVia: 'self' }), 'verification_failed');
      assert.equal((await factors.list(alice.id)).length, 0);
    });

    it('refuses a response to another account\'s options, a reused one and an expired one', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      let options = await webauthn.registrationOptions({ binding: 'uid-5', account: alice });
      await rejectsWith(webauthn.verifyRegistration({ binding: 'uid-5', account: bob, response: auth.create(options), enrolledVia: 'self' }), 'wrong_account');

      options = await webauthn.registrationOptions({ binding: 'uid-5', account: alice });
      const response = auth.create(options);
      await webauthn.verifyRegistration({ binding: 'uid-5', account: alice, response, enrolledVia: 'self' });
      await rejectsWith(webauthn.verifyRegistration({ binding: 'uid-5', account: alice, response, enrolledVia: 'self' }), 'challenge_reused');

      options = await webauthn.registrationOptions({ binding: 'uid-5', account: alice });
      clock += 5 * 60_000 + 1;
      await rejectsWith(webauthn.verifyRegistration({ binding: 'uid-5', account: alice, response: auth.create(options), enrolledVia: 'self' }), 'challenge_expired');
      assert.equal((await factors.list(alice.id)).length, 1);
    });
  });

  describe('authentication', () => {
    it('a device-bound key with user verification: hwk + user, multi-factor, phishing-resistant', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const factor = await register(auth);
      const options = await webauthn.authenticationOptions({ binding: 'uid-a', accountId: alice.id });
      assert.equal(options.rpId, RP_ID);
      assert.deepEqual(options.allowCredentials?.map((c) => c.id), [factor.webauthn!.credentialId]);
      const clockAt = clock;
      const result = await webauthn.verifyAuthentication({ binding: 'uid-a', accountId: alice.id, response: auth.get(options) });
      assert.equal(result.accountId, alice.id);
      assert.deepEqual(result.amr, ['hwk', 'user']);
      assert.deepEqual(result.method, { id: 'webauthn', amr: ['hwk', 'user'], factor: 'possession' });
      assert.equal(result.multiFactor, true);
      assert.equal(result.phishingResistant, true);
      const stored = await factors.find(alice.id, factor.id);
      assert.equal(stored?.counter, 1);
      assert.equal(stored?.lastUsedAt?.getTime(), clockAt);
    });

    it('a synced passkey without user verification: swk only, single factor', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID, synced: true, counting: false, userVerifying: false });
      await register(auth);
      const options = await webauthn.authenticationOptions({ binding: 'uid-b', accountId: alice.id });
      const result = await webauthn.verifyAuthentication({ binding: 'uid-b', response: auth.get(options) });
      assert.deepEqual(result.amr, ['swk']);
      assert.equal(result.multiFactor, false);
      assert.deepEqual(webauthnAmr({ deviceType: 'multiDevice', userVerified: true }), ['swk', 'user']);
    });

    it('signs in without a username (discoverable credential): the account comes from the passkey', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth, bob);
      const options = await webauthn.authenticationOptions({ binding: 'uid-c' });
      assert.deepEqual(options.allowCredentials ?? [], []);
      const result = await webauthn.verifyAuthentication({ binding: 'uid-c', response: auth.get(options) });
      assert.equal(result.accountId, bob.id);
    });

    it('refuses a counter that does not grow (5, then 5 again, then 3), and accepts 6', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const factor = await register(auth);
      const attempt = async (counter: number) => {
        const options = await webauthn.authenticationOptions({ binding: 'uid-d', accountId: alice.id });
        return webauthn.verifyAuthentication({ binding: 'uid-d', accountId: alice.id, response: auth.get(options, { counter }) });
      };
      await attempt(5);
      await rejectsWith(attempt(5), 'counter_regression');
      await rejectsWith(attempt(3), 'counter_regression');
      assert.equal((await factors.find(alice.id, factor.id))?.counter, 5);
      await attempt(6);
      assert.equal((await factors.find(alice.id, factor.id))?.counter, 6);
      // An authenticator that drops back to 0 after counting is a clone or a reset: refused.
      await rejectsWith(attempt(0), 'counter_regression');
    });

    it('accepts a counterless passkey (0 then 0) and stamps its use', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID, synced: true, counting: false });
      const factor = await register(auth);
      for (let i = 0; i < 2; i += 1) {
        clock += 1000;
        const options = await webauthn.authenticationOptions({ binding: 'uid-e', accountId: alice.id });
        await webauthn.verifyAuthentication({ binding: 'uid-e', response: auth.get(options) });
        const stored = await factors.find(alice.id, factor.id);
        assert.equal(stored?.counter, 0);
        assert.equal(stored?.lastUsedAt?.getTime(), clock);
      }
    });

    it('refuses the same response verified twice', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      const options = await webauthn.authenticationOptions({ binding: 'uid-f', accountId: alice.id });
      const response = auth.get(options);
      await webauthn.verifyAuthentication({ binding: 'uid-f', response });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-f', response }), 'challenge_reused');
    });

    it('20 parallel verifications of one response: exactly one succeeds', async () => {
      for (const counting of [true, false]) {
        const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID, counting, synced: !counting });
        const account = counting ? alice : bob;
        await register(auth, account);
        const options = await webauthn.authenticationOptions({ binding: `uid-g-${counting}`, accountId: account.id });
        const response = auth.get(options);
        const results = await Promise.allSettled(Array.from({ length: 20 }, () => webauthn.verifyAuthentication({ binding: `uid-g-${counting}`, response })));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `counting=${counting}`);
        for (const r of results) {
          if (r.status === 'rejected') assert.equal((r.reason as WebAuthnError).code, 'challenge_reused');
        }
      }
    });

    it('two fresh challenges answered with one counter value: the compare-and-set lets one through', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      const [o1, o2] = await Promise.all([
        webauthn.authenticationOptions({ binding: 'uid-h1', accountId: alice.id }),
        webauthn.authenticationOptions({ binding: 'uid-h2', accountId: alice.id }),
      ]);
      const results = await Promise.allSettled([
        webauthn.verifyAuthentication({ binding: 'uid-h1', response: auth.get(o1, { counter: 9 }) }),
        webauthn.verifyAuthentication({ binding: 'uid-h2', response: auth.get(o2, { counter: 9 }) }),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const failed = results.find((r) => r.status === 'rejected');
      assert.equal((failed?.reason as WebAuthnError).code, 'counter_regression');
    });

    it('refuses a wrong origin and a wrong RP ID', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const factor = await register(auth);
      for (const over of [{ origin: 'https://evil.test' }, { origin: 'http://id.example.com' }, { rpId: 'evil.test' }, { rpId: 'example.com' }]) {
        const options = await webauthn.authenticationOptions({ binding: 'uid-i', accountId: alice.id });
        await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-i', response: auth.get(options, over) }), 'verification_failed');
      }
      // Refused before the counter was touched.
      assert.equal((await factors.find(alice.id, factor.id))?.counter, 0);
    });

    it('refuses an assertion without user verification when it is required, from the options or from the caller', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      let options = await webauthn.authenticationOptions({ binding: 'uid-j', accountId: alice.id, userVerification: 'required' });
      assert.equal(options.userVerification, 'required');
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-j', response: auth.get(options, { uv: false }) }), 'not_allowed');
      options = await webauthn.authenticationOptions({ binding: 'uid-j', accountId: alice.id });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-j', response: auth.get(options, { uv: false }), requireUserVerification: true }), 'not_allowed');
      options = await webauthn.authenticationOptions({ binding: 'uid-j', accountId: alice.id, userVerification: 'required' });
      assert.deepEqual((await webauthn.verifyAuthentication({ binding: 'uid-j', response: auth.get(options) })).amr, ['hwk', 'user']);
    });

    it('refuses user presence missing', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      const options = await webauthn.authenticationOptions({ binding: 'uid-k', accountId: alice.id });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-k', response: auth.get(options, { up: false }) }), 'verification_failed');
    });

    it('refuses a passkey of another account', async () => {
      const aliceKey = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const bobKey = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(aliceKey, alice);
      await register(bobKey, bob);
      // Options for alice; bob's authenticator answers (allowCredentials ignored, as a malicious client would).
      const options = await webauthn.authenticationOptions({ binding: 'uid-l', accountId: alice.id });
      const bobsAnswer = bobKey.get({ ...options, allowCredentials: [] });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-l', response: bobsAnswer }), 'wrong_account');
      // Username-less options, but the caller expects alice (e.g. a step-up of her session).
      const open = await webauthn.authenticationOptions({ binding: 'uid-m' });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-m', accountId: alice.id, response: bobKey.get(open) }), 'wrong_account');
    });

    it('refuses a user handle that does not name the passkey\'s owner', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      const options = await webauthn.authenticationOptions({ binding: 'uid-n' });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-n', response: auth.get(options, { userHandle: WebAuthn.userHandle(bob.id) }) }), 'wrong_account');
      const again = await webauthn.authenticationOptions({ binding: 'uid-n' });
      // No user handle at all (a non-discoverable key) is fine.
      assert.equal((await webauthn.verifyAuthentication({ binding: 'uid-n', response: auth.get(again, { userHandle: null }) })).accountId, alice.id);
    });

    it('refuses an unknown credential', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const factor = await register(auth);
      await factors.remove(alice.id, factor.id);
      const options = await webauthn.authenticationOptions({ binding: 'uid-o' });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-o', response: auth.get(options) }), 'unknown_credential');
    });

    it('refuses an expired challenge, one of another interaction, one of another ceremony, and one never issued', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      let options = await webauthn.authenticationOptions({ binding: 'uid-p', accountId: alice.id });
      clock += 5 * 60_000 + 1;
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-p', response: auth.get(options) }), 'challenge_expired');

      options = await webauthn.authenticationOptions({ binding: 'uid-p', accountId: alice.id });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-other', response: auth.get(options) }), 'challenge_expired');

      const reg = await webauthn.registrationOptions({ binding: 'uid-p', account: alice });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-p', response: auth.get(options, { challenge: reg.challenge }) }), 'challenge_expired');

      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-p', response: auth.get(options, { challenge: Buffer.alloc(32, 7).toString('base64url') }) }), 'challenge_expired');
      // Within its lifetime it still works (none of the above consumed it).
      clock += 4 * 60_000;
      assert.equal((await webauthn.verifyAuthentication({ binding: 'uid-p', response: auth.get(options) })).accountId, alice.id);
    });

    it('refuses a forged signature and a registration response in place of an assertion', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      let options = await webauthn.authenticationOptions({ binding: 'uid-q', accountId: alice.id });
      const good = auth.get(options);
      const sig = Buffer.from(good.response.signature, 'base64url');
      sig[sig.length - 1]! ^= 1;
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-q', response: { ...good, response: { ...good.response, signature: sig.toString('base64url') } } }), 'verification_failed');
      options = await webauthn.authenticationOptions({ binding: 'uid-q', accountId: alice.id });
      await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-q', response: auth.get(options, { type: 'webauthn.create' }) }), 'verification_failed');
    });

    it('answers malformed input with verification_failed, never another error', async () => {
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      await register(auth);
      const options = await webauthn.authenticationOptions({ binding: 'uid-r', accountId: alice.id });
      const good = auth.get(options);
      const bad: unknown[] = [
        undefined, null, 'a string', 42, [], {}, { ...good, type: 'password' }, { ...good, rawId: 'other' }, { ...good, id: 'not base64url!' },
        { ...good, id: 'A'.repeat(5000), rawId: 'A'.repeat(5000) }, { ...good, response: null },
        { ...good, response: { ...good.response, clientDataJSON: 'bm90IGpzb24' } },
        { ...good, response: { ...good.response, clientDataJSON: Buffer.from('{"challenge":1}').toString('base64url') } },
        { ...good, response: { ...good.response, authenticatorData: 12 } },
        { ...good, response: { ...good.response, signature: undefined } },
        { ...good, response: { ...good.response, authenticatorData: 'AAAA' } },
      ];
      for (const response of bad) {
        await rejectsWith(webauthn.verifyAuthentication({ binding: 'uid-r', response }), 'verification_failed');
      }
    });

    it('never shows library internals to users; logs them at debug, and a counter regression at warn', async () => {
      const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
      const log = { debug: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields }), info() {}, warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields }), error() {} };
      const w = new WebAuthn({ factors, oidc }, { issuer: ISSUER, now: () => clock, log });
      const auth = new SoftAuthenticator({ origin: ORIGIN, rpId: RP_ID });
      const opts = await w.registrationOptions({ binding: 'uid-s', account: alice });
      await w.verifyRegistration({ binding: 'uid-s', account: alice, response: auth.create(opts), enrolledVia: 'self' });
      const options = await w.authenticationOptions({ binding: 'uid-s', accountId: alice.id });
      const err = await w.verifyAuthentication({ binding: 'uid-s', response: auth.get(options, { origin: 'https://evil.test' }) }).catch((e: unknown) => e as WebAuthnError);
      assert.ok(err instanceof WebAuthnError);
      assert.doesNotMatch(err.message, /evil|origin|challenge|expected/i);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.msg, 'webauthn assertion refused');
      assert.match(String(lines[0]!.fields?.detail), /origin/);

      const ok = await w.authenticationOptions({ binding: 'uid-s', accountId: alice.id });
      await w.verifyAuthentication({ binding: 'uid-s', response: auth.get(ok, { counter: 3 }) });
      const again = await w.authenticationOptions({ binding: 'uid-s', accountId: alice.id });
      await w.verifyAuthentication({ binding: 'uid-s', response: auth.get(again, { counter: 3 }) }).catch(() => undefined);
      assert.equal(lines.at(-1)!.msg, 'webauthn counter regression: possible cloned authenticator');
      assert.doesNotMatch(JSON.stringify(lines), /publicKey|privateKey|signature"/);
    });
  });
});

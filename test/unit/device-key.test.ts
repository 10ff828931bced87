/**
 * Device-key proofs (interactions/device-key.ts) against the real stores: the browser's side
 * is played by Node's WebCrypto exactly as assets/device-key.js does it (a non-extractable
 * P-256 key, ECDSA SHA-256 signatures in IEEE P1363 form, the public JWK's four members).
 * A proof is accepted once, for its own interaction, before its nonce expires, with a
 * signature of the key it names; everything else is refused with a reason, never thrown.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, it } from 'node:test';
import { calculateJwkThumbprint } from 'jose';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import { deviceProofMessage, DeviceKeys, MAX_PROOF_CHARS } from '../../interactions/device-key.ts';
import { describeOrSkip, mongoUriForTest, STORES, tempDir } from '../helpers/env.ts';

const ISSUER = 'https://idp.example.com';
const subtle = globalThis.crypto.subtle;

interface BrowserKey {
  pair: crypto.webcrypto.CryptoKeyPair;
  jwk: { kty: string; crv: string; x: string; y: string };
}

/** What the page's script makes on a first visit. */
async function browserKey(curve: 'P-256' | 'P-384' = 'P-256'): Promise<BrowserKey> {
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, false, ['sign', 'verify']) as crypto.webcrypto.CryptoKeyPair;
  const full = await subtle.exportKey('jwk', pair.publicKey);
  return { pair, jwk: { kty: full.kty!, crv: full.crv!, x: full.x!, y: full.y! } };
}

/** What the page's script posts: the message signed for `uid` and `nonce` (or another message). */
async function proofOf(key: BrowserKey, uid: string, nonce: string, message = deviceProofMessage(ISSUER, uid, nonce)): Promise<string> {
  const hash = key.jwk.crv === 'P-384' ? 'SHA-384' : 'SHA-256';
  const sig = await subtle.sign({ name: 'ECDSA', hash }, key.pair.privateKey, new TextEncoder().encode(message));
  return JSON.stringify({ nonce, jwk: key.jwk, sig: Buffer.from(sig).toString('base64url') });
}

const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const uidOf = () => crypto.randomBytes(16).toString('base64url');

for (const store of STORES) {
  describeOrSkip(store.skip, `device-key proofs (${store.kind} store)`, () => {
    let s: Storage;
    let now = Date.parse('2030-01-01T00:00:00Z');
    let keys: DeviceKeys;
    let alice: BrowserKey;
    before(async () => {
      s = await openStorage(store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { mongodbUri: undefined, dataDir: tempDir('idp-devkey-') });
      keys = new DeviceKeys(s.oidc, ISSUER, crypto.randomBytes(32), () => now);
      alice = await browserKey();
    });
    after(() => s?.close());

    it('accepts a proof of a fresh nonce once and names the key by its RFC 7638 thumbprint', async () => {
      const uid = uidOf();
      const { nonce, message } = await keys.issue(uid);
      assert.equal(Buffer.from(nonce, 'base64url').length, 32, '256-bit nonce');
      assert.equal(message, `adaptive-idp device-proof v1\n${ISSUER}\n${uid}\n${nonce}`);
      const result = await keys.verify(uid, await proofOf(alice, uid, nonce));
      assert.deepEqual(result, { ok: true, thumbprint: await calculateJwkThumbprint(alice.jwk, 'sha256') });
      assert.match(result.ok ? result.thumbprint : '', /^[A-Za-z0-9_-]{43}$/);
    });

    it('refuses the same proof a second time (replay), and a second signature of a spent nonce', async () => {
      const uid = uidOf();
      const { nonce } = await keys.issue(uid);
      const proof = await proofOf(alice, uid, nonce);
      assert.equal((await keys.verify(uid, proof)).ok, true);
      assert.deepEqual(await keys.verify(uid, proof), { ok: false, reason: 'replayed', thumbprint: await calculateJwkThumbprint(alice.jwk) });
      // ECDSA signatures are randomised: a new signature of the same nonce is no better.
      const again = await proofOf(alice, uid, nonce);
      assert.notEqual(again, proof);
      assert.equal((await keys.verify(uid, again)).ok, false);
    });

    it('accepts exactly one of 100 parallel uses of one proof', async () => {
      const uid = uidOf();
      const { nonce } = await keys.issue(uid);
      const proof = await proofOf(alice, uid, nonce);
      const results = await Promise.all(Array.from({ length: 100 }, () => keys.verify(uid, proof)));
      assert.equal(results.filter((r) => r.ok).length, 1);
      assert.ok(results.every((r) => r.ok || r.reason === 'replayed'));
    });

    it('refuses a nonce the server never issued: made up, another key\'s, or one with its expiry moved', async () => {
      const uid = uidOf();
      const { nonce } = await keys.issue(uid);
      const made = crypto.randomBytes(32).toString('base64url');
      assert.equal((await keys.verify(uid, await proofOf(alice, uid, made))).ok === false, true);
      // Well formed for this interaction (its tag), but under another server's key.
      const other = await new DeviceKeys(s.oidc, ISSUER, crypto.randomBytes(32), () => now).issue(uid);
      assert.deepEqual(await keys.verify(uid, await proofOf(alice, uid, other.nonce)), { ok: false, reason: 'unknown_nonce', thumbprint: await calculateJwkThumbprint(alice.jwk) });
      // Its own nonce with a later expiry written in: the MAC no longer matches.
      const bytes = Buffer.from(nonce, 'base64url');
      bytes.writeUInt32BE(bytes.readUInt32BE(0) + 3600, 0);
      assert.deepEqual(await keys.verify(uid, await proofOf(alice, uid, bytes.toString('base64url'))), { ok: false, reason: 'unknown_nonce', thumbprint: await calculateJwkThumbprint(alice.jwk) });
      assert.equal((await keys.verify(uid, await proofOf(alice, uid, nonce))).ok, true, 'the real one still works');
    });

    it('writes nothing to the store to issue a nonce', async () => {
      const uid = uidOf();
      const before = [...s.stats.ops.values()].reduce((a, b) => a + b, 0);
      for (let i = 0; i < 50; i += 1) await keys.issue(uid);
      assert.equal([...s.stats.ops.values()].reduce((a, b) => a + b, 0), before);
    });

    it("refuses another interaction's nonce, and leaves it usable by its own page", async () => {
      const mine = uidOf();
      const theirs = uidOf();
      await keys.issue(mine);
      const { nonce } = await keys.issue(theirs);
      // Signed for the right message of the wrong interaction, and for this one's message.
      assert.deepEqual(await keys.verify(mine, await proofOf(alice, theirs, nonce)), { ok: false, reason: 'wrong_interaction', thumbprint: await calculateJwkThumbprint(alice.jwk) });
      assert.equal((await keys.verify(mine, await proofOf(alice, mine, nonce))).ok, false);
      assert.equal((await keys.verify(theirs, await proofOf(alice, theirs, nonce))).ok, true, 'not burned by the other interaction');
    });

    it('refuses an expired nonce: after 10 minutes, or once the interaction has expired', async () => {
      const uid = uidOf();
      const { nonce } = await keys.issue(uid);
      const proof = await proofOf(alice, uid, nonce);
      now += 10 * 60_000;
      assert.deepEqual(await keys.verify(uid, proof), { ok: false, reason: 'unknown_nonce', thumbprint: await calculateJwkThumbprint(alice.jwk) });

      const short = await keys.issue(uid, now + 30_000);
      const shortProof = await proofOf(alice, uid, short.nonce);
      now += 30_000;
      assert.deepEqual(await keys.verify(uid, shortProof), { ok: false, reason: 'unknown_nonce', thumbprint: await calculateJwkThumbprint(alice.jwk) },
        'the nonce lives no longer than its interaction');
      const edge = await keys.issue(uid, now + 30_000);
      now += 29_000;
      assert.equal((await keys.verify(uid, await proofOf(alice, uid, edge.nonce))).ok, true, 'within the interaction');
    });

    it('refuses a signature of another message, and burns the nonce with it', async () => {
      const uid = uidOf();
      const { nonce } = await keys.issue(uid);
      for (const message of [deviceProofMessage('https://evil.example', uid, nonce), `adaptive-idp device-proof v2\n${ISSUER}\n${uid}\n${nonce}`]) {
        const { nonce: n } = await keys.issue(uid);
        const bad = await proofOf(alice, uid, n, message.replace(nonce, n));
        assert.equal((await keys.verify(uid, bad)).ok === false && 'bad_signature', 'bad_signature', message);
      }
      const wrong = await proofOf(alice, uid, nonce, deviceProofMessage(ISSUER, uidOf(), nonce));
      assert.deepEqual(await keys.verify(uid, wrong), { ok: false, reason: 'bad_signature', thumbprint: await calculateJwkThumbprint(alice.jwk) });
      assert.deepEqual(await keys.verify(uid, await proofOf(alice, uid, nonce)), { ok: false, reason: 'replayed', thumbprint: await calculateJwkThumbprint(alice.jwk) },
        'a failed proof spends the nonce: no second try');
    });

    it("refuses a swapped key: another key's JWK with the first key's signature", async () => {
      const uid = uidOf();
      const { nonce } = await keys.issue(uid);
      const mallory = await browserKey();
      const signed = JSON.parse(await proofOf(alice, uid, nonce)) as { jwk: unknown };
      const swapped = JSON.stringify({ ...signed, jwk: mallory.jwk });
      assert.deepEqual(await keys.verify(uid, swapped), { ok: false, reason: 'bad_signature', thumbprint: await calculateJwkThumbprint(mallory.jwk) });
    });

    it('refuses another curve and every malformed proof as malformed, without touching the nonce', async () => {
      const uid = uidOf();
      const { nonce } = await keys.issue(uid);
      const good = JSON.parse(await proofOf(alice, uid, nonce)) as { nonce: string; jwk: Record<string, string>; sig: string };
      const p384 = await browserKey('P-384');
      const der = crypto.sign('sha256', Buffer.from(deviceProofMessage(ISSUER, uid, nonce)), crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
      const y = Buffer.from(good.jwk.y!, 'base64url');
      y[31]! ^= 1;
      const offCurve = { ...good.jwk, y: y.toString('base64url') };
      const cases: [string, string][] = [
        ['not JSON', '{"nonce":'],
        ['JSON but not an object', '"proof"'],
        ['oversized', JSON.stringify(good) + ' '.repeat(MAX_PROOF_CHARS)],
        ['P-384 key', await proofOf(p384, uid, nonce)],
        ['RSA key', JSON.stringify({ ...good, jwk: { kty: 'RSA', n: good.jwk.x, e: 'AQAB' } })],
        ['extra member in the JWK (a private d)', JSON.stringify({ ...good, jwk: { ...good.jwk, d: good.jwk.x } })],
        ['extra member in the proof', JSON.stringify({ ...good, alg: 'none' })],
        ['missing signature', JSON.stringify({ nonce: good.nonce, jwk: good.jwk })],
        ['31-byte x', JSON.stringify({ ...good, jwk: { ...good.jwk, x: good.jwk.x!.slice(0, 42) } })],
        ['padded base64', JSON.stringify({ ...good, sig: `${good.sig}==` })],
        ['base64 alphabet (+)', JSON.stringify({ ...good, sig: `${good.sig.slice(0, -1)}+` })],
        ['non-canonical base64url (trailing bits set)', JSON.stringify({ ...good, sig: good.sig.slice(0, -1) + B64U[B64U.indexOf(good.sig.at(-1)!) | 1] })],
        ['DER signature', JSON.stringify({ ...good, sig: der.toString('base64url') })],
        ['point not on the curve', JSON.stringify({ ...good, jwk: offCurve })],
        ['nonce of another length', JSON.stringify({ ...good, nonce: good.nonce.slice(1) })],
      ];
      for (const [what, raw] of cases) {
        const r = await keys.verify(uid, raw);
        assert.equal(r.ok === false && r.reason, 'malformed', what);
      }
      assert.equal((await keys.verify(uid, JSON.stringify(good))).ok, true, 'the nonce is still unspent');
    });

    it('says "absent" for a form without a proof (no script, no WebCrypto)', async () => {
      assert.deepEqual(await keys.verify(uidOf(), undefined), { ok: false, reason: 'absent' });
      assert.deepEqual(await keys.verify(uidOf(), ''), { ok: false, reason: 'absent' });
    });
  });
}

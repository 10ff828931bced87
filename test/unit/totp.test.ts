/**
 * TOTP primitives (interactions/methods/totp.ts): RFC 6238 vectors, the ±1 step window,
 * malformed codes, the enrolment URI and QR code, the seed encrypted at rest, and a code
 * accepted once, also under 20 parallel submissions on a real store (embedded; MongoDB when
 * MONGODB_URI is set).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSync } from 'otplib';
import { SecretBox } from '../../adapters/crypto.ts';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import {
  decryptSeed, matchStep, newTotpFactor, newTotpSecret, otpauthUri, qrSvg, totpIssuerName, totpMethod, verifyTotp,
} from '../../interactions/methods/totp.ts';
import { describeOrSkip, mongoUriForTest, STORES, tempDir } from '../helpers/env.ts';

/** RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890" (here in base32, RFC 4648 §6). */
const RFC_SEED = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
/** The code of a step, as an authenticator app computes it. */
const codeAt = (secret: string, step: number) => generateSync({ secret, epoch: step * 30 });
const box = () => new SecretBox(crypto.randomBytes(32).toString('base64url'));

describe('TOTP codes (RFC 6238)', () => {
  it('declares amr otp, a possession factor (RFC 8176)', () => {
    assert.deepEqual(totpMethod, { id: 'totp', amr: ['otp'], factor: 'possession' });
  });

  it('matches the RFC 6238 Appendix B SHA-1 vectors (last 6 of the 8 digits) to their time step', () => {
    const vectors: [number, string][] = [
      [59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'], [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130'],
    ];
    for (const [t, eight] of vectors) {
      assert.equal(matchStep(RFC_SEED, eight.slice(-6), t * 1000), Math.floor(t / 30), `T=${t}`);
    }
    assert.equal(codeAt(RFC_SEED, 1), '287082');
  });

  it('accepts the steps one either side of now and refuses two away', () => {
    const secret = newTotpSecret();
    const step = 58_000_000;
    const now = step * 30_000 + 12_345;
    for (const d of [-1, 0, 1]) assert.equal(matchStep(secret, codeAt(secret, step + d), now), step + d, `step ${d}`);
    for (const d of [-2, 2, 5]) assert.equal(matchStep(secret, codeAt(secret, step + d), now), undefined, `step ${d}`);
    // The window follows the clock: at the very start of a step the previous one is still good.
    assert.equal(matchStep(secret, codeAt(secret, step - 1), step * 30_000), step - 1);
  });

  it('refuses malformed codes and forgives spaces and full-width digits', () => {
    const secret = newTotpSecret();
    const now = 1_750_000_000_000;
    const code = codeAt(secret, Math.floor(now / 30_000));
    const step = Math.floor(now / 30_000);
    assert.equal(matchStep(secret, `${code.slice(0, 3)} ${code.slice(3)}`, now), step);
    assert.equal(matchStep(secret, ` ${code}\n`, now), step);
    const fullWidth = [...code].map((c) => String.fromCodePoint(0xff10 + Number(c))).join('');
    assert.equal(matchStep(secret, fullWidth, now), step);
    for (const bad of ['', code.slice(0, 5), `${code}0`, `0${code}`, 'abcdef', `${code.slice(0, 5)}x`, '-12345', '１２３', '٣'.repeat(6), '1e5000']) {
      assert.equal(matchStep(secret, bad, now), undefined, JSON.stringify(bad));
    }
    // A malformed or too short seed is no match, never an exception.
    assert.equal(matchStep('not base32!', code, now), undefined);
    assert.equal(matchStep('JBSWY3DPEHPK3PXP', '123456', now), undefined);
  });

  it('makes 160-bit base32 seeds, all different', () => {
    const a = newTotpSecret();
    assert.match(a, /^[A-Z2-7]{32}$/);
    assert.notEqual(a, newTotpSecret());
  });
});

describe('TOTP enrolment URI and QR code', () => {
  it('follows the Key Uri Format: issuer prefix and parameter, SHA1, 6 digits, 30 s', () => {
    const secret = newTotpSecret();
    const uri = otpauthUri(secret, { issuer: 'id.example.com', account: 'alice@example.com' });
    const u = new URL(uri);
    assert.equal(u.protocol, 'otpauth:');
    assert.equal(u.host, 'totp');
    assert.equal(decodeURIComponent(u.pathname), '/id.example.com:alice@example.com');
    assert.deepEqual(Object.fromEntries(u.searchParams), { secret, issuer: 'id.example.com', algorithm: 'SHA1', digits: '6', period: '30' });
    assert.equal(uri.split('\n').length, 1);
  });

  it('encodes spaces and other characters, and never lets a colon split the label', () => {
    const uri = otpauthUri('ABC', { issuer: 'My IdP: staging', account: 'bob+x@example.com' });
    const u = new URL(uri);
    const label = u.pathname.slice(1);
    assert.equal(label.split(':').length, 2, label);
    assert.equal(u.searchParams.get('issuer'), 'My IdP  staging');
    assert.equal(decodeURIComponent(label.split(':')[1]!), 'bob+x@example.com');
    assert.doesNotMatch(uri, / /);
  });

  it("names the issuer by the issuer URL's host", () => {
    assert.equal(totpIssuerName('https://login.example.com:8443/tenant'), 'login.example.com');
  });

  it('renders the URI as an inline SVG QR code, with no external reference', async () => {
    const svg = await qrSvg(otpauthUri(newTotpSecret(), { issuer: 'localhost', account: 'alice' }));
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<path /);
    assert.doesNotMatch(svg, /<image|href=|<script/i);
  });
});

describe('TOTP seed at rest', () => {
  it('stores the seed only encrypted, bound to its account and factor', () => {
    const b = box();
    const { factor, secret } = newTotpFactor(b, { id: 'f1', accountId: 'a1', label: 'Phone', enrolledVia: 'admin' });
    assert.ok(!JSON.stringify(factor).includes(secret), 'the seed is not in the record');
    assert.equal(decryptSeed(b, factor), secret);
    // Pasted onto another account's or another factor's record, it does not open.
    assert.throws(() => decryptSeed(b, { ...factor, accountId: 'a2' }), (err: Error) => /cannot be decrypted/.test(err.message) && !err.message.includes(secret));
    assert.throws(() => decryptSeed(b, { ...factor, id: 'f2' }), /cannot be decrypted/);
    assert.throws(() => decryptSeed(box(), factor), /cannot be decrypted/, 'another data key');
  });
});

for (const store of STORES) {
  describeOrSkip(store.skip, `verifyTotp on a real store (${store.kind})`, () => {
    let s: Storage;
    let dataDir = '';
    const b = box();
    before(async () => {
      dataDir = tempDir('idp-totp-');
      s = await openStorage(store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { mongodbUri: undefined, dataDir });
    });
    after(() => s?.close());

    const enrol = async () => {
      const { factor, secret } = newTotpFactor(b, { id: crypto.randomUUID(), accountId: crypto.randomUUID(), label: 'Phone', enrolledVia: 'admin' });
      return { factor: await s.factors.add(factor), secret };
    };
    const now = 1_800_000_000_000;
    const step = Math.floor(now / 30_000);

    it('accepts a right code once; refuses it again, and any code of the same or an earlier step', async () => {
      const { factor, secret } = await enrol();
      const wrong = String((Number(codeAt(secret, step)) + 1) % 1_000_000).padStart(6, '0');
      if (![-1, 1].some((d) => codeAt(secret, step + d) === wrong)) assert.equal(await verifyTotp(s.factors, b, factor, wrong, now), 'invalid');
      assert.equal(await verifyTotp(s.factors, b, factor, codeAt(secret, step), now), 'ok');
      const after1 = (await s.factors.find(factor.accountId, factor.id))!;
      assert.equal(after1.counter, step);
      assert.deepEqual(after1.lastUsedAt, new Date(now));
      // The record the caller holds may be stale: the store still refuses.
      assert.equal(await verifyTotp(s.factors, b, factor, codeAt(secret, step), now + 5_000), 'replayed');
      assert.equal(await verifyTotp(s.factors, b, after1, codeAt(secret, step - 1), now + 5_000), 'replayed');
      // The next step's code is new.
      assert.equal(await verifyTotp(s.factors, b, after1, codeAt(secret, step + 1), now + 30_000), 'ok');
      assert.equal(await verifyTotp(s.factors, b, factor, 'abcdef', now), 'invalid');
    });

    it('lets exactly one of 20 parallel submissions of one code through', async () => {
      const { factor, secret } = await enrol();
      const code = codeAt(secret, step);
      const r = await Promise.all(Array.from({ length: 20 }, () => verifyTotp(s.factors, b, factor, code, now)));
      assert.equal(r.filter((x) => x === 'ok').length, 1, r.join(' '));
      assert.equal(r.filter((x) => x === 'replayed').length, 19);
    });

    it('refuses a factor that is not TOTP', async () => {
      const { factor } = await enrol();
      assert.equal(await verifyTotp(s.factors, b, { ...factor, kind: 'recovery', totp: undefined }, '123456', now), 'invalid');
    });

    if (store.kind === 'embedded') {
      it('never writes the seed in the clear to the database files', async () => {
        const { secret } = await enrol();
        const files = fs.readdirSync(dataDir).map((f) => fs.readFileSync(path.join(dataDir, f)));
        assert.ok(files.length > 0);
        for (const bytes of files) assert.equal(bytes.includes(secret), false);
      });
    }
  });
}

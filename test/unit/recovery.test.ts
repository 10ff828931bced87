/**
 * Recovery codes (interactions/methods/recovery.ts): format and strength, the keyed hash and
 * its forgiving normalisation, and single use on a real store (embedded; MongoDB when
 * MONGODB_URI is set), also under parallel submissions of one code.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { deriveKey } from '../../adapters/keys.ts';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import {
  hashRecoveryCode, isRecoveryCodeShape, newRecoveryCodes, newRecoveryFactor, normaliseRecoveryCode, recoveryMethod, replaceRecoveryCodes, useRecoveryCode,
} from '../../interactions/methods/recovery.ts';
import { describeOrSkip, mongoUriForTest, STORES, tempDir } from '../helpers/env.ts';

const key = deriveKey(crypto.randomBytes(32).toString('base64url'), 'recovery');
const CODE = /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){5}$/;

describe('recovery codes', () => {
  it('declares amr otp, a possession factor', () => {
    assert.deepEqual(recoveryMethod, { id: 'recovery', amr: ['otp'], factor: 'possession' });
  });

  it('issues 10 different codes of 24 Crockford base32 characters (120 bits), grouped by four', () => {
    const codes = newRecoveryCodes();
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, CODE);
    // Every symbol of the 32 is used (5 bits each), none of the confusable letters.
    const seen = new Set(Array.from({ length: 40 }, () => newRecoveryCodes()).flat().join('').replaceAll('-', ''));
    assert.equal(seen.size, 32);
    for (const c of 'ilou') assert.ok(!seen.has(c), c);
  });

  it('hashes with the key, ignoring case, spaces and dashes, reading o as 0 and i/l as 1', () => {
    const code = '0k1m-q9xd-7t2a-b3c4-d5e6-f8g9';
    const h = hashRecoveryCode(key, code);
    assert.match(h, /^[A-Za-z0-9_-]{43}$/);
    for (const typed of ['0K1M-Q9XD-7T2A-B3C4-D5E6-F8G9', '0k1mq9xd7t2ab3c4d5e6f8g9', ' 0k1m q9xd 7t2a b3c4 d5e6 f8g9 ', 'Ok1m-q9xd-7t2a-b3c4-d5e6-f8g9', '0kLm-q9xd-7t2a-b3c4-d5e6-f8g9', '0kIm-q9xd-7t2a-b3c4-d5e6-f8g9']) {
      assert.equal(hashRecoveryCode(key, typed), h, typed);
    }
    assert.notEqual(hashRecoveryCode(key, '0k1m-q9xd-7t2a-b3c4-d5e6-f8g8'), h);
    assert.notEqual(hashRecoveryCode(deriveKey(crypto.randomBytes(32).toString('base64url'), 'recovery'), code), h, 'another key');
    assert.equal(normaliseRecoveryCode('AB-cd EF'), 'abcdef');
    assert.ok(isRecoveryCodeShape(code));
    for (const bad of ['', 'abcd', `${code}-0000`, '0k1m-q9xd-7t2a-b3c4-d5e6-f8g', 'uuuu-uuuu-uuuu-uuuu-uuuu-uuuu', '0k1m-q9xd-7t2a-b3c4-d5e6-f8g!']) {
      assert.equal(isRecoveryCodeShape(bad), false, bad);
    }
  });

  it('stores only the hashes', () => {
    const { factor, codes } = newRecoveryFactor(key, { id: 'r1', accountId: 'a1', enrolledVia: 'self' });
    const json = JSON.stringify(factor);
    for (const c of codes) {
      assert.ok(!json.includes(c) && !json.includes(normaliseRecoveryCode(c)), 'a code is in the record');
    }
    assert.deepEqual(factor.recovery?.hashes, codes.map((c) => hashRecoveryCode(key, c)));
    assert.equal(factor.label, 'Recovery codes');
  });
});

for (const store of STORES) {
  describeOrSkip(store.skip, `useRecoveryCode on a real store (${store.kind})`, () => {
    let s: Storage;
    before(async () => {
      s = await openStorage(store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { mongodbUri: undefined, dataDir: tempDir('idp-rec-') });
    });
    after(() => s?.close());

    it('accepts each code once, as typed, and records the use', async () => {
      const accountId = crypto.randomUUID();
      const { factor, codes } = await replaceRecoveryCodes(s.factors, key, { id: crypto.randomUUID(), accountId, enrolledVia: 'admin' });
      assert.equal(factor.enrolledVia, 'admin');
      const at = new Date('2030-01-01T00:00:00.000Z');
      const used = await useRecoveryCode(s.factors, key, accountId, codes[3]!.toUpperCase(), at);
      assert.equal(used?.id, factor.id);
      assert.deepEqual(used?.recovery?.used, [{ hash: hashRecoveryCode(key, codes[3]!), at }]);
      assert.equal(await useRecoveryCode(s.factors, key, accountId, codes[3]!, new Date()), undefined, 'used before');
      assert.equal((await useRecoveryCode(s.factors, key, accountId, codes[4]!, new Date()))?.recovery?.used.length, 2);
      assert.equal(await useRecoveryCode(s.factors, key, crypto.randomUUID(), codes[5]!, new Date()), undefined, "another account's code");
      assert.equal(await useRecoveryCode(s.factors, key, accountId, newRecoveryCodes()[0]!, new Date()), undefined, 'not one of them');
      assert.equal(await useRecoveryCode(s.factors, key, accountId, 'hello', new Date()), undefined, 'malformed');
    });

    it('lets exactly one of 20 parallel submissions of one code through', async () => {
      const accountId = crypto.randomUUID();
      const { codes } = await replaceRecoveryCodes(s.factors, key, { id: crypto.randomUUID(), accountId, enrolledVia: 'self' });
      const r = await Promise.all(Array.from({ length: 20 }, () => useRecoveryCode(s.factors, key, accountId, codes[0]!, new Date())));
      assert.equal(r.filter(Boolean).length, 1);
    });

    it('replaces the set: the old codes stop working, the new ones work, one set remains', async () => {
      const accountId = crypto.randomUUID();
      const first = await replaceRecoveryCodes(s.factors, key, { id: crypto.randomUUID(), accountId, enrolledVia: 'self' });
      const second = await replaceRecoveryCodes(s.factors, key, { id: crypto.randomUUID(), accountId, enrolledVia: 'self' });
      assert.deepEqual((await s.factors.list(accountId)).map((f) => f.id), [second.factor.id]);
      assert.equal(await useRecoveryCode(s.factors, key, accountId, first.codes[0]!, new Date()), undefined);
      assert.ok(await useRecoveryCode(s.factors, key, accountId, second.codes[0]!, new Date()));
    });
  });
}

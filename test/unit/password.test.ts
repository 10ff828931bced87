import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import argon2 from 'argon2';
import { isCommonPassword, PasswordError, PasswordHasher, weakPasswordReason } from '../../interactions/methods/password.ts';
import { NO_PASSWORD } from '../../models/types.ts';

const PARAMS = { memoryKib: 19456, iterations: 2 };

describe('password blocklist (NIST 800-63B-4 §3.1.1.2)', () => {
  it('refuses repetitive, sequential, combined-common and context-specific passwords at the default length', () => {
    const hasher = new PasswordHasher(PARAMS, 15);
    const cases: [string, RegExp][] = [
      ['aaaaaaaaaaaaaaaa', /repeats/], ['iloveyouiloveyou', /repeats/], ['abcabcabcabcabcabc', /repeats/], ['ab ab ab ab ab ab ab', /repeats/],
      ['1234567890123456', /sequence/], ['0987654321098765', /sequence/], ['qwertyuiopasdfghjkl', /sequence/],
      ['ABCDEFGHIJKLMNOPQ', /sequence/], ['zyxwvutsrqponmlkj', /sequence/], ['1qaz2wsx3edc4rfv5t', /sequence|breached/],
      ['sunshinefootball', /made of common passwords/], ['superman12345678', /made of common passwords/], ['pass word pass word', /repeats|breached/],
    ];
    for (const [p, why] of cases) {
      assert.throws(() => hasher.check(p), (e: Error) => e instanceof PasswordError && /too easy to guess/.test(e.message) && why.test(e.message), p);
    }
    const ctx = { words: ['alice', 'alice.smith', 'Alice Smith'] };
    assert.throws(() => hasher.check('alice-in-wonderland-2026', ctx), /contains your username, email or name/);
    assert.throws(() => hasher.check('mr alicesmith forever', ctx), /contains your username, email or name/);
    // Passphrases of unrelated words pass; so does a username that is not in it.
    for (const p of ['tram ankle violet sextant', 'mauve kettle drifts slowly', 'Tr0ub4dor&3-surely-fine']) assert.equal(weakPasswordReason(p, ctx), undefined, p);
  });


  it('refuses common and breached passwords that pass the length rule, in any case or width', () => {
    const hasher = new PasswordHasher(PARAMS, 15);
    for (const p of ['passwordpassword', 'PasswordPassword', '1qaz2wsx3edc4rfv', 'ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ']) {
      assert.throws(() => hasher.check(p), (e: Error) => e instanceof PasswordError && /too easy to guess: it appears in lists of breached passwords/.test(e.message), p);
    }
    const short = new PasswordHasher(PARAMS, 8);
    for (const p of ['password1', 'iloveyou', 'sunshine', 'Football']) {
      assert.throws(() => short.check(p), /too easy to guess: it appears in lists of breached passwords/, p);
    }
    assert.equal(hasher.check('tram ankle violet sextant'), 'tram ankle violet sextant');
    assert.equal(isCommonPassword('correct horse battery staple'), false);
  });

  it('refuses them in hash(), the path of every password change', async () => {
    const hasher = new PasswordHasher(PARAMS, 15);
    await assert.rejects(hasher.hash('passwordpassword'), /too easy to guess: it appears in lists of breached passwords/);
  });

  it('never asks to re-hash, at login, a password the current policy would refuse', async () => {
    const old = await argon2.hash('passwordpassword', { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    const good = await argon2.hash('tram ankle violet sextant', { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    const stronger = new PasswordHasher({ memoryKib: 19456, iterations: 3 }, 15);
    assert.deepEqual(await stronger.verify(old, 'passwordpassword'), { ok: true, needsRehash: false });
    assert.deepEqual(await stronger.verify(good, 'tram ankle violet sextant'), { ok: true, needsRehash: true });
  });
});

describe('password hashing: @node-rs/argon2, compatible with the argon2 package it replaced', () => {
  const legacy = (password: string, opts: Partial<{ type: 0 | 1 | 2; memoryCost: number; timeCost: number; parallelism: number }> = {}) =>
    argon2.hash(password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1, ...opts });

  it('verifies hashes stored before the change, normalising the typed password the same way', async () => {
    const hasher = new PasswordHasher(PARAMS, 15);
    // Stored NFKC-normalised (hash() normalises); typed in another form (fullwidth, composed).
    const stored = await legacy('ｔｒａｍ ａｎｋｌｅ café violet'.normalize('NFKC'));
    assert.match(stored, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    assert.deepEqual(await hasher.verify(stored, 'ｔｒａｍ ａｎｋｌｅ café violet'), { ok: true, needsRehash: false });
    assert.deepEqual(await hasher.verify(stored, 'tram ankle cafe\u0301 violet'), { ok: true, needsRehash: false });
    assert.deepEqual(await hasher.verify(stored, 'tram ankle cafe violet'), { ok: false, needsRehash: false });
  });

  it('writes hashes the argon2 package verifies (a rollback keeps every password)', async () => {
    const hasher = new PasswordHasher(PARAMS, 15);
    const h = await hasher.hash('mauve kettle drifts slowly');
    assert.match(h, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(await argon2.verify(h, 'mauve kettle drifts slowly'), true);
    assert.equal(await argon2.verify(h, 'mauve kettle drifts slowly!'), false);
    // A fresh salt each time.
    assert.notEqual(await hasher.hash('mauve kettle drifts slowly'), h);
  });

  it('asks to re-hash when any parameter or the variant differs from the current settings', async () => {
    const hasher = new PasswordHasher(PARAMS, 15);
    const p = 'tram ankle violet sextant';
    assert.equal((await hasher.verify(await legacy(p), p)).needsRehash, false);
    for (const opts of [{ memoryCost: 8192 }, { memoryCost: 32768 }, { timeCost: 1 }, { timeCost: 3 }, { parallelism: 2 }, { type: argon2.argon2i }] as const) {
      assert.deepEqual(await hasher.verify(await legacy(p, opts), p), { ok: true, needsRehash: true }, JSON.stringify(opts));
    }
  });
});

describe('a stored value that is no hash we could have written', () => {
  /** Counts the verifications spent on nothing (an unknown username's cost). */
  class Counting extends PasswordHasher {
    burned = 0;
    override async burn(password: string): Promise<false> {
      this.burned += 1;
      return super.burn(password);
    }
  }

  it('costs one verification and fails, never throws: no password, garbage, a foreign or cut hash, or costs above the settings\' maxima', async () => {
    const salt = 'c2FsdHNhbHRzYWx0c2FsdA';
    const out = 'YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE';
    const cases = [
      NO_PASSWORD, '', 'plaintext', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$', '$2b$10$abcdefghijklmnopqrstuu5Z0f3d6bP5Ck6.3r5Y7Z0u0W0a1b2c3',
      `$argon2id$v=19$m=${4 * 1024 * 1024 + 1},t=2,p=1$${salt}$${out}`,
      `$argon2id$v=19$m=19456,t=101,p=1$${salt}$${out}`,
      `$argon2id$v=19$m=19456,t=2,p=17$${salt}$${out}`,
    ];
    for (const stored of cases) {
      const h = new Counting(PARAMS, 15);
      assert.deepEqual(await h.verify(stored, 'tram ankle violet sextant'), { ok: false, needsRehash: false }, stored);
      assert.equal(h.burned, 1, stored);
    }
    // At the bounds, a hash is verified as stored (a wrong one fails without a burn).
    const h = new Counting(PARAMS, 15);
    assert.deepEqual(await h.verify(`$argon2id$v=19$m=19456,t=2,p=1$${salt}$${out}`, 'tram ankle violet sextant'), { ok: false, needsRehash: false });
    assert.equal(h.burned, 0);
  });
});

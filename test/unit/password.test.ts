import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import argon2 from 'argon2';
import { isCommonPassword, PasswordError, PasswordHasher, weakPasswordReason } from '../../interactions/methods/password.ts';

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

/** Assurance levels as data (policies/assurance.ts): what methods prove, what requests ask. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertedAcr, assertedAmr, carriedAmr, levelIndexOf, requestedLevel, sessionLevelIndex, strengthOf } from '../../policies/assurance.ts';
import { loadPolicy } from '../../policies/policy.ts';
import { makePolicyDir } from '../helpers/policy.ts';

const levels = loadPolicy(makePolicyDir()).assurance.levels;
const [A1, A2, A3] = levels.map((l) => l.acr);
const H = 3600;

describe('assurance levels', () => {
  it('counts factors from amr: the risk check and derived values never count', () => {
    assert.deepEqual(strengthOf(['pwd']), { factors: 1, phishingResistant: false });
    assert.deepEqual(strengthOf(['pwd', 'rba', 'mfa']), { factors: 1, phishingResistant: false });
    assert.deepEqual(strengthOf(['pwd', 'otp']), { factors: 2, phishingResistant: false });
    // Two codes are still one factor (both held).
    assert.deepEqual(strengthOf(['otp', 'otp']), { factors: 1, phishingResistant: false });
    // A passkey without user verification: possession, phishing-resistant key but not the level.
    assert.deepEqual(strengthOf(['hwk']), { factors: 1, phishingResistant: false });
    // With user verification it is a multi-factor authenticator (NIST SP 800-63B-4 §3.1.7).
    assert.deepEqual(strengthOf(['swk', 'user']), { factors: 2, phishingResistant: true });
    // `user` without a key proves nothing here.
    assert.deepEqual(strengthOf(['pwd', 'user']), { factors: 1, phishingResistant: false });
  });

  it('maps methods to the strongest level they meet', () => {
    assert.equal(levelIndexOf([], levels), -1);
    assert.equal(levelIndexOf(['rba'], levels), -1);
    assert.equal(levelIndexOf(['pwd'], levels), 0);
    assert.equal(levelIndexOf(['pwd', 'otp'], levels), 1);
    assert.equal(levelIndexOf(['hwk', 'user'], levels), 2);
    assert.equal(levelIndexOf(['pwd', 'hwk'], levels), 1, 'two factors, but no user verification: not phishing-resistant');
  });

  it('asserts amr with mfa for two factors and rba when the engine took part, without duplicates', () => {
    assert.deepEqual(assertedAmr(['pwd'], true), ['pwd', 'rba']);
    assert.deepEqual(assertedAmr(['pwd', 'otp', 'otp', 'mfa'], true), ['pwd', 'otp', 'mfa', 'rba']);
    assert.deepEqual(assertedAmr(['hwk', 'user'], false), ['hwk', 'user', 'mfa']);
  });

  it('lets a session meet a level only within its reauthentication limits', () => {
    const now = 1_000_000;
    const s = { amr: ['pwd', 'otp'], authTime: now - 2 * H, lastActive: now - 10 * 60 };
    assert.equal(sessionLevelIndex(s, levels, now), 1);
    // aal2: 1 h idle.
    assert.equal(sessionLevelIndex({ ...s, lastActive: now - 61 * 60 }, levels, now), 0);
    // aal2: 24 h overall.
    assert.equal(sessionLevelIndex({ ...s, authTime: now - 25 * H }, levels, now), 0);
    // aal1: 30 days.
    assert.equal(sessionLevelIndex({ ...s, authTime: now - 31 * 24 * H }, levels, now), -1);
  });

  it('carries over what still counts in a step-up: all, the password only after idling, nothing after the overall limit or max_age', () => {
    const now = 1_000_000;
    const s = { amr: ['pwd', 'otp', 'mfa', 'rba'], authTime: now - H, lastActive: now - 60 };
    assert.deepEqual(carriedAmr(s, levels[1]!, now), ['pwd', 'otp']);
    assert.deepEqual(carriedAmr({ ...s, lastActive: now - 2 * H }, levels[1]!, now), ['pwd']);
    assert.deepEqual(carriedAmr({ ...s, authTime: now - 25 * H }, levels[1]!, now), []);
    assert.deepEqual(carriedAmr(s, levels[1]!, now, 300), []);
    assert.deepEqual(carriedAmr(s, levels[1]!, now, 7200), ['pwd', 'otp']);
  });

  it('works out the level a request asks for: the weakest listed, the strictest source, and refuses an essential unknown', () => {
    assert.deepEqual(requestedLevel({}, levels), { ok: true, index: -1, because: [], accepted: undefined });
    assert.deepEqual(requestedLevel({ acrValues: [A3!, A2!] }, levels), { ok: true, index: 1, because: ['acr_values'], accepted: [A3, A2] });
    // Unknown voluntary values are ignored.
    assert.equal((requestedLevel({ acrValues: ['urn:x', A2!] }, levels) as { index: number }).index, 1);
    assert.equal((requestedLevel({ acrValues: ['urn:x'] }, levels) as { index: number }).index, -1);
    const essential = requestedLevel({ essential: [A2!], acrValues: [A1!], clientMinimum: A1 }, levels);
    assert.deepEqual(essential, { ok: true, index: 1, because: ['claims.id_token.acr'], accepted: [A2] });
    assert.equal(requestedLevel({ essential: ['urn:x'] }, levels).ok, false);
    assert.deepEqual(requestedLevel({ clientMinimum: A2 }, levels), { ok: true, index: 1, because: ['client.min_acr'], accepted: undefined });
    assert.equal(requestedLevel({ clientMinimum: 'urn:gone' }, levels).ok, false);
  });

  it('asserts the strongest listed ACR the session meets, else its own level', () => {
    assert.equal(assertedAcr(2, levels, [A1!, A2!]), A2);
    assert.equal(assertedAcr(1, levels, [A1!]), A1);
    assert.equal(assertedAcr(1, levels, undefined), A2);
    assert.equal(assertedAcr(0, levels, [A3!]), A1);
    assert.equal(assertedAcr(-1, levels, [A1!]), undefined);
  });

  it('refuses a policy whose levels are not ordered weakest first', () => {
    assert.throws(() => loadPolicy(makePolicyDir((f) => {
      f.assurance.levels = [f.assurance.levels[1], f.assurance.levels[0], f.assurance.levels[2]];
      f.assurance.default = { low: 'aal1', medium: 'aal2', high: 'aal2', critical: 'block' };
    })), /demands less than "aal2" before it/);
  });
});

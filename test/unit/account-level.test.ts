/**
 * The level a user confirms at before changing their authenticators (interactions/account/
 * session.ts changeLevel), on the shipped levels: never below the session's own, and two
 * factors (not the phishing-resistant level) whenever the account holds a second factor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeLevel, holdsSecondFactor } from '../../interactions/account/session.ts';
import type { FactorRecord } from '../../models/types.ts';
import { loadPolicy } from '../../policies/policy.ts';
import { DEFAULT_POLICY_DIR } from '../../idp/settings.ts';

const levels = loadPolicy(DEFAULT_POLICY_DIR, { withoutModel: true }).assurance.levels;
const index = (name: string) => levels.findIndex((l) => l.name === name);
const factor = (kind: FactorRecord['kind'], extra: Partial<FactorRecord> = {}): FactorRecord => ({
  id: kind, accountId: 'a', kind, label: kind, createdAt: new Date(0), counter: 0, enrolledVia: 'self', ...extra,
});
const codes = (total: number, used: number) => factor('recovery', {
  recovery: { hashes: Array.from({ length: total }, (_, i) => `h${i}`), used: Array.from({ length: used }, (_, i) => ({ hash: `h${i}`, at: new Date(0) })) },
});

describe('the level a change of authenticators asks for', () => {
  it('is the session\'s own level for an account with no second factor (at least the lowest)', () => {
    assert.equal(changeLevel(levels, index('aal1'), []), index('aal1'));
    assert.equal(changeLevel(levels, -1, []), 0);
    assert.equal(changeLevel(levels, index('aal3'), []), index('aal3'));
  });

  it('is two factors once the account holds one, even for a password-only session', () => {
    for (const f of [factor('totp'), factor('webauthn'), codes(10, 3)]) {
      assert.ok(holdsSecondFactor([f]), f.kind);
      assert.equal(changeLevel(levels, index('aal1'), [f]), index('aal2'), f.kind);
    }
  });

  it('never asks the phishing-resistant level of a lesser session: a lost passkey is replaced with a code', () => {
    assert.equal(changeLevel(levels, index('aal2'), [factor('webauthn')]), index('aal2'));
    assert.equal(changeLevel(levels, index('aal3'), [factor('webauthn')]), index('aal3'), 'but a session at it keeps it');
  });

  it('does not count recovery codes that are all used', () => {
    assert.equal(holdsSecondFactor([codes(10, 10)]), false);
    assert.equal(changeLevel(levels, index('aal1'), [codes(10, 10)]), index('aal1'));
  });
});

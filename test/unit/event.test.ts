/** The login event format (policies/event.ts): what passes, and how a bad field is named. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventError, parseEvent } from '../../policies/event.ts';

const GOOD = {
  id: 'e1', ts: '2026-03-05T09:20:00Z', user: 'alice', ip: '81.2.69.142', userAgent: 'Mozilla/5.0', deviceId: 'd1', success: true,
  clientId: 'web', scope: 'openid profile', keystroke: { score: 0.2, confidence: 0.9 }, mfa: 'fail', label: 'attack', attackType: 'impossible_travel',
  scenario: 'shared_nat',
};

function message(x: unknown): string {
  try {
    parseEvent(x);
  } catch (e) {
    assert.ok(e instanceof EventError);
    return e.message;
  }
  assert.fail('accepted');
}

describe('login event format', () => {
  it('accepts the documented event and keeps every field; drops unknown keys such as a recorded assessment', () => {
    assert.deepEqual(parseEvent(GOOD), GOOD);
    assert.deepEqual(parseEvent({ ...GOOD, assessment: { score: 0.1 } }), GOOD);
    const minimal = { id: 'e2', ts: '2026-03-05T09:20:00.123+01:00', user: 'u', ip: '10.0.0.1', userAgent: '', success: false };
    assert.deepEqual(parseEvent(minimal), minimal);
  });

  it('names the field and what it must be, without echoing the value', () => {
    const cases: [string, unknown, string][] = [
      ['scope', 5, '"scope" must be a string, not a number'],
      ['success', 'yes', '"success" must be true or false, not a string'],
      ['user', null, '"user" must be a string, not null'],
      ['user', '', '"user" must not be empty'],
      ['mfa', 'maybe', '"mfa" must be one of "pass", "fail"'],
      ['label', 'benign', '"label" must be one of "legit", "attack"'],
      ['ts', '2026-03-01T09:00:00', '"ts" must be an ISO 8601 time with a time zone, e.g. 2026-03-05T09:20:00Z'],
      ['ts', 'yesterday', '"ts" must be an ISO 8601 time with a time zone, e.g. 2026-03-05T09:20:00Z'],
      ['keystroke', { score: 2, confidence: 0.5 }, '"keystroke.score" must be at most 1'],
      ['keystroke', { score: 0.5 }, '"keystroke.confidence" is missing (a number)'],
      ['keystroke', { score: 0.5, confidence: 1, extra: 1 }, '"keystroke" has unknown key(s) "extra"'],
      ['scenario', 'Shared NAT', '"scenario" must be 1-64 characters of a-z 0-9 _'],
    ];
    for (const [field, value, expected] of cases) assert.equal(message({ ...GOOD, [field]: value }), expected, `${field}: ${JSON.stringify(value)}`);
    assert.equal(message({ ...GOOD, label: 'legit' }), '"attackType" needs "label": "attack"');
    const { user: _u, success: _s, ...missing } = GOOD;
    assert.equal(message(missing), '"user" is missing (a string); "success" is missing (true or false)');
    assert.equal(message([1]), 'an event must be a JSON object, not an array');
    assert.equal(message('text'), 'an event must be a JSON object, not a string');
    assert.ok(!message({ ...GOOD, userAgent: 12345678 }).includes('12345678'), 'values are not echoed');
  });
});

/**
 * The engine's side of device keys (policies/signals.ts `device`, policies/history.ts
 * `deviceKeys`), as plain data: which keys a history learns, and the three states the
 * reasons tell apart (proven, cookie only, new).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { emptyIpHistory, emptyUserHistory, observe } from '../../policies/history.ts';
import { loadPolicy, type CompiledPolicy } from '../../policies/policy.ts';
import { scoreLogin } from '../../policies/score.ts';
import { computeSignals } from '../../policies/signals.ts';
import type { LoginContext, Place, UserHistory } from '../../policies/types.ts';
import { parseAgent } from '../../policies/ua.ts';
import { makePolicyDir } from '../helpers/policy.ts';

const LONDON: Place = { scope: 'public', country: 'GB', region: 'England', city: 'London', lat: 51.5, lon: -0.12, asn: 2856, asOrg: 'BT' };
const FIREFOX = parseAgent('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0');
const T0 = Date.parse('2026-03-02T09:00:00Z');
const KEY = 'A'.repeat(43);
const OTHER_KEY = 'B'.repeat(43);

const ctx = (over: Partial<LoginContext> = {}): LoginContext => ({
  ts: T0, user: 'u1', ip: '81.2.69.142', place: LONDON, agent: FIREFOX, deviceId: 'dev-1', clientId: 'app', scopes: ['openid'], ...over,
});

describe('device keys in the engine', () => {
  let policy: CompiledPolicy;
  /** Five trusted logins from one browser that proved KEY each time. */
  let history: UserHistory;

  before(() => {
    // Rules only: the reasons and scores are the factors' alone.
    policy = loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; }));
    history = emptyUserHistory();
    for (let i = 0; i < 5; i += 1) {
      observe(history, emptyIpHistory(), ctx({ ts: T0 - (5 - i) * 86_400_000, deviceKey: KEY }), { kind: 'password_ok', decision: 'allow' }, policy.risk);
    }
  });

  const judge = (over: Partial<LoginContext>) => {
    const s = computeSignals(ctx(over), structuredClone(history), emptyIpHistory(), policy.risk, policy.lists);
    return { s, a: scoreLogin(ctx(over), s, policy) };
  };
  const factors = (a: { reasons: { factor: string }[] }) => a.reasons.map((r) => r.factor);

  it('learns a key only from trusted logins, with the device cookie it came with', () => {
    assert.deepEqual(Object.keys(history.deviceKeys ?? {}), [KEY]);
    assert.equal(history.deviceKeys![KEY]!.n, 5);
    assert.equal(history.deviceKeys![KEY]!.device, 'dev-1');
    const h = structuredClone(history);
    for (const outcome of [{ kind: 'password_failed' } as const, { kind: 'password_ok', decision: 'block' } as const, { kind: 'password_ok', decision: 'step_up', mfa: 'fail' } as const]) {
      observe(h, emptyIpHistory(), ctx({ deviceKey: OTHER_KEY, deviceId: 'dev-2' }), outcome, policy.risk);
    }
    assert.deepEqual(Object.keys(h.deviceKeys ?? {}), [KEY], "an attacker's key is never learnt from a login that did not succeed");
  });

  it('proven: the key of trusted logins lowers the score', () => {
    const { s, a } = judge({ deviceKey: KEY });
    assert.deepEqual(s.device, { proven: true, provenLogins: 5, unprovenCookie: false });
    assert.ok(factors(a).includes('device_proven'));
    assert.ok(!factors(a).includes('new_device') && !factors(a).includes('device_unproven'));
    assert.equal(a.reasons.find((r) => r.factor === 'device_proven')!.contribution, policy.risk.factors.device_proven.weight);
    assert.ok(policy.risk.factors.device_proven.weight < 0);
  });

  it('proven without its cookie: the key recognises the browser (no new_device)', () => {
    const { a } = judge({ deviceKey: KEY, deviceId: 'lost-cookie' });
    assert.ok(factors(a).includes('device_proven'));
    assert.ok(!factors(a).includes('new_device'), factors(a).join(', '));
  });

  it('cookie only: the cookie without its key, whether no key or a key of its own, scores higher than proven', () => {
    const proven = judge({ deviceKey: KEY }).a;
    for (const deviceKey of [undefined, OTHER_KEY]) {
      const { s, a } = judge({ deviceKey });
      assert.equal(s.device.unprovenCookie, true, String(deviceKey));
      assert.ok(factors(a).includes('device_unproven'), factors(a).join(', '));
      assert.ok(!factors(a).includes('device_proven') && !factors(a).includes('new_device'), factors(a).join(', '));
      // Before clamping to [0, 1]: the proven login's (negative) weight is gone and device_unproven's added.
      const f = policy.risk.factors;
      const sum = (x: { reasons: { contribution: number }[] }) => x.reasons.reduce((t, r) => t + r.contribution, 0);
      const step = f.device_unproven.weight - f.device_proven.weight;
      assert.ok(Math.abs(sum(a) - sum(proven) - step) < 1e-9, `${sum(a)} = ${sum(proven)} + ${step}`);
      assert.ok(a.score > proven.score);
    }
  });

  it('new: neither cookie nor key', () => {
    const { s, a } = judge({ deviceId: 'dev-9', deviceKey: OTHER_KEY });
    assert.deepEqual(s.device, { proven: false, provenLogins: 0, unprovenCookie: false });
    assert.ok(factors(a).includes('new_device'));
    assert.ok(!factors(a).includes('device_proven') && !factors(a).includes('device_unproven'), factors(a).join(', '));
  });

  it("Safari's 7-day storage cap: its cookie without its key after a week away is expected; another engine's, or sooner, is not", () => {
    const SAFARI = parseAgent('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15');
    const DAY = 86_400_000;
    const safariUser = emptyUserHistory();
    for (let i = 0; i < 5; i += 1) {
      observe(safariUser, emptyIpHistory(), ctx({ ts: T0 - (5 - i) * DAY, agent: SAFARI, deviceKey: KEY }), { kind: 'password_ok', decision: 'allow' }, policy.risk);
    }
    const cookieOnly = (h: UserHistory, days: number, agent = SAFARI) =>
      computeSignals(ctx({ ts: T0 + days * DAY, agent }), structuredClone(h), emptyIpHistory(), policy.risk, policy.lists).device.unprovenCookie;
    assert.equal(cookieOnly(safariUser, 8), false, 'WebKit deleted the key after 7 days without a visit');
    assert.equal(cookieOnly(safariUser, 2), true, 'within the week the key should still be there');
    // A Firefox user's key is not subject to WebKit's cap: a copied cookie sent with a Safari
    // User-Agent (which the attacker chooses) after a week is still a cookie without its key.
    assert.equal(cookieOnly(history, 8, SAFARI), true, 'the key was made by a browser WebKit does not govern');
  });

  it('never judges devices of a user whose browsers never proved a key (no WebCrypto)', () => {
    const h = emptyUserHistory();
    for (let i = 0; i < 5; i += 1) observe(h, emptyIpHistory(), ctx({ ts: T0 - (5 - i) * 86_400_000 }), { kind: 'password_ok', decision: 'allow' }, policy.risk);
    const s = computeSignals(ctx(), h, emptyIpHistory(), policy.risk, policy.lists);
    assert.deepEqual(s.device, { proven: false, provenLogins: 0, unprovenCookie: false });
  });
});

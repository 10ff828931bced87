/**
 * Behavioural templates in the engine: who may train them (only low-risk or stepped-up
 * logins), how they adapt, and that a replay through the simulator builds and uses them as
 * live operation does (policies/history.ts, policies/signals.ts, policies/simulate.ts).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Behaviour } from '../../policies/behaviour.ts';
import { emptyIpHistory, emptyUserHistory, joinsTemplates, observe } from '../../policies/history.ts';
import { loadPolicy, type CompiledPolicy } from '../../policies/policy.ts';
import { computeSignals } from '../../policies/signals.ts';
import { Replayer } from '../../policies/simulate.ts';
import { Rng } from '../../policies/synth.ts';
import type { LoginContext, Place } from '../../policies/types.ts';
import { parseAgent } from '../../policies/ua.ts';
import { makePolicyDir } from '../helpers/policy.ts';

const LONDON: Place = { scope: 'public', country: 'GB', region: 'England', city: 'London', lat: 51.5, lon: -0.12, asn: 2856, asOrg: 'BT' };
const T0 = Date.parse('2026-03-02T09:00:00Z');
const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';

/** A typist: per-position mean hold and keyup→keydown (ms), with a little noise per sample. */
function typist(rng: Rng, hold: number, gap: number, n = 10) {
  const holds = Array.from({ length: n }, () => hold * rng.between(0.7, 1.3));
  const gaps = Array.from({ length: n - 1 }, () => gap * rng.between(0.5, 1.5));
  return (): Behaviour => {
    const h = holds.map((m) => Math.round(m * rng.between(0.9, 1.1)));
    const ud = gaps.map((m) => Math.round(m * rng.between(0.9, 1.1)));
    return { v: 1, keystroke: { hold: h, ud, dd: ud.map((u, i) => u + h[i]!) } };
  };
}

const ctx = (ts: number, behaviour?: Behaviour): LoginContext => ({
  ts, user: 'u1', ip: '81.2.69.142', place: LONDON, agent: parseAgent(UA), deviceId: 'dev-1', clientId: 'app', scopes: ['openid'], behaviour,
});

describe('behavioural templates', () => {
  let policy: CompiledPolicy;
  before(() => {
    policy = loadPolicy(makePolicyDir((f) => { f.risk.behaviour = { join_max_level: 'low', keystroke: { detector: 'scaled_manhattan', learn: 5, keep: 8 }, pointer: { learn: 5, keep: 8 } }; }));
  });

  it('joins only logins let in at low risk or that passed a step-up', () => {
    const r = policy.risk;
    assert.equal(joinsTemplates({ decision: 'allow', level: 'low' }, r), true);
    assert.equal(joinsTemplates({ decision: 'allow', level: 'medium' }, r), false, 'let in at medium on a password alone');
    assert.equal(joinsTemplates({ decision: 'step_up', mfa: 'pass' }, r), true);
    assert.equal(joinsTemplates({ decision: 'step_up', mfa: 'fail' }, r), false, 'a failed step-up never trains');
    assert.equal(joinsTemplates({ decision: 'step_up' }, r), false, 'an unanswered step-up never trains');
    assert.equal(joinsTemplates({ decision: 'block', level: 'low' }, r), false);
  });

  it('learns N samples, then checks; a failed step-up adds nothing; the oldest sample is replaced', () => {
    const rng = new Rng(7);
    const genuine = typist(rng, 100, 150);
    const user = emptyUserHistory();
    const ip = emptyIpHistory();
    for (let i = 0; i < 4; i += 1) observe(user, ip, ctx(T0 + i * 3_600_000, genuine()), { kind: 'password_ok', decision: 'allow', level: 'low' }, policy.risk);
    assert.equal(user.keystroke!.samples.length, 4);
    let s = computeSignals(ctx(T0 + 5 * 3_600_000, genuine()), user, ip, policy.risk, policy.lists);
    assert.deepEqual(s.keystroke, { score: 0, confidence: 0 }, 'still learning');
    // Someone else, challenged and failing: their sample never joins.
    const other = typist(rng, 60, 400);
    observe(user, ip, ctx(T0 + 6 * 3_600_000, other()), { kind: 'password_ok', decision: 'step_up', mfa: 'fail' }, policy.risk);
    observe(user, ip, ctx(T0 + 7 * 3_600_000, other()), { kind: 'password_ok', decision: 'allow', level: 'medium' }, policy.risk);
    assert.equal(user.keystroke!.samples.length, 4);
    observe(user, ip, ctx(T0 + 8 * 3_600_000, genuine()), { kind: 'password_ok', decision: 'allow', level: 'low' }, policy.risk);
    s = computeSignals(ctx(T0 + 9 * 3_600_000, genuine()), user, ip, policy.risk, policy.lists);
    assert.equal(s.keystroke!.confidence, 0.5);
    const first = user.keystroke!.samples[0];
    for (let i = 0; i < 4; i += 1) observe(user, ip, ctx(T0 + (10 + i) * 3_600_000, genuine()), { kind: 'password_ok', decision: 'allow', level: 'low' }, policy.risk);
    assert.equal(user.keystroke!.samples.length, 8, 'keeps the newest `keep`');
    assert.notDeepEqual(user.keystroke!.samples[0], first, 'the oldest was replaced');
    // A new password (another length) starts the template afresh.
    const newPassword = typist(rng, 100, 150, 12);
    s = computeSignals(ctx(T0 + 20 * 3_600_000, newPassword()), user, ip, policy.risk, policy.lists);
    assert.deepEqual(s.keystroke, { score: 0, confidence: 0 });
    observe(user, ip, ctx(T0 + 21 * 3_600_000, newPassword()), { kind: 'password_ok', decision: 'allow', level: 'low' }, policy.risk);
    assert.deepEqual([user.keystroke!.positions, user.keystroke!.samples.length], [12, 1]);
  });

  it('refuses a sample identical to one it learnt (a replay of a captured login), and does not learn it twice', () => {
    const rng = new Rng(5);
    const genuine = typist(rng, 100, 150);
    const user = emptyUserHistory();
    const ip = emptyIpHistory();
    const learnt: Behaviour[] = [];
    for (let i = 0; i < 8; i += 1) {
      learnt.push(genuine());
      observe(user, ip, ctx(T0 + i * 3_600_000, learnt[i]), { kind: 'password_ok', decision: 'allow', level: 'low' }, policy.risk);
    }
    const at = T0 + 9 * 3_600_000;
    const own = computeSignals(ctx(at, genuine()), user, ip, policy.risk, policy.lists).keystroke!;
    assert.ok(own.score <= 0.5 && own.confidence === 1, `the user's own new sample looks like them: ${JSON.stringify(own)}`);
    // Nobody types ten keys to the same millisecond twice: an exact copy is a recording.
    const replay = computeSignals(ctx(at, structuredClone(learnt[6])), user, ip, policy.risk, policy.lists).keystroke!;
    assert.deepEqual(replay, { score: 1, confidence: 1 }, 'a replayed sample is as unlike the user as can be, never a match');
    const before = structuredClone(user.keystroke);
    observe(user, ip, ctx(at, structuredClone(learnt[7])), { kind: 'password_ok', decision: 'allow', level: 'low' }, policy.risk);
    assert.deepEqual(user.keystroke, before, 'a copy does not join the template');
  });

  it('replays recorded samples through the templates: an impostor scores higher than the user', () => {
    const rng = new Rng(11);
    const genuine = typist(rng, 100, 150);
    const impostor = typist(rng, 70, 320);
    const replay = new Replayer(policy, () => LONDON);
    const event = (i: number, b: Behaviour) => ({
      id: `e${i}`, ts: new Date(T0 + i * 3_600_000).toISOString(), user: 'u1', ip: '81.2.69.142', userAgent: UA, deviceId: 'dev-1', success: true, behaviour: b,
    });
    for (let i = 0; i < 10; i += 1) replay.process(event(i, genuine()));
    const own = replay.process(event(10, genuine()))!;
    const theirs = replay.process(event(11, impostor()))!;
    const score = (x: typeof own) => x.assessment.reasons.find((r) => r.factor === 'keystroke_anomaly');
    assert.equal(score(own), undefined, 'the user does not fire the factor');
    assert.ok(score(theirs), `the impostor does: ${JSON.stringify(theirs.assessment.reasons)}`);
    assert.ok(theirs.assessment.score > own.assessment.score);
  });
});

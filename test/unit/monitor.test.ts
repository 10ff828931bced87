/**
 * Monitor mode (policies/monitor.ts): a monitored factor, the model, or the whole policy is
 * computed and recorded but not acted on. Plain data in, plain data out: no server.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { assess, type AssessResult } from '../../policies/assess.ts';
import { decide } from '../../policies/decision.ts';
import { emptyIpHistory, emptyUserHistory, observe } from '../../policies/history.ts';
import { describeMonitor, monitorPlan, templateLevel, type ScorePart } from '../../policies/monitor.ts';
import { checkPolicy, loadPolicy, type CompiledPolicy } from '../../policies/policy.ts';
import { Replayer, Summary } from '../../policies/simulate.ts';
import type { Assessment, IpHistory, LoginContext, Place, UserHistory } from '../../policies/types.ts';
import type { LoginEvent } from '../../policies/event.ts';
import { parseAgent } from '../../policies/ua.ts';
import { Events } from '../../idp/events.ts';
import { Metrics } from '../../idp/metrics.ts';
import { createLogger } from '../../idp/log.ts';
import { makePolicyDir, type PolicyFiles } from '../helpers/policy.ts';

const LONDON: Place = { scope: 'public', country: 'GB', region: 'England', city: 'London', lat: 51.5, lon: -0.12, asn: 2856, asOrg: 'BT' };
const SYDNEY: Place = { scope: 'public', country: 'AU', region: 'NSW', city: 'Sydney', lat: -33.87, lon: 151.21, asn: 1221, asOrg: 'Telstra' };
const FIREFOX_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
const T0 = Date.parse('2026-03-02T09:00:00Z'); // a Monday

const ctx = (over: Partial<LoginContext> = {}): LoginContext => ({
  ts: T0, user: 'u1', ip: '81.2.69.142', place: LONDON, agent: parseAgent(FIREFOX_UA), deviceId: 'dev-1', clientId: 'app', scopes: ['openid'], ...over,
});

/** A user with `n` trusted logins from London on one device, a day apart. */
function londoner(policy: CompiledPolicy, n = 5): UserHistory {
  const h = emptyUserHistory();
  const ip = emptyIpHistory();
  for (let i = 0; i < n; i += 1) observe(h, ip, ctx({ ts: T0 - (n - i) * 86_400_000 }), { kind: 'password_ok', decision: 'allow' }, policy.risk);
  return h;
}

/** Failures from the login's address by `n` other accounts, minutes ago. */
function strangers(n: number): IpHistory {
  const ip = emptyIpHistory();
  for (let i = 0; i < n; i += 1) ip.failures.push({ ts: T0 - 5 * 60_000 + i, user: `made-up-${i}` });
  return ip;
}

/** Logins that fire different factors and reach every decision under the shipped maps. */
const CASES: { name: string; context: LoginContext; ip: () => IpHistory; amr?: string[] }[] = [
  { name: 'familiar', context: ctx(), ip: emptyIpHistory },
  { name: 'new browser', context: ctx({ deviceId: 'dev-2', agent: parseAgent(SAFARI_UA) }), ip: emptyIpHistory },
  { name: 'impossible travel', context: ctx({ ts: T0 - 86_400_000 + 30 * 60_000, ip: '1.1.1.1', place: SYDNEY, deviceId: 'dev-9' }), ip: emptyIpHistory },
  { name: 'Sydney a week later', context: ctx({ ts: T0 + 7 * 86_400_000, ip: '1.1.1.1', place: SYDNEY }), ip: emptyIpHistory },
  { name: 'Tor exit', context: ctx({ ip: '185.220.101.1' }), ip: emptyIpHistory },
  { name: 'trusted network', context: ctx({ ip: '81.2.69.200', deviceId: 'dev-3' }), ip: emptyIpHistory },
  { name: 'stuffing from a stranger', context: ctx({ deviceId: 'dev-4' }), ip: () => strangers(12) },
  { name: 'new browser, two factors', context: ctx({ deviceId: 'dev-5', agent: parseAgent(SAFARI_UA) }), ip: emptyIpHistory, amr: ['pwd', 'otp'] },
];

/** The shipped policy with the lists the cases use, and `patch` on top. */
const policyDir = (patch: (f: PolicyFiles) => void = () => {}) => makePolicyDir((f) => {
  f.lists.tor_exit_addresses = ['185.220.101.1'];
  f.lists.trusted_networks = ['81.2.69.192/26'];
  f.risk.factors.credential_stuffing.weight = 0.6;
  // A block at critical (the shipped map asks a second factor): the clearest difference to see.
  f.assurance.default.critical = 'block';
  patch(f);
});

const run = (p: CompiledPolicy, c: (typeof CASES)[number], user: UserHistory): AssessResult =>
  assess({ context: c.context, user, ip: c.ip(), policy: p, amr: c.amr ?? ['pwd'] });

/** An assessment as it would be under another policy file: everything but the version. */
const comparable = (a: Assessment) => ({ ...a, policyVersion: undefined });
const sum = (a: Assessment, monitored: boolean) => a.reasons.filter((r) => Boolean(r.monitor) === monitored).reduce((s, r) => s + r.contribution, 0);

describe('policy monitor mode', () => {
  let enforced: CompiledPolicy;
  let history: UserHistory;

  before(() => {
    enforced = loadPolicy(policyDir());
    history = londoner(enforced);
  });

  it('reads enforce by default, and monitor for the policy, the model and each factor', () => {
    assert.deepEqual(monitorPlan(enforced.risk), { policy: false, parts: new Set(), any: false });
    assert.equal(describeMonitor(enforced.risk), undefined);
    const p = loadPolicy(policyDir((f) => { f.risk.model.mode = 'monitor'; f.risk.factors.new_os.mode = 'monitor'; }));
    assert.deepEqual(monitorPlan(p.risk), { policy: false, parts: new Set(['model', 'new_os']), any: true });
    assert.equal(describeMonitor(p.risk), 'in monitor mode (scored and recorded, not counted in the decision): model, new_os');
    const whole = loadPolicy(policyDir((f) => { f.risk.mode = 'monitor'; }));
    assert.match(describeMonitor(whole.risk)!, /^the whole policy is in monitor mode: risk is assessed and recorded, never acted on/);
    const errors = checkPolicy(policyDir((f) => { f.risk.factors.new_os.mode = 'watch'; f.risk.mode = 'dry-run'; }));
    assert.deepEqual(errors.map((e) => e.path).sort(), ['factors.new_os.mode', 'mode']);
    assert.ok(errors.every((e) => e.file === 'risk.yml' && e.line !== undefined && /"enforce"/.test(e.message)), JSON.stringify(errors));
  });

  it('with nothing monitored, gives no monitor outcome', () => {
    for (const c of CASES) assert.equal(run(enforced, c, history).monitor, undefined, c.name);
  });

  it('lists a monitored factor in the reasons, marked, and leaves its contribution out of the score', () => {
    const p = loadPolicy(policyDir((f) => { f.risk.model.weight = 0; f.risk.factors.new_country.mode = 'monitor'; }));
    const c = CASES.find((x) => x.name === 'Sydney a week later')!;
    const r = run(p, c, history);
    const country = r.assessment.reasons.find((x) => x.factor === 'new_country');
    assert.deepEqual(country && { contribution: country.contribution, monitor: country.monitor }, { contribution: 0.2, monitor: true });
    assert.ok(r.assessment.reasons.filter((x) => x.factor !== 'new_country').every((x) => !x.monitor));
    // The enforced score is the sum of the enforced reasons; the monitor outcome counts it.
    assert.ok(Math.abs(r.assessment.score - sum(r.assessment, false)) < 1e-9);
    assert.ok(Math.abs(r.monitor!.assessment.score - (r.assessment.score + 0.2)) < 1e-9, `${r.monitor!.assessment.score} vs ${r.assessment.score}`);
    assert.equal(r.assessment.level, 'low');
    assert.equal(r.decision.decision, 'allow');
    assert.equal(r.monitor!.assessment.level, 'medium');
    assert.equal(r.monitor!.decision.decision, 'step_up');
    assert.equal(r.monitor!.decision.requiredAcr, 'urn:adaptive-idp:aal2');
  });

  it('the enforced outcome with a part monitored is the policy without that part; the monitor outcome is the policy with it enforced', () => {
    const parts: ScorePart[][] = [['new_device'], ['new_country', 'impossible_travel'], ['model'], ['trusted_network'], ['credential_stuffing', 'ip_failures'], ['tor_exit', 'new_browser', 'new_os']];
    let differing = 0;
    for (const monitored of parts) {
      const monitor = loadPolicy(policyDir((f) => {
        for (const id of monitored) (id === 'model' ? f.risk.model : f.risk.factors[id]).mode = 'monitor';
      }));
      const without = loadPolicy(policyDir((f) => {
        for (const id of monitored) if (id === 'model') f.risk.model.weight = 0; else f.risk.factors[id].enabled = false;
      }));
      for (const c of CASES) {
        const label = `${monitored.join('+')} / ${c.name}`;
        const m = run(monitor, c, history);
        const e = run(enforced, c, history);
        const w = run(without, c, history);
        assert.deepEqual(comparable(m.monitor!.assessment), comparable(e.assessment), label);
        assert.deepEqual(m.monitor!.decision, e.decision, label);
        assert.equal(m.assessment.score, w.assessment.score, label);
        assert.equal(m.assessment.level, w.assessment.level, label);
        assert.deepEqual(m.decision, w.decision, label);
        assert.deepEqual(m.assessment.reasons.filter((r) => !r.monitor && r.factor !== 'model').map((r) => r.factor).sort(),
          w.assessment.reasons.filter((r) => r.factor !== 'model').map((r) => r.factor).sort(), label);
        if (m.decision.decision !== m.monitor!.decision.decision) differing += 1;
      }
    }
    assert.ok(differing >= 3, `monitoring changed the enforced decision in ${differing} cases: the property is not vacuous`);
  });

  it('an error in a monitored part does not make the enforced outcome the strictest; the monitor outcome records it', () => {
    const p = loadPolicy(policyDir((f) => { f.risk.model.mode = 'monitor'; }));
    const broken = { ...p, forest: { ...p.forest, probability: () => { throw new Error('corrupt tree'); } } };
    const r = assess({ context: ctx(), user: history, ip: emptyIpHistory(), policy: broken, amr: ['pwd'] });
    assert.deepEqual(r.assessment.errors, []);
    assert.equal(r.assessment.level, 'low');
    assert.equal(r.decision.decision, 'allow');
    assert.deepEqual(r.monitor!.assessment.errors, ['model: corrupt tree']);
    assert.equal(r.monitor!.assessment.level, 'critical');
    assert.equal(r.monitor!.decision.decision, 'block');
    // An enforced part that fails still gives the strictest outcome.
    const f = loadPolicy(policyDir((x) => { x.risk.factors.new_os.mode = 'monitor'; }));
    const alsoBroken = { ...f, forest: broken.forest };
    assert.equal(assess({ context: ctx(), user: history, ip: emptyIpHistory(), policy: alsoBroken, amr: ['pwd'] }).assessment.level, 'critical');
  });

  describe('the whole policy in monitor mode', () => {
    let whole: CompiledPolicy;

    before(() => {
      whole = loadPolicy(policyDir((f) => {
        f.risk.mode = 'monitor';
        f.assurance.clients = { admin: { low: 'aal2' } };
      }));
    });

    it('enforces what assurance.yml gives at level low, and records the decision the policy implies', () => {
      for (const c of CASES) {
        const r = run(whole, c, history);
        const e = run(enforced, c, history);
        assert.equal(r.assessment.level, 'low', c.name);
        assert.equal(r.assessment.score, 0, c.name);
        assert.deepEqual(r.assessment.errors, [], c.name);
        assert.ok(r.assessment.reasons.every((x) => x.monitor === true), c.name);
        assert.deepEqual(r.decision, decide({ level: 'low', clientId: c.context.clientId, scopes: c.context.scopes, achieved: (c.amr ?? ['pwd']).length > 1 ? 1 : 0 }, whole), c.name);
        assert.deepEqual(comparable(r.monitor!.assessment), comparable(e.assessment), c.name);
        assert.deepEqual(r.monitor!.decision, e.decision, c.name);
      }
      const travel = run(whole, CASES.find((x) => x.name === 'impossible travel')!, history);
      assert.equal(travel.decision.decision, 'allow');
      assert.equal(travel.monitor!.decision.decision, 'block');
      assert.equal(travel.monitor!.assessment.level, 'critical');
    });

    it('still applies what is not risk: the client and operation maps at low, and what the relying party asks for', () => {
      const travel = CASES.find((x) => x.name === 'impossible travel')!.context;
      const admin = assess({ context: { ...travel, clientId: 'admin' }, user: history, ip: emptyIpHistory(), policy: whole, amr: ['pwd'] });
      assert.equal(admin.decision.decision, 'step_up');
      assert.deepEqual(admin.decision.because, ['clients.admin.low']);
      const pay = assess({ context: { ...travel, scopes: ['openid', 'payments:write'] }, user: history, ip: emptyIpHistory(), policy: whole, amr: ['pwd'] });
      assert.equal(pay.decision.required, 'aal2');
      const asked = assess({ context: travel, user: history, ip: emptyIpHistory(), policy: whole, amr: ['pwd'], requested: { index: 2, because: ['acr_values'] } });
      assert.equal(asked.decision.required, 'aal3');
      assert.deepEqual(asked.decision.because, ['acr_values']);
      assert.equal(asked.monitor!.decision.decision, 'block');
    });

    it('does not act on an error either, and records it', () => {
      const broken = { ...whole, forest: { ...whole.forest, probability: () => Number.NaN } };
      const r = assess({ context: ctx(), user: history, ip: emptyIpHistory(), policy: broken, amr: ['pwd'] });
      assert.equal(r.decision.decision, 'allow');
      assert.equal(r.monitor!.assessment.level, 'critical');
      assert.match(r.monitor!.assessment.errors[0]!, /^model: model returned NaN/);
    });
  });

  it('judges template learning by the stricter of the enforced and the monitored level', () => {
    assert.equal(templateLevel('low'), 'low');
    assert.equal(templateLevel('low', 'high'), 'high');
    assert.equal(templateLevel('medium', 'low'), 'medium');
  });

  it('replays a policy in monitor mode: enforced decisions grow the history, the summary counts what it would have done', () => {
    const places: Record<string, Place> = { '81.2.69.142': LONDON, '1.1.1.1': SYDNEY };
    const at = (d: number, hhmm: string) => `2026-03-0${d}T${hhmm}:00.000Z`;
    let n = 0;
    const ev = (e: Omit<LoginEvent, 'id'>): LoginEvent => ({ id: `e${(n += 1)}`, clientId: 'web', scope: 'openid', ...e });
    const events: LoginEvent[] = [
      ...[1, 2, 3, 4, 5].map((d) => ev({ ts: at(d, '09:00'), user: 'alice', ip: '81.2.69.142', userAgent: FIREFOX_UA, deviceId: 'laptop', success: true, label: 'legit' })),
      ev({ ts: at(5, '09:20'), user: 'alice', ip: '1.1.1.1', userAgent: SAFARI_UA, success: true, mfa: 'fail', label: 'attack', attackType: 'impossible_travel' }),
      // The next login sees the Sydney one as trusted only if it was let in.
      ev({ ts: at(6, '09:00'), user: 'alice', ip: '1.1.1.1', userAgent: SAFARI_UA, success: true, label: 'attack', attackType: 'targeted' }),
    ];
    const rules = (patch: (f: PolicyFiles) => void = () => {}) => loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; f.assurance.default.critical = 'block'; patch(f); }));
    const replay = (p: CompiledPolicy) => {
      const r = new Replayer(p, (ip) => places[ip] ?? { scope: 'public' });
      const summary = new Summary();
      const scored = events.map((e) => { const s = r.process(e); summary.add(s, e.success); return s!; });
      return { scored, summary: summary.toJSON(), history: r.users.get('alice')! };
    };
    const live = replay(rules());
    const trial = replay(rules((f) => { f.risk.mode = 'monitor'; }));
    assert.equal(live.summary.monitor, undefined);
    assert.deepEqual(live.scored.map((s) => s.decision.decision), ['allow', 'allow', 'allow', 'allow', 'allow', 'block', 'step_up']);
    assert.deepEqual(trial.scored.map((s) => s.decision.decision), ['allow', 'allow', 'allow', 'allow', 'allow', 'allow', 'allow']);
    // Up to the first difference the monitor outcome is exactly the enforcing policy's.
    for (let i = 0; i < 6; i += 1) assert.deepEqual(trial.scored[i]!.monitor!.decision, live.scored[i]!.decision, events[i]!.id);
    // The Sydney login was let in, so it joined the history (live semantics): Sydney is known the next day.
    assert.equal(trial.history.trusted, 7);
    assert.equal(live.history.trusted, 5);
    assert.equal(trial.scored[6]!.monitor!.assessment.reasons.some((r) => r.factor === 'new_country'), false);
    assert.deepEqual(trial.summary.decisions, { allow: 7, step_up: 0, block: 0 });
    const m = trial.summary.monitor!;
    assert.equal(m.scored, 7);
    assert.equal(m.decisions.block, 1);
    assert.equal(m.decisions.allow + m.decisions.step_up + m.decisions.block, 7);
    assert.equal(m.differs, m.decisions.step_up + m.decisions.block);
    assert.equal(m.levels.critical, 1);
    assert.deepEqual(m.legit, { n: 5, flagged: 0, blocked: 0 });
    assert.equal(m.attack.n, 2);
    assert.equal(m.attack.blocked, 1);
  });

  it('counts monitor decisions by decision and level on /metrics', async () => {
    const metrics = new Metrics();
    const events = new Events(createLogger('silent'), metrics);
    const before = (await metrics.render()).body;
    assert.match(before, /^# TYPE idp_risk_monitor_decisions_total counter$/m);
    assert.doesNotMatch(before, /^idp_risk_monitor_decisions_total\{/m);
    events.count('idp_risk_monitor_decisions_total', { decision: 'block', level: 'critical' });
    events.count('idp_risk_monitor_decisions_total', { decision: 'block', level: 'critical' });
    events.count('idp_risk_monitor_decisions_total', { decision: 'allow', level: 'low' });
    events.count('idp_risk_monitor_decisions_total', { decision: 'allow', level: 'not-a-level' });
    const text = (await metrics.render()).body;
    assert.match(text, /^idp_risk_monitor_decisions_total\{decision="block",level="critical"\} 2$/m);
    assert.match(text, /^idp_risk_monitor_decisions_total\{decision="allow",level="low"\} 1$/m);
    // A label value outside the fixed set is counted as `other`, never shown.
    assert.match(text, /^idp_risk_monitor_decisions_total\{decision="allow",level="other"\} 1$/m);
  });
});

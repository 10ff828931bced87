/**
 * The risk engine as a library: plain data in, explained decisions out. No server, no
 * database (ARCHITECTURE.md: policies/ has no I/O in its core).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { assess } from '../../policies/assess.ts';
import { decide } from '../../policies/decision.ts';
import { compileForest, loadModel, serialiseModel, sha256Hex, trainForest } from '../../policies/forest.ts';
import { emptyIpHistory, emptyUserHistory, hourOfWeek, observe, recordTrusted } from '../../policies/history.ts';
import { rocAuc, tprAtFpr } from '../../policies/metrics.ts';
import { loadPolicy, type CompiledPolicy } from '../../policies/policy.ts';
import { levelOf, scoreLogin } from '../../policies/score.ts';
import { computeSignals, distanceKm, FEATURE_NAMES, featureVector } from '../../policies/signals.ts';
import { Rng } from '../../policies/synth.ts';
import type { LoginContext, Place, UserHistory } from '../../policies/types.ts';
import { parseAgent } from '../../policies/ua.ts';
import { makePolicyDir } from '../helpers/policy.ts';

const LONDON: Place = { scope: 'public', country: 'GB', region: 'England', city: 'London', lat: 51.5, lon: -0.12, asn: 2856, asOrg: 'BT' };
const SYDNEY: Place = { scope: 'public', country: 'AU', region: 'NSW', city: 'Sydney', lat: -33.87, lon: 151.21, asn: 1221, asOrg: 'Telstra' };
const FIREFOX = parseAgent('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0');
const T0 = Date.parse('2026-03-02T09:00:00Z'); // a Monday

const ctx = (over: Partial<LoginContext> = {}): LoginContext => ({
  ts: T0, user: 'u1', ip: '81.2.69.142', place: LONDON, agent: FIREFOX, deviceId: 'dev-1', clientId: 'app', scopes: ['openid'], ...over,
});

/** A user with `n` trusted logins from London on one device, a day apart. */
function londoner(policy: CompiledPolicy, n = 5): UserHistory {
  const h = emptyUserHistory();
  const ip = emptyIpHistory();
  for (let i = 0; i < n; i += 1) observe(h, ip, ctx({ ts: T0 - (n - i) * 86_400_000 }), { kind: 'password_ok', decision: 'allow' }, policy.risk);
  return h;
}

describe('risk engine', () => {
  let policy: CompiledPolicy;
  let rulesOnly: CompiledPolicy;

  before(() => {
    policy = loadPolicy(makePolicyDir());
    // Model weight 0: scores are the rules alone, so they can be asserted exactly.
    rulesOnly = loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; }));
  });

  describe('signals', () => {
    it('measures great-circle distance', () => {
      assert.ok(Math.abs(distanceKm(51.5, -0.12, 48.86, 2.35) - 343) < 5, 'London–Paris ≈ 343 km');
      assert.ok(Math.abs(distanceKm(51.5, -0.12, -33.87, 151.21) - 16_990) < 50, 'London–Sydney ≈ 17 000 km');
      assert.equal(distanceKm(10, 10, 10, 10), 0);
    });

    it('sees novelty and frequency against the user history', () => {
      const h = londoner(policy);
      const known = computeSignals(ctx(), h, emptyIpHistory(), policy.risk, policy.lists);
      assert.deepEqual(known.novel, { ip: false, asn: false, country: false, city: false, device: false, browser: false, os: false });
      assert.equal(known.freq.country, 1);
      assert.equal(known.confidence, 1);
      assert.equal(known.lastSeenDays.device, 1, 'last seen yesterday');
      assert.equal(known.lastSeenDays.ip, 1);
      const other = computeSignals(ctx({ ip: '1.1.1.1', place: SYDNEY, deviceId: 'dev-2', agent: parseAgent('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15') }), h, emptyIpHistory(), policy.risk, policy.lists);
      assert.deepEqual(other.novel, { ip: true, asn: true, country: true, city: true, device: true, browser: true, os: true });
      assert.equal(other.freq.country, 0);
      assert.equal(other.lastSeenDays.country, undefined);
    });

    it('computes travel speed since the last trusted login', () => {
      const h = londoner(policy);
      const s = computeSignals(ctx({ ts: T0 - 86_400_000 + 30 * 60_000, place: SYDNEY }), h, emptyIpHistory(), policy.risk, policy.lists);
      assert.ok(s.distanceKm! > 16_000);
      assert.ok(Math.abs(s.hoursSinceLast! - 0.5) < 1e-9);
      assert.ok(s.speedKmh! > 30_000);
    });

    it('counts recent failures for the account and the IP, and distinct accounts from an IP', () => {
      const h = emptyUserHistory();
      const ip = emptyIpHistory();
      for (let i = 0; i < 4; i += 1) observe(h, ip, ctx({ ts: T0 + i * 1000 }), { kind: 'password_failed' }, policy.risk);
      for (let i = 0; i < 6; i += 1) observe(emptyUserHistory(), ip, ctx({ ts: T0 + i * 1000, user: `other${i}` }), { kind: 'password_failed' }, policy.risk);
      const s = computeSignals(ctx({ ts: T0 + 10_000 }), h, ip, policy.risk, policy.lists);
      assert.equal(s.accountFailures, 4);
      assert.equal(s.ipFailures, 10);
      assert.equal(s.ipDistinctAccounts, 7);
      // Outside the window they no longer count.
      const later = computeSignals(ctx({ ts: T0 + 2 * 3_600_000 }), h, ip, policy.risk, policy.lists);
      assert.equal(later.accountFailures, 0);
      assert.equal(later.ipFailures, 0);
    });

    it('applies the network lists', () => {
      const p = loadPolicy(makePolicyDir((f) => {
        f.lists.tor_exit_addresses = ['185.220.101.1'];
        f.lists.vpn_proxy_networks = ['198.18.0.0/15'];
        f.lists.trusted_networks = ['2001:db8::/32'];
        f.lists.hosting_asns = [16509];
      }));
      const s = (ip: string, asn?: number) => computeSignals(ctx({ ip, place: { ...LONDON, asn } }), emptyUserHistory(), emptyIpHistory(), p.risk, p.lists);
      assert.equal(s('185.220.101.1').tor, true);
      assert.equal(s('185.220.101.2').tor, false);
      assert.equal(s('198.19.4.4').vpn, true);
      assert.equal(s('2001:db8::1').trustedNetwork, true);
      assert.equal(s('52.95.110.1', 16509).hosting, true);
    });

    it('reports cold start as low confidence', () => {
      const s = computeSignals(ctx(), londoner(policy, 1), emptyIpHistory(), policy.risk, policy.lists);
      assert.ok(s.confidence > 0 && s.confidence < 1);
      assert.equal(s.lowConfidence, true);
      assert.equal(computeSignals(ctx(), emptyUserHistory(), emptyIpHistory(), policy.risk, policy.lists).confidence, 0);
    });

    it('computes the hour-of-week habit', () => {
      assert.equal(hourOfWeek(T0), 9);
      const s = computeSignals(ctx(), londoner(policy), emptyIpHistory(), policy.risk, policy.lists);
      assert.equal(s.hourFraction, 1, 'all past logins at 09:00 UTC');
      const night = computeSignals(ctx({ ts: T0 + 12 * 3_600_000 }), londoner(policy), emptyIpHistory(), policy.risk, policy.lists);
      assert.equal(night.hourFraction, 0);
    });

    it('builds a fixed-length feature vector', () => {
      const s = computeSignals(ctx(), londoner(policy), emptyIpHistory(), policy.risk, policy.lists);
      const f = featureVector(s, ctx());
      assert.equal(f.length, FEATURE_NAMES.length);
      assert.ok([...f].every(Number.isFinite));
    });
  });

  describe('scoring', () => {
    it('scores a familiar login low, with the model as its only reason', () => {
      const a = scoreLogin(ctx(), computeSignals(ctx(), londoner(rulesOnly), emptyIpHistory(), rulesOnly.risk, rulesOnly.lists), rulesOnly);
      assert.equal(a.score, 0);
      assert.equal(a.level, 'low');
      assert.deepEqual(a.reasons.map((r) => r.factor), ['model']);
      assert.equal(a.policyVersion, rulesOnly.version);
      assert.equal(a.modelVersion, rulesOnly.forest.version);
      assert.deepEqual(a.errors, []);
    });

    it('explains impossible travel with each factor and its contribution', () => {
      const c = ctx({ ts: T0 - 86_400_000 + 30 * 60_000, ip: '1.1.1.1', place: SYDNEY, deviceId: 'dev-9' });
      const a = scoreLogin(c, computeSignals(c, londoner(rulesOnly), emptyIpHistory(), rulesOnly.risk, rulesOnly.lists), rulesOnly);
      const f = rulesOnly.risk.factors;
      const by = Object.fromEntries(a.reasons.map((r) => [r.factor, r.contribution]));
      assert.equal(by.impossible_travel, f.impossible_travel.weight);
      assert.equal(by.new_country, f.new_country.weight);
      assert.equal(by.new_device, f.new_device.weight);
      const expected = f.impossible_travel.weight + f.new_country.weight + f.new_device.weight + f.new_asn.weight + f.new_city.weight + f.new_ip.weight;
      assert.ok(Math.abs(a.score - Math.min(1, expected)) < 1e-9, `${a.score} vs ${expected}`);
      assert.match(a.reasons.find((r) => r.factor === 'impossible_travel')!.detail!, /km\/h/);
      assert.equal(a.level, levelOf(a.score, rulesOnly.risk.levels));
      assert.equal(a.reasons[0]!.factor, 'impossible_travel', 'largest contribution first');
    });

    it('does not call travel impossible to a city the user has signed in from before (except_known_city), and does without the exception', () => {
      // A Londoner who has signed in from Sydney before; an hour after a London login, Sydney again.
      const h = londoner(rulesOnly);
      observe(h, emptyIpHistory(), ctx({ ts: T0 - 20 * 86_400_000, ip: '1.1.1.1', place: SYDNEY }), { kind: 'password_ok', decision: 'allow' }, rulesOnly.risk);
      observe(h, emptyIpHistory(), ctx({ ts: T0 - 3_600_000 }), { kind: 'password_ok', decision: 'allow' }, rulesOnly.risk);
      const c = ctx({ ip: '1.1.1.1', place: SYDNEY });
      const fires = (p: CompiledPolicy, user: UserHistory) => scoreLogin(c, computeSignals(c, structuredClone(user), emptyIpHistory(), p.risk, p.lists), p).reasons.some((r) => r.factor === 'impossible_travel');
      assert.equal(fires(rulesOnly, h), false, 'a known city');
      const homebody = londoner(rulesOnly);
      observe(homebody, emptyIpHistory(), ctx({ ts: T0 - 3_600_000 }), { kind: 'password_ok', decision: 'allow' }, rulesOnly.risk);
      assert.equal(fires(rulesOnly, homebody), true, 'an unknown city, as fast');
      const strict = loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; f.risk.factors.impossible_travel.except_known_city = false; }));
      assert.equal(fires(strict, h), true, 'without the exception');
    });

    it('does not call everything new for a user without history', () => {
      const a = scoreLogin(ctx(), computeSignals(ctx(), emptyUserHistory(), emptyIpHistory(), rulesOnly.risk, rulesOnly.lists), rulesOnly);
      assert.equal(a.reasons.filter((r) => r.factor.startsWith('new_')).length, 0);
      assert.equal(a.level, 'low');
    });

    it('raises low-confidence logins to the cold-start floor', () => {
      const p = loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; f.risk.cold_start.minimum_level = 'medium'; }));
      const a = scoreLogin(ctx(), computeSignals(ctx(), emptyUserHistory(), emptyIpHistory(), p.risk, p.lists), p);
      assert.equal(a.level, 'medium');
      assert.ok(a.reasons.some((r) => r.factor === 'cold_start'));
    });

    it('lets a trusted network lower the score, clamped at 0', () => {
      const p = loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; f.lists.trusted_networks = ['81.2.69.0/24']; }));
      const a = scoreLogin(ctx(), computeSignals(ctx(), londoner(p), emptyIpHistory(), p.risk, p.lists), p);
      assert.ok(a.reasons.some((r) => r.factor === 'trusted_network' && r.contribution < 0));
      assert.equal(a.score, 0);
    });

    it('gives the strictest outcome, and says why, when the model fails', () => {
      const broken = { ...rulesOnly, forest: { ...rulesOnly.forest, probability: () => { throw new Error('corrupt tree'); } } };
      const a = scoreLogin(ctx(), computeSignals(ctx(), londoner(rulesOnly), emptyIpHistory(), rulesOnly.risk, rulesOnly.lists), broken);
      assert.equal(a.level, 'critical');
      assert.equal(a.score, 1);
      assert.deepEqual(a.errors, ['model: corrupt tree']);
      const nan = { ...rulesOnly, forest: { ...rulesOnly.forest, probability: () => Number.NaN } };
      assert.equal(scoreLogin(ctx(), computeSignals(ctx(), londoner(rulesOnly), emptyIpHistory(), rulesOnly.risk, rulesOnly.lists), nan).level, 'critical');
    });

    describe('evidence about a shared address (office or carrier NAT)', () => {
      /** Failures from the login's address by `n` other accounts, minutes ago. */
      const strangers = (n: number) => {
        const ip = emptyIpHistory();
        for (let i = 0; i < n; i += 1) ip.failures.push({ ts: T0 - 5 * 60_000 + i, user: `made-up-${i}` });
        return ip;
      };

      it('raises the level at most to the cap, and says why; not at all for a recognised browser on a known network', async () => {
        // The rules alone would make this critical: stuffing + IP failures + a heavy weight.
        const p = loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; f.risk.factors.credential_stuffing.weight = 0.9; }));
        const history = londoner(p);
        // A browser the user has not logged in with, on their usual network.
        const stranger = ctx({ deviceId: 'dev-new' });
        const s = computeSignals(stranger, history, strangers(12), p.risk, p.lists);
        assert.equal(s.ipDistinctAccounts, 12);
        const a = scoreLogin(stranger, s, p);
        assert.equal(a.level, 'high', `score ${a.score}`);
        assert.ok(a.score < p.risk.levels.critical);
        const cap = a.reasons.find((r) => r.factor === 'shared_address');
        assert.ok(cap && cap.contribution < 0, 'the cap is a reason, with what it took off');
        assert.match(cap.detail!, /at most to high \(own evidence alone: (low|medium)\)/);
        // The reasons still add up to the score.
        assert.ok(Math.abs(a.reasons.reduce((sum, r) => sum + r.contribution, 0) - a.score) < 1e-9);
        // Without the cap the same login is blocked-level: the cap is what made the difference.
        const uncapped = loadPolicy(makePolicyDir((f) => {
          f.risk.model.weight = 0; f.risk.factors.credential_stuffing.weight = 0.9; f.risk.shared_address = { max_level: 'critical', recognised_max_level: 'critical' };
        }));
        assert.equal(scoreLogin(stranger, computeSignals(stranger, londoner(uncapped), strangers(12), uncapped.risk, uncapped.lists), uncapped).level, 'critical');

        // The user's own browser on their usual network: address evidence counts for nothing.
        const own = scoreLogin(ctx(), computeSignals(ctx(), history, strangers(12), p.risk, p.lists), p);
        assert.equal(own.level, 'low', `score ${own.score}`);
        assert.match(own.reasons.find((r) => r.factor === 'shared_address')!.detail!, /recognised browser on a known network/);
      });

      it('does not cap when the account\'s own evidence is bad as well', () => {
        const p = loadPolicy(makePolicyDir((f) => { f.risk.model.weight = 0; f.lists.tor_exit_addresses = ['1.1.1.1']; }));
        const c = ctx({ ts: T0 - 86_400_000 + 30 * 60_000, ip: '1.1.1.1', place: SYDNEY, deviceId: 'dev-9' });
        const own = scoreLogin(c, computeSignals(c, londoner(p), emptyIpHistory(), p.risk, p.lists), p);
        assert.equal(own.level, 'critical', 'impossible travel from a Tor exit on a new device');
        const withStrangers = scoreLogin(c, computeSignals(c, londoner(p), strangers(12), p.risk, p.lists), p);
        assert.equal(withStrangers.level, 'critical');
        assert.ok(!withStrangers.reasons.some((r) => r.factor === 'shared_address'));
      });

      it('caps the model\'s per-address features too, with the shipped model', () => {
        const s = computeSignals(ctx(), londoner(policy), strangers(40), policy.risk, policy.lists);
        const a = scoreLogin(ctx(), s, policy);
        assert.notEqual(a.level, 'critical', `score ${a.score}: ${a.reasons.map((r) => r.factor).join(', ')}`);
      });
    });

    it('gives the strictest outcome when a rule fails', () => {
      const s = computeSignals(ctx(), londoner(rulesOnly), emptyIpHistory(), rulesOnly.risk, rulesOnly.lists);
      Object.defineProperty(s, 'tor', { get() { throw new Error('list unavailable'); } });
      const a = scoreLogin(ctx(), s, rulesOnly);
      assert.equal(a.level, 'critical');
      assert.ok(a.errors.includes('tor_exit: list unavailable'), a.errors.join('; '));
    });
  });

  describe('history', () => {
    it('live recording (observations, then recordTrusted at finish) builds what the simulator\'s observe builds', () => {
      const replayed = emptyUserHistory();
      const replayIp = emptyIpHistory();
      const live = emptyUserHistory();
      const failures: number[] = [];
      const steps: [number, 'fail' | 'allow' | 'block'][] = [[0, 'fail'], [60_000, 'allow'], [120_000, 'fail'], [180_000, 'block'], [240_000, 'allow']];
      for (const [dt, kind] of steps) {
        const c = ctx({ ts: T0 + dt });
        if (kind === 'fail') {
          observe(replayed, replayIp, c, { kind: 'password_failed' }, policy.risk);
          failures.push(c.ts);
        } else {
          observe(replayed, replayIp, c, { kind: 'password_ok', decision: kind }, policy.risk);
          if (kind === 'allow') recordTrusted(live, c, policy.risk, true);
        }
      }
      // Live keeps failures as records and counts those after the last trusted login.
      live.failures = failures.filter((t) => t > live.last!.ts);
      assert.deepEqual({ ...live, recent: [] }, { ...replayed, recent: [] });
    });
  });

  describe('a user repeating ordinary logins from one place', () => {
    // Seen against an OpenID conformance suite: one test user logging in again and again
    // from one address behind a local TLS proxy, often from a fresh browser profile, had 23
    // of its first 55 logins scored medium. Whatever the browser keeps, such a user must
    // settle to low within a few logins and stay there.
    const HEADLESS = parseAgent('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36');
    const cases: [string, Place, 'kept' | 'fresh' | 'none'][] = [
      ['loopback, cookie kept', { scope: 'loopback' }, 'kept'],
      ['loopback, a fresh browser every time', { scope: 'loopback' }, 'fresh'],
      ['private address, no cookie at all', { scope: 'private' }, 'none'],
      ['public address, a fresh browser every time', LONDON, 'fresh'],
    ];
    for (const [name, place, cookie] of cases) {
      it(`settles to low: ${name}`, () => {
        for (const gap of [20_000, 300_000, 3_600_000]) {
        const user = emptyUserHistory();
        const ip = emptyIpHistory();
        const levels: string[] = [];
        for (let i = 0; i < 55; i += 1) {
          const c = ctx({
            ts: T0 + i * gap, ip: place.scope === 'public' ? '81.2.69.142' : place.scope === 'loopback' ? '127.0.0.1' : '172.17.0.2', place, agent: HEADLESS,
            deviceId: cookie === 'kept' ? 'profile-1' : cookie === 'fresh' ? `profile-${i}` : undefined,
          });
          const r = assess({ context: c, user, ip, policy, amr: ['pwd'] });
          levels.push(r.assessment.level);
          observe(user, ip, c, { kind: 'password_ok', decision: r.decision.decision, level: r.assessment.level }, policy.risk);
        }
        const notLow = levels.map((l, i) => [i + 1, l] as const).filter(([, l]) => l !== 'low');
        assert.ok(notLow.every(([n]) => n <= 3), `${gap / 1000} s apart, not low after the third login: ${JSON.stringify(notLow)}`);
        }
      });
    }
  });

  describe('assurance decision', () => {
    it('maps the level to an assurance level and takes the strictest of default, client and operation', () => {
      const p = loadPolicy(makePolicyDir((f) => { f.assurance.clients = { admin: { low: 'aal2' } }; f.assurance.default.critical = 'block'; }));
      assert.deepEqual(decide({ level: 'low', scopes: ['openid'], achieved: 0 }, p), { decision: 'allow', required: 'aal1', requiredAcr: 'urn:adaptive-idp:aal1', because: ['default.low'] });
      assert.equal(decide({ level: 'medium', scopes: [], achieved: 0 }, p).decision, 'step_up');
      assert.equal(decide({ level: 'medium', scopes: [], achieved: 1 }, p).decision, 'allow');
      assert.deepEqual(decide({ level: 'critical', scopes: [], achieved: 2 }, p), { decision: 'block', because: ['default.critical'] });
      const admin = decide({ level: 'low', clientId: 'admin', scopes: [], achieved: 0 }, p);
      assert.equal(admin.required, 'aal2');
      assert.deepEqual(admin.because, ['clients.admin.low']);
      const pay = decide({ level: 'high', scopes: ['openid', 'payments:write'], achieved: 1 }, p);
      assert.equal(pay.decision, 'step_up');
      assert.equal(pay.requiredAcr, 'urn:adaptive-idp:aal3');
      assert.deepEqual(pay.because, ['operations.payments:write.high']);
    });

    it('raises the requirement to what the relying party asked for, never lowers it', () => {
      const p = loadPolicy(makePolicyDir((f) => { f.assurance.default.critical = 'block'; }));
      const asked = decide({ level: 'low', scopes: [], achieved: 0, requested: { index: 1, because: ['acr_values'] } }, p);
      assert.deepEqual(asked, { decision: 'step_up', required: 'aal2', requiredAcr: 'urn:adaptive-idp:aal2', because: ['acr_values'] });
      const lower = decide({ level: 'high', scopes: [], achieved: 0, requested: { index: 0, because: ['acr_values'] } }, p);
      assert.equal(lower.required, 'aal2');
      assert.deepEqual(lower.because, ['default.high']);
      assert.equal(decide({ level: 'critical', scopes: [], achieved: 2, requested: { index: 2, because: ['acr_values'] } }, p).decision, 'block');
    });
  });

  describe('history', () => {
    it('learns only from trusted outcomes, and stays capped', () => {
      const h = emptyUserHistory();
      const ip = emptyIpHistory();
      observe(h, ip, ctx(), { kind: 'password_ok', decision: 'block' }, policy.risk);
      observe(h, ip, ctx(), { kind: 'password_ok', decision: 'step_up' }, policy.risk);
      observe(h, ip, ctx(), { kind: 'password_ok', decision: 'step_up', mfa: 'fail' }, policy.risk);
      assert.equal(h.trusted, 0, 'blocked, unanswered and failed challenges teach nothing');
      observe(h, ip, ctx(), { kind: 'password_ok', decision: 'step_up', mfa: 'pass' }, policy.risk);
      assert.equal(h.trusted, 1);
      for (let i = 0; i < 50; i += 1) observe(h, ip, ctx({ ip: `10.0.0.${i}`, ts: T0 + i }), { kind: 'password_ok', decision: 'allow' }, policy.risk);
      assert.equal(Object.keys(h.ips).length, policy.risk.history.max_entries);
      assert.ok(h.ips['10.0.0.49'], 'the newest are kept');
    });
  });

  describe('metrics', () => {
    it('computes ROC AUC and TPR at a false-positive rate', () => {
      assert.equal(rocAuc([0.9, 0.8], [0.1, 0.2]), 1);
      assert.equal(rocAuc([0.1, 0.2], [0.9, 0.8]), 0);
      assert.equal(rocAuc([0.5], [0.5]), 0.5);
      assert.equal(rocAuc([0.9, 0.3], [0.5, 0.1]), 0.75);
      const neg = Array.from({ length: 100 }, (_, i) => i / 100);
      assert.equal(tprAtFpr([0.995, 0.985, 0.5], neg, 0.01), 2 / 3);
      assert.equal(tprAtFpr([0.995, 0.985, 0.5], neg, 0.05), 2 / 3);
      assert.equal(tprAtFpr([0.97], neg, 0.05), 1);
    });
  });

  describe('random forest', () => {
    it('compiles to the same votes as ml-random-forest, and refuses a tampered model', () => {
      const rng = new Rng(5);
      const X: number[][] = [];
      const y: number[] = [];
      for (let i = 0; i < 400; i += 1) {
        const row = Array.from({ length: FEATURE_NAMES.length }, () => Math.round(rng.next() * 10) / 10);
        X.push(row);
        y.push(row[2]! + row[10]! > 1 ? 1 : 0);
      }
      const { file, library } = trainForest(X, y, FEATURE_NAMES, { trees: 7, maxDepth: 6, maxFeatures: 0.6, minSamples: 3, seed: 3 }, { test: true });
      const forest = compileForest(file, 'test');
      // Every tree's vote, as the library's own trees predict it (rows × trees).
      const perTree = (library as unknown as { predictionValues(x: number[][]): { get(r: number, c: number): number } }).predictionValues(X);
      X.forEach((row, i) => {
        let votes = 0;
        for (let t = 0; t < 7; t += 1) votes += perTree.get(i, t) === 1 ? 1 : 0;
        assert.equal(forest.votes(row), Math.round((votes / 7) * 1e6) / 1e6, `row ${i}`);
      });
      // ml-random-forest's predictProbability drops the first tree (its reduce has no initial
      // value); ours counts every tree, and agrees with it whenever the first tree votes 0.
      const lib = library.predictProbability(X, 1);
      X.forEach((row, i) => { if (perTree.get(i, 0) === 0) assert.equal(forest.votes(row) - lib[i]!, 0, `row ${i}`); });
      const p = X.map((r) => forest.probability(r));
      assert.ok(rocAuc(p.filter((_, i) => y[i] === 1), p.filter((_, i) => y[i] === 0)) > 0.9, 'it learned something');

      const text = serialiseModel(file);
      const ok = loadModel(Buffer.from(text), sha256Hex(text), FEATURE_NAMES);
      assert.equal(ok.probability(X[0]!), forest.probability(X[0]!));
      assert.throws(() => loadModel(Buffer.from(text.replace('"threshold":[', '"threshold":[0.0001,')), sha256Hex(text), FEATURE_NAMES), /tampered or mismatched/);
      assert.throws(() => loadModel(Buffer.from(text), sha256Hex(text), [...FEATURE_NAMES, 'extra']), /other features/);
    });

    it('tells the progress of each tree and trains the very same forest while it does', () => {
      const rng = new Rng(9);
      const X = Array.from({ length: 200 }, () => Array.from({ length: FEATURE_NAMES.length }, () => Math.round(rng.next() * 10) / 10));
      const y = X.map((row) => (row[1]! > 0.5 ? 1 : 0));
      const opts = { trees: 5, maxDepth: 5, maxFeatures: 0.6, minSamples: 3, seed: 11 };
      const seen: [number, number][] = [];
      const watched = trainForest(X, y, FEATURE_NAMES, opts, {}, (done, total) => seen.push([done, total]));
      assert.deepEqual(seen, [[0, 5], [1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]);
      assert.equal(serialiseModel(watched.file), serialiseModel(trainForest(X, y, FEATURE_NAMES, opts, {}).file));
    });
  });

  it('keeps policies/ free of imports from idp/, interactions/ and adapters/', () => {
    const dir = path.join(import.meta.dirname, '..', '..', '..', 'policies');
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const src = fs.readFileSync(path.join(dir, f), 'utf8');
      for (const m of src.matchAll(/from '([^']+)'/g)) {
        assert.ok(!/^\.\.\/(idp|interactions|adapters)\//.test(m[1]!), `policies/${f} imports ${m[1]}`);
      }
    }
  });
});

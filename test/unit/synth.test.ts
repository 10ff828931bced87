/**
 * The synthetic login history (policies/synth.ts): properties the shipped model's training
 * data relies on, checked on the output only, so a generator that breaks them fails here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadPolicy } from '../../policies/policy.ts';
import { contextOf, Replayer } from '../../policies/simulate.ts';
import { distanceKm } from '../../policies/signals.ts';
import { Rng, sampleWorld, SCENARIOS, synthesize, type LoginEvent, type SynthOptions } from '../../policies/synth.ts';
import type { Place } from '../../policies/types.ts';
import { makePolicyDir } from '../helpers/policy.ts';

/** A small made-up world: the first octet picks a city, the second an ISP. */
const CITIES = [
  { country: 'GB', city: 'London', lat: 51.5, lon: -0.1 }, { country: 'FR', city: 'Lyon', lat: 45.8, lon: 4.8 },
  { country: 'AU', city: 'Sydney', lat: -33.9, lon: 151.2 }, { country: 'US', city: 'Denver', lat: 39.7, lon: -105 },
];
const ORGS = ['Home Broadband', 'Fibre Co', 'Mobile Telecom', 'Cloud Hosting'];
function placeOf(ip: string): Place {
  const [a = 0, b = 0] = ip.split('.').map(Number);
  if (a === 10) return { scope: 'private' };
  const c = CITIES[a % CITIES.length]!;
  return { scope: 'public', country: c.country, region: 'R', city: c.city, lat: c.lat, lon: c.lon, asn: 1000 + (b % 4) + 10 * (a % 4), asOrg: ORGS[b % 4] };
}

const SMALL: Omit<SynthOptions, 'seed'> = { users: 80, days: 20, start: '2026-01-05T00:00:00Z', victimRate: 0.5, stuffingPerDay: 1, sharedNatRate: 0.3 };

function run(seed: number, opts: Partial<SynthOptions> = {}): LoginEvent[] {
  const rng = new Rng(seed);
  const world = sampleWorld(rng, placeOf, 20_000);
  return [...synthesize({ seed, ...SMALL, ...opts }, world, rng)];
}

const BIG: Partial<SynthOptions> = { users: 600, days: 30, victimRate: 0.3, stuffingPerDay: 2, sharedNatRate: 0.1 };
const big = (() => {
  let cached: LoginEvent[] | undefined;
  return () => (cached ??= run(7, BIG));
})();

const ms = (e: LoginEvent) => Date.parse(e.ts);
const ATO = new Set(['naive', 'vpn_hosting', 'targeted', 'impossible_travel']);
/** |observed − expected| within four standard deviations of a binomial count. */
function nearBinomial(observed: number, n: number, p: number, what: string) {
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(observed - n * p) <= 4 * sd, `${what}: ${observed}, expected ${n * p} ± ${(4 * sd).toFixed(1)}`);
}

describe('synthetic login history', () => {
  it('is reproducible from its seed, and differs with another', () => {
    const a = run(3);
    assert.deepEqual(run(3), a);
    assert.notDeepEqual(run(4), a);
  });

  it('is in time order, each user\'s events strictly, with no time adjusted to get there', () => {
    for (const events of [run(5), big()]) {
      assert.ok(events.length > 500);
      const last = new Map<string, number>();
      const seen = new Set<number>();
      let repeated = 0;
      for (let i = 0; i < events.length; i += 1) {
        const e = events[i]!;
        const t = ms(e);
        assert.ok(i === 0 || t >= ms(events[i - 1]!), `event ${i} out of order`);
        const prev = last.get(e.user);
        assert.ok(prev === undefined || t > prev, `${e.id}: ${e.user} has two events at ${e.ts} or out of order`);
        last.set(e.user, t);
        if (seen.has(t)) repeated += 1;
        seen.add(t);
      }
      // A generator that holds its clock still (clamping late events to the latest time)
      // repeats times massively; independent millisecond times almost never do.
      assert.ok(repeated / events.length < 0.005, `${repeated} of ${events.length} events repeat an earlier time`);
      assert.ok(events.every((e) => e.ts >= SMALL.start), 'nothing before the start');
    }
  });

  it('labels every event, has every kind of attack, typos and stuffing failures', () => {
    const events = run(5);
    assert.ok(events.every((e) => e.label === 'legit' || (e.label === 'attack' && e.attackType)));
    const types = new Set(events.filter((e) => e.label === 'attack').map((e) => e.attackType));
    for (const t of ['naive', 'vpn_hosting', 'targeted', 'credential_stuffing', 'impossible_travel', 'griefing']) assert.ok(types.has(t as never), t);
    // Typos (a failure just before a success) and stuffing failures are both there.
    assert.ok(events.some((e) => e.label === 'legit' && !e.success));
    assert.ok(events.filter((e) => e.attackType === 'credential_stuffing' && !e.success).length > 20);
    assert.ok(events.every((e) => e.success || e.mfa === undefined), 'mfa only where the password was right');
  });

  it('makes every impossible-travel attack faster than 900 km/h from the victim\'s own last login', () => {
    for (const events of [run(5), big()]) {
      const lastLegit = new Map<string, LoginEvent>();
      let n = 0;
      for (const e of events) {
        if (e.label === 'legit' && e.success) lastLegit.set(e.user, e);
        if (e.attackType !== 'impossible_travel') continue;
        n += 1;
        const own = lastLegit.get(e.user);
        assert.ok(own, `${e.id}: no login of the victim before it`);
        const a = placeOf(own.ip);
        const b = placeOf(e.ip);
        assert.ok(a.lat !== undefined && a.lon !== undefined && b.lat !== undefined && b.lon !== undefined, `${e.id}: both ends located`);
        const km = distanceKm(a.lat, a.lon, b.lat, b.lon);
        const hours = (ms(e) - ms(own)) / 3_600_000;
        assert.ok(hours > 0 && hours <= 50 / 60, `${e.id}: ${(hours * 60).toFixed(1)} min after the victim's login`);
        // The shipped policy's impossible_travel factor: min_distance_km 300, max_speed_kmh 900.
        assert.ok(km >= 300 && km / hours > 900, `${e.id}: ${km.toFixed(0)} km in ${hours.toFixed(2)} h`);
      }
      assert.ok(n > 5, `${n} impossible-travel attacks`);
    }
  });

  it('attacks the configured share of users, one attack each, the kinds evenly, and bursts as configured', () => {
    const events = big();
    const users = BIG.users!;
    const byVictim = new Map<string, string[]>();
    for (const e of events) if (e.attackType && ATO.has(e.attackType)) byVictim.set(e.user, [...(byVictim.get(e.user) ?? []), e.attackType]);
    for (const [u, attacks] of byVictim) assert.equal(attacks.length, 1, `${u}: ${attacks.join(', ')}`);
    nearBinomial(byVictim.size, users, BIG.victimRate!, 'victims');
    const victims = byVictim.size;
    for (const t of ATO) nearBinomial([...byVictim.values()].filter((a) => a[0] === t).length, victims, 0.25, t);
    // One source address and browser per burst.
    const stuffing = events.filter((e) => e.attackType === 'credential_stuffing');
    assert.equal(new Set(stuffing.map((e) => `${e.ip} ${e.userAgent}`)).size, BIG.stuffingPerDay! * BIG.days!);
    nearBinomial(stuffing.filter((e) => e.success).length, stuffing.length, 0.03, 'stuffing hits');
  });

  it('puts many legitimate users behind shared addresses, with coworkers\' typos and griefers just before their logins', () => {
    const events = big();
    const shared = events.filter((e) => e.scenario === SCENARIOS.sharedNat || e.scenario === SCENARIOS.sharedNatGriefed);
    const logins = shared.filter((e) => e.success);
    assert.ok(logins.every((e) => e.label === 'legit'), 'every login from a shared address is legitimate');
    // Members: about the configured share of the users, many per address.
    const members = new Set(logins.map((e) => e.user));
    const users = BIG.users!;
    assert.ok(members.size >= 0.7 * users * BIG.sharedNatRate! && members.size <= users * BIG.sharedNatRate! + 4 * Math.sqrt(users * 0.1 * 0.9), `${members.size} members`);
    const perIp = new Map<string, Set<string>>();
    for (const e of logins) perIp.set(e.ip, (perIp.get(e.ip) ?? new Set()).add(e.user));
    assert.ok([...perIp.values()].every((s) => s.size >= 5), 'each shared address serves many users');

    // A griefed login follows at least five made-up usernames failing from its address, within minutes.
    const griefed = logins.filter((e) => e.scenario === SCENARIOS.sharedNatGriefed);
    assert.ok(griefed.length >= 10, `${griefed.length} logins after griefing`);
    for (const g of griefed) {
      const before = events.filter((e) => e.ip === g.ip && e.attackType === 'griefing' && ms(e) < ms(g) && ms(g) - ms(e) < 15 * 60_000);
      assert.ok(new Set(before.map((e) => e.user)).size >= 5, `${g.id}: ${before.length} griefing failures before it`);
      assert.ok(before.every((e) => !e.success && e.user.startsWith('unknown:')));
    }
    // Coworkers' typos: legitimate failures from the shared address on other accounts.
    const typos = shared.filter((e) => !e.success && e.label === 'legit');
    assert.ok(typos.length > 20, `${typos.length} coworker typos`);
    assert.ok(typos.every((e) => perIp.has(e.ip)));
    assert.ok(typos.some((e) => e.user.startsWith('unknown:')) && typos.some((e) => members.has(e.user)));
    // None of it when the option is off.
    assert.ok(!run(5, { sharedNatRate: 0 }).some((e) => e.scenario !== undefined || e.attackType === 'griefing'));
  });

  it('keeps the evaluation-only fields (label, attackType, scenario) away from the scorer', () => {
    const events = run(5);
    const policy = loadPolicy(makePolicyDir());
    const replay = (list: LoginEvent[]) => {
      const r = new Replayer(policy, placeOf);
      return list.map((e) => r.process(e)).filter((x) => x !== undefined).map((x) => ({ id: x.id, assessment: x.assessment, decision: x.decision }));
    };
    const stripped = events.map(({ label: _l, attackType: _a, scenario: _s, ...e }) => e);
    const relabelled = events.map((e) => ({ ...e, label: 'attack' as const, attackType: 'griefing' as const, scenario: 'anything_else' }));
    const reference = replay(events);
    assert.ok(reference.some((x) => x.decision.decision !== 'allow'), 'the replay decides something');
    assert.deepEqual(replay(stripped), reference);
    assert.deepEqual(replay(relabelled), reference);
    const shared = events.find((e) => e.scenario && e.success)!;
    const ctx = contextOf(shared, placeOf(shared.ip));
    for (const k of ['label', 'attackType', 'scenario', 'mfa']) assert.ok(!(k in ctx), k);
  });
});

/**
 * The synthetic login history (policies/synth.ts): properties the shipped model's training
 * data relies on, checked on the output only, so a generator that breaks them fails here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadPolicy } from '../../policies/policy.ts';
import { parseBehaviour } from '../../policies/behaviour.ts';
import { ATTACK_TYPES, parseEvent } from '../../policies/event.ts';
import { DETECTORS, keystrokeVector, pointerVector, templateScore } from '../../policies/keystroke.ts';
import { contextOf, Replayer } from '../../policies/simulate.ts';
import { distanceKm } from '../../policies/signals.ts';
import { parseCmuKeystrokes } from '../../policies/synth-behaviour.ts';
import { ATO_TYPES, DEFAULT_SYNTH, Rng, sampleWorld, SCENARIOS, synthesize, type LoginEvent, type SynthOptions } from '../../policies/synth.ts';
import type { Place } from '../../policies/types.ts';
import { cmuCsv } from '../helpers/cmu.ts';
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

const SMALL: Omit<SynthOptions, 'seed'> = { ...DEFAULT_SYNTH, users: 80, days: 20, start: '2026-01-05T00:00:00Z', victimRate: 0.5, stuffingPerDay: 1, sharedNatRate: 0.3 };

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
const ATO = new Set<string>(ATO_TYPES);
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
    for (const t of ATTACK_TYPES) assert.ok(types.has(t), t);
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

  it('attacks the configured share of users, one attack each, the six kinds evenly, and bursts as configured', () => {
    const events = big();
    const users = BIG.users!;
    const byVictim = new Map<string, string[]>();
    for (const e of events) if (e.attackType && ATO.has(e.attackType)) byVictim.set(e.user, [...(byVictim.get(e.user) ?? []), e.attackType]);
    for (const [u, attacks] of byVictim) assert.equal(attacks.length, 1, `${u}: ${attacks.join(', ')}`);
    nearBinomial(byVictim.size, users, BIG.victimRate!, 'victims');
    const victims = byVictim.size;
    for (const t of ATO) nearBinomial([...byVictim.values()].filter((a) => a[0] === t).length, victims, 1 / ATO.size, t);
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
    assert.ok(!run(5, { sharedNatRate: 0 }).some((e) => e.scenario === SCENARIOS.sharedNat || e.scenario === SCENARIOS.sharedNatGriefed || e.attackType === 'griefing'));
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

// --- behaviour, device keys and the scenarios of legitimate users -------------------------------

const MOBILE_UA = /Mobile|iPhone|Android/;
const successes = (events: LoginEvent[]) => events.filter((e) => e.success && e.label === 'legit');
/** A user agent without its version numbers: the browser family and OS. */
const kindOf = (ua: string) => ua.replace(/\d+/g, '#');
/**
 * The address a user's computer logs in from most, outside any named situation: their home
 * (work addresses and phones' carriers change almost every time).
 */
function homeOf(events: LoginEvent[], user: string): Place {
  const byIp = new Map<string, number>();
  for (const e of events) {
    if (e.user !== user || e.label !== 'legit' || !e.success || e.scenario !== undefined || MOBILE_UA.test(e.userAgent)) continue;
    if (placeOf(e.ip).scope === 'public') byIp.set(e.ip, (byIp.get(e.ip) ?? 0) + 1);
  }
  const [ip] = [...byIp].sort((a, b) => b[1] - a[1])[0] ?? [];
  return ip === undefined ? { scope: 'invalid' } : placeOf(ip);
}
const byUser = (events: LoginEvent[]) => {
  const m = new Map<string, LoginEvent[]>();
  for (const e of events) m.set(e.user, [...(m.get(e.user) ?? []), e]);
  return m;
};

describe('synthetic behaviour, device keys and legitimate scenarios', () => {
  it('writes only events the event format accepts, behaviour as the page\'s script would send it', () => {
    for (const events of [run(5), big()]) {
      const positions = new Map<string, number>();
      let typed = 0;
      for (const e of events) {
        assert.deepEqual(parseEvent(JSON.parse(JSON.stringify(e))), e, e.id);
        const b = e.behaviour;
        if (e.attackType === 'credential_stuffing' || e.attackType === 'griefing') assert.ok(!b && !e.deviceKey, `${e.id}: a script has no behaviour and no key`);
        if (!b) continue;
        if (MOBILE_UA.test(e.userAgent)) assert.equal(b.pointer, undefined, `${e.id}: a phone has no pointer`);
        if (b.unusable === 'composition') assert.match(e.userAgent, /Android/);
        if (!b.keystroke) continue;
        typed += 1;
        const k = b.keystroke;
        assert.deepEqual(parseBehaviour(JSON.stringify(b), k.hold.length), b, `${e.id}: the server keeps the sample`);
        k.dd.forEach((dd, i) => assert.equal(dd, k.hold[i]! + k.ud[i]!, `${e.id}: dd = hold + ud`));
        assert.ok([...k.hold, ...k.dd].every(Number.isInteger), 'whole milliseconds');
        if (e.label === 'legit' && !e.user.startsWith('unknown:')) {
          assert.ok(k.hold.length >= 8 && k.hold.length <= 16, `${e.id}: ${k.hold.length} positions`);
          assert.equal(positions.get(e.user) ?? k.hold.length, k.hold.length, `${e.user}: one password`);
          positions.set(e.user, k.hold.length);
        }
      }
      const legit = successes(events).length;
      assert.ok(typed > legit * 0.4, `${typed} typed samples, ${legit} legitimate logins`);
    }
  });

  it('gives a quarter of the users a password manager (never any timings), others corrections now and then', () => {
    const events = big();
    const managers = new Set<string>();
    const withBehaviour = new Set<string>();
    for (const e of successes(events)) {
      if (!e.behaviour) continue;
      withBehaviour.add(e.user);
      if (e.behaviour.unusable === 'autofill' || e.behaviour.unusable === 'paste') managers.add(e.user);
    }
    nearBinomial(managers.size, withBehaviour.size, DEFAULT_SYNTH.passwordManagerRate, 'password-manager users');
    assert.ok(!successes(events).some((e) => managers.has(e.user) && e.behaviour?.keystroke), 'a password manager never gives timings');
    const corrections = successes(events).filter((e) => e.behaviour?.unusable === 'correction').length;
    assert.ok(corrections > 100, `${corrections} corrections`);
    // Without JavaScript (1% of users): neither a sample nor a key, ever.
    const none = successes(events).filter((e) => !e.behaviour);
    assert.ok(none.length > 0 && none.every((e) => !e.deviceKey));
  });

  it('makes an attacker type and move unlike the victim, and the victim like themself', () => {
    // Everyone a victim of an attacker who matches all but the device and the person.
    const none = Object.fromEntries(ATO_TYPES.map((t) => [t, 0])) as SynthOptions['attackMix'];
    const events = run(9, { users: 300, days: 40, victimRate: 1, sharedNatRate: 0, attackMix: { ...none, same_network: 1, cookie_theft: 1 } });
    const users = byUser(events);
    const detector = DETECTORS.scaled_manhattan;
    const scores = { attack: [] as number[], own: [] as number[], attackPointer: [] as number[], ownPointer: [] as number[] };
    for (const a of events) {
      if (a.label !== 'attack' || !ATO.has(a.attackType!) || !a.behaviour) continue;
      const before = users.get(a.user)!.filter((e) => e.label === 'legit' && e.success && ms(e) < ms(a) && !MOBILE_UA.test(e.userAgent));
      const typed = before.filter((e) => e.behaviour?.keystroke).map((e) => keystrokeVector(e.behaviour!.keystroke!));
      if (a.behaviour.keystroke && typed.length >= 11) {
        const template = typed.slice(-31, -1);
        scores.attack.push(templateScore(detector, template, keystrokeVector(a.behaviour.keystroke)));
        scores.own.push(templateScore(detector, template, typed.at(-1)!));
      }
      const moved = before.filter((e) => e.behaviour?.pointer).map((e) => pointerVector(e.behaviour!.pointer!));
      if (a.behaviour.pointer && moved.length >= 11) {
        const template = moved.slice(-31, -1);
        scores.attackPointer.push(templateScore(detector, template, pointerVector(a.behaviour.pointer)));
        scores.ownPointer.push(templateScore(detector, template, moved.at(-1)!));
      }
    }
    const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
    // The victim's own next sample is typical of their template (the calibrated score of
    // policies/keystroke.ts: well under 0.5); the attacker's is not (typing more clearly than
    // the pointer).
    for (const [what, attack, own, above] of [['keystrokes', scores.attack, scores.own, 0.6], ['pointer', scores.attackPointer, scores.ownPointer, 0.2]] as const) {
      assert.ok(attack.length >= 40, `${what}: ${attack.length} attacks to compare`);
      assert.ok(mean(own) < 0.3, `${what}: the user's own mean score ${mean(own).toFixed(2)}`);
      assert.ok(mean(attack) > above, `${what}: attackers' mean score ${mean(attack).toFixed(2)}`);
    }
  });

  it('gives each browser a device key kept with its cookie: a lost cookie brings a new id and key, Safari\'s storage cap a new key only, a private window neither', () => {
    const events = big();
    const keyCount = new Map<string, number>();
    for (const e of successes(events)) if (e.deviceKey) keyCount.set(e.deviceKey, (keyCount.get(e.deviceKey) ?? 0) + 1);
    const seenIds = new Map<string, Set<string>>();
    const keyOfId = new Map<string, { key: string | undefined; ts: number }>();
    const counts = { lost: 0, evicted: 0, private: 0 };
    for (const e of successes(events)) {
      const ids = seenIds.get(e.user) ?? new Set();
      seenIds.set(e.user, ids);
      if (e.scenario === SCENARIOS.privateBrowsing) {
        counts.private += 1;
        assert.equal(e.deviceId, undefined, `${e.id}: a private window has no cookie`);
        if (e.deviceKey) assert.equal(keyCount.get(e.deviceKey), 1, `${e.id}: a private window's key is never seen again`);
        if (/Firefox/.test(e.userAgent)) assert.equal(e.deviceKey, undefined, `${e.id}: Firefox private windows have no IndexedDB`);
        continue;
      }
      assert.ok(e.deviceId, `${e.id}: a legitimate login outside a private window has a cookie`);
      const prev = keyOfId.get(e.deviceId);
      if (e.scenario === SCENARIOS.lostCookie) {
        counts.lost += 1;
        assert.ok(!ids.has(e.deviceId) && prev === undefined, `${e.id}: a lost cookie is replaced by a new one`);
        if (e.deviceKey) assert.ok(![...keyOfId.values()].some((v) => v.key === e.deviceKey), `${e.id}: and a new key`);
      } else if (e.scenario === SCENARIOS.storageEvicted) {
        counts.evicted += 1;
        assert.match(e.userAgent, /Version\/\d+.*Safari/, `${e.id}: only Safari caps script-writable storage`);
        assert.ok(prev && prev.key !== undefined && prev.key !== e.deviceKey, `${e.id}: the old cookie with a new key`);
        assert.ok(ms(e) - prev.ts > 7 * 86_400_000, `${e.id}: after 7 days unvisited`);
      } else if (prev) {
        assert.equal(e.deviceKey, prev.key, `${e.id}: a browser keeps its key while its storage lasts`);
      }
      ids.add(e.deviceId);
      keyOfId.set(e.deviceId, { key: e.deviceKey, ts: ms(e) });
    }
    assert.ok(counts.lost > 50 && counts.evicted > 20 && counts.private > 50, JSON.stringify(counts));
  });

  it('tags private browsing, lost cookies and travel at their intended rates', () => {
    const events = big();
    const users = BIG.users!;
    const legit = successes(events);
    const privateUsers = new Set(legit.filter((e) => e.scenario === SCENARIOS.privateBrowsing).map((e) => e.user));
    assert.ok(privateUsers.size <= users * DEFAULT_SYNTH.privateRate + 4 * Math.sqrt(users * 0.05 * 0.95) && privateUsers.size >= 0.5 * users * DEFAULT_SYNTH.privateRate, `${privateUsers.size} private-browsing users`);
    const theirs = legit.filter((e) => privateUsers.has(e.user));
    const share = theirs.filter((e) => e.scenario === SCENARIOS.privateBrowsing).length / theirs.length;
    assert.ok(share > 0.2 && share < 0.4, `${(share * 100).toFixed(1)}% of their logins from a private window`);
    const notPrivate = legit.filter((e) => e.scenario !== SCENARIOS.privateBrowsing && e.scenario !== SCENARIOS.sharedNatGriefed);
    nearBinomial(notPrivate.filter((e) => e.scenario === SCENARIOS.lostCookie).length, notPrivate.length, 0.02, 'lost cookies');
    // Travel: abroad, and only for the users on a trip (12%).
    const travel = legit.filter((e) => e.scenario === SCENARIOS.travel);
    const travellers = new Set(travel.map((e) => e.user));
    assert.ok(travel.length > 50 && travellers.size <= users * 0.12 + 4 * Math.sqrt(users * 0.12 * 0.88), `${travel.length} logins abroad by ${travellers.size} users`);
    const histories = byUser(events);
    for (const e of travel) {
      // Home: the country of most of the user's logins.
      const countries = new Map<string, number>();
      for (const x of histories.get(e.user)!) if (x.label === 'legit' && x.success) countries.set(placeOf(x.ip).country ?? '', (countries.get(placeOf(x.ip).country ?? '') ?? 0) + 1);
      const home = [...countries].sort((a, b) => b[1] - a[1])[0]![0];
      assert.notEqual(placeOf(e.ip).country, home, `${e.id}: abroad`);
    }
  });

  it('puts same_network attackers on the victim\'s home network with their browser, and cookie thieves on their cookie, never their key', () => {
    const events = big();
    const users = byUser(events);
    const counts = { same_network: 0, cookie_theft: 0 };
    for (const a of events) {
      if (a.label !== 'attack' || a.user.startsWith('unknown:')) continue;
      const own = users.get(a.user)!.filter((e) => e.label === 'legit');
      if (a.deviceKey) assert.ok(!own.some((e) => e.deviceKey === a.deviceKey), `${a.id}: never the victim's device key`);
      if (a.attackType !== 'same_network' && a.attackType !== 'cookie_theft') continue;
      counts[a.attackType] += 1;
      const home = homeOf(events, a.user);
      assert.equal(home.scope, 'public', `${a.id}: the victim has a home address`);
      const p = placeOf(a.ip);
      const desktops = own.filter((e) => e.success && ms(e) < ms(a) && !MOBILE_UA.test(e.userAgent));
      assert.ok(desktops.some((e) => kindOf(e.userAgent) === kindOf(a.userAgent)), `${a.id}: the victim's browser and OS`);
      if (a.attackType === 'same_network') {
        assert.equal(a.deviceId, undefined, `${a.id}: no cookie`);
        assert.equal(p.asn, home.asn, `${a.id}: the victim's home AS`);
        assert.equal(p.city, home.city, `${a.id}: the victim's city`);
      } else {
        assert.ok(a.deviceId && desktops.some((e) => e.deviceId === a.deviceId), `${a.id}: the victim's device cookie`);
        assert.equal(p.country, home.country, `${a.id}: from the victim's country`);
        assert.notEqual(p.asn, home.asn, `${a.id}: on another network`);
      }
    }
    assert.ok(counts.same_network >= 10 && counts.cookie_theft >= 10, JSON.stringify(counts));
  });

  it('draws the attacks in the configured mix', () => {
    const none = Object.fromEntries(ATO_TYPES.map((t) => [t, 0])) as SynthOptions['attackMix'];
    const events = run(5, { attackMix: { ...none, cookie_theft: 1 } });
    const kinds = new Set(events.filter((e) => e.attackType && ATO.has(e.attackType)).map((e) => e.attackType));
    assert.deepEqual([...kinds], ['cookie_theft']);
    assert.throws(() => run(5, { attackMix: none }), /attackMix/);
  });

  it('types with the CMU benchmark\'s subjects when given: each user one subject in recorded order, attackers another subject\'s first session', () => {
    const data = parseCmuKeystrokes(cmuCsv(4));
    const rng = new Rng(5);
    const world = sampleWorld(rng, placeOf, 20_000);
    const cmu = [...synthesize({ seed: 5, ...SMALL }, world, rng, data)];
    // The same logins, attacks and devices as with the parametric profiles: only the samples differ.
    const strip = (list: LoginEvent[]) => list.map(({ behaviour: _b, ...e }) => e);
    assert.deepEqual(strip(cmu), strip(run(5)));

    const where = new Map<string, { subject: string; index: number }>();
    for (const [subject, reps] of data.reps) reps.forEach((k, index) => k && where.set(JSON.stringify(k), { subject, index }));
    const subjectOf = new Map<string, string>();
    const lastIndex = new Map<string, number>();
    let attacks = 0;
    for (const e of cmu) {
      const k = e.behaviour?.keystroke;
      if (!k || e.user.startsWith('unknown:')) continue;
      assert.equal(k.hold.length, 11, 'the 11 keys of .tie5Roanl (Return included) are the positions');
      const at = where.get(JSON.stringify(k));
      if (e.label === 'attack') {
        attacks += 1;
        assert.ok(at && at.index < 50, `${e.id}: a session-1 repetition`);
        assert.notEqual(at.subject, subjectOf.get(e.user), `${e.id}: another subject than the victim`);
        continue;
      }
      if (MOBILE_UA.test(e.userAgent)) continue;
      assert.ok(at, `${e.id}: a repetition of the file, unchanged`);
      assert.equal(subjectOf.get(e.user) ?? at.subject, at.subject, `${e.user}: one subject`);
      subjectOf.set(e.user, at.subject);
      const prev = lastIndex.get(e.user);
      // In recorded order (phones and corrections use repetitions in between; turning back at the end).
      if (prev !== undefined) assert.ok(Math.abs(at.index - prev) <= 12 && at.index !== prev, `${e.id}: repetition ${at.index} after ${prev}`);
      lastIndex.set(e.user, at.index);
    }
    assert.ok(subjectOf.size > 20 && attacks > 5, `${subjectOf.size} users, ${attacks} attacks typed`);
  });
});

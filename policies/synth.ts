/**
 * `idp model synth`: a labelled synthetic login history, seeded and reproducible (given the
 * same seed, options, geolocation database and keystroke file). IP addresses are drawn from
 * the geolocation database itself (through the `placeOf` function the caller passes), so a
 * synthetic "home in Lyon" resolves to Lyon when replayed.
 *
 * Legitimate users (behaviour models):
 * - home: one ISP in the home city; the address changes now and then (DHCP), same network.
 * - mobile: half the users also log in from a phone on a mobile carrier of their country,
 *   a new address almost every time.
 * - work: some users log in on weekdays, working hours, from a second network in their city;
 *   a third of those from their company's private network (an intranet deployment: 10.x).
 * - shared addresses (scenario `shared_nat`): a share of the users (`sharedNatRate`) belong
 *   to a site where many people log in from one public address: an office behind one NAT
 *   address (weekdays, working hours) or a mobile carrier's carrier-grade NAT (their phone).
 *   Coworkers mistype their password or username from that address minutes before a login,
 *   and now and then a griefer fails a handful of made-up usernames from it (attackType
 *   `griefing`), after which members log in as usual (scenario `shared_nat_griefed`).
 * - habits: each user has a login rate and preferred local hours (evening, office, early).
 * - browser updates: the major version rises every few weeks.
 * - device keys: every browser that runs the page's script proves a key of its own (an RFC
 *   7638 thumbprint; the page makes the key on its first visit), kept with its cookie. 1% of
 *   users browse without JavaScript: no key, no behavioural sample.
 * - lost cookie (scenario `lost_cookie`, 2% of logins): cleared site data or a new laptop: a
 *   new device id and a new key from that login on.
 * - storage eviction (scenario `storage_evicted`): Safari deletes a site's script-writable
 *   storage (IndexedDB: the device key) after 7 days without a visit (WebKit's Intelligent
 *   Tracking Prevention, "7-day cap on all script-writeable storage", 2020); the HTTP cookie
 *   stays. The next login brings the old cookie with a new key, as a copied cookie would.
 * - private browsing (scenario `private_browsing`): a share of the users (`privateRate`) log
 *   in from a private window now and then (30% of their logins): the usual network, place
 *   and browser, no cookie, and a key made for that window only (none in Firefox, whose
 *   private windows give the script no IndexedDB).
 * - travel (scenario `travel`): some users spend days in another country, arriving no
 *   faster than a plane; their logins abroad carry the scenario.
 * - typos: some logins are preceded by a wrong password.
 * - behaviour (policies/synth-behaviour.ts): everyone types their password with a rhythm of
 *   their own (a parametric profile, or a subject of the CMU benchmark) and moves the mouse
 *   their own way; a share (`passwordManagerRate`) let a password manager fill it in (no
 *   timings), phones give no pointer and Android keyboards no timings.
 * Attackers (label "attack", attackType), against a share of the users (`victimRate`), one
 * attack each, the kinds in the proportions of `attackMix` (equal by default). Each attacker
 * has the password; their browser runs the page's script (its own device key, their own
 * typing and mouse; 15% paste the password) unless they turned JavaScript off (15%: no key,
 * no behavioural sample).
 * - naive: the password from a random place in the world, a random browser, no cookie.
 * - vpn_hosting: the password through a VPN or hosting provider (datacentre ASN).
 * - targeted: knows the victim's country, city and browser family; new device, other network,
 *   at one of the victim's usual hours.
 * - impossible_travel: 5-50 minutes after one of the victim's own logins, from at least
 *   2,000 km away: over 2,400 km/h, faster than any airliner.
 * - same_network: on the victim's home network (the same AS and city: the victim's own
 *   address half the time, a housemate or a compromised router; another address of that
 *   network otherwise), the exact browser and OS of the victim's computer, at one of the
 *   victim's usual hours; no cookie.
 * - cookie_theft: a copy of the victim's device cookie (their computer's device id as it is
 *   at that moment) with the same user agent, from the victim's country on another network,
 *   at one of their usual hours; never the victim's device key (it cannot be copied).
 * And, `stuffingPerDay` times a day:
 * - credential_stuffing: bursts from one address trying many accounts, mostly wrong
 *   passwords, a few right (scripts: no device key, no behaviour).
 * `mfa` is the outcome a step-up challenge would have had: legitimate users pass (98%),
 * attackers fail (97%).
 *
 * A login carries one scenario, the first that applies of: private_browsing, lost_cookie,
 * storage_evicted, shared_nat_griefed, travel, shared_nat (a browser's storage first: it
 * changes what the engine sees most).
 *
 * Times are whole milliseconds and every event is produced at its own time from one queue,
 * so the stream is in time order without adjusting any time, and each user's events are
 * strictly ordered (a replay could not order two events of one user at the same instant).
 * Typing and pointer draws use a generator of their own: with or without the CMU file, the
 * same seed gives the same logins, attacks and devices; only the behavioural samples differ.
 */
import type { AttackType } from './event.ts';
import { distanceKm } from './signals.ts';
import {
  attackerBehaviour, cmuImpostor, cmuPerson, legitBehaviour, makePerson, parametricTypist, passwordShape, randomThumbprint,
  type KeystrokeData, type Person, type Screen, type Typist,
} from './synth-behaviour.ts';
import type { LoginEvent, Place } from './types.ts';

export type { LoginEvent };

/** The account-takeover attacks: one per victim. */
export const ATO_TYPES = ['naive', 'vpn_hosting', 'targeted', 'impossible_travel', 'same_network', 'cookie_theft'] as const satisfies readonly AttackType[];
export type AtoType = (typeof ATO_TYPES)[number];


export interface SynthOptions {
  seed: number;
  users: number;
  days: number;
  /** ISO date the history starts. */
  start: string;
  /** Fraction of users who are victims of an account-takeover attempt during the period. */
  victimRate: number;
  /** Credential-stuffing bursts per day. */
  stuffingPerDay: number;
  /** Fraction of users who belong to a site sharing one public address (office NAT, carrier-grade NAT). */
  sharedNatRate: number;
  /** Fraction of users whose password manager fills the password in (no keystroke timings). */
  passwordManagerRate: number;
  /** Fraction of users who log in from a private window now and then (30% of their logins). */
  privateRate: number;
  /** Relative weights of the account-takeover attacks (a victim suffers one, drawn by these). */
  attackMix: Record<AtoType, number>;
}

export const DEFAULT_SYNTH: SynthOptions = {
  seed: 1, users: 1000, days: 30, start: '2026-01-05T00:00:00Z', victimRate: 0.15, stuffingPerDay: 2, sharedNatRate: 0.1,
  passwordManagerRate: 0.25, privateRate: 0.05,
  attackMix: { naive: 1, vpn_hosting: 1, targeted: 1, impossible_travel: 1, same_network: 1, cookie_theft: 1 },
};

/** Scenario names the generator gives legitimate logins, for metrics (never seen by the scorer). */
export const SCENARIOS = {
  /** A login from an address many users share. */
  sharedNat: 'shared_nat',
  /** Such a login minutes after a griefer failed made-up usernames from the same address. */
  sharedNatGriefed: 'shared_nat_griefed',
  /** A login from a private window: no cookie, a key for that window only. */
  privateBrowsing: 'private_browsing',
  /** The first login of a browser after its cookie and storage were lost: new device id, new key. */
  lostCookie: 'lost_cookie',
  /** The first login of a Safari after it deleted the key (7 days unvisited): the old cookie, a new key. */
  storageEvicted: 'storage_evicted',
  /** A login while abroad on a trip. */
  travel: 'travel',
} as const;

/** sfc32: small, fast, seedable. */
export class Rng {
  #a: number; #b: number; #c: number; #d: number;
  constructor(seed: number) {
    this.#a = 0x9e3779b9; this.#b = 0x243f6a88; this.#c = 0xb7e15162; this.#d = seed >>> 0;
    for (let i = 0; i < 15; i += 1) this.next();
  }
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  between(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }
  /** Exponential inter-arrival time with the given mean. */
  exp(mean: number): number { return -Math.log(1 - this.next()) * mean; }
  id(): string { return Math.floor(this.next() * 2 ** 52).toString(36).padStart(11, '0').slice(0, 11); }
  /** Standard normal (Box-Muller). */
  normal(): number { return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next()); }
}

// --- the world, sampled from the geolocation database ------------------------------------

interface Net { asn: number; org: string; ips: string[] }
interface City { key: string; country: string; lat: number; lon: number; nets: Map<number, Net>; weight: number }

export interface World {
  /** The geolocation the world was sampled with. */
  placeOf: (ip: string) => Place;
  cities: City[];
  byCountry: Map<string, City[]>;
  mobile: Map<string, Net[]>;
  hosting: Net[];
  all: string[];
}

const MOBILE_ORG = /mobile|wireless|cellular|cellco|t-mobile|vodafone|orange|telefonica|movistar|airtel|jio|tim |verizon|at&t|sprint|ee limited|three|o2|softbank|kddi|ntt docomo|telstra|claro|vivo|mts|megafon|beeline|turkcell/i;
const HOSTING_ORG = /hosting|cloud|server|data ?cent|datacenter|vps|colo|amazon|google|microsoft|digitalocean|ovh|hetzner|linode|akamai|vultr|choopa|leaseweb|contabo|scaleway|m247|oracle|alibaba|tencent/i;

/** Samples public IPv4 addresses and groups them by city, network and kind. */
export function sampleWorld(
  rng: Rng, placeOf: (ip: string) => Place, samples = 400_000, hostingAsns: ReadonlySet<number> = new Set(), progress?: (done: number) => void,
): World {
  const cities = new Map<string, City>();
  const mobile = new Map<string, Map<number, Net>>();
  const hosting = new Map<number, Net>();
  const all: string[] = [];
  for (let i = 0; i < samples; i += 1) {
    if (progress && i % 10_000 === 0) progress(i);
    const first = 1 + rng.int(223);
    if (first === 10 || first === 127) continue;
    const ip = `${first}.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}`;
    const p = placeOf(ip);
    if (p.scope !== 'public' || !p.country || !p.city || p.lat === undefined || p.lon === undefined || p.asn === undefined) continue;
    all.push(ip);
    const org = p.asOrg ?? '';
    if (hostingAsns.has(p.asn) || HOSTING_ORG.test(org)) {
      const n = hosting.get(p.asn) ?? { asn: p.asn, org, ips: [] };
      n.ips.push(ip);
      hosting.set(p.asn, n);
      continue;
    }
    if (MOBILE_ORG.test(org)) {
      const m = mobile.get(p.country) ?? new Map<number, Net>();
      const n = m.get(p.asn) ?? { asn: p.asn, org, ips: [] };
      n.ips.push(ip);
      m.set(p.asn, n);
      mobile.set(p.country, m);
    }
    const key = `${p.country}/${p.region ?? ''}/${p.city}`;
    const c = cities.get(key) ?? { key, country: p.country, lat: p.lat, lon: p.lon, nets: new Map(), weight: 0 };
    const n = c.nets.get(p.asn) ?? { asn: p.asn, org, ips: [] };
    n.ips.push(ip);
    c.nets.set(p.asn, n);
    c.weight += 1;
    cities.set(key, c);
  }
  const list = [...cities.values()].filter((c) => c.weight >= 2).sort((a, b) => (a.key < b.key ? -1 : 1));
  const byCountry = new Map<string, City[]>();
  for (const c of list) byCountry.set(c.country, [...(byCountry.get(c.country) ?? []), c]);
  return {
    placeOf,
    cities: list,
    byCountry,
    mobile: new Map([...mobile].map(([k, v]) => [k, [...v.values()]])),
    hosting: [...hosting.values()],
    all,
  };
}

function weightedCity(rng: Rng, cities: City[]): City {
  const total = cities.reduce((s, c) => s + c.weight, 0);
  let x = rng.next() * total;
  for (const c of cities) {
    x -= c.weight;
    if (x <= 0) return c;
  }
  return cities[cities.length - 1]!;
}

// --- browsers ------------------------------------------------------------------------------

type Platform = 'windows' | 'mac' | 'linux' | 'android' | 'ios';
type Family = 'chrome' | 'firefox' | 'safari' | 'edge';

function userAgent(family: Family, platform: Platform, major: number): string {
  const os = {
    windows: 'Windows NT 10.0; Win64; x64', mac: 'Macintosh; Intel Mac OS X 10_15_7', linux: 'X11; Linux x86_64',
    android: 'Linux; Android 14; Pixel 8', ios: 'iPhone; CPU iPhone OS 17_4 like Mac OS X',
  }[platform];
  if (family === 'firefox') return `Mozilla/5.0 (${os}; rv:${major}.0) Gecko/20100101 Firefox/${major}.0`;
  if (family === 'safari') {
    return platform === 'ios'
      ? `Mozilla/5.0 (${os}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${major}.0 Mobile/15E148 Safari/604.1`
      : `Mozilla/5.0 (${os}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${major}.0 Safari/605.1.15`;
  }
  const mobile = platform === 'android' ? ' Mobile' : '';
  const edge = family === 'edge' ? ` Edg/${major}.0.0.0` : '';
  return `Mozilla/5.0 (${os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0${mobile} Safari/537.36${edge}`;
}

const DESKTOPS: [Family, Platform][] = [['chrome', 'windows'], ['chrome', 'windows'], ['edge', 'windows'], ['firefox', 'windows'], ['chrome', 'mac'], ['safari', 'mac'], ['firefox', 'linux'], ['chrome', 'linux']];
const PHONES: [Family, Platform][] = [['chrome', 'android'], ['safari', 'ios'], ['safari', 'ios']];
const BASE_MAJOR: Record<Family, number> = { chrome: 120, edge: 120, firefox: 121, safari: 17 };

const screenOf = (p: Platform): Screen => (p === 'android' ? 'android' : p === 'ios' ? 'ios' : 'desktop');

function randomAgent(rng: Rng, weekIndex: number): { ua: string; screen: Screen } {
  const [f, p] = rng.chance(0.3) ? rng.pick(PHONES) : rng.pick(DESKTOPS);
  return { ua: userAgent(f, p, BASE_MAJOR[f] + Math.floor(weekIndex / 6) - rng.int(8)), screen: screenOf(p) };
}

// --- users ---------------------------------------------------------------------------------

interface Device {
  id: string;
  family: Family;
  platform: Platform;
  offsetWeeks: number;
  /** Thumbprint of the key the browser proves; none without JavaScript. */
  key?: string | undefined;
  /** Its last login outside a private window (Safari's storage cap counts from there). */
  lastUsed?: number | undefined;
}

/** Many users behind one public address. */
interface Site {
  kind: 'office' | 'cgnat';
  city: City;
  net: Net;
  ip: string;
  capacity: number;
  members: User[];
}

interface User {
  id: string;
  home: City;
  homeNet: Net;
  homeIp: string;
  work?: { net: Net; intranet?: string | undefined } | undefined;
  phoneNet?: Net | undefined;
  desktop: Device;
  phone?: Device | undefined;
  /** Mean hours between logins. */
  meanGapHours: number;
  /** Preferred local hours. */
  hours: number[];
  utcOffset: number;
  trip?: { from: number; to: number; city: City } | undefined;
  site?: Site | undefined;
  /** An attack follows this user's last login until then: their next login waits. */
  hold?: number | undefined;
  /** Share of logins from a private window (0 for most). */
  privateShare: number;
  /** Browses without JavaScript: no device key, no behavioural sample. */
  noScript: boolean;
  /** How they type and move the mouse (set after the user is made, from the behaviour generator). */
  person?: Person | undefined;
}

/** Share of a private-browsing user's logins made from a private window. */
const PRIVATE_SHARE = 0.3;
/** Users who browse without JavaScript. */
const NO_SCRIPT_USERS = 0.01;
/** Chance that a login finds its browser's cookie and storage gone (cleared data, a new laptop). */
const LOST_COOKIE = 0.02;
/** Safari deletes a site's script-writable storage after this long without a visit (WebKit ITP). */
const SAFARI_STORAGE_CAP_MS = 7 * 86_400_000;
/** Attackers who turn JavaScript off (no device key, no behavioural sample for the engine to judge). */
const ATTACKER_NO_SCRIPT = 0.15;

const HABITS = [[18, 19, 20, 21, 22], [8, 9, 10, 11, 13, 14, 15, 16], [6, 7, 8, 12, 19], [9, 10, 20, 21, 22, 23]];

function makeUser(rng: Rng, world: World, index: number, start: number, days: number, privateRate: number, site?: Site): User {
  const home = site?.city ?? weightedCity(rng, world.cities);
  const nets = [...home.nets.values()].sort((a, b) => b.ips.length - a.ips.length);
  const homeNet = nets[0]!;
  const mobiles = world.mobile.get(home.country) ?? [];
  const desktopKind = rng.pick(DESKTOPS);
  const phoneKind = rng.pick(PHONES);
  const user: User = {
    id: `u${String(index).padStart(6, '0')}`,
    home,
    homeNet,
    homeIp: rng.pick(homeNet.ips),
    work: nets.length > 1 && rng.chance(0.4)
      ? { net: nets[1 + rng.int(nets.length - 1)]!, intranet: rng.chance(0.33) ? `10.${rng.int(256)}.${rng.int(256)}.` : undefined }
      : undefined,
    phoneNet: mobiles.length && rng.chance(0.5) ? rng.pick(mobiles) : undefined,
    desktop: { id: rng.id() + rng.id(), family: desktopKind[0], platform: desktopKind[1], offsetWeeks: rng.int(6) },
    meanGapHours: rng.between(8, 72),
    hours: rng.pick(HABITS),
    utcOffset: Math.round(home.lon / 15),
    site,
    privateShare: rng.chance(privateRate) ? PRIVATE_SHARE : 0,
    noScript: rng.chance(NO_SCRIPT_USERS),
  };
  if (!user.noScript) user.desktop.key = randomThumbprint(rng);
  if (site?.kind === 'cgnat') user.phoneNet = site.net;
  if (user.phoneNet) {
    user.phone = { id: rng.id() + rng.id(), family: phoneKind[0], platform: phoneKind[1], offsetWeeks: rng.int(6) };
    if (!user.noScript) user.phone.key = randomThumbprint(rng);
  }
  if (rng.chance(0.12) && days > 10) {
    const abroad = world.cities.filter((c) => c.country !== home.country);
    const city = weightedCity(rng, abroad);
    const from = start + rng.between(2, days - 8) * 86_400_000;
    // Arrive no faster than a plane (800 km/h) plus two hours at the airports.
    const km = Math.hypot((city.lat - home.lat) * 111, (city.lon - home.lon) * 111 * Math.cos((home.lat * Math.PI) / 180));
    const travel = (km / 800 + 2) * 3_600_000;
    user.trip = { from: from + travel, to: from + rng.between(3, 10) * 86_400_000, city };
  }
  return user;
}

/** Moves a time into the user's preferred local hours (mostly). */
function nudge(rng: Rng, u: User, t: number): number {
  const localHour = (new Date(t).getUTCHours() + u.utcOffset + 24) % 24;
  if (!u.hours.includes(localHour) && rng.chance(0.8)) {
    const target = rng.pick(u.hours);
    t += (((target - localHour + 24) % 24) * 3_600_000) + rng.int(3_600_000);
  }
  return Math.round(t);
}

/** Next login time: exponential gaps, nudged into the user's preferred local hours. */
function nextLogin(rng: Rng, u: User, after: number): number {
  return nudge(rng, u, after + rng.exp(u.meanGapHours) * 3_600_000 + 60_000);
}

function newSite(rng: Rng, world: World): Site {
  const city = weightedCity(rng, world.cities);
  const mobiles = world.mobile.get(city.country) ?? [];
  const capacity = 10 + rng.int(40);
  if (mobiles.length && rng.chance(0.3)) {
    const net = rng.pick(mobiles);
    return { kind: 'cgnat', city, net, ip: rng.pick(net.ips), capacity, members: [] };
  }
  // An office on a business line: not the city's main residential network where possible.
  const nets = [...city.nets.values()].sort((a, b) => b.ips.length - a.ips.length);
  const net = nets.length > 1 ? nets[1 + rng.int(nets.length - 1)]! : nets[0]!;
  return { kind: 'office', city, net, ip: rng.pick(net.ips), capacity, members: [] };
}

// --- the event stream ----------------------------------------------------------------------

type Body = Omit<LoginEvent, 'id' | 'ts'>;
/** Either an event due at `ts`, or a step that plans events at `ts` or later. */
type Pending = { ts: number; seq: number; event?: Body; run?: () => void };

/** Min-heap by time, then by insertion order: the stream comes out in time order, deterministically. */
class Heap {
  readonly #a: Pending[] = [];
  get size() { return this.#a.length; }
  static #before(x: Pending, y: Pending) { return x.ts < y.ts || (x.ts === y.ts && x.seq < y.seq); }
  push(x: Pending) {
    const a = this.#a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!Heap.#before(a[i]!, a[p]!)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Pending | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && Heap.#before(a[l]!, a[m]!)) m = l;
        if (r < a.length && Heap.#before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** A login is planned this long before it happens, so typos can precede it. */
const LEAD = 15 * MINUTE;
/** Impossible travel: at least this far, within 50 minutes. */
const FAR_KM = 2000;
/** Mean days between griefing episodes at one shared address (fewer happen: only in its busy hours). */
const GRIEF_MEAN_DAYS = 2;

/**
 * The history, event by event. `keystrokes`: the CMU benchmark's repetitions
 * (synth-behaviour.ts parseCmuKeystrokes) to type with instead of the parametric profiles.
 */
export function* synthesize(opts: SynthOptions, world: World, rng = new Rng(opts.seed), keystrokes?: KeystrokeData): Generator<LoginEvent> {
  if (world.cities.length === 0) throw new Error('the geolocation sample found no cities');
  const mix = ATO_TYPES.map((t) => opts.attackMix[t]);
  if (mix.some((w) => !(w >= 0)) || !mix.some((w) => w > 0)) throw new Error('attackMix: weights must be 0 or more, one of them above 0');
  const start = Date.parse(opts.start);
  const end = start + opts.days * DAY;
  const sites: Site[] = [];
  const users: User[] = [];
  for (let i = 0; i < opts.users; i += 1) {
    let site: Site | undefined;
    if (rng.chance(opts.sharedNatRate)) {
      site = sites.at(-1);
      if (!site || site.members.length >= site.capacity) sites.push((site = newSite(rng, world)));
    }
    const u = makeUser(rng, world, i, start, opts.days, opts.privateRate, site);
    site?.members.push(u);
    users.push(u);
  }
  // Typing and pointer draws: a generator of their own, so the keystroke source changes
  // nothing but the samples.
  const brng = new Rng((opts.seed ^ 0x5bd1e995) >>> 0);
  for (const u of users) {
    if (keystrokes) {
      const { subject, typist } = cmuPerson(brng, keystrokes);
      u.person = makePerson(brng, typist, opts.passwordManagerRate, { subject });
    } else {
      const shape = passwordShape(brng, 8 + brng.int(9));
      u.person = makePerson(brng, parametricTypist(brng, shape, start), opts.passwordManagerRate, { shape });
    }
  }
  const heap = new Heap();
  let seq = 0;
  const at = (ts: number, x: { event: Body } | { run: () => void }) => heap.push({ ts: Math.round(ts), seq: (seq += 1), ...x });
  const emit = (ts: number, event: Body) => at(ts, { event });
  let n = 0;
  const eventId = () => `e${(n += 1).toString(36).padStart(7, '0')}`;
  const week = (t: number) => Math.floor((t - start) / (7 * DAY));
  const mfaLegit = () => (rng.chance(0.98) ? 'pass' as const : 'fail' as const);
  const mfaAttack = () => (rng.chance(0.97) ? 'fail' as const : 'pass' as const);
  const located = (ip: string) => {
    const p = world.placeOf(ip);
    return p.scope === 'public' && p.lat !== undefined && p.lon !== undefined ? { lat: p.lat, lon: p.lon } : undefined;
  };
  const agentOf = (d: Device, t: number) => userAgent(d.family, d.platform, BASE_MAJOR[d.family] + Math.floor((week(t) + d.offsetWeeks) / 6));
  const common = { clientId: 'webapp', scope: 'openid profile' };
  /** What the page's script sends when `u` signs in on `d` at `t` (nothing without JavaScript). */
  const sampleOf = (u: User, d: Device, t: number) => (u.noScript ? {} : { behaviour: legitBehaviour(brng, u.person!, screenOf(d.platform), t) });

  /** Where a legitimate login comes from. */
  const where = (u: User, t: number): { ip: string; device: Device; shared?: boolean; abroad?: boolean } => {
    const onTrip = u.trip && t >= u.trip.from && t <= u.trip.to ? u.trip : undefined;
    const local = (new Date(t).getUTCHours() + u.utcOffset + 24) % 24;
    const weekday = new Date(t).getUTCDay() % 6 !== 0;
    if (onTrip) {
      const nets = [...onTrip.city.nets.values()];
      return { ip: rng.pick(rng.pick(nets).ips), device: u.phone && rng.chance(0.6) ? u.phone : u.desktop, abroad: true };
    }
    if (u.site?.kind === 'office' && weekday && local >= 8 && local <= 18 && rng.chance(0.8)) return { ip: u.site.ip, device: u.desktop, shared: true };
    if (u.site?.kind === 'cgnat' && u.phone && rng.chance(0.5)) return { ip: u.site.ip, device: u.phone, shared: true };
    if (u.phone && u.phoneNet && rng.chance(0.45)) return { ip: rng.pick(u.phoneNet.ips), device: u.phone };
    if (u.work && weekday && local >= 9 && local <= 17 && rng.chance(0.7)) {
      return { ip: u.work.intranet ? `${u.work.intranet}${1 + rng.int(254)}` : rng.pick(u.work.net.ips), device: u.desktop };
    }
    if (rng.chance(0.03)) u.homeIp = rng.pick(u.homeNet.ips); // the ISP handed out a new address
    return { ip: u.homeIp, device: u.desktop };
  };

  /**
   * The browser's cookie and key at a login at `t`: from a private window (none, and a key for
   * that window only), or the browser's own after whatever happened to its storage since.
   */
  const storageOf = (u: User, d: Device, t: number, privateWindow: boolean): { deviceId?: string; deviceKey?: string; scenario?: string } => {
    if (privateWindow) {
      // Firefox's private windows give the script no IndexedDB: no key at all.
      return { ...(d.key !== undefined && d.family !== 'firefox' ? { deviceKey: randomThumbprint(rng) } : {}), scenario: SCENARIOS.privateBrowsing };
    }
    let scenario: string | undefined;
    if (rng.chance(LOST_COOKIE)) {
      d.id = rng.id() + rng.id();
      if (d.key !== undefined) d.key = randomThumbprint(rng);
      scenario = SCENARIOS.lostCookie;
    } else if (d.family === 'safari' && d.key !== undefined && d.lastUsed !== undefined && t - d.lastUsed > SAFARI_STORAGE_CAP_MS) {
      d.key = randomThumbprint(rng);
      scenario = SCENARIOS.storageEvicted;
    }
    d.lastUsed = t;
    return { deviceId: d.id, ...(d.key !== undefined ? { deviceKey: d.key } : {}), ...(scenario ? { scenario } : {}) };
  };

  /**
   * One legitimate login at `t` (runs at `t - LEAD` at the latest): a typo now and then just
   * before it, and at a shared address the coworkers' typos from the same address.
   */
  const login = (u: User, t: number, o: { anchor?: boolean; griefed?: boolean } = {}) => {
    let { ip, device, shared, abroad } = o.griefed && u.site
      ? { ip: u.site.ip, device: u.site.kind === 'cgnat' && u.phone ? u.phone : u.desktop, shared: true, abroad: false }
      : where(u, t);
    if (o.anchor && !located(ip)) ({ ip, device, shared, abroad } = { ip: u.homeIp, device: u.desktop, shared: false, abroad: false });
    // An anchor (impossible travel) is the victim's own browser, as their history knows it.
    const privateWindow = !o.anchor && !o.griefed && u.privateShare > 0 && rng.chance(u.privateShare);
    const storage = storageOf(u, device, t, privateWindow);
    const scenario = storage.scenario ?? (o.griefed && shared ? SCENARIOS.sharedNatGriefed : abroad ? SCENARIOS.travel : shared ? SCENARIOS.sharedNat : undefined);
    const base = {
      user: u.id, ip, userAgent: agentOf(device, t), ...(storage.deviceId ? { deviceId: storage.deviceId } : {}),
      ...(storage.deviceKey ? { deviceKey: storage.deviceKey } : {}), ...common, label: 'legit' as const, ...(scenario ? { scenario } : {}),
    };
    if (shared && u.site && !o.griefed && rng.chance(0.25)) {
      for (let k = 1 + rng.int(3); k > 0; k -= 1) {
        const when = t - rng.between(1, 10) * MINUTE;
        const other = rng.pick(u.site.members);
        const d = u.site.kind === 'cgnat' && other.phone ? other.phone : other.desktop;
        // A coworker's wrong password, or a mistyped username (recorded as an unknown account).
        const who = other !== u && rng.chance(0.7) ? other.id : `unknown:${rng.id()}`;
        if (when >= start) {
          emit(when, {
            user: who, ip, userAgent: agentOf(d, when), deviceId: d.id, ...(d.key !== undefined ? { deviceKey: d.key } : {}), ...common,
            ...sampleOf(other, d, when), label: 'legit', scenario: SCENARIOS.sharedNat, success: false,
          });
        }
      }
    }
    if (rng.chance(0.05)) emit(t - 20_000, { ...base, ...sampleOf(u, device, t - 20_000), success: false });
    // An anchor is a login the victim confirmed: it is in their trusted history.
    emit(t, { ...base, ...sampleOf(u, device, t), success: true, mfa: o.anchor ? 'pass' : mfaLegit() });
    return ip;
  };

  const schedule = (u: User, after: number) => {
    const t = nextLogin(rng, u, after);
    if (t >= end) return;
    at(t - LEAD, {
      run: () => {
        // An attack follows this user's previous login: their next one comes after it.
        if (u.hold !== undefined && t <= u.hold) return schedule(u, u.hold);
        login(u, t);
        schedule(u, t);
      },
    });
  };
  for (const u of users) schedule(u, start + rng.between(0, 24) * HOUR);

  /** An address far (FAR_KM or more) from where `ip` is, or undefined when the world has none. */
  const farFrom = (ip: string): string | undefined => {
    const from = located(ip);
    if (!from) return undefined;
    const far = (c: { lat: number; lon: number }) => distanceKm(from.lat, from.lon, c.lat, c.lon) >= FAR_KM;
    const candidates = world.cities.filter(far);
    for (let tries = 0; tries < 20 && candidates.length; tries += 1) {
      const city = rng.pick(candidates);
      const cand = rng.pick(rng.pick([...city.nets.values()]).ips);
      // The address's own location, as a replay will see it.
      const to = located(cand);
      if (to && far(to)) return cand;
    }
    return undefined;
  };

  /** One of the victim's usual hours, on the day of `t`. */
  const usualHour = (u: User, t: number) => t + ((rng.pick(u.hours) - ((new Date(t).getUTCHours() + u.utcOffset + 24) % 24) + 24) % 24) * HOUR;
  /**
   * The attacker's browser at `t`: its own key and the attacker's own typing of the victim's
   * password and mouse, or nothing of either with JavaScript off.
   */
  const attackerSide = (u: User, screen: Screen, t: number) => {
    if (rng.chance(ATTACKER_NO_SCRIPT)) return {};
    const p = u.person!;
    const typist: Typist = keystrokes && p.subject !== undefined ? cmuImpostor(brng, keystrokes, p.subject)
      : parametricTypist(brng, p.shape ?? passwordShape(brng, p.desktop.positions), t, true);
    return { deviceKey: randomThumbprint(rng), behaviour: attackerBehaviour(brng, typist, screen, t) };
  };
  const pickAttack = (): AtoType => {
    let x = rng.next() * mix.reduce((a, b) => a + b, 0);
    for (let i = 0; i < ATO_TYPES.length; i += 1) {
      x -= mix[i]!;
      if (x < 0) return ATO_TYPES[i]!;
    }
    return ATO_TYPES[mix.findLastIndex((w) => w > 0)]!;
  };

  // Account takeover attempts against a share of the users.
  for (const u of users) {
    if (!rng.chance(opts.victimRate)) continue;
    const type = pickAttack();
    const t = start + rng.between(opts.days * 0.3, opts.days * 0.9) * DAY;
    const attack = { user: u.id, success: true, ...common, label: 'attack' as const, attackType: type };
    if (type === 'naive') {
      const agent = randomAgent(rng, week(t));
      emit(t, { ...attack, ip: rng.pick(world.all), userAgent: agent.ua, ...attackerSide(u, agent.screen, t), mfa: mfaAttack() });
    } else if (type === 'vpn_hosting') {
      const net = rng.pick(world.hosting.length ? world.hosting : [{ asn: 0, org: '', ips: world.all }]);
      const agent = randomAgent(rng, week(t));
      emit(t, { ...attack, ip: rng.pick(net.ips), userAgent: agent.ua, ...attackerSide(u, agent.screen, t), mfa: mfaAttack() });
    } else if (type === 'targeted') {
      const others = [...u.home.nets.values()].filter((x) => x.asn !== u.homeNet.asn);
      const sameCountry = (world.byCountry.get(u.home.country) ?? []).filter((c) => c !== u.home);
      const net = others.length ? rng.pick(others) : rng.pick([...(sameCountry.length ? rng.pick(sameCountry) : u.home).nets.values()]);
      const when = usualHour(u, t);
      if (when < end) {
        emit(when, {
          ...attack, ip: rng.pick(net.ips), userAgent: userAgent(u.desktop.family, u.desktop.platform, BASE_MAJOR[u.desktop.family] + Math.floor(week(when) / 6)),
          ...attackerSide(u, screenOf(u.desktop.platform), when), mfa: mfaAttack(),
        });
      }
    } else if (type === 'same_network') {
      // The victim's home network, their computer's exact browser, their usual hour: only the
      // device (no cookie, not their key) and the person at the keyboard differ.
      const when = usualHour(u, t);
      if (when < end) {
        at(when - LEAD, {
          run: () => emit(when, {
            ...attack, ip: rng.chance(0.5) ? u.homeIp : rng.pick(u.homeNet.ips), userAgent: agentOf(u.desktop, when),
            ...attackerSide(u, screenOf(u.desktop.platform), when), mfa: mfaAttack(),
          }),
        });
      }
    } else if (type === 'cookie_theft') {
      // The cookie as the victim's computer holds it at that moment (read when the attack runs).
      const nets = (world.byCountry.get(u.home.country) ?? [u.home]).flatMap((c) => [...c.nets.values()]).filter((x) => x.asn !== u.homeNet.asn);
      const net = nets.length ? rng.pick(nets) : rng.pick([...u.home.nets.values()]);
      const when = usualHour(u, t);
      if (when < end) {
        at(when - LEAD, {
          run: () => emit(when, {
            ...attack, ip: rng.pick(net.ips), userAgent: agentOf(u.desktop, when), ...attackerSide(u, screenOf(u.desktop.platform), when),
            // After attackerSide: the copied cookie, never the victim's key.
            deviceId: u.desktop.id, mfa: mfaAttack(),
          }),
        });
      }
    } else {
      // impossible_travel: the victim logs in (at one of their usual hours), the attacker
      // minutes later from far away.
      const anchor = nudge(rng, u, t);
      if (anchor >= end) continue;
      at(anchor - LEAD, {
        run: () => {
          const from = login(u, anchor, { anchor: true });
          const ip = farFrom(from);
          if (!ip) return;
          const when = Math.round(anchor + rng.between(5, 50) * MINUTE);
          u.hold = when;
          const agent = randomAgent(rng, week(when));
          emit(when, { ...attack, ip, userAgent: agent.ua, ...attackerSide(u, agent.screen, when), mfa: mfaAttack() });
        },
      });
    }
  }

  // Credential-stuffing bursts: one address, many accounts, mostly wrong passwords.
  const bursts = Math.round(opts.stuffingPerDay * opts.days);
  for (let b = 0; b < bursts; b += 1) {
    const t0 = start + rng.between(0, opts.days) * DAY;
    const source = world.hosting.length && rng.chance(0.6) ? rng.pick(rng.pick(world.hosting).ips) : rng.pick(world.all);
    const ua = randomAgent(rng, week(t0)).ua;
    const attempts = 30 + rng.int(150);
    let t = t0;
    for (let i = 0; i < attempts; i += 1) {
      t += rng.exp(6_000);
      if (t >= end) break;
      const u = rng.pick(users);
      const success = rng.chance(0.03);
      emit(t, { user: u.id, ip: source, userAgent: ua, success, ...common, ...(success ? { mfa: mfaAttack() } : {}), label: 'attack', attackType: 'credential_stuffing' });
    }
  }

  // Griefing at shared addresses: made-up usernames fail from the address, then members log
  // in from it as usual. Offices see it in working hours, carrier NATs in waking hours.
  for (const site of sites) {
    const offset = Math.round(site.city.lon / 15);
    for (let g = start + rng.exp(GRIEF_MEAN_DAYS * DAY); g < end - HOUR; g += rng.exp(GRIEF_MEAN_DAYS * DAY)) {
      const local = (new Date(g).getUTCHours() + offset + 24) % 24;
      const busy = site.kind === 'office' ? new Date(g).getUTCDay() % 6 !== 0 && local >= 9 && local <= 17 : local >= 7 && local <= 22;
      if (!busy) continue;
      at(g, {
        run: () => {
          const ua = randomAgent(rng, week(g)).ua;
          let t = g;
          for (let k = 5 + rng.int(4); k > 0; k -= 1) {
            emit(t, { user: `unknown:${rng.id()}`, ip: site.ip, userAgent: ua, success: false, ...common, label: 'attack', attackType: 'griefing', scenario: SCENARIOS.sharedNat });
            t += rng.between(3, 30) * 1000;
          }
          for (let k = 1 + rng.int(3); k > 0; k -= 1) {
            const m = rng.pick(site.members);
            const when = Math.round(t + rng.between(0.5, 10) * MINUTE);
            // Not a victim whose attack is pending: their last login before it stays the anchor.
            if ((m.hold !== undefined && m.hold >= g) || when >= end) continue;
            login(m, when, { griefed: true });
          }
        },
      });
    }
  }

  const lastOf = new Map<string, number>();
  while (heap.size) {
    const next = heap.pop()!;
    if (next.run) {
      next.run();
      continue;
    }
    const e = next.event!;
    const prev = lastOf.get(e.user);
    // Two events of one user in one millisecond: the later moves on by one, so each user's
    // events are strictly ordered (every other time stays as generated).
    if (prev !== undefined && next.ts <= prev) {
      emit(prev + 1, e);
      continue;
    }
    lastOf.set(e.user, next.ts);
    yield { id: eventId(), ts: new Date(next.ts).toISOString(), ...e };
  }
}

/**
 * `idp model synth`: a labelled synthetic login history, seeded and reproducible (given the
 * same seed, options and geolocation database). IP addresses are drawn from the geolocation
 * database itself (through the `placeOf` function the caller passes), so a synthetic
 * "home in Lyon" resolves to Lyon when replayed.
 *
 * Legitimate users (behaviour models):
 * - home: one ISP in the home city; the address changes now and then (DHCP), same network.
 * - mobile: half the users also log in from a phone on a mobile carrier of their country,
 *   a new address almost every time.
 * - work: some users log in on weekdays, working hours, from a second network in their city;
 *   a third of those from their company's private network (an intranet deployment: 10.x).
 * - habits: each user has a login rate and preferred local hours (evening, office, early).
 * - browser updates: the major version rises every few weeks; a new browser cookie (device
 *   id) appears now and then (cleared cookies, a new laptop).
 * - travel: some users spend days in another country, arriving no faster than a plane.
 * - typos: some logins are preceded by a wrong password.
 * Attackers (label "attack", attackType):
 * - naive: the password from a random place in the world, a random browser, no cookie.
 * - vpn_hosting: the password through a VPN or hosting provider (datacentre ASN).
 * - targeted: knows the victim's country, city and browser family; new device, other network.
 * - credential_stuffing: bursts from one address trying many accounts, mostly wrong
 *   passwords, a few right.
 * - impossible_travel: a login from far away minutes after the victim's own.
 * `mfa` is the outcome a step-up challenge would have had: legitimate users pass (98%),
 * attackers fail (97%).
 */
import type { LoginEvent, Place } from './types.ts';

export type { LoginEvent };


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
}

export const DEFAULT_SYNTH: SynthOptions = { seed: 1, users: 1000, days: 30, start: '2026-01-05T00:00:00Z', victimRate: 0.15, stuffingPerDay: 2 };

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
}

// --- the world, sampled from the geolocation database ------------------------------------

interface Net { asn: number; org: string; ips: string[] }
interface City { key: string; country: string; lat: number; lon: number; nets: Map<number, Net>; weight: number }

export interface World {
  cities: City[];
  byCountry: Map<string, City[]>;
  mobile: Map<string, Net[]>;
  hosting: Net[];
  all: string[];
}

const MOBILE_ORG = /mobile|wireless|cellular|cellco|t-mobile|vodafone|orange|telefonica|movistar|airtel|jio|tim |verizon|at&t|sprint|ee limited|three|o2|softbank|kddi|ntt docomo|telstra|claro|vivo|mts|megafon|beeline|turkcell/i;
const HOSTING_ORG = /hosting|cloud|server|data ?cent|datacenter|vps|colo|amazon|google|microsoft|digitalocean|ovh|hetzner|linode|akamai|vultr|choopa|leaseweb|contabo|scaleway|m247|oracle|alibaba|tencent/i;

/** Samples public IPv4 addresses and groups them by city, network and kind. */
export function sampleWorld(rng: Rng, placeOf: (ip: string) => Place, samples = 400_000, hostingAsns: ReadonlySet<number> = new Set()): World {
  const cities = new Map<string, City>();
  const mobile = new Map<string, Map<number, Net>>();
  const hosting = new Map<number, Net>();
  const all: string[] = [];
  for (let i = 0; i < samples; i += 1) {
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

function randomAgent(rng: Rng, weekIndex: number): string {
  const [f, p] = rng.chance(0.3) ? rng.pick(PHONES) : rng.pick(DESKTOPS);
  return userAgent(f, p, BASE_MAJOR[f] + Math.floor(weekIndex / 6) - rng.int(8));
}

// --- users ---------------------------------------------------------------------------------

interface Device { id: string; family: Family; platform: Platform; offsetWeeks: number }

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
}

const HABITS = [[18, 19, 20, 21, 22], [8, 9, 10, 11, 13, 14, 15, 16], [6, 7, 8, 12, 19], [9, 10, 20, 21, 22, 23]];

function makeUser(rng: Rng, world: World, index: number, start: number, days: number): User {
  const home = weightedCity(rng, world.cities);
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
  };
  if (user.phoneNet) user.phone = { id: rng.id() + rng.id(), family: phoneKind[0], platform: phoneKind[1], offsetWeeks: rng.int(6) };
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

/** Next login time: exponential gaps, nudged into the user's preferred local hours. */
function nextLogin(rng: Rng, u: User, after: number): number {
  let t = after + rng.exp(u.meanGapHours) * 3_600_000 + 60_000;
  const d = new Date(t);
  const localHour = (d.getUTCHours() + u.utcOffset + 24) % 24;
  if (!u.hours.includes(localHour) && rng.chance(0.8)) {
    const target = rng.pick(u.hours);
    t += (((target - localHour + 24) % 24) * 3_600_000) + rng.int(3_600_000);
  }
  return t;
}

// --- the event stream ----------------------------------------------------------------------

type Pending = { ts: number; make: () => LoginEvent[] };

/** Min-heap of pending event producers by time: the stream comes out in time order. */
class Heap {
  readonly #a: Pending[] = [];
  get size() { return this.#a.length; }
  push(x: Pending) {
    const a = this.#a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.ts <= a[i]!.ts) break;
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
        if (l < a.length && a[l]!.ts < a[m]!.ts) m = l;
        if (r < a.length && a[r]!.ts < a[m]!.ts) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export function* synthesize(opts: SynthOptions, world: World, rng = new Rng(opts.seed)): Generator<LoginEvent> {
  if (world.cities.length === 0) throw new Error('the geolocation sample found no cities');
  const start = Date.parse(opts.start);
  const end = start + opts.days * 86_400_000;
  const users = Array.from({ length: opts.users }, (_, i) => makeUser(rng, world, i, start, opts.days));
  const heap = new Heap();
  let seq = 0;
  const eventId = () => `e${(seq += 1).toString(36).padStart(7, '0')}`;
  const iso = (t: number) => new Date(t).toISOString();
  const week = (t: number) => Math.floor((t - start) / (7 * 86_400_000));
  const mfaLegit = () => (rng.chance(0.98) ? 'pass' as const : 'fail' as const);
  const mfaAttack = () => (rng.chance(0.97) ? 'fail' as const : 'pass' as const);
  const lastLegit = new Map<string, number>();

  const legit = (u: User, t: number): LoginEvent[] => {
    const onTrip = u.trip && t >= u.trip.from && t <= u.trip.to ? u.trip : undefined;
    const local = (new Date(t).getUTCHours() + u.utcOffset + 24) % 24;
    const weekday = new Date(t).getUTCDay() % 6 !== 0;
    let device = u.desktop;
    let ip = u.homeIp;
    if (onTrip) {
      const nets = [...onTrip.city.nets.values()];
      ip = rng.pick(rng.pick(nets).ips);
      if (u.phone && rng.chance(0.6)) device = u.phone;
    } else if (u.phone && u.phoneNet && rng.chance(0.45)) {
      device = u.phone;
      ip = rng.pick(u.phoneNet.ips);
    } else if (u.work && weekday && local >= 9 && local <= 17 && rng.chance(0.7)) {
      ip = u.work.intranet ? `${u.work.intranet}${1 + rng.int(254)}` : rng.pick(u.work.net.ips);
    } else if (rng.chance(0.03)) {
      u.homeIp = rng.pick(u.homeNet.ips); // the ISP handed out a new address
      ip = u.homeIp;
    }
    if (rng.chance(0.02)) device.id = rng.id() + rng.id(); // cookies cleared, new laptop
    const ua = userAgent(device.family, device.platform, BASE_MAJOR[device.family] + Math.floor((week(t) + device.offsetWeeks) / 6));
    const base = { user: u.id, ip, userAgent: ua, deviceId: device.id, clientId: 'webapp', scope: 'openid profile', label: 'legit' as const };
    const out: LoginEvent[] = [];
    if (rng.chance(0.05)) out.push({ id: eventId(), ts: iso(t - 20_000), ...base, success: false, mfa: undefined });
    out.push({ id: eventId(), ts: iso(t), ...base, success: true, mfa: mfaLegit() });
    lastLegit.set(u.id, t);
    return out;
  };

  const schedule = (u: User, after: number) => {
    const t = nextLogin(rng, u, after);
    if (t < end) heap.push({ ts: t, make: () => { schedule(u, t); return legit(u, t); } });
  };
  for (const u of users) schedule(u, start + rng.between(0, 24) * 3_600_000);

  // Account takeover attempts against a share of the users.
  for (const u of users) {
    if (!rng.chance(opts.victimRate)) continue;
    const type = rng.pick(['naive', 'vpn_hosting', 'targeted', 'impossible_travel'] as const);
    const t = start + rng.between(opts.days * 0.3, opts.days) * 86_400_000;
    if (t >= end) continue;
    heap.push({
      ts: t,
      make: () => {
        const attack = { user: u.id, success: true, clientId: 'webapp', scope: 'openid profile', label: 'attack' as const, attackType: type };
        if (type === 'naive') {
          return [{ id: eventId(), ts: iso(t), ...attack, ip: rng.pick(world.all), userAgent: randomAgent(rng, week(t)), mfa: mfaAttack() }];
        }
        if (type === 'vpn_hosting') {
          const net = rng.pick(world.hosting.length ? world.hosting : [{ asn: 0, org: '', ips: world.all }]);
          return [{ id: eventId(), ts: iso(t), ...attack, ip: rng.pick(net.ips), userAgent: randomAgent(rng, week(t)), mfa: mfaAttack() }];
        }
        if (type === 'targeted') {
          const others = [...u.home.nets.values()].filter((n) => n.asn !== u.homeNet.asn);
          const sameCountry = (world.byCountry.get(u.home.country) ?? []).filter((c) => c !== u.home);
          const net = others.length ? rng.pick(others) : rng.pick([...(sameCountry.length ? rng.pick(sameCountry) : u.home).nets.values()]);
          const hourShift = (rng.pick(u.hours) - ((new Date(t).getUTCHours() + u.utcOffset + 24) % 24) + 24) % 24;
          const when = t + hourShift * 3_600_000;
          return [{
            id: eventId(), ts: iso(when), ...attack, ip: rng.pick(net.ips),
            userAgent: userAgent(u.desktop.family, u.desktop.platform, BASE_MAJOR[u.desktop.family] + Math.floor(week(when) / 6)), mfa: mfaAttack(),
          }];
        }
        // impossible_travel: shortly after the victim's own login, from far away.
        const last = lastLegit.get(u.id);
        const when = last !== undefined && last < t ? last + rng.between(5, 50) * 60_000 : t;
        const far = world.cities.filter((c) => Math.abs(c.lon - u.home.lon) > 60 || Math.abs(c.lat - u.home.lat) > 40);
        const city = far.length ? rng.pick(far) : rng.pick(world.cities);
        return [{ id: eventId(), ts: iso(Math.max(when, t)), ...attack, ip: rng.pick(rng.pick([...city.nets.values()]).ips), userAgent: randomAgent(rng, week(t)), mfa: mfaAttack() }];
      },
    });
  }

  // Credential-stuffing bursts: one address, many accounts, mostly wrong passwords.
  const bursts = Math.round(opts.stuffingPerDay * opts.days);
  for (let b = 0; b < bursts; b += 1) {
    const t0 = start + rng.between(0, opts.days) * 86_400_000;
    const source = world.hosting.length && rng.chance(0.6) ? rng.pick(rng.pick(world.hosting).ips) : rng.pick(world.all);
    const ua = randomAgent(rng, week(t0));
    const attempts = 30 + rng.int(150);
    let t = t0;
    for (let i = 0; i < attempts; i += 1) {
      t += rng.exp(6_000);
      if (t >= end) break;
      const u = rng.pick(users);
      const when = t;
      const success = rng.chance(0.03);
      heap.push({
        ts: when,
        make: () => [{
          id: eventId(), ts: iso(when), user: u.id, ip: source, userAgent: ua, success, clientId: 'webapp', scope: 'openid profile',
          ...(success ? { mfa: mfaAttack() } : {}), label: 'attack', attackType: 'credential_stuffing',
        }],
      });
    }
  }

  let lastTs = -Infinity;
  while (heap.size) {
    const next = heap.pop()!;
    for (const e of next.make()) {
      // Typos are 20 s before their login; keep the stream monotonic.
      const ts = Math.max(Date.parse(e.ts), lastTs);
      lastTs = ts;
      yield { ...e, ts: iso(ts) };
    }
  }
}

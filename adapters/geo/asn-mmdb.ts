/**
 * The `@ip-location-db/asn` ranges (CSV: first address, last address, ASN, organisation; one
 * file for IPv4, one for IPv6; that package ships no MMDB) converted once into one MMDB file
 * shaped like MaxMind's GeoLite2-ASN (`autonomous_system_number`,
 * `autonomous_system_organization`), so the provider reads it like any MMDB, from disk,
 * instead of holding half a million parsed ranges in every process.
 *
 * The file is built at first start when missing (or by `idp geo build`, for images built
 * ahead of time), and is named after the package's version and this converter's format
 * version, so an upgraded package gets a new file and never a stale one. It is written to a
 * temporary file and renamed into place: two processes starting at once both build, and
 * either rename leaves a complete file.
 *
 * Where (the first that applies; README "Geolocation data"):
 * 1. `GEOIP_CACHE_DIR`, when set: there only.
 * 2. `node_modules/.cache/adaptive-idp/` beside the package (the usual home of derived
 *    build artefacts), when the file is there or the directory can be written.
 * 3. `DATA_DIR/cache/`, for installs whose node_modules is read-only.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataSection, SearchTree, writeMmdb, type Words } from './mmdb-writer.ts';

/** Bump when the converted file's layout or content changes: old files are then rebuilt. */
const FORMAT = 1;
const PACKAGE = '@ip-location-db/asn';

const require = createRequire(import.meta.url);

export interface AsnSource {
  dir: string;
  version: string;
}

export function asnSource(): AsnSource {
  const dir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
  const { version } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  return { dir, version };
}

export interface AsnCacheOptions {
  /** GEOIP_CACHE_DIR: the only place to look and build when set. */
  cacheDir?: string | undefined;
  /** DATA_DIR: its cache/ is the last resort. */
  dataDir?: string | undefined;
}

/** The converted file's name for this package version and format. */
export function asnFileName(version: string): string {
  return `asn-${version.replace(/[^0-9A-Za-z.-]/g, '_')}-f${FORMAT}.mmdb`;
}

/** The directories to look in and build into, in order (see the file's comment). */
export function asnCacheDirs(src: AsnSource, opts: AsnCacheOptions): string[] {
  if (opts.cacheDir) return [path.resolve(opts.cacheDir)];
  // dir is …/node_modules/@ip-location-db/asn.
  const dirs = [path.join(src.dir, '..', '..', '.cache', 'adaptive-idp')];
  if (opts.dataDir) dirs.push(path.resolve(opts.dataDir, 'cache'));
  return dirs;
}

function writableDir(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface AsnPlan {
  /** The converted file if it exists already. */
  existing?: string;
  /** Where it would be built (the first candidate directory that is writable or creatable). */
  buildAt?: string;
  /** The directories considered. */
  dirs: string[];
}

/** Where the converted file is, or would be built; creates nothing (for `idp config check`). */
export function planAsnMmdb(opts: AsnCacheOptions, src = asnSource()): AsnPlan {
  const dirs = asnCacheDirs(src, opts);
  const name = asnFileName(src.version);
  for (const d of dirs) {
    const f = path.join(d, name);
    if (fs.existsSync(f)) return { existing: f, dirs };
  }
  for (const d of dirs) {
    let probe = d;
    while (!fs.existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
    try {
      fs.accessSync(probe, fs.constants.W_OK | fs.constants.X_OK);
      return { buildAt: path.join(d, name), dirs };
    } catch { /* next */ }
  }
  return { dirs };
}

export interface AsnBuild {
  file: string;
  /** CSV rows read (IPv4 + IPv6). */
  rows: number;
  /** Networks (CIDR blocks) inserted. */
  networks: number;
  /** Distinct (ASN, organisation) records. */
  records: number;
  nodes: number;
  bytes: number;
  ms: number;
}

/**
 * The converted file: the existing one, or one built now into the first writable cache
 * directory. `rebuild`: build even if it exists (a file that failed to open).
 */
export async function ensureAsnMmdb(opts: AsnCacheOptions, onBuilt?: (b: AsnBuild) => void, rebuild = false): Promise<string> {
  const src = asnSource();
  const dirs = asnCacheDirs(src, opts);
  const name = asnFileName(src.version);
  if (!rebuild) {
    for (const d of dirs) {
      const f = path.join(d, name);
      if (fs.existsSync(f)) return f;
    }
  }
  const dir = dirs.find(writableDir);
  if (!dir) {
    throw new Error(`cannot build the ASN database: none of ${dirs.join(', ')} is writable; run \`idp geo build\` where it is, or set GEOIP_CACHE_DIR to a writable directory`);
  }
  const built = await buildAsnMmdbInChild(src, path.join(dir, name));
  onBuilt?.(built);
  return built.file;
}

/** buildAsnMmdb in a child process (asn-build-worker.ts says why). */
export function buildAsnMmdbInChild(src: AsnSource, out: string): Promise<AsnBuild> {
  // The script is this file's sibling, compiled alike (.js in dist/).
  const script = fileURLToPath(new URL(`./asn-build-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  return new Promise((resolve, reject) => {
    // No execArgv: the server's flags (an inspector port, say) are not the converter's.
    execFile(process.execPath, [script, JSON.stringify({ src, out })], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`the ASN conversion failed: ${stderr.trim().split('\n').find((l) => l.startsWith('Error')) ?? err.message}`));
        return;
      }
      resolve(JSON.parse(stdout) as AsnBuild);
    });
  });
}

/** Splits a CSV line; fields may be quoted ("" inside quotes is a quote). */
export function parseCsvLine(line: string): string[] {
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

/**
 * Calls `each` with every line of a file, read in 1 MiB chunks: the 32 MB of CSV are never
 * in memory at once. Synchronous: an async iterator's promise per line was most of the
 * conversion's garbage (and heap growth), and nothing else runs while a start converts.
 */
function eachLine(file: string, each: (line: string) => void): void {
  const fd = fs.openSync(file, 'r');
  try {
    let buf = Buffer.alloc(1 << 20);
    let carry = 0; // bytes of an unfinished line, moved to the front of buf
    for (;;) {
      if (carry === buf.length) { const bigger = Buffer.alloc(buf.length * 2); buf.copy(bigger); buf = bigger; }
      const n = fs.readSync(fd, buf, carry, buf.length - carry, null);
      const end = carry + n;
      if (n === 0) {
        if (end > 0) each(buf.toString('utf8', 0, end));
        return;
      }
      // Lines end at a newline byte, which is never part of a multi-byte UTF-8 sequence.
      const last = buf.lastIndexOf(10, end - 1);
      if (last < 0) { carry = end; continue; }
      for (const line of buf.toString('utf8', 0, last).split('\n')) each(line);
      carry = end - last - 1;
      buf.copy(buf, 0, last + 1, end);
    }
  } finally {
    fs.closeSync(fd);
  }
}

const M32 = 0xffff_ffffn;
/** ::/96 and ::ffff:0:0/96, first and last address. */
const RESERVED_FOR_V4: [bigint, bigint][] = [[0n, M32], [0xffffn << 32n, (0xffffn << 32n) | M32]];
const toWords = (x: bigint): Words => [Number(x >> 96n), Number((x >> 64n) & M32), Number((x >> 32n) & M32), Number(x & M32)];
const bitLength = (x: bigint) => (x === 0n ? 0 : x.toString(2).length);

interface Row { start: bigint; end: bigint; asn: number; org: string; line: number }

/**
 * Builds the MMDB from the CSV files of `src` into `out` (temporary file, then rename).
 *
 * What a lookup answers must equal what a binary search over the CSV rows answers (the
 * former in-memory table; test/unit/asn-mmdb.test.ts checks it): the row with the greatest
 * start ≤ the address, if the address is ≤ its end. So a row whose range runs into the next
 * row's is cut at the next start (the IPv4 file has such an overlap), and rows must come in
 * order of their start. IPv4 goes at ::/96 (the IPv4 start node MaxMind readers look for),
 * and ::ffff:0:0/96 (IPv4-mapped) is an alias of it, as in MaxMind's own databases.
 */
export async function buildAsnMmdb(src: AsnSource, out: string): Promise<AsnBuild> {
  const t0 = performance.now();
  const tree = new SearchTree();
  const data = new DataSection();
  const records = new Map<string, number>();
  let rows = 0;
  let networks = 0;

  const recordOf = (asn: number, org: string): number => {
    const key = `${asn}\u0000${org}`;
    let at = records.get(key);
    if (at === undefined) {
      at = data.length;
      data.map(2);
      data.sharedString('autonomous_system_number');
      data.uint32(asn);
      data.sharedString('autonomous_system_organization');
      data.sharedString(org);
      records.set(key, at);
    }
    return at;
  };

  /** Inserts [start, end] as the fewest aligned CIDR blocks. */
  const insertRange = (start: bigint, end: bigint, at: number) => {
    let s = start;
    while (s <= end) {
      // The largest block that starts at s (its alignment) and ends by `end`.
      let k = bitLength(end - s + 1n) - 1;
      if (s !== 0n) k = Math.min(k, bitLength(s & -s) - 1);
      tree.insert(toWords(s), 128 - k, at);
      networks += 1;
      s += 1n << BigInt(k);
    }
  };

  const file = (name: string) => path.join(src.dir, name);
  for (const [name, family] of [['asn-ipv4-num.csv', 4], ['asn-ipv6-num.csv', 6]] as const) {
    const limit = family === 4 ? 1n << 32n : 1n << 128n;
    let prev: Row | undefined;
    const flush = (next: Row | undefined) => {
      if (!prev) return;
      const end = next && next.start <= prev.end ? next.start - 1n : prev.end;
      if (end >= prev.start) insertRange(prev.start, end, recordOf(prev.asn, prev.org));
    };
    let n = 0;
    eachLine(file(name), (line) => {
      n += 1;
      if (!line) return;
      const [s = '', e = '', a = '', o = ''] = parseCsvLine(line);
      let row: Row;
      try {
        row = { start: BigInt(s), end: BigInt(e), asn: Number(a), org: o, line: n };
      } catch {
        throw new Error(`${name}:${n}: not a range: ${line.slice(0, 80)}`);
      }
      if (row.start < 0n || row.end >= limit || row.end < row.start || !Number.isInteger(row.asn) || row.asn < 0 || row.asn > 0xffff_ffff) {
        throw new Error(`${name}:${n}: not a valid IPv${family} range and ASN: ${line.slice(0, 80)}`);
      }
      if (prev && row.start < prev.start) throw new Error(`${name}:${n}: ranges are not in order of their first address`);
      // IPv6 rows in ::/96 or ::ffff:0:0/96 would collide with the IPv4 data placed there.
      if (family === 6 && RESERVED_FOR_V4.some(([lo, hi]) => row.start <= hi && row.end >= lo)) {
        throw new Error(`${name}:${n}: an IPv6 range in ::/96 or ::ffff:0:0/96, where the IPv4 data goes`);
      }
      flush(row);
      prev = row;
      rows += 1;
    });
    flush(undefined);
  }
  // IPv4-mapped addresses (::ffff:a.b.c.d) answer as a.b.c.d.
  tree.alias([0, 0, 0xffff, 0], [0, 0, 0, 0], 96);

  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  let bytes: number;
  try {
    bytes = writeMmdb(fd, tree, data, {
      databaseType: 'ip-location-db-ASN',
      description: { en: `${PACKAGE} ${src.version} (RouteViews + DB-IP, CC BY 4.0), converted by adaptive-idp (format ${FORMAT})` },
      languages: ['en'],
      // The source's date, not now: the same package always converts to the same bytes.
      buildEpoch: Math.floor(fs.statSync(file('asn-ipv4-num.csv')).mtimeMs / 1000),
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, out);
  } catch (err) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { file: out, rows, networks, records: records.size, nodes: tree.nodeCount, bytes, ms: performance.now() - t0 };
}

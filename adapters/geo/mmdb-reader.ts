/**
 * Lookups in an MMDB file read from disk (paged-file.ts), by the MaxMind DB File Format
 * Specification 2.0 (https://maxmind.github.io/MaxMind-DB/): the search tree walked bit by
 * bit, the record decoded from the data section. What a lookup returns is what `maxmind`
 * (mmdb-lib) returns for the same file: test/integration/geo.test.ts compares the two on the
 * shipped files, and the metadata is parsed by mmdb-lib itself.
 *
 * Why not mmdb-lib's Reader on the Buffer-compatible view (PagedFile.asBuffer)? It works,
 * but every `db[i]` and method call then goes through a Proxy trap (about 120 ns each), and a
 * City lookup makes some 125 of them: 40 µs per assessment at the median instead of 13 µs
 * with the file in memory, and under CPU contention a p99 over the 1 ms target (measured,
 * issue 10). Reading the PagedFile directly costs a few ns an access.
 */
import net from 'node:net';
import { Reader, type Response } from 'maxmind';
import type { PagedFile } from './paged-file.ts';

/** mmdb-lib's metadata, as `Reader.metadata` gives it. */
export type Metadata = Reader<Response>['metadata'];

/** mmdb-lib's cache interface: decoded values by offset in the file. */
export interface RecordCache {
  get(offset: number): unknown;
  set(offset: number, value: unknown): void;
}

const SEPARATOR = 16; // spec "Data Section Separator"
const POINTER_BASE = [0, 2048, 526_336, 0]; // spec "Pointer": what each size adds

/** The address as bytes (4 or 16), or undefined when it is not an IP address. */
export function addressBytes(ip: string): number[] | undefined {
  const family = net.isIP(ip);
  if (family === 4) return ip.split('.').map(Number);
  if (family !== 6) return undefined;
  let s = ip.split('%')[0]!;
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => { const v = parseInt(g, 16); return [v >> 8, v & 0xff]; });
}

export class MmdbReader<T> {
  readonly metadata: Metadata;
  readonly #file: PagedFile;
  readonly #cache: RecordCache;
  readonly #nodeCount: number;
  readonly #nodeBytes: number;
  readonly #recordSize: number;
  /** Where the data section starts: pointers count from here. */
  readonly #dataStart: number;
  /** The node IPv4 lookups start from in an IPv6 tree (::/96), or 0 in an IPv4 tree. */
  readonly #ipv4Start: number;

  constructor(file: PagedFile, cache: RecordCache) {
    this.#file = file;
    this.#cache = cache;
    // mmdb-lib parses the metadata (through the Proxy view, once) and validates the record size.
    this.metadata = new Reader(file.asBuffer()).metadata;
    this.#nodeCount = this.metadata.nodeCount;
    this.#recordSize = this.metadata.recordSize;
    this.#nodeBytes = this.metadata.nodeByteSize;
    this.#dataStart = this.metadata.searchTreeSize + SEPARATOR;
    let node = 0;
    if (this.metadata.ipVersion === 6) {
      for (let i = 0; i < 96 && node < this.#nodeCount; i += 1) node = this.#left(node * this.#nodeBytes);
    }
    this.#ipv4Start = node;
  }

  #left(o: number): number {
    const f = this.#file;
    switch (this.#recordSize) {
      case 24: return f.uint(o, 3);
      case 28: return ((f.byte(o + 3)! & 0xf0) << 20) | f.uint(o, 3);
      default: return f.uint(o, 4);
    }
  }

  #right(o: number): number {
    const f = this.#file;
    switch (this.#recordSize) {
      case 24: return f.uint(o + 3, 3);
      case 28: return ((f.byte(o + 3)! & 0x0f) << 24) | f.uint(o + 4, 3);
      default: return f.uint(o + 4, 4);
    }
  }

  /** The record for `ip`, or null when the file has none (or `ip` is not an address). */
  get(ip: string): T | null {
    const bytes = addressBytes(ip);
    if (!bytes) return null;
    const bits = bytes.length * 8;
    if (bits === 128 && this.metadata.ipVersion === 4) return null;
    let node = bits === 32 ? this.#ipv4Start : 0;
    for (let depth = 0; depth < bits && node < this.#nodeCount; depth += 1) {
      const bit = (bytes[depth >> 3]! >> (7 - (depth & 7))) & 1;
      const o = node * this.#nodeBytes;
      node = bit ? this.#right(o) : this.#left(o);
    }
    // Spec: node count means "no data"; above it, an offset into the data section.
    if (node <= this.#nodeCount) return null;
    return this.#cached(node - this.#nodeCount + this.metadata.searchTreeSize) as T;
  }

  #cached(offset: number): unknown {
    const hit = this.#cache.get(offset);
    if (hit !== undefined) return hit;
    const [value] = this.#decode(offset);
    this.#cache.set(offset, value);
    return value;
  }

  /** Spec "Output Data Section": the value at `offset` and the offset after it. */
  #decode(offset: number): [unknown, number] {
    const f = this.#file;
    const ctrl = f.byte(offset++)!;
    let type = ctrl >> 5;
    if (type === 1) {
      // Pointer: 001SSVVV; the value pointed to is decoded, the cursor moves past the pointer.
      const ss = (ctrl >> 3) & 3;
      const v = ctrl & 7;
      let p: number;
      if (ss === 0) p = (v << 8) | f.byte(offset)!;
      else if (ss === 1) p = (v << 16) | f.uint(offset, 2);
      else if (ss === 2) p = v * 2 ** 24 + f.uint(offset, 3);
      else p = f.uint(offset, 4);
      return [this.#cached(this.#dataStart + POINTER_BASE[ss]! + p), offset + ss + 1];
    }
    if (type === 0) {
      type = 7 + f.byte(offset++)!;
      if (type < 8) throw new Error(`${f.path}: invalid extended type at offset ${offset}`);
    }
    let size = ctrl & 0x1f;
    if (size === 29) size = 29 + f.byte(offset++)!;
    else if (size === 30) { size = 285 + f.uint(offset, 2); offset += 2; } else if (size === 31) { size = 65_821 + f.uint(offset, 3); offset += 3; }
    switch (type) {
      case 2: return [f.text('utf8', offset, offset + size), offset + size];
      case 3: return [f.double(offset), offset + size];
      case 4: return [f.copy(offset, offset + size), offset + size];
      case 5: case 6: {
        if (size > 4) throw new Error(`${f.path}: invalid size for an unsigned integer: ${size}`);
        return [size === 0 ? 0 : f.uint(offset, size), offset + size];
      }
      case 7: {
        const map: Record<string, unknown> = {};
        for (let i = 0; i < size; i += 1) {
          const [key, next] = this.#decode(offset);
          const [value, after] = this.#decode(next);
          map[key as string] = value;
          offset = after;
        }
        return [map, offset];
      }
      // As mmdb-lib: sizes below 4 are read unsigned.
      case 8: return [size === 0 ? 0 : size < 4 ? f.uint(offset, size) : f.int32(offset), offset + size];
      case 9: case 10: {
        if (size > 16) throw new Error(`${f.path}: invalid size for a big unsigned integer: ${size}`);
        let n = 0n;
        for (let i = 0; i < size; i += 1) n = (n << 8n) | BigInt(f.byte(offset + i)!);
        return [n, offset + size];
      }
      case 11: {
        const arr = new Array<unknown>(size);
        for (let i = 0; i < size; i += 1) [arr[i], offset] = this.#decode(offset);
        return [arr, offset];
      }
      case 14: return [size !== 0, offset];
      case 15: return [f.float(offset), offset + size];
      default: throw new Error(`${f.path}: unknown data type ${type} at offset ${offset}`);
    }
  }
}

/**
 * A small writer of MaxMind DB files (MaxMind DB File Format Specification 2.0,
 * https://maxmind.github.io/MaxMind-DB/), enough for what the provider builds itself: an IPv6
 * tree holding IPv4 at ::/96 (as MaxMind's own databases do), records of maps, strings and
 * unsigned integers, and key strings stored once and pointed to.
 *
 * npm has no maintained MMDB writer (MaxMind's are Go's mmdbwriter and a deprecated Perl
 * module), so this one is ours. Memory stays small: the tree lives in two Uint32Arrays (8
 * bytes a node while building) and the data section in one growing Buffer; the file is
 * written in chunks.
 *
 * Layout (spec "Database Structure"): search tree, 16 zero bytes, data section, then
 * "\xAB\xCD\xEFMaxMind.com" and the metadata map.
 */
import fs from 'node:fs';

/** Spec "Output Data Section": the types this writer emits. */
const T = { pointer: 1, utf8: 2, uint16: 5, uint32: 6, map: 7, uint64: 9, array: 11 } as const;

/** The data section (or the metadata), encoded as values are added. */
export class DataSection {
  #buf = Buffer.alloc(1 << 16);
  #len = 0;
  /** Offsets of strings already written, to point to instead of repeating them. */
  readonly #strings = new Map<string, number>();

  get length(): number { return this.#len; }

  bytes(): Buffer { return this.#buf.subarray(0, this.#len); }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  #byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  /** Spec "Control Byte": type in the top 3 bits (types above 7: 0 and an extended byte), then the size. */
  #control(type: number, size: number): void {
    const t = type <= 7 ? type << 5 : 0;
    const ext = () => { if (type > 7) this.#byte(type - 7); };
    if (size < 29) { this.#byte(t | size); ext(); return; }
    if (size < 29 + 256) { this.#byte(t | 29); ext(); this.#byte(size - 29); return; }
    if (size < 285 + 65_536) { this.#byte(t | 30); ext(); this.#reserve(2); this.#buf.writeUInt16BE(size - 285, this.#len); this.#len += 2; return; }
    if (size < 65_821 + 2 ** 24) { this.#byte(t | 31); ext(); this.#reserve(3); this.#buf.writeUIntBE(size - 65_821, this.#len, 3); this.#len += 3; return; }
    throw new RangeError(`MMDB: a value of ${size} bytes is too large`);
  }

  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.#control(T.utf8, b.length);
    this.#reserve(b.length);
    b.copy(this.#buf, this.#len);
    this.#len += b.length;
  }

  /**
   * A string written once and pointed to afterwards (spec "pointer": offsets from the start
   * of the data section). For map keys and other repeated strings; only in the data
   * section, whose start is what pointers are relative to.
   */
  sharedString(s: string): void {
    const at = this.#strings.get(s);
    if (at === undefined) {
      this.#strings.set(s, this.#len);
      this.string(s);
    } else this.pointer(at);
  }

  pointer(p: number): void {
    // 001SSVVV: SS chooses 11, 19 + 2048, 27 + 526336 or 32 bits.
    if (p < 2048) { this.#byte((T.pointer << 5) | (p >> 8)); this.#byte(p & 0xff); return; }
    if (p < 2048 + 2 ** 19) { const v = p - 2048; this.#byte((T.pointer << 5) | (1 << 3) | (v >> 16)); this.#byte((v >> 8) & 0xff); this.#byte(v & 0xff); return; }
    if (p < 526_336 + 2 ** 27) {
      const v = p - 526_336;
      this.#byte((T.pointer << 5) | (2 << 3) | Math.floor(v / 2 ** 24));
      this.#reserve(3); this.#buf.writeUIntBE(v % 2 ** 24, this.#len, 3); this.#len += 3;
      return;
    }
    this.#byte((T.pointer << 5) | (3 << 3));
    this.#reserve(4); this.#buf.writeUInt32BE(p, this.#len); this.#len += 4;
  }

  /** Unsigned integers are stored big-endian in as few bytes as the value needs (size 0 for 0). */
  #uint(type: number, v: bigint, max: number): void {
    if (v < 0n || v >= 1n << BigInt(max * 8)) throw new RangeError(`MMDB: ${v} does not fit ${max * 8} bits`);
    const bytes: number[] = [];
    for (let x = v; x > 0n; x >>= 8n) bytes.unshift(Number(x & 0xffn));
    this.#control(type, bytes.length);
    for (const b of bytes) this.#byte(b);
  }

  uint16(v: number): void { this.#uint(T.uint16, BigInt(v), 2); }
  uint32(v: number): void { this.#uint(T.uint32, BigInt(v), 4); }
  uint64(v: bigint): void { this.#uint(T.uint64, v, 8); }
  /** A map of `pairs` entries follows: key, value, key, value… */
  map(pairs: number): void { this.#control(T.map, pairs); }
  array(items: number): void { this.#control(T.array, items); }
}

/** An IPv6 address (or an IPv4 one at ::/96) as four 32-bit words, most significant first. */
export type Words = [number, number, number, number];

const EMPTY = 0;
const DATA = 0x8000_0000;

/**
 * The binary search tree (spec "Search Tree Section"), built by inserting prefixes. A record
 * is EMPTY, a node number, or DATA | offset in the data section. Node 0 is the root.
 */
export class SearchTree {
  #left = new Uint32Array(1 << 16);
  #right = new Uint32Array(1 << 16);
  #count = 1;

  get nodeCount(): number { return this.#count; }

  #newNode(): number {
    if (this.#count === this.#left.length) {
      const grow = (a: Uint32Array) => { const b = new Uint32Array(a.length * 2); b.set(a); return b; };
      this.#left = grow(this.#left);
      this.#right = grow(this.#right);
    }
    if (this.#count >= DATA) throw new RangeError('MMDB: too many nodes');
    return this.#count++;
  }

  /** The node `prefixLength` bits down `addr`, created as needed (EMPTY records only). */
  #walk(addr: Words, prefixLength: number): number {
    let node = 0;
    for (let depth = 0; depth < prefixLength; depth += 1) {
      const right = (addr[depth >> 5]! >>> (31 - (depth & 31))) & 1;
      const next = (right ? this.#right : this.#left)[node]!;
      if (next & DATA) throw new Error(`MMDB: overlapping networks at ${formatWords(addr)}/${depth + 1}`);
      if (next === EMPTY) {
        const n = this.#newNode(); // may replace the arrays: index them after
        (right ? this.#right : this.#left)[node] = n;
        node = n;
      } else node = next;
    }
    return node;
  }

  /** Points the network `addr`/`prefixLength` (1..128) at `dataOffset`. Networks must not overlap. */
  insert(addr: Words, prefixLength: number, dataOffset: number): void {
    if (prefixLength < 1 || prefixLength > 128) throw new RangeError(`MMDB: prefix length ${prefixLength}`);
    const parent = this.#walk(addr, prefixLength - 1);
    const bit = prefixLength - 1;
    const side = (addr[bit >> 5]! >>> (31 - (bit & 31))) & 1 ? this.#right : this.#left;
    if (side[parent] !== EMPTY) throw new Error(`MMDB: overlapping networks at ${formatWords(addr)}/${prefixLength}`);
    side[parent] = DATA | dataOffset;
  }

  /**
   * Makes the network `from`/`length` answer what `to`/`length` answers (the same subtree),
   * as MaxMind's databases do for IPv4-mapped IPv6 (::ffff:0:0/96 → ::/96).
   */
  alias(from: Words, to: Words, length: number): void {
    const target = this.#walk(to, length);
    const parent = this.#walk(from, length - 1);
    const bit = length - 1;
    const side = (from[bit >> 5]! >>> (31 - (bit & 31))) & 1 ? this.#right : this.#left;
    if (side[parent] !== EMPTY) throw new Error(`MMDB: alias over existing networks at ${formatWords(from)}/${length}`);
    side[parent] = target;
  }

  /** The smallest record size (spec: 24, 28 or 32 bits) that holds every record value. */
  recordSize(dataLength: number): 24 | 28 | 32 {
    const max = this.#count + 16 + dataLength;
    return max < 2 ** 24 ? 24 : max < 2 ** 28 ? 28 : 32;
  }

  /** Writes the tree section to `fd`, in chunks. */
  write(fd: number, recordSize: 24 | 28 | 32): number {
    const n = this.#count;
    // Spec: a record of value n means "no data"; data records are n + 16 + offset.
    const value = (r: number) => (r === EMPTY ? n : r & DATA ? n + 16 + (r & ~DATA) >>> 0 : r);
    const nodeBytes = recordSize / 4;
    const perChunk = 8192;
    const chunk = Buffer.alloc(perChunk * nodeBytes);
    let written = 0;
    for (let first = 0; first < n; first += perChunk) {
      const last = Math.min(n, first + perChunk);
      for (let i = first; i < last; i += 1) {
        const l = value(this.#left[i]!);
        const r = value(this.#right[i]!);
        const o = (i - first) * nodeBytes;
        if (recordSize === 24) {
          chunk.writeUIntBE(l, o, 3); chunk.writeUIntBE(r, o + 3, 3);
        } else if (recordSize === 28) {
          chunk.writeUIntBE(l & 0xffffff, o, 3);
          chunk[o + 3] = ((l >>> 24) << 4) | (r >>> 24);
          chunk.writeUIntBE(r & 0xffffff, o + 4, 3);
        } else {
          chunk.writeUInt32BE(l, o); chunk.writeUInt32BE(r, o + 4);
        }
      }
      written += fs.writeSync(fd, chunk, 0, (last - first) * nodeBytes);
    }
    return written;
  }
}

export function formatWords(w: Words): string {
  const groups: string[] = [];
  for (const x of w) groups.push((x >>> 16).toString(16), (x & 0xffff).toString(16));
  return groups.join(':');
}

export interface MmdbMetadata {
  databaseType: string;
  description: Record<string, string>;
  languages?: string[];
  /** Seconds since the epoch. */
  buildEpoch: number;
}

/** Spec "Database Metadata": the marker, then one map. */
const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');

/** Writes a complete IPv6 MMDB file to `fd`: tree, separator, data, metadata. Returns its size. */
export function writeMmdb(fd: number, tree: SearchTree, data: DataSection, meta: MmdbMetadata): number {
  const recordSize = tree.recordSize(data.length);
  let size = tree.write(fd, recordSize);
  size += fs.writeSync(fd, Buffer.alloc(16));
  size += fs.writeSync(fd, data.bytes());
  const m = new DataSection();
  m.map(9);
  m.string('binary_format_major_version'); m.uint16(2);
  m.string('binary_format_minor_version'); m.uint16(0);
  m.string('build_epoch'); m.uint64(BigInt(meta.buildEpoch));
  m.string('database_type'); m.string(meta.databaseType);
  const desc = Object.entries(meta.description);
  m.string('description'); m.map(desc.length);
  for (const [lang, text] of desc) { m.string(lang); m.string(text); }
  m.string('ip_version'); m.uint16(6);
  const langs = meta.languages ?? Object.keys(meta.description);
  m.string('languages'); m.array(langs.length);
  for (const l of langs) m.string(l);
  m.string('node_count'); m.uint32(tree.nodeCount);
  m.string('record_size'); m.uint16(recordSize);
  size += fs.writeSync(fd, METADATA_MARKER);
  size += fs.writeSync(fd, m.bytes());
  return size;
}

/**
 * A read-only MMDB file read without holding it in the process: bytes are read on demand
 * (`fs.readSync` at an offset) in fixed-size blocks kept in a small cache; the operating
 * system's page cache keeps the file's hot pages, shared by every process on the machine and
 * dropped under pressure. Lookups read it directly (mmdb-reader.ts); `asBuffer()` shows it
 * as the `Buffer` that `maxmind`'s Reader (mmdb-lib) expects, which parses the metadata.
 *
 * Why not the alternatives:
 * - `maxmind.open` reads the whole file into one Buffer: the two DB-IP City files alone are
 *   130 MiB of resident memory per process, mostly a search tree of which a lookup touches
 *   about 32 nodes (IPv4) to 128 (IPv6).
 * - mmap (a native addon; Node has none built in) costs a compiled dependency, and every
 *   page a lookup touched stays in the process's resident set (RssFile): after enough
 *   distinct addresses, RSS is back to the file's size.
 *
 * mmdb-lib checks `Buffer.isBuffer(db)` (an `instanceof Buffer`), then reads `db[i]`,
 * `length`, readUIntBE, readUInt32BE, readUInt16BE, readInt32BE, readUInt8, readDoubleBE,
 * readFloatBE, subarray, slice and toString('utf8', start, end) (mmdb-lib 3: decoder.js,
 * reader/walker.js, metadata.js). A Proxy whose prototype is Buffer's answers exactly those;
 * anything else reads as undefined, so a future mmdb-lib needing more fails loudly with
 * "… is not a function" rather than reading wrong bytes. subarray/slice return copies: the
 * Reader only reads them.
 */
import fs from 'node:fs';

export interface PagedFileOptions {
  /** Bytes per block read from the file (default 4 KiB: one page). A power of two. */
  blockSize?: number;
  /**
   * Blocks kept in the process (default 1024: at most 4 MiB per file, resident only as
   * used). Rounded up to a power of two. Random City + ASN lookups read 6.1 blocks from the
   * file with 256, 3.4 with 1024, 1.6 with 4096, each read about 1.5 µs (measured).
   */
  maxBlocks?: number;
}

export interface PagedFileStats {
  /** Blocks read from the file (fs.readSync calls): misses of the in-process cache. */
  reads: number;
}

/**
 * The block cache is two-way set-associative with LRU within each set: a block can live in
 * one of two slots chosen by its number, and a miss replaces the less recently used of the
 * two. O(1) with no allocation per access; a Map kept in recency order (delete + set on
 * every hit) cost more than the reads it saved (measured: most of a lookup's time).
 */
export class PagedFile {
  readonly path: string;
  readonly length: number;
  readonly stats: PagedFileStats = { reads: 0 };
  readonly #fd: number;
  readonly #blockSize: number;
  readonly #shift: number;
  readonly #mask: number;
  readonly #sets: number;
  /** All cached blocks, slot i at i × blockSize. */
  readonly #slab: Buffer;
  /** The block number in each slot (-1: empty). */
  readonly #tags: Int32Array;
  /** Per set, the way (0 or 1) used last. */
  readonly #recent: Uint8Array;
  /** Assembles values that straddle two blocks. */
  readonly #scratch = Buffer.alloc(8);

  constructor(file: string, opts: PagedFileOptions = {}) {
    const blockSize = opts.blockSize ?? 4096;
    if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 64) throw new RangeError(`blockSize must be a power of two ≥ 64, got ${blockSize}`);
    this.path = file;
    this.#blockSize = blockSize;
    this.#shift = Math.log2(blockSize);
    this.#mask = blockSize - 1;
    this.#sets = 2 ** Math.ceil(Math.log2(Math.max(2, opts.maxBlocks ?? 1024) / 2));
    // Kept open for the life of the reader: a database replaced on disk (renamed over) keeps
    // answering from the file that was opened, never from a mix of the two.
    this.#fd = fs.openSync(file, 'r');
    this.length = fs.fstatSync(this.#fd).size;
    this.#slab = Buffer.alloc(this.#sets * 2 * blockSize);
    this.#tags = new Int32Array(this.#sets * 2).fill(-1);
    this.#recent = new Uint8Array(this.#sets);
  }

  close(): void {
    fs.closeSync(this.#fd);
  }

  /** Where in the slab block `index` starts, reading it from the file on a miss. */
  #slot(index: number): number {
    const set = index & (this.#sets - 1);
    const way0 = set << 1;
    if (this.#tags[way0] === index) { this.#recent[set] = 0; return way0 << this.#shift; }
    if (this.#tags[way0 + 1] === index) { this.#recent[set] = 1; return (way0 + 1) << this.#shift; }
    const way = this.#recent[set]! ^ 1;
    const at = (way0 + way) << this.#shift;
    const start = index * this.#blockSize;
    const want = Math.min(this.#blockSize, this.length - start);
    const n = fs.readSync(this.#fd, this.#slab, at, want, start);
    if (n !== want) {
      this.#tags[way0 + way] = -1;
      throw new Error(`${this.path}: short read at ${start} (${n} of ${want} bytes); was the file truncated?`);
    }
    this.stats.reads += 1;
    this.#tags[way0 + way] = index;
    this.#recent[set] = way;
    return at;
  }

  byte(i: number): number | undefined {
    if (!(i >= 0 && i < this.length)) return undefined;
    return this.#slab[this.#slot(Math.floor(i / this.#blockSize)) + (i & this.#mask)];
  }

  /** `n` bytes at `offset`, as a Buffer to read a value from, and where in it they start. */
  #span(offset: number, n: number): [Buffer, number] {
    if (!(offset >= 0 && offset + n <= this.length)) throw new RangeError(`${this.path}: read of ${n} bytes at ${offset} is outside the file (${this.length} bytes)`);
    const within = offset & this.#mask;
    if (within + n <= this.#blockSize) return [this.#slab, this.#slot(Math.floor(offset / this.#blockSize)) + within];
    for (let k = 0; k < n; k += 1) this.#scratch[k] = this.byte(offset + k)!;
    return [this.#scratch, 0];
  }

  /** Whether `n` bytes at `offset` lie in one block (and in the file): the fast path. */
  #inBlock(offset: number, n: number): boolean {
    return offset >= 0 && offset + n <= this.length && (offset & this.#mask) + n <= this.#blockSize;
  }

  #at(offset: number): number {
    return this.#slot(Math.floor(offset / this.#blockSize)) + (offset & this.#mask);
  }

  /** Unsigned big-endian integer of `n` (1..6) bytes at `offset`. */
  uint(offset: number, n: number): number {
    if (this.#inBlock(offset, n)) return this.#slab.readUIntBE(this.#at(offset), n);
    const [b, i] = this.#span(offset, n);
    return b.readUIntBE(i, n);
  }

  int32(offset: number): number {
    if (this.#inBlock(offset, 4)) return this.#slab.readInt32BE(this.#at(offset));
    const [b, i] = this.#span(offset, 4);
    return b.readInt32BE(i);
  }

  double(offset: number): number {
    if (this.#inBlock(offset, 8)) return this.#slab.readDoubleBE(this.#at(offset));
    const [b, i] = this.#span(offset, 8);
    return b.readDoubleBE(i);
  }

  float(offset: number): number {
    if (this.#inBlock(offset, 4)) return this.#slab.readFloatBE(this.#at(offset));
    const [b, i] = this.#span(offset, 4);
    return b.readFloatBE(i);
  }

  /** A copy of bytes [start, end). */
  copy(start = 0, end = this.length): Buffer {
    const s = Math.max(0, Math.min(start, this.length));
    const e = Math.max(s, Math.min(end, this.length));
    const out = Buffer.allocUnsafe(e - s);
    let at = s;
    while (at < e) {
      const within = at & this.#mask;
      const take = Math.min(this.#blockSize - within, e - at);
      const slot = this.#slot(Math.floor(at / this.#blockSize));
      this.#slab.copy(out, at - s, slot + within, slot + within + take);
      at += take;
    }
    return out;
  }
  /** Bytes [start, end) decoded as text; without a copy when they lie in one block. */
  text(encoding: BufferEncoding, start: number, end: number): string {
    const within = start & this.#mask;
    if (start >= 0 && end <= this.length && end > start && within + (end - start) <= this.#blockSize) {
      const slot = this.#slot(Math.floor(start / this.#blockSize));
      return this.#slab.toString(encoding, slot + within, slot + within + (end - start));
    }
    return this.copy(start, end).toString(encoding);
  }

  /** The Buffer-compatible view for mmdb-lib's Reader (see the file's comment). */
  asBuffer(): Buffer {
    const methods: Record<string, unknown> = Object.assign(Object.create(null) as object, {
      length: this.length,
      readUIntBE: (o: number, n: number) => { const [b, i] = this.#span(o, n); return b.readUIntBE(i, n); },
      readUInt32BE: (o: number) => { const [b, i] = this.#span(o, 4); return b.readUInt32BE(i); },
      readUInt16BE: (o: number) => { const [b, i] = this.#span(o, 2); return b.readUInt16BE(i); },
      readInt32BE: (o: number) => { const [b, i] = this.#span(o, 4); return b.readInt32BE(i); },
      readUInt8: (o: number) => { const [b, i] = this.#span(o, 1); return b.readUInt8(i); },
      readDoubleBE: (o: number) => { const [b, i] = this.#span(o, 8); return b.readDoubleBE(i); },
      readFloatBE: (o: number) => { const [b, i] = this.#span(o, 4); return b.readFloatBE(i); },
      subarray: (s?: number, e?: number) => this.copy(s, e),
      slice: (s = 0, e = this.length) => this.copy(s < 0 ? this.length + s : s, e < 0 ? this.length + e : e),
      toString: (encoding: BufferEncoding = 'utf8', s = 0, e = this.length) => this.text(encoding, s, e),
    });
    const target = Object.create(Buffer.prototype) as Buffer;
    return new Proxy(target, {
      get: (_t, prop) => {
        if (typeof prop !== 'string') return undefined;
        const c = prop.charCodeAt(0);
        // An index: mmdb-lib reads control bytes and record nibbles as db[i].
        if (c >= 48 && c <= 57) return this.byte(Number(prop));
        return methods[prop];
      },
      set: () => false,
      has: (_t, prop) => typeof prop === 'string' && (prop in methods || (Number(prop) >= 0 && Number(prop) < this.length)),
    });
  }
}

/**
 * Runs one ASN conversion (asn-mmdb.ts) as a child process: `node asn-build-worker.js <json>`
 * prints the result as JSON. What the parse grows (CSV lines, BigInts, the tree's typed
 * arrays: about 200 MiB resident at its peak) goes back to the system when it exits. In the
 * server's own process, or even in a worker thread (whose malloc arena glibc keeps), the
 * server would keep ~120 MiB more RSS for its whole life (measured).
 */
import { buildAsnMmdb, type AsnSource } from './asn-mmdb.ts';

const { src, out } = JSON.parse(process.argv[2] ?? '{}') as { src: AsnSource; out: string };
process.stdout.write(`${JSON.stringify(await buildAsnMmdb(src, out))}\n`);

/**
 * `npm run test:mongo [-- sqlite|postgresql]`: the test files that use the MongoDB store, run
 * again with only their MongoDB suites (TEST_STORES=mongodb), with the flags of `npm test`.
 * With a backend named, it starts FerretDB on it itself (.ci/ferretdb.sh) and stops it after;
 * without, it runs against MONGODB_URI. CI runs `npm test` on FerretDB over SQLite, then this
 * on FerretDB over PostgreSQL: a second MongoDB-protocol server, for the price of the MongoDB
 * suites alone.
 *
 * The files are found, not listed: those whose compiled text refers to the stores under test
 * (STORES, mongoUriForTest or MONGODB_URI), so a new MongoDB suite is picked up by itself.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseBackends, startFerretDB, type FerretServer } from './helpers/ferretdb.ts';

const USES_MONGO = /\b(STORES|mongoUriForTest|MONGODB_URI)\b/;

/** The `*.test.js` files under `dir` that use the MongoDB store, sorted. */
export function mongoTestFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.test.js') && USES_MONGO.test(fs.readFileSync(p, 'utf8'))) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

async function main(): Promise<number> {
  const [backend, ...rest] = parseBackends(process.argv.slice(2).join(','));
  if (rest.length > 0) throw new Error('test:mongo takes one backend at a time');
  let server: FerretServer | undefined;
  if (backend) server = await startFerretDB(backend);
  const uri = server?.uri ?? process.env.MONGODB_URI;
  try {
    if (!uri) {
      console.error('test:mongo: set MONGODB_URI, or name a FerretDB backend to start (npm run test:mongo -- postgresql)');
      return 2;
    }
    const files = mongoTestFiles(import.meta.dirname);
    console.log(`test:mongo: ${files.length} files, MongoDB suites only, on ${server ? `FerretDB over ${server.backend} (${uri})` : `MONGODB_URI (${new URL(uri).host})`}`);
    const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=180000', '--test-reporter=spec', ...files], {
      stdio: 'inherit', env: { ...process.env, MONGODB_URI: uri, TEST_STORES: 'mongodb' },
    });
    return r.status ?? 1;
  } finally {
    server?.stop();
  }
}

if (process.argv[1] && import.meta.filename === fs.realpathSync(process.argv[1])) {
  process.exitCode = await main().catch((err: unknown) => {
    console.error(`test:mongo: ${(err as Error).message}`);
    return 2;
  });
}

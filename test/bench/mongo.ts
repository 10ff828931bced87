/**
 * The MongoDB part of `npm run bench`: which MongoDB-protocol servers the MongoDB store is
 * measured on, and a side-by-side summary of them.
 *
 * - BENCH_MONGO=sqlite,postgresql (either or both): the bench starts FerretDB v1 on that
 *   backend itself (.ci/ferretdb.sh, as CI does; PostgreSQL is Debian's, a throw-away cluster
 *   with fsync off) and measures the store on each in turn, in the order given.
 * - otherwise MONGODB_URI, when set: the server found there (reported as it is, unnamed).
 * - neither: MongoDB is not measured.
 *
 * Every database server shares the machine's cores with the provider and the load generator,
 * so a MongoDB figure is bounded by the database more than by our code: the round trips per
 * request (store operations, counted by the store itself and read from /metrics) are the
 * figure that is ours and does not depend on the machine.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseBackends, startFerretDB, type FerretServer } from '../helpers/ferretdb.ts';

export interface MongoTarget {
  /** Short name for the summary: `sqlite`, `postgresql` or `MONGODB_URI`. */
  name: string;
  /** What it is, for the report. */
  description: string;
}

interface RateLike { rate: number; serverCores: number; errors: number }
interface OpsLike { total: number; by: [string, number][] }

/** What benchStore returns for one target. */
export interface MongoFigures {
  cc?: RateLike;
  rf?: RateLike;
  pl?: RateLike;
  perCc?: OpsLike;
  perRefresh?: OpsLike;
  perLogin?: OpsLike;
  perTotpLogin?: OpsLike;
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return 'unknown version';
  }
}

function describe(server: FerretServer): string {
  const ferret = process.env.FERRETDB ?? path.join(import.meta.dirname, '..', '..', '..', '.ci', 'cache', 'ferretdb-v1.24.2');
  const fv = version(ferret, ['--version']).replace(/^version:\s*/, '');
  if (server.backend === 'sqlite') return `FerretDB ${fv} on SQLite (${server.uri})`;
  const bindir = process.env.PG_BINDIR ?? fs.readdirSync('/usr/lib/postgresql').sort().map((v) => `/usr/lib/postgresql/${v}/bin`).at(-1) ?? '';
  return `FerretDB ${fv} on ${version(path.join(bindir, 'postgres'), ['--version'])}, fsync off (${server.uri})`;
}

/**
 * The targets in turn; while the caller handles one, MONGODB_URI points at it (test/helpers/
 * env.ts gives each server started a database of its own under it). Servers started here are
 * stopped when the caller moves on.
 */
export async function* mongoTargets(): AsyncGenerator<MongoTarget> {
  const saved = process.env.MONGODB_URI;
  const wanted = process.env.BENCH_MONGO ? parseBackends(process.env.BENCH_MONGO) : [];
  try {
    if (wanted.length === 0) {
      if (!saved) {
        console.log('\n(neither BENCH_MONGO nor MONGODB_URI set: MongoDB not measured)');
        return;
      }
      const target = { name: 'MONGODB_URI', description: `the server at MONGODB_URI (${new URL(saved).host})` };
      console.log(`\n# MongoDB store on ${target.description}`);
      yield target;
      return;
    }
    for (const backend of wanted) {
      const server = await startFerretDB(backend);
      try {
        process.env.MONGODB_URI = server.uri;
        const target = { name: backend, description: describe(server) };
        console.log(`\n# MongoDB store on ${target.description}`);
        yield target;
      } finally {
        server.stop();
      }
    }
  } finally {
    if (saved === undefined) delete process.env.MONGODB_URI;
    else process.env.MONGODB_URI = saved;
  }
}

/** One table of every target measured, so the backends can be compared at a glance. */
export function printMongoSummary(rows: { target: MongoTarget; figures: MongoFigures }[]): void {
  if (rows.length === 0) return;
  const rate = (r?: RateLike) => (r ? r.rate.toFixed(1) : '–');
  const perCore = (r?: RateLike) => (r ? (r.rate / Math.max(r.serverCores, 0.01)).toFixed(1) : '–');
  const ops = (o?: OpsLike) => (o ? o.total.toFixed(1) : '–');
  console.log('\n## MongoDB store, side by side (rate/s wall clock; per core = per core of the provider process; round trips = store operations per request)');
  console.log(`${'server'.padEnd(12)} ${'cc/s'.padStart(8)} ${'per core'.padStart(9)} ${'refresh/s'.padStart(10)} ${'per core'.padStart(9)} ${'login/s'.padStart(8)} ${'per core'.padStart(9)}   round trips: ${'cc'.padStart(5)} ${'refresh'.padStart(8)} ${'login'.padStart(6)} ${'+TOTP'.padStart(6)}`);
  for (const { target, figures: f } of rows) {
    console.log(`${target.name.padEnd(12)} ${rate(f.cc).padStart(8)} ${perCore(f.cc).padStart(9)} ${rate(f.rf).padStart(10)} ${perCore(f.rf).padStart(9)} ${rate(f.pl).padStart(8)} ${perCore(f.pl).padStart(9)}                ${ops(f.perCc).padStart(5)} ${ops(f.perRefresh).padStart(8)} ${ops(f.perLogin).padStart(6)} ${ops(f.perTotpLogin).padStart(6)}`);
  }
}

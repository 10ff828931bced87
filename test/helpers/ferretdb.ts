/**
 * Throw-away FerretDB servers for the benchmark and the explain report, on either backend
 * FerretDB v1 has: SQLite (what CI's `npm test` runs on) or PostgreSQL (Debian's, a cluster
 * of its own). Both are started by .ci/ferretdb.sh, the script CI uses, so what the bench
 * measures is the server the tests ran against.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './env.ts';

export const FERRETDB_BACKENDS = ['sqlite', 'postgresql'] as const;
export type FerretBackend = (typeof FERRETDB_BACKENDS)[number];

const SCRIPT = path.join(import.meta.dirname, '..', '..', '..', '.ci', 'ferretdb.sh');

export interface FerretServer {
  backend: FerretBackend;
  /** mongodb://127.0.0.1:PORT/ (a database name is added per use, see mongoUriForTest). */
  uri: string;
  stop(): void;
}

/** Parses a comma-separated list of backends (BENCH_MONGO); throws on an unknown name. */
export function parseBackends(list: string): FerretBackend[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(FERRETDB_BACKENDS as readonly string[]).includes(n)) throw new Error(`unknown FerretDB backend "${n}" (${FERRETDB_BACKENDS.join(', ')})`);
  }
  return names as FerretBackend[];
}

export async function startFerretDB(backend: FerretBackend): Promise<FerretServer> {
  // Directly under the temp dir: the PostgreSQL cluster's owner (`postgres`) must reach it.
  const dir = path.join(os.tmpdir(), `idp-ferretdb-${backend}-${crypto.randomBytes(4).toString('hex')}`);
  const port = await freePort();
  const uri = execFileSync(SCRIPT, ['start', backend, dir, String(port)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    execFileSync(SCRIPT, ['stop', dir], { stdio: 'inherit' });
  };
  // Never leave a server behind when the process ends early, or is interrupted.
  process.once('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop();
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    });
  }
  return { backend, uri, stop };
}

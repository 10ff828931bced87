/**
 * Gives memory back to the system once the server goes quiet (issue 10, idle footprint).
 *
 * V8 grows its young generation while the server starts or serves (up to two 16 MiB
 * semi-spaces, touched and so resident) and never shrinks it while the process merely sleeps:
 * its memory reducer did not run in a minute of idleness (measured, Node 24). A full
 * collection with V8's "last resort" flavour shrinks the young generation and compacts the
 * old one: about 25 MiB less RSS at rest after start, more after a busy spell.
 *
 * So, after QUIET_MS with no request (once after start-up, and once after each busy spell,
 * never twice in a row), one such collection runs. It pauses the process for tens of
 * milliseconds, only when nobody is being served; a request that arrives meanwhile waits
 * that long. Node gives no API for it but `gc()`, which only `--expose-gc` makes available:
 * the flag is set for the moment of fetching the function from a fresh context and unset
 * again, so no code sees a global `gc`. If a future Node refuses that, nothing runs.
 *
 * One server per process: `npm start` (start.ts) runs it, tests' in-process servers do not,
 * since a collection would pause every other server and test of their process.
 */
import type http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';

const QUIET_MS = 10_000;
const CHECK_MS = 2_000;

type Gc = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

function obtainGc(): Gc | undefined {
  const existing = (globalThis as { gc?: Gc }).gc;
  if (typeof existing === 'function') return existing;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as Gc) : undefined;
  } catch {
    return undefined;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

export interface IdleCollector {
  /** Collections run so far. */
  readonly runs: number;
  stop(): void;
}

export function collectWhenIdle(server: http.Server, opts: { quietMs?: number; checkMs?: number } = {}): IdleCollector {
  const quietMs = opts.quietMs ?? QUIET_MS;
  const gc = obtainGc();
  let last = Date.now();
  // Start-up was a busy spell of its own.
  let busy = true;
  let runs = 0;
  const onRequest = () => {
    last = Date.now();
    busy = true;
  };
  server.on('request', onRequest);
  const timer = setInterval(() => {
    if (!gc || !busy || Date.now() - last < quietMs) return;
    busy = false;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    runs += 1;
  }, opts.checkMs ?? CHECK_MS);
  timer.unref();
  return {
    get runs() { return runs; },
    stop() {
      clearInterval(timer);
      server.off('request', onRequest);
    },
  };
}

/**
 * Child processes of tests (`idp` commands, `npm start`'s entry point, store workers).
 *
 * Two rules, because a test that waited a fixed 5 s for "listening" failed under load and
 * left its server running, which kept `npm test` hanging:
 * - waits poll with a generous deadline and fail early, with the output, if the child exits;
 * - every child is killed: by the test in a `finally` (`stop()`), and in any case when the
 *   test file ends (a root `after` hook) or its process exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';

/** How long a child may take to start or to run a command on a loaded 2-core CI machine. */
export const START_DEADLINE_MS = 60_000;
export const RUN_DEADLINE_MS = 120_000;

const live = new Set<ChildProcess>();

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

// Root-level hook: runs when the importing test file's tests are done, pass or fail.
after(async () => {
  await Promise.all([...live].map((c) => kill(c)));
});
// Last resort if the test process itself exits early (an uncaught error).
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), graceMs); });
  if ((await Promise.race([exited, grace])) === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}

export interface RunResult {
  /** Exit code; null when the child was killed by a signal (e.g. at the deadline). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  timeoutMs?: number;
  /** The Node.js executable (default: the one running the tests). */
  node?: string;
  cwd?: string;
}

/** Runs `node <args>` to completion; killed (SIGKILL) at the deadline, never left behind. */
export function runNode(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(opts.node ?? process.execPath, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? RUN_DEADLINE_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
    }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        stderr,
      });
    });
    track(child);
    // A child that exits without reading its input (openssl, a failed command) closes the
    // pipe first: the write's EPIPE says nothing its exit status does not, and unhandled it
    // would surface as an uncaught exception in whatever test runs next.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.stdin ?? '');
  });
}

export interface Started {
  readonly child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  readonly output: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Polls until `done` holds. Rejects with the output when the child exits first or the
   * deadline passes.
   */
  waitFor(done: RegExp | (() => boolean), what?: string, timeoutMs?: number): Promise<void>;
  /** SIGTERM (SIGKILL after a grace period) and wait for the exit. Safe to call twice. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `node <args>` in the background. Call `stop()` in a `finally`. */
export function startNode(args: string[], opts: Omit<RunOptions, 'stdin' | 'timeoutMs'> = {}): Started {
  const child = spawn(opts.node ?? process.execPath, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); output += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); output += d.toString(); });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { exit = { code, signal }; resolve(exit); });
  });
  return {
    child,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    get output() { return output; },
    exited,
    async waitFor(done, what = String(done), timeoutMs = START_DEADLINE_MS) {
      const holds = () => (done instanceof RegExp ? done.test(output) : done());
      const deadline = Date.now() + timeoutMs;
      while (!holds()) {
        if (exit) throw new Error(`child exited (code ${exit.code}, signal ${exit.signal}) before ${what}; output:\n${output}`);
        if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; output:\n${output}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop: (signal = 'SIGTERM') => kill(child, signal),
  };
}

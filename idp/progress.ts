/**
 * A progress bar for long-running commands: on a terminal only (stderr), so a pipe, a file or
 * a CI log gets clean output. Shows the share done, a count of what is done (events, bytes,
 * steps), the time taken and an estimate of the time left. Redrawn at most five times a
 * second so it costs nothing in a loop over millions of events.
 */

/** What the bar writes to: process.stderr, or a fake terminal in tests. */
export interface ProgressStream {
  isTTY?: boolean | undefined;
  /** The terminal's width, when known (a TTY stream's `columns`). */
  columns?: number | undefined;
  write(s: string): unknown;
}

/**
 * One redraw: back to the line's start, clear it, the text cut to the terminal's width. A
 * longer line wraps, and `\r` then returns only to the start of its last row: every redraw
 * would leave a row behind.
 */
function redraw(stream: ProgressStream, text: string): void {
  const width = stream.columns;
  stream.write(`\r\x1b[2K${width && width > 1 && text.length >= width ? text.slice(0, width - 1) : text}`);
}

export interface ProgressOptions {
  stream?: ProgressStream;
  env?: NodeJS.ProcessEnv;
  /** What the count counts: `bytes` shows MiB; anything else is a plain number with this unit. */
  unit?: string;
  /** Milliseconds: a clock for tests. */
  now?: () => number;
}

export interface Progress {
  update(done: number): void;
  done(): void;
}

/** A bar that draws nothing: for when the output itself goes to the terminal. */
export const NO_PROGRESS: Progress = { update: () => {}, done: () => {} };
const NONE = NO_PROGRESS;

/** `1m 05s`, `42 s`, `2h 03m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatCount(n: number, unit: string | undefined): string {
  if (unit === 'bytes') return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${Math.round(n).toLocaleString('en')}${unit ? ` ${unit}` : ''}`;
}

/** Whether to draw at all: a terminal, not under CI (CI runners often fake a TTY). */
function drawable(stream: ProgressStream, env: NodeJS.ProcessEnv): boolean {
  return !!stream.isTTY && (env.CI === undefined || env.CI === '' || env.CI === '0' || env.CI === 'false');
}

/**
 * A running count for work whose size is not known up front (a store's listing): what is
 * done, the time taken and the pace. Same rules as the bar: a terminal only.
 */
export function progressCount(label: string, opts: ProgressOptions = {}): Progress {
  return throttledLine(opts, (done, elapsed) => {
    const pace = elapsed >= 1 ? `, ${formatCount(done / elapsed, opts.unit)}/s` : '';
    return `${label}  ${formatCount(done, opts.unit)}  ${formatDuration(elapsed)}${pace}`;
  });
}

/**
 * One line redrawn at most every 200 ms on a terminal, cleared at the end; `line` gets what is
 * done and the seconds since the start. Nothing where `drawable` says no.
 */
function throttledLine(opts: ProgressOptions, line: (done: number, elapsed: number) => string): Progress {
  const stream = opts.stream ?? process.stderr;
  if (!drawable(stream, opts.env ?? process.env)) return NONE;
  const now = opts.now ?? (() => performance.now());
  const started = now();
  let last = -Infinity;
  let drawn = false;
  return {
    update(done: number) {
      const t = now();
      if (t - last < 200) return;
      last = t;
      redraw(stream, line(done, (t - started) / 1000));
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}

/**
 * A bar from 0 to `total`; nothing at all when stderr is not a terminal, when CI is set (CI
 * runners often fake a TTY) or when there is nothing to count.
 */
export function progressBar(label: string, total: number, opts: ProgressOptions = {}): Progress {
  if (!(total > 0)) return NONE;
  return throttledLine(opts, (done, elapsed) => {
    const frac = Math.min(1, Math.max(0, done / total));
    const width = 30;
    const bar = '='.repeat(Math.round(frac * width)).padEnd(width);
    // Linear estimate; shown once there is something to go by (1% and a second).
    const eta = frac >= 0.01 && elapsed >= 1 ? `, ${formatDuration((elapsed / frac) * (1 - frac))} left` : '';
    return `${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${formatCount(Math.min(done, total), opts.unit)} of ${formatCount(total, opts.unit)}  ${formatDuration(elapsed)}${eta}`;
  });
}

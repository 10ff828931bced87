/**
 * Hot reload: watches a policy directory with chokidar and swaps in each valid change as a
 * whole (the compiled policy is immutable; a login takes one snapshot and is scored by that
 * version only). A change that fails validation is rejected with every error listed, is
 * counted, and the last good policy keeps serving. Misconfiguration at start is fatal.
 *
 * A policy published to the store (idp/policy-sync.ts) comes in through `install`, the same
 * door: the same checks, the same counting and the same last-good rule as a file edit. With
 * a store, a valid file edit is not installed here but handed to `onFileEdit`, which
 * publishes it; every instance then installs what the store holds.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { formatPolicyError, loadPolicy, loadPolicyFiles, PolicyLoadError, readPolicyDir, type CompiledPolicy, type PolicyError, type PolicyFiles } from './policy.ts';

export interface PolicyStats {
  reloads: number;
  rejected: number;
  version: string;
  loadedAt: number;
  lastError?: string | undefined;
  /** The store's version number of the policy in force, when it came from (or went to) the store. */
  published?: number | undefined;
}

/** Where an installed policy came from, for the log and PolicyStats. */
export interface PolicyOrigin {
  source: 'file' | 'store';
  /** The store's version number. */
  published?: number | undefined;
}

export interface PolicyRuntime {
  /** The policy to score one login with: take it once per login. */
  current(): CompiledPolicy;
  readonly stats: Readonly<PolicyStats>;
  /** Resolves once the watcher is watching. */
  readonly ready: Promise<void>;
  /** Loads the directory now; returns whether it was valid (and installed, or handed to onFileEdit). */
  reload(): boolean;
  /**
   * Validates what `load` returns (it throws PolicyLoadError for an invalid policy) and swaps
   * it in, or rejects it (counted, logged through onReject) and keeps the last good one.
   */
  install(load: () => CompiledPolicy, origin: PolicyOrigin): boolean;
  close(): Promise<void>;
}

export interface WatchOptions {
  onReload?: (p: CompiledPolicy, origin: PolicyOrigin) => void;
  onReject?: (errors: PolicyError[], message: string, origin: PolicyOrigin) => void;
  /**
   * With a policy store: a valid file edit goes here, with the files it was compiled from,
   * instead of being installed (it is published, then installed from the store on every
   * instance). Without one it is installed at once.
   */
  onFileEdit?: (p: CompiledPolicy, files: PolicyFiles) => void;
  /** The policy to start with, already loaded (the store's live version); default: the directory's. */
  initial?: { policy: CompiledPolicy; origin: PolicyOrigin };
  /** Quiet time after the last file event before reloading (editors write in bursts). */
  debounceMs?: number;
  /** Disable watching (CLI use). */
  watch?: boolean;
}

const acrsOf = (p: CompiledPolicy) => p.assurance.levels.map((l) => l.acr).join(' ');

/**
 * The ACR values a policy may not change while running: they are published in discovery.
 * Throws PolicyLoadError naming assurance.yml `levels` when `next` changes them.
 */
export function checkAcrsUnchanged(next: CompiledPolicy, acrs: string): void {
  if (acrsOf(next) !== acrs) {
    throw new PolicyLoadError(next.dir, [{ file: 'assurance.yml', path: 'levels', message: 'ACR values changed: they are published in discovery and need a restart' }]);
  }
}

export function startPolicyRuntime(dirArg: string, opts: WatchOptions = {}): PolicyRuntime {
  const dir = path.resolve(dirArg);
  // Throws PolicyLoadError: fail loudly at start.
  let policy = opts.initial?.policy ?? loadPolicy(dir);
  const startAcrs = acrsOf(policy);
  const stats: PolicyStats = { reloads: 0, rejected: 0, version: policy.version, loadedAt: Date.now(), published: opts.initial?.origin.published };

  const rejected = (err: unknown, origin: PolicyOrigin): false => {
    const errors = err instanceof PolicyLoadError ? err.errors : [{ file: dir, path: '', message: (err as Error).message }];
    stats.rejected += 1;
    stats.lastError = errors.map(formatPolicyError).join('; ');
    opts.onReject?.(errors, stats.lastError, origin);
    return false;
  };

  const install = (load: () => CompiledPolicy, origin: PolicyOrigin): boolean => {
    let next: CompiledPolicy;
    try {
      next = load();
      checkAcrsUnchanged(next, startAcrs);
    } catch (err) {
      return rejected(err, origin);
    }
    if (origin.published !== undefined) stats.published = origin.published;
    if (next.version === policy.version) return true;
    policy = next;
    stats.reloads += 1;
    stats.version = next.version;
    stats.loadedAt = Date.now();
    stats.lastError = undefined;
    opts.onReload?.(next, origin);
    return true;
  };

  const reload = (): boolean => {
    if (!opts.onFileEdit) return install(() => loadPolicy(dir), { source: 'file' });
    let next: CompiledPolicy;
    // Read once, compiled from what was read: what is published is exactly what was checked.
    const files = readPolicyDir(dir);
    try {
      next = loadPolicyFiles(files, dir);
      checkAcrsUnchanged(next, startAcrs);
    } catch (err) {
      return rejected(err, { source: 'file' });
    }
    opts.onFileEdit(next, files);
    return true;
  };

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let ready: Promise<void> = Promise.resolve();
  if (opts.watch !== false) {
    watcher = watch(dir, { ignoreInitial: true, depth: 0 });
    ready = new Promise((resolve) => watcher!.once('ready', () => resolve()));
    watcher.on('all', (_event, file) => {
      if (!/\.(ya?ml|json)$/.test(file)) return;
      clearTimeout(timer);
      timer = setTimeout(reload, opts.debounceMs ?? 150);
    });
  }

  return {
    current: () => policy,
    stats,
    ready,
    reload,
    install,
    async close() {
      clearTimeout(timer);
      await watcher?.close();
    },
  };
}

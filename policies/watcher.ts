/**
 * Hot reload: watches a policy directory with chokidar and swaps in each valid change as a
 * whole (the compiled policy is immutable; a login takes one snapshot and is scored by that
 * version only). A change that fails validation is rejected with every error listed, is
 * counted, and the last good policy keeps serving. Misconfiguration at start is fatal.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { formatPolicyError, loadPolicy, PolicyLoadError, type CompiledPolicy, type PolicyError } from './policy.ts';

export interface PolicyStats {
  reloads: number;
  rejected: number;
  version: string;
  loadedAt: number;
  lastError?: string | undefined;
}

export interface PolicyRuntime {
  /** The policy to score one login with: take it once per login. */
  current(): CompiledPolicy;
  readonly stats: Readonly<PolicyStats>;
  /** Resolves once the watcher is watching. */
  readonly ready: Promise<void>;
  /** Loads the directory now; returns whether it was accepted. */
  reload(): boolean;
  close(): Promise<void>;
}

export interface WatchOptions {
  onReload?: (p: CompiledPolicy) => void;
  onReject?: (errors: PolicyError[], message: string) => void;
  /** Quiet time after the last file event before reloading (editors write in bursts). */
  debounceMs?: number;
  /** Disable watching (CLI use). */
  watch?: boolean;
}

const acrsOf = (p: CompiledPolicy) => p.assurance.levels.map((l) => l.acr).join(' ');

export function startPolicyRuntime(dirArg: string, opts: WatchOptions = {}): PolicyRuntime {
  const dir = path.resolve(dirArg);
  let policy = loadPolicy(dir); // throws PolicyLoadError: fail loudly at start
  const startAcrs = acrsOf(policy);
  const stats: PolicyStats = { reloads: 0, rejected: 0, version: policy.version, loadedAt: Date.now() };

  const reload = (): boolean => {
    try {
      const next = loadPolicy(dir);
      if (acrsOf(next) !== startAcrs) {
        throw new PolicyLoadError(dir, [{ file: 'assurance.yml', path: 'levels', message: 'ACR values changed: they are published in discovery and need a restart' }]);
      }
      if (next.version === policy.version) return true;
      policy = next;
      stats.reloads += 1;
      stats.version = next.version;
      stats.loadedAt = Date.now();
      stats.lastError = undefined;
      opts.onReload?.(next);
      return true;
    } catch (err) {
      const errors = err instanceof PolicyLoadError ? err.errors : [{ file: dir, path: '', message: (err as Error).message }];
      stats.rejected += 1;
      stats.lastError = errors.map(formatPolicyError).join('; ');
      opts.onReject?.(errors, stats.lastError);
      return false;
    }
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
    async close() {
      clearTimeout(timer);
      await watcher?.close();
    },
  };
}

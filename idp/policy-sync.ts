/**
 * The policy an instance serves is the store's live version (PolicyStore): published with
 * `idp policy publish`, the admin API, or a file edit seen by any instance, it is live on
 * every instance sharing the store within POLICY_POLL_MS.
 *
 * How: every POLICY_POLL_MS the instance reads the store's policy stamp (one small read by
 * key, nothing per login, as adapters/client-cache.ts does for clients). A new stamp means a
 * publish: the live version is read, loaded with the same checks as a file edit
 * (policies/policy.ts loadPolicyFiles) and swapped in through the runtime's one door
 * (policies/watcher.ts install), or rejected there, counted and logged, while the last good
 * policy keeps serving. A rejected version is not retried until another is published. Every
 * 30th poll reads the live version itself too, stamp or no stamp: a publisher that died
 * between writing the version and the stamp (the MongoDB store writes them apart) is caught.
 *
 * The files (POLICY_DIR) keep working for administrators who keep policies in git: a valid
 * file state is published unless that content was published before (idp/admin/policies.ts
 * publishFileState; README "Policies in git and in the store"), at start and at each edit the
 * watcher sees; the instance then installs what the store holds, like every other instance.
 */
import os from 'node:os';
import path from 'node:path';
import type { Storage } from '../adapters/storage/port.ts';
import type { AuditInput } from '../models/types.ts';
import { formatPolicyError, loadPolicyFiles, PolicyLoadError, readPolicyDir, type CompiledPolicy, type PolicyError, type PolicyFiles } from '../policies/policy.ts';
import { startPolicyRuntime, type PolicyOrigin, type PolicyRuntime } from '../policies/watcher.ts';
import { policyFilesActor, publishFileState } from './admin/policies.ts';
import type { Events } from './events.ts';
import type { Logger } from './log.ts';

/** Every this many polls the live version is read whatever the stamp says. */
const FULL_CHECK_EVERY = 30;

export interface PolicySyncOptions {
  storage: Storage;
  /** POLICY_DIR. */
  dir: string;
  pollMs: number;
  events: Events;
  log: Logger;
  /** Records file-edit publishes on the audit trail (idp/admin/policies.ts). */
  audit?: ((e: AuditInput) => Promise<void>) | undefined;
  onReload?: (p: CompiledPolicy, origin: PolicyOrigin) => void;
  onReject?: (errors: PolicyError[], message: string, origin: PolicyOrigin) => void;
  /** Watch POLICY_DIR for edits (default true). */
  watch?: boolean;
}

export interface PolicySync {
  readonly runtime: PolicyRuntime;
  /** Reads the store now and installs its live version if it is new (the poll does this). */
  check(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Loads POLICY_DIR (an invalid one stops the start, naming every error), publishes it if its
 * content is new to the store, and starts serving the store's live version.
 */
export async function startPolicySync(o: PolicySyncOptions): Promise<PolicySync> {
  const dir = path.resolve(o.dir);
  const files = readPolicyDir(dir);
  const fromFiles = loadPolicyFiles(files, dir); // throws PolicyLoadError: fail loudly at start
  const deps = { storage: o.storage, audit: o.audit ?? (async () => {}) };
  const actor = policyFilesActor(os.hostname());

  const publishFiles = async (p: CompiledPolicy, f: PolicyFiles) => {
    const r = await publishFileState(deps, { ...f }, p, actor);
    if ('published' in r) o.events.emit('policy.published', { version: r.published.version, hash: r.published.hash, source: 'file', dir });
    else if ('before' in r) {
      // The content of an earlier version: publishing it again would undo what was published
      // since (a stale checkout, an instance started late). A rollback says so explicitly.
      o.events.emit('policy.file_skipped', {
        dir, hash: p.version, publishedAs: r.before.version,
        note: `this content was published as version ${r.before.version}; to serve it again: idp policy rollback ${r.before.version}`,
      }, 'warn');
    }
  };

  await publishFiles(fromFiles, files);
  let initial: { policy: CompiledPolicy; origin: PolicyOrigin } = { policy: fromFiles, origin: { source: 'file' } };
  let startError: { errors: PolicyError[]; origin: PolicyOrigin } | undefined;
  const live = await o.storage.policies.live();
  if (live?.hash === fromFiles.version) initial = { policy: fromFiles, origin: { source: 'store', published: live.version } };
  else if (live) {
    const full = await o.storage.policies.get(live.version);
    try {
      if (!full) throw new Error(`policy version ${live.version} vanished while it was read`);
      initial = { policy: loadPolicyFiles(full.files, `store v${live.version}`), origin: { source: 'store', published: live.version } };
    } catch (e) {
      // The live version does not load here (this code is newer or older than its publisher's):
      // serve the files and say so; a publish of a good version brings this instance along.
      startError = { errors: e instanceof PolicyLoadError ? e.errors : [{ file: `store v${live.version}`, path: '', message: (e as Error).message }], origin: { source: 'store', published: live.version } };
    }
  }

  let stamp: string | undefined;
  let polls = 0;
  let rejectedVersion = startError?.origin.published;
  let failingSince: number | undefined;
  let queue: Promise<void> = Promise.resolve();

  const checkNow = async (force: boolean) => {
    try {
      const s = await o.storage.policies.stamp();
      polls += 1;
      if (!force && s === stamp && polls % FULL_CHECK_EVERY !== 0) return;
      const v = await o.storage.policies.live();
      stamp = s;
      if (failingSince !== undefined) o.log.info('policy store answers again', { sinceMs: Date.now() - failingSince });
      failingSince = undefined;
      if (!v) return;
      const current = runtime.current();
      // Already served (a publish of this content, or this instance's own): note its number.
      if (v.hash === current.version) {
        if (runtime.stats.published !== v.version) runtime.install(() => current, { source: 'store', published: v.version });
        return;
      }
      if (v.version === rejectedVersion) return;
      const full = await o.storage.policies.get(v.version);
      if (!full) return;
      if (!runtime.install(() => loadPolicyFiles(full.files, `store v${v.version}`), { source: 'store', published: v.version })) rejectedVersion = v.version;
    } catch (err) {
      // The store does not answer: keep serving, say so once, then every minute.
      const now = Date.now();
      if (failingSince === undefined || now - failingSince >= 60_000) {
        o.log.warn('policy store check failed; the policy in use keeps serving', { error: err as Error });
        failingSince = now;
      }
    }
  };
  // One check at a time, in order: the last one always sees the newest state.
  const check = (force: boolean) => (queue = queue.then(() => checkNow(force)));

  const runtime: PolicyRuntime = startPolicyRuntime(dir, {
    initial,
    watch: o.watch ?? true,
    ...(o.onReload ? { onReload: o.onReload } : {}),
    ...(o.onReject ? { onReject: o.onReject } : {}),
    onFileEdit: (p, f) => {
      void publishFiles(p, f)
        .catch((err: unknown) => o.events.emit('policy.rejected', { dir, errors: `could not publish the edit: ${(err as Error).message}` }, 'error'))
        // The instance serves what the store holds, its own publish included.
        .then(() => check(true));
    },
  });
  // A live version that would not load at start is counted and logged as any rejected one.
  if (startError) {
    const { errors, origin } = startError;
    runtime.install(() => { throw new PolicyLoadError(`store v${origin.published}`, errors); }, origin);
    o.log.warn(`policy: the store's live version ${origin.published} does not load here (${errors.map(formatPolicyError).join('; ')}); serving ${dir}`);
  }
  await check(true);
  const timer = setInterval(() => void check(false), o.pollMs);
  timer.unref();

  return {
    runtime,
    check: () => check(true),
    async close() {
      clearInterval(timer);
      await queue;
      await runtime.close();
    },
  };
}

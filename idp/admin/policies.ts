/**
 * The policy lifecycle as an administrator drives it: see the live policy, validate a
 * candidate, dry-run it over recent login events, publish it, list and read the versions,
 * roll back. One implementation for the `idp policy` commands and the admin API.
 *
 * A candidate is the policy's files as texts (policies/policy.ts PolicyFiles). It is checked
 * by the very loader a file edit goes through, so it is refused with the same file, line and
 * key messages; files it leaves out are taken from the live version (change `lists.yml`
 * alone without sending the model). Publishing is a compare-and-set on the live version (the
 * API's If-Match): the store throws VersionConflictError when someone published meanwhile.
 * Every instance sharing the store installs the new version within POLICY_POLL_MS
 * (idp/policy-sync.ts).
 *
 * Audit: every publish, rollback and file-edit publish is recorded, refusals too, with the
 * version numbers, content hashes and per-file sha256 digests before and after. The files
 * themselves stay in the store under their version (policy files hold no secrets; the
 * digests on the tamper-evident trail prove which content each version had).
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import type { LabelStore, Page, PolicyStore, EventStore } from '../../adapters/storage/port.ts';
import type { Actor, AuditInput, EventLabel, PolicySource, PolicyVersion, PolicyVersionWithFiles } from '../../models/types.ts';
import { parseEvent, EventError, type LoginEvent } from '../../policies/event.ts';
import { describeMonitor } from '../../policies/monitor.ts';
import { formatPolicyError, loadPolicyFiles, PolicyLoadError, policyFilesOnly, type CompiledPolicy, type PolicyError, type PolicyFiles } from '../../policies/policy.ts';
import { Replayer, type ScoredEvent } from '../../policies/simulate.ts';
import type { Place } from '../../policies/types.ts';
import { checkAcrsUnchanged } from '../../policies/watcher.ts';
import { ConflictError, InvalidError, NotFoundError, parseInput, type AdminError, type InputError } from './errors.ts';
import { allLabels } from './labels.ts';
import { pageSchema, type PageInput } from './page.ts';

export interface PolicyDeps {
  storage: { policies: PolicyStore; events: EventStore; labels: LabelStore };
  /** Records an administrator's action on the audit trail (idp/audit). */
  audit: (e: AuditInput) => Promise<void>;
}

export interface DryRunDeps extends PolicyDeps {
  /** Where an address is (adapters/geoip.ts lookup): the replay's context, as live. */
  placeOf: (ip: string) => Place;
  /** Told how many events have been read so far (the CLI's progress count); not called by the API. */
  progress?: ((events: number) => void) | undefined;
}

// ---- Request schemas (the admin API derives its OpenAPI document from these) ----

/** The model is the largest file: 50 trees of depth 10 are about 1 MiB of JSON. */
const MAX_FILE_CHARS = 4 * 1024 * 1024;
const MAX_FILES_CHARS = 12 * 1024 * 1024;

export const policyFilesSchema = z.record(
  // No Unicode property escapes: the OpenAPI document's patterns are read by other regex engines.
  z.string().regex(/^[ -~\u00a0-\uffff]{1,255}$/, 'a file name of 1-255 printable characters').describe('File name relative to the policy: risk.yml, lists.yml, assurance.yml, or the model file risk.yml names (model.file)'),
  z.string().max(MAX_FILE_CHARS, `at most ${MAX_FILE_CHARS} characters`).describe('The file\'s text (UTF-8)'),
).refine((f) => Object.values(f).reduce((n, t) => n + t.length, 0) <= MAX_FILES_CHARS, `the files may hold at most ${MAX_FILES_CHARS} characters together`)
  .describe('A policy\'s files by name. Files left out are taken from the live version.');

export const candidateSchema = z.strictObject({
  files: policyFilesSchema,
}).describe('A candidate policy');

const ifVersion = z.number().int().min(0).describe('The live version the change is based on (If-Match): refused with a conflict when another version was published meanwhile; 0 when none is published yet');
const message = z.string().trim().min(1).max(1000).describe('Why: shown in the history and on the audit trail');

export const publishSchema = candidateSchema.extend({ message, ifVersion }).describe('Publish a candidate as the next version');

export const rollbackSchema = z.strictObject({
  version: z.number().int().min(1).describe('The version whose files to publish again'),
  message,
  ifVersion,
}).describe('Publish an earlier version\'s files again, as the next version');

export const dryRunSchema = candidateSchema.extend({
  days: z.number().int().min(1).max(366).default(7).describe('Replay the login events stored in the last this many days'),
  warmupDays: z.number().int().min(0).max(366).default(0).describe('Replay this many days before them first, counting nothing, so users have a history when the window begins'),
  examples: z.number().int().min(0).max(200).default(20).describe('Show at most this many changed decisions (the most recent)'),
}).describe('Replay recent login events through a candidate and the live policy, and compare');

export type PublishInput = z.input<typeof publishSchema>;
export type RollbackInput = z.input<typeof rollbackSchema>;
export type DryRunInput = z.input<typeof dryRunSchema>;

// ---- Results ----

export interface LivePolicy {
  version: PolicyVersion;
  files: Record<string, string>;
  /** The ACR values the policy's assurance levels publish, weakest first. */
  acrValues: string[];
  /** Parts in monitor mode, if any (policies/monitor.ts). */
  monitor?: string | undefined;
}

export interface PolicyValidation {
  valid: boolean;
  /** Every problem, as a file edit of the same content would be refused with. */
  errors: PolicyError[];
  /** The same, one line each: `file:line:column: key.path: message`. */
  messages: string[];
  /** The compiled policy's content hash (what decisions record as policyVersion). */
  hash?: string | undefined;
  modelVersion?: string | undefined;
  monitor?: string | undefined;
  /** The live version it was checked against (its ACR values may not change), if any. */
  live?: number | undefined;
  /** The newest published version with exactly this content, if any. */
  publishedAs?: number | undefined;
}

type Decision = 'allow' | 'step_up' | 'block';
type Outcome = { score: number; level: string; decision: Decision; requiredAcr?: string | undefined };

export interface DryRunReport {
  window: { from: string; to: string; days: number; warmupDays: number; events: number; scored: number; skipped: number };
  live: { version: number; hash: string; modelVersion: string; decisions: Record<Decision, number>; levels: Record<string, number> };
  candidate: { hash: string; modelVersion: string; decisions: Record<Decision, number>; levels: Record<string, number> };
  /** Scored events whose decision, level (or either) differ between the two. */
  changed: { decisions: number; levels: number; events: number };
  transitions: { decisions: Record<string, number>; levels: Record<string, number> };
  /** Labelled events in the window: how many each policy challenged or blocked (flagged), and blocked. */
  labelled?: Record<EventLabel, { n: number; flagged: { live: number; candidate: number }; blocked: { live: number; candidate: number } }> | undefined;
  /** The most recent changes, newest last. */
  examples: { eventId: string; ts: string; user: string; clientId?: string | undefined; label?: EventLabel | undefined; live: Outcome; candidate: Outcome; reasons: string[] }[];
}

// ---- Helpers ----

const POLICY_FILES_ACTOR_ID = 'policy-files';

/** The compiled versions recently loaded from the store, by version number (compiling the model costs milliseconds). */
const compiledCache = new Map<string, CompiledPolicy>();
function compileVersion(v: PolicyVersionWithFiles): CompiledPolicy {
  const key = `${v.version}:${v.hash}`;
  let p = compiledCache.get(key);
  if (!p) {
    p = loadPolicyFiles(v.files, `store v${v.version}`);
    if (compiledCache.size >= 8) compiledCache.delete(compiledCache.keys().next().value!);
    compiledCache.set(key, p);
  }
  return p;
}

async function liveWithFiles(policies: PolicyStore): Promise<PolicyVersionWithFiles | undefined> {
  // The live version may move on between the two reads: read until they agree.
  for (let i = 0; i < 5; i += 1) {
    const live = await policies.live();
    if (!live) return undefined;
    const full = await policies.get(live.version);
    if (full) return full;
  }
  throw new Error('the live policy kept changing while it was read');
}

/** sha256 of each file: what the audit trail records of a version's content. */
function digests(files: PolicyFiles): Record<string, string> {
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b)).map(([name, text]) => [name, crypto.createHash('sha256').update(text).digest('hex')]));
}

const summary = (v: PolicyVersion | undefined, files?: PolicyFiles) =>
  v ? { version: v.version, hash: v.hash, modelVersion: v.modelVersion, ...(files ? { files: digests(files) } : {}) } : null;

interface Compiled {
  policy?: CompiledPolicy;
  errors: PolicyError[];
}

/** Compiles a complete candidate as a file edit would be; its ACR values may not differ from the live policy's. */
function compile(files: PolicyFiles, live: CompiledPolicy | undefined): Compiled {
  try {
    const policy = loadPolicyFiles(files, 'candidate');
    if (live) checkAcrsUnchanged(policy, live.assurance.levels.map((l) => l.acr).join(' '));
    return { policy, errors: [] };
  } catch (e) {
    if (e instanceof PolicyLoadError) return { errors: e.errors };
    throw e;
  }
}

/** The candidate completed from the live version's files, and only the files a policy consists of. */
function complete(given: PolicyFiles, live: PolicyVersionWithFiles | undefined): Record<string, string> {
  return policyFilesOnly({ ...(live?.files ?? {}), ...given });
}

function liveCompiled(live: PolicyVersionWithFiles | undefined): CompiledPolicy | undefined {
  if (!live) return undefined;
  try {
    return compileVersion(live);
  } catch (e) {
    // A live version this code cannot load (an upgrade changed the model's features): no ACR values to hold a candidate to.
    if (e instanceof PolicyLoadError) return undefined;
    throw e;
  }
}

/** A policy's file/line/key errors as the request's field errors (`files.<file>.<key path>`). */
export function policyInputErrors(errors: PolicyError[]): InputError[] {
  return errors.map((e) => ({ path: ['files', e.file, ...(e.path ? [e.path] : [])].join('.'), message: formatPolicyError(e) }));
}

function invalid(errors: PolicyError[]): InvalidError {
  const messages = errors.map(formatPolicyError);
  return new InvalidError('policy_invalid', `the policy is invalid:\n${messages.join('\n')}`, { errors: policyInputErrors(errors), detail: { errors, messages } });
}

// ---- Operations ----

/** The live policy with its version and files. NotFoundError `policy_not_published` before the first publish. */
export async function getLivePolicy(deps: Pick<PolicyDeps, 'storage'>): Promise<LivePolicy> {
  const live = await liveWithFiles(deps.storage.policies);
  if (!live) throw new NotFoundError('policy_not_published', 'no policy has been published to the store yet (a server publishes POLICY_DIR when it starts)');
  const { files, ...version } = live;
  const compiled = liveCompiled(live);
  return {
    version, files,
    acrValues: compiled?.assurance.levels.map((l) => l.acr) ?? [],
    monitor: compiled ? describeMonitor(compiled.risk) : undefined,
  };
}

/** One published version with its files. NotFoundError `policy_version_not_found`. */
export async function getPolicyVersion(deps: Pick<PolicyDeps, 'storage'>, version: number): Promise<PolicyVersionWithFiles> {
  const v = Number.isSafeInteger(version) && version > 0 ? await deps.storage.policies.get(version) : undefined;
  if (!v) throw new NotFoundError('policy_version_not_found', `no policy version ${version}`);
  return v;
}

/** Published versions, newest first, in pages. */
export async function policyHistory(deps: Pick<PolicyDeps, 'storage'>, page: PageInput = {}): Promise<Page<PolicyVersion>> {
  const p = parseInput(pageSchema, page);
  return deps.storage.policies.history(p);
}

/** Checks a candidate as a file edit would be checked; never throws for an invalid policy. */
export async function validatePolicy(deps: Pick<PolicyDeps, 'storage'>, input: z.input<typeof candidateSchema>): Promise<PolicyValidation> {
  const { files } = parseInput(candidateSchema, input);
  const live = await liveWithFiles(deps.storage.policies);
  const c = compile(complete(files, live), liveCompiled(live));
  if (!c.policy) return { valid: false, errors: c.errors, messages: c.errors.map(formatPolicyError), live: live?.version };
  return {
    valid: true, errors: [], messages: [], hash: c.policy.version, modelVersion: c.policy.forest.version, monitor: describeMonitor(c.policy.risk),
    live: live?.version, publishedAs: (await deps.storage.policies.findByHash(c.policy.version))?.version,
  };
}

/**
 * Publishes complete, valid files as the next version, on `ifVersion`; records it. The core of
 * publish, rollback, file edits and model activation.
 */
export async function publishChecked(deps: PolicyDeps, o: {
  files: Record<string, string>; policy: CompiledPolicy; live: PolicyVersionWithFiles | undefined; message: string; ifVersion: number;
  actor: Actor; source: PolicySource; rollbackOf?: number | undefined; action: string;
  /** A lost compare-and-set the caller retries (a file state) is not an action refused: not recorded. */
  retriesConflicts?: boolean;
}): Promise<PolicyVersion> {
  const target = { type: 'policy', id: String(o.ifVersion + 1) };
  let v: PolicyVersion;
  try {
    v = await deps.storage.policies.publish({
      hash: o.policy.version, modelVersion: o.policy.forest.version, message: o.message, actor: o.actor, source: o.source, files: o.files,
      ...(o.rollbackOf !== undefined ? { rollbackOf: o.rollbackOf } : {}),
    }, o.ifVersion);
  } catch (e) {
    const conflict = (e as Error).name === 'VersionConflictError';
    if (conflict && o.retriesConflicts) throw e;
    await deps.audit({
      actor: o.actor, action: o.action, outcome: 'failure', target, before: summary(o.live),
      detail: { reason: conflict ? 'version_conflict' : 'error', message: o.message, ifVersion: o.ifVersion, hash: o.policy.version },
    });
    throw e;
  }
  await deps.audit({
    actor: o.actor, action: o.action, outcome: 'success', target: { type: 'policy', id: String(v.version) },
    before: summary(o.live, o.live?.files), after: summary(v, o.files),
    detail: { message: o.message, source: o.source, ...(o.rollbackOf !== undefined ? { rollbackOf: o.rollbackOf } : {}) },
  });
  return v;
}

async function refuse(deps: PolicyDeps, actor: Actor, action: string, live: PolicyVersion | undefined, err: AdminError, detail: Record<string, unknown>): Promise<never> {
  await deps.audit({ actor, action, outcome: 'failure', target: { type: 'policy', id: String((live?.version ?? 0) + 1) }, before: summary(live), detail: { reason: err.reason, ...detail } });
  throw err;
}

/**
 * Publishes a candidate as the next version, if the live version is still `ifVersion`.
 * InvalidError `policy_invalid` (with the file/line/key errors), ConflictError
 * `policy_unchanged` (the same content as the live version), VersionConflictError.
 */
export async function publishPolicy(deps: PolicyDeps, input: PublishInput, actor: Actor): Promise<PolicyVersion> {
  const p = parseInput(publishSchema, input);
  const live = await liveWithFiles(deps.storage.policies);
  const files = complete(p.files, live);
  const c = compile(files, liveCompiled(live));
  if (!c.policy) return refuse(deps, actor, 'policy.publish', live, invalid(c.errors), { message: p.message, errors: c.errors.map(formatPolicyError) });
  if (live && c.policy.version === live.hash) {
    return refuse(deps, actor, 'policy.publish', live, new ConflictError('policy_unchanged', `the candidate is the live policy (version ${live.version}) already`, { live: live.version }), { message: p.message });
  }
  return publishChecked(deps, { files, policy: c.policy, live, message: p.message, ifVersion: p.ifVersion, actor, source: 'publish', action: 'policy.publish' });
}

/**
 * Publishes an earlier version's files again, as the next version (the history keeps both).
 * NotFoundError `policy_version_not_found`, InvalidError `policy_invalid` (a version this
 * code no longer accepts), ConflictError `policy_unchanged`, VersionConflictError.
 */
export async function rollbackPolicy(deps: PolicyDeps, input: RollbackInput, actor: Actor): Promise<PolicyVersion> {
  const p = parseInput(rollbackSchema, input);
  const live = await liveWithFiles(deps.storage.policies);
  const old = await deps.storage.policies.get(p.version);
  if (!old) return refuse(deps, actor, 'policy.rollback', live, new NotFoundError('policy_version_not_found', `no policy version ${p.version}`), { to: p.version, message: p.message });
  const c = compile(old.files, liveCompiled(live));
  if (!c.policy) return refuse(deps, actor, 'policy.rollback', live, invalid(c.errors), { to: p.version, message: p.message, errors: c.errors.map(formatPolicyError) });
  if (live && c.policy.version === live.hash) {
    return refuse(deps, actor, 'policy.rollback', live, new ConflictError('policy_unchanged', `version ${p.version} has the content of the live policy (version ${live.version})`, { live: live.version }), { to: p.version, message: p.message });
  }
  return publishChecked(deps, { files: old.files, policy: c.policy, live, message: p.message, ifVersion: p.ifVersion, actor, source: 'rollback', rollbackOf: p.version, action: 'policy.rollback' });
}

/** The actor of a file edit published by a server (or at its start). */
export function policyFilesActor(host: string): Actor {
  return { kind: 'system', id: `${POLICY_FILES_ACTOR_ID}@${host}` };
}

/**
 * A valid state of the policy files (POLICY_DIR), published unless that content was
 * published before (README "Policies in git and in the store"): the first instance to see a
 * new state publishes it on top of whatever is live; instances that see it after, or start
 * later with the same or an older checkout, find it published and publish nothing, so they
 * never undo a newer publish. Returns the version published, or why not.
 */
export async function publishFileState(deps: PolicyDeps, files: Record<string, string>, policy: CompiledPolicy, actor: Actor):
  Promise<{ published: PolicyVersion } | { live: true; version: number } | { before: PolicyVersion }> {
  for (let tries = 0; ; tries += 1) {
    // Live first, then the content, then the compare-and-set on that live version: a
    // publish of the same content by another instance in between makes the CAS fail, and
    // the next round finds it.
    const live = await liveWithFiles(deps.storage.policies);
    if (live?.hash === policy.version) return { live: true, version: live.version };
    const before = await deps.storage.policies.findByHash(policy.version);
    if (before) return { before };
    try {
      const message = live ? 'policy files changed' : 'policy files at first start';
      return { published: await publishChecked(deps, { files, policy, live, message, ifVersion: live?.version ?? 0, actor, source: 'file', action: 'policy.publish', retriesConflicts: tries < 10 }) };
    } catch (e) {
      // Someone published meanwhile: look again (a file edit is newer than what it found live).
      if ((e as Error).name !== 'VersionConflictError' || tries >= 10) throw e;
    }
  }
}

/**
 * Replays the login events of the last `days` through the live policy and the candidate,
 * each building users' histories from the replayed events as live operation builds them
 * (policies/simulate.ts), and reports what would change: decisions and levels, counts, and
 * the most recent examples. Histories start empty at the window (or `warmupDays` before it),
 * for both policies alike. A stored event does not record how a challenge ended: a
 * challenged login counts as passed (it joins the history) unless its label says `attack`
 * or the provider blocked it.
 */
export async function dryRunPolicy(deps: DryRunDeps, input: DryRunInput, now = Date.now()): Promise<DryRunReport> {
  const p = parseInput(dryRunSchema, input);
  const live = await liveWithFiles(deps.storage.policies);
  if (!live) throw new NotFoundError('policy_not_published', 'no live policy to compare with');
  const livePolicy = liveCompiled(live);
  if (!livePolicy) throw new ConflictError('policy_live_invalid', `the live policy (version ${live.version}) no longer loads: publish a valid one first`);
  const c = compile(complete(p.files, live), livePolicy);
  if (!c.policy) throw invalid(c.errors);
  const DAY = 86_400_000;
  const from = now - p.days * DAY;
  const labels = await allLabels(deps.storage.labels);
  const a = new Replayer(livePolicy, deps.placeOf);
  const b = new Replayer(c.policy, deps.placeOf);
  const zero = () => ({ allow: 0, step_up: 0, block: 0 });
  const report: DryRunReport = {
    window: { from: new Date(from).toISOString(), to: new Date(now).toISOString(), days: p.days, warmupDays: p.warmupDays, events: 0, scored: 0, skipped: 0 },
    live: { version: live.version, hash: livePolicy.version, modelVersion: livePolicy.forest.version, decisions: zero(), levels: {} },
    candidate: { hash: c.policy.version, modelVersion: c.policy.forest.version, decisions: zero(), levels: {} },
    changed: { decisions: 0, levels: 0, events: 0 },
    transitions: { decisions: {}, levels: {} },
    examples: [],
  };
  const labelled = { attack: { n: 0, flagged: { live: 0, candidate: 0 }, blocked: { live: 0, candidate: 0 } }, legit: { n: 0, flagged: { live: 0, candidate: 0 }, blocked: { live: 0, candidate: 0 } } };
  const add = (m: Record<string, number>, k: string) => { m[k] = (m[k] ?? 0) + 1; };
  const outcome = (s: ScoredEvent): Outcome => ({
    score: Number(s.assessment.score.toFixed(4)), level: s.assessment.level, decision: s.decision.decision, ...(s.decision.requiredAcr ? { requiredAcr: s.decision.requiredAcr } : {}),
  });
  let read = 0;
  for await (const record of deps.storage.events.list({ since: from - p.warmupDays * DAY })) {
    deps.progress?.((read += 1));
    const ts = Date.parse(record.ts);
    if (ts > now) break;
    let e: LoginEvent;
    try {
      e = parseEvent(record);
    } catch (err) {
      // A record edited by hand: counted, and the replay goes on (`idp events export` names it).
      if (!(err instanceof EventError)) throw err;
      if (ts >= from) report.window.skipped += 1;
      continue;
    }
    // How a challenge would have ended (stored events do not say): as its label says, else
    // passed unless the provider blocked the login. Both replays grow histories alike then.
    const label = labels.get(e.id)?.label;
    const mfa = label === 'attack' ? 'fail' : label === 'legit' ? 'pass' : record.assessment?.decision === 'block' ? 'fail' : 'pass';
    const withOutcome = e.success ? { ...e, mfa } as const : e;
    const ra = a.process(withOutcome);
    const rb = b.process(withOutcome);
    if (ts < from) continue;
    report.window.events += 1;
    if (!ra || !rb) continue;
    report.window.scored += 1;
    const [x, y] = [outcome(ra), outcome(rb)];
    report.live.decisions[x.decision] += 1;
    report.candidate.decisions[y.decision] += 1;
    add(report.live.levels, x.level);
    add(report.candidate.levels, y.level);
    if (label) {
      const l = labelled[label];
      l.n += 1;
      l.flagged.live += x.decision !== 'allow' ? 1 : 0;
      l.flagged.candidate += y.decision !== 'allow' ? 1 : 0;
      l.blocked.live += x.decision === 'block' ? 1 : 0;
      l.blocked.candidate += y.decision === 'block' ? 1 : 0;
    }
    const decisionChanged = x.decision !== y.decision;
    const levelChanged = x.level !== y.level;
    if (decisionChanged) { report.changed.decisions += 1; add(report.transitions.decisions, `${x.decision}->${y.decision}`); }
    if (levelChanged) { report.changed.levels += 1; add(report.transitions.levels, `${x.level}->${y.level}`); }
    if (!decisionChanged && !levelChanged) continue;
    report.changed.events += 1;
    if (p.examples === 0) continue;
    report.examples.push({
      eventId: e.id, ts: e.ts, user: e.user, ...(e.clientId ? { clientId: e.clientId } : {}), ...(label ? { label } : {}),
      live: x, candidate: y, reasons: rb.assessment.reasons.filter((r) => r.contribution !== 0).map((r) => r.factor),
    });
    if (report.examples.length > p.examples) report.examples.shift();
  }
  if (labelled.attack.n + labelled.legit.n > 0) report.labelled = labelled;
  return report;
}

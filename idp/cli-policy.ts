/**
 * `idp policy validate|publish|history|show|pull|rollback|dry-run`, `idp label …`, and
 * `idp model train --labels|activate|list`: the policy lifecycle and the feedback loop from
 * the server's own disk. Thin: every operation is the admin service's (idp/admin/), which the
 * admin API calls too; this file parses arguments and prints.
 *
 * Usage errors throw PolicyUsageError (exit 2); refusals throw the services' typed errors
 * or VersionConflictError (exit 1), printed as their message.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { openStorage, type Storage } from '../adapters/storage/index.ts';
import type { Actor, LabelRecord, PolicyVersion } from '../models/types.ts';
import { formatPolicyError, readPolicyDir } from '../policies/policy.ts';
import { allLabels, getLabel, labelHistory, listLabels, setLabel } from './admin/labels.ts';
import { activateModel, eventsFromFile, listModels, trainModel, type TrainReport } from './admin/model.ts';
import { progressBar, progressCount, type Progress } from './progress.ts';
import { dryRunPolicy, getLivePolicy, getPolicyVersion, policyHistory, publishPolicy, rollbackPolicy, validatePolicy, type DryRunReport } from './admin/policies.ts';
import { geo } from './cli-risk.ts';
import type { Settings } from './settings.ts';
import { cliActor, cliTrail } from './cli-audit.ts';

export class PolicyUsageError extends Error {}



function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, positionals: { min: number; max: number }) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new PolicyUsageError((err as Error).message.split('\n')[0]);
  }
  const n = parsed.positionals.length;
  if (n < positionals.min || n > positionals.max) {
    throw new PolicyUsageError(n > positionals.max ? `unexpected argument "${parsed.positionals[positionals.max]}"` : `expected ${positionals.min} argument(s)`);
  }
  return parsed;
}

const int = (name: string, v: string | undefined, min = 0): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new PolicyUsageError(`--${name}: expected a whole number of at least ${min}, got "${v}"`);
  return n;
};

const num = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new PolicyUsageError(`--${name}: expected a number, got "${v}"`);
  return n;
};

async function withStorage<T>(settings: Settings, fn: (s: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage({ mongodbUri: settings.mongodbUri, dataDir: settings.dataDir });
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), ...cells.map(line)].join('\n');
}

const out = (text: string) => process.stdout.write(`${text}\n`);
const json = (v: unknown) => out(JSON.stringify(v, null, 2));
const who = (a: Actor) => `${a.kind}:${a.id}`;
const versionRow = (v: PolicyVersion) => ({
  version: v.version, published: v.publishedAt.toISOString(), source: v.rollbackOf ? `rollback of ${v.rollbackOf}` : v.source,
  actor: who(v.actor), hash: v.hash, model: v.modelVersion, message: v.message,
});

/** The live version number, for commands given no --if-version: "whatever is live now". */
async function liveNumber(s: Storage): Promise<number> {
  return (await s.policies.live())?.version ?? 0;
}

export async function policyCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<void> {
  // What the command changes goes on the audit trail, by the OS user (idp/cli-audit.ts).
  const deps = (s: Storage) => ({ storage: s, audit: cliTrail(settings, s, { create: true }).audit });
  switch (sub) {
    case 'validate': {
      const { values, positionals } = parse(args, { json: { type: 'boolean' } }, { min: 0, max: 1 });
      const dir = path.resolve(positionals[0] ?? settings.policyDir);
      const r = await withStorage(settings, (s) => validatePolicy(deps(s), { files: readPolicyDir(dir) }));
      if (values.json) json(r);
      else if (r.valid) {
        out(`policy ${dir} is valid (version ${r.hash}, model ${r.modelVersion})${r.publishedAs ? `; published as version ${r.publishedAs}` : '; not published'}${r.live ? `; live: version ${r.live}` : ''}`);
        if (r.monitor) out(r.monitor);
      } else {
        // As `idp policy check` prints them: the file's path, line, key path and message.
        for (const e of r.errors) process.stderr.write(`${formatPolicyError({ ...e, file: path.join(dir, e.file) })}\n`);
      }
      if (!r.valid) process.exitCode = 1;
      return;
    }
    case 'publish': {
      const { values, positionals } = parse(args, { message: { type: 'string', short: 'm' }, 'if-version': { type: 'string' }, json: { type: 'boolean' } }, { min: 0, max: 1 });
      if (!values.message) throw new PolicyUsageError('--message is required (why: it goes into the history)');
      const dir = path.resolve(positionals[0] ?? settings.policyDir);
      const v = await withStorage(settings, async (s) => publishPolicy(deps(s), {
        files: readPolicyDir(dir), message: values.message!, ifVersion: int('if-version', values['if-version']) ?? await liveNumber(s),
      }, cliActor()));
      if (values.json) json(v);
      else out(`published ${dir} as version ${v.version} (policy ${v.hash}, model ${v.modelVersion}): every instance serves it within POLICY_POLL_MS`);
      return;
    }
    case 'history': {
      const { values } = parse(args, { limit: { type: 'string' }, after: { type: 'string' }, json: { type: 'boolean' } }, { min: 0, max: 0 });
      const page = await withStorage(settings, (s) => policyHistory(deps(s), { limit: int('limit', values.limit, 1) ?? 20, ...(values.after ? { after: values.after } : {}) }));
      if (values.json) json(page);
      else {
        out(table(page.items.map(versionRow), ['version', 'published', 'source', 'actor', 'hash', 'model', 'message']));
        if (page.next) process.stderr.write(`more: idp policy history --after ${page.next}\n`);
      }
      return;
    }
    case 'show': {
      const { values, positionals } = parse(args, { json: { type: 'boolean' } }, { min: 0, max: 1 });
      const version = int('version', positionals[0], 1);
      const v = await withStorage(settings, async (s) => {
        if (version !== undefined) return getPolicyVersion(deps(s), version);
        const live = await getLivePolicy(deps(s));
        return { ...live.version, files: live.files };
      });
      if (values.json) json(v);
      else {
        for (const [k, x] of Object.entries(versionRow(v))) out(`${k.padEnd(10)} ${String(x)}`);
        for (const [name, text] of Object.entries(v.files)) out(`file       ${name} (${Buffer.byteLength(text)} bytes)`);
      }
      return;
    }
    case 'pull': {
      const { values, positionals } = parse(args, { out: { type: 'string' } }, { min: 0, max: 1 });
      if (!values.out) throw new PolicyUsageError('--out <dir> is required');
      const version = int('version', positionals[0], 1);
      const v = await withStorage(settings, async (s) => getPolicyVersion(deps(s), version ?? await liveNumber(s)));
      const dir = path.resolve(values.out);
      fs.mkdirSync(dir, { recursive: true });
      for (const [name, text] of Object.entries(v.files)) {
        const file = path.resolve(dir, name);
        // A model named outside the directory (`../models/x.json`) is written where risk.yml says.
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
      }
      out(`wrote version ${v.version} (${Object.keys(v.files).join(', ')}) to ${dir}`);
      return;
    }
    case 'rollback': {
      const { values, positionals } = parse(args, { message: { type: 'string', short: 'm' }, 'if-version': { type: 'string' }, json: { type: 'boolean' } }, { min: 1, max: 1 });
      if (!values.message) throw new PolicyUsageError('--message is required (why: it goes into the history)');
      const to = int('version', positionals[0], 1)!;
      const v = await withStorage(settings, async (s) => rollbackPolicy(deps(s), {
        version: to, message: values.message!, ifVersion: int('if-version', values['if-version']) ?? await liveNumber(s),
      }, cliActor()));
      if (values.json) json(v);
      else out(`published version ${to}'s files again as version ${v.version} (policy ${v.hash})`);
      return;
    }
    case 'dry-run': {
      const { values, positionals } = parse(args, {
        days: { type: 'string' }, 'warmup-days': { type: 'string' }, examples: { type: 'string' }, json: { type: 'boolean' },
      }, { min: 0, max: 1 });
      const dir = path.resolve(positionals[0] ?? settings.policyDir);
      const lookup = await geo(settings);
      const bar = progressCount('dry-run', { unit: 'events' });
      const r = await withStorage(settings, (s) => dryRunPolicy({ ...deps(s), placeOf: (ip) => lookup.lookup(ip), progress: bar.update }, {
        files: readPolicyDir(dir), days: int('days', values.days, 1), warmupDays: int('warmup-days', values['warmup-days']), examples: int('examples', values.examples),
      })).finally(() => bar.done());
      if (values.json) json(r);
      else out(describeDryRun(r));
      return;
    }
    default:
      throw new PolicyUsageError(`unknown command "policy ${sub ?? ''}" (check, validate, publish, history, show, pull, rollback, dry-run)`);
  }
}

function describeDryRun(r: DryRunReport): string {
  const pct = (n: number, of: number) => (of ? `${((n / of) * 100).toFixed(1)}%` : '-');
  const d = (x: Record<string, number>) => Object.entries(x).map(([k, v]) => `${k} ${v}`).join(', ');
  const lines = [
    `${r.window.events} events from ${r.window.from} to ${r.window.to} (${r.window.scored} scored${r.window.skipped ? `, ${r.window.skipped} malformed skipped` : ''})`,
    `live version ${r.live.version} (${r.live.hash}): ${d(r.live.decisions)}`,
    `candidate (${r.candidate.hash}):       ${d(r.candidate.decisions)}`,
    `changed: ${r.changed.decisions} decisions (${pct(r.changed.decisions, r.window.scored)}), ${r.changed.levels} levels`,
  ];
  if (Object.keys(r.transitions.decisions).length) lines.push(`  decisions: ${d(r.transitions.decisions)}`);
  if (Object.keys(r.transitions.levels).length) lines.push(`  levels: ${d(r.transitions.levels)}`);
  if (r.labelled) {
    for (const [k, c] of Object.entries(r.labelled)) {
      lines.push(`labelled ${k}: ${c.n}; challenged or blocked ${c.flagged.live} → ${c.flagged.candidate}, blocked ${c.blocked.live} → ${c.blocked.candidate}`);
    }
  }
  if (r.examples.length) {
    lines.push('', table(r.examples.map((e) => ({
      event: e.eventId, ts: e.ts, user: e.user, label: e.label ?? '',
      live: `${e.live.decision}/${e.live.level} ${e.live.score}`, candidate: `${e.candidate.decision}/${e.candidate.level} ${e.candidate.score}`,
    })), ['event', 'ts', 'user', 'label', 'live', 'candidate']));
  }
  return lines.join('\n');
}

const labelRow = (l: LabelRecord) => ({ event: l.eventId, label: l.label, version: l.version, by: who(l.actor), at: l.at.toISOString(), note: l.note ?? '' });

export async function labelCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<void> {
  // What the command changes goes on the audit trail, by the OS user (idp/cli-audit.ts).
  const deps = (s: Storage) => ({ storage: s, audit: cliTrail(settings, s, { create: true }).audit });
  switch (sub) {
    case 'set': {
      const { values, positionals } = parse(args, { note: { type: 'string' }, 'if-version': { type: 'string' }, json: { type: 'boolean' } }, { min: 2, max: 2 });
      const [eventId, label] = positionals as [string, string];
      if (label !== 'attack' && label !== 'legit') throw new PolicyUsageError(`the label is attack or legit, not "${label}"`);
      const l = await withStorage(settings, (s) => setLabel(deps(s), eventId, {
        label, ...(values.note !== undefined ? { note: values.note } : {}), ...(values['if-version'] !== undefined ? { ifVersion: int('if-version', values['if-version']) } : {}),
      }, cliActor()));
      if (values.json) json(l);
      else out(`event ${l.eventId}: ${l.label} (label version ${l.version})`);
      return;
    }
    case 'show': {
      const { values, positionals } = parse(args, { json: { type: 'boolean' } }, { min: 1, max: 1 });
      const versions = await withStorage(settings, async (s) => {
        await getLabel(deps(s), positionals[0]!);
        return labelHistory(deps(s), positionals[0]!);
      });
      if (values.json) json(versions);
      else out(table(versions.map(labelRow), ['event', 'label', 'version', 'by', 'at', 'note']));
      return;
    }
    case 'list': {
      const { values } = parse(args, { limit: { type: 'string' }, after: { type: 'string' }, json: { type: 'boolean' }, all: { type: 'boolean' } }, { min: 0, max: 0 });
      if (values.all && (values.limit !== undefined || values.after !== undefined)) throw new PolicyUsageError('--all lists every label: no --limit or --after with it');
      // --all: every page in one listing (pages hold at most 200), for `idp report efficacy --labels`.
      const page = values.all
        ? { items: [...(await withStorage(settings, (s) => allLabels(s.labels))).values()] }
        : await withStorage(settings, (s) => listLabels(deps(s), { limit: int('limit', values.limit, 1) ?? 50, ...(values.after ? { after: values.after } : {}) }));
      if (values.json) json(page);
      else {
        out(table(page.items.map(labelRow), ['event', 'label', 'version', 'by', 'at', 'note']));
        if (page.next) process.stderr.write(`more: idp label list --after ${page.next}\n`);
      }
      return;
    }
    default:
      throw new PolicyUsageError(`unknown command "label ${sub ?? ''}" (set, show, list)`);
  }
}

function describeTraining(r: TrainReport): string {
  const f = (x: { auc: number | null; tprAt1pctFpr: number | null; tprAt5pctFpr: number | null }) =>
    `AUC ${x.auc ?? 'n/a'}, TPR@1% ${x.tprAt1pctFpr ?? 'n/a'}, TPR@5% ${x.tprAt5pctFpr ?? 'n/a'}`;
  const s = r.data.synthetic;
  return [
    `trained model ${r.sha256} in ${r.seconds} s (not active)`,
    `labelled events: ${r.data.train.attack} attack + ${r.data.train.legit} legit for training (each ×${r.data.labelWeight}), ${r.data.heldOut.attack} attack + ${r.data.heldOut.legit} legit held out`,
    s ? `synthetic: ${s.attack} attack + ${s.legit} legit rows from ${s.source}` : 'synthetic: none',
    `held out, live model ${r.heldOut.before.model}: ${f(r.heldOut.before)}`,
    `held out, new model  ${r.heldOut.after.model}: ${f(r.heldOut.after)}`,
    ...(r.heldOut.note ? [`note: ${r.heldOut.note}`] : []),
    `activate with: idp model activate ${r.sha256} --if-version ${r.policy.version}`,
  ].join('\n');
}

/** `idp model train --labels`, `idp model activate`, `idp model list`. */
export async function modelStoreCommand(settings: Settings, sub: 'train' | 'activate' | 'list', args: string[]): Promise<void> {
  // What the command changes goes on the audit trail, by the OS user (idp/cli-audit.ts).
  const deps = (s: Storage) => ({ storage: s, audit: cliTrail(settings, s, { create: true }).audit });
  switch (sub) {
    case 'train': {
      const { values } = parse(args, {
        labels: { type: 'boolean' }, events: { type: 'string' }, 'label-weight': { type: 'string' }, holdout: { type: 'string' }, days: { type: 'string' },
        trees: { type: 'string' }, 'max-depth': { type: 'string' }, seed: { type: 'string' }, 'max-rows': { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
      }, { min: 0, max: 0 });
      const lookup = await geo(settings);
      const bar = progressCount('reading events', { unit: 'events' });
      // Then a bar per tree: training is one long synchronous call after the reading.
      let trees: Progress | undefined;
      const treeProgress = (done: number, total: number) => {
        if (!trees) {
          bar.done();
          trees = progressBar('training', total, { unit: 'trees' });
        }
        trees.update(done);
      };
      const r = await withStorage(settings, (s) => trainModel({ ...deps(s), placeOf: (ip) => lookup.lookup(ip), progress: bar.update, treeProgress }, {
        labelWeight: int('label-weight', values['label-weight'], 1), holdout: num('holdout', values.holdout), days: int('days', values.days, 1),
        trees: int('trees', values.trees, 1), maxDepth: int('max-depth', values['max-depth'], 1), seed: int('seed', values.seed), maxRows: int('max-rows', values['max-rows'], 1),
      }, cliActor(), values.events ? { synthetic: { source: path.basename(values.events), events: eventsFromFile(values.events) } } : {})).finally(() => { bar.done(); trees?.done(); });
      if (values.out) fs.writeFileSync(values.out, (await withStorage(settings, (s) => s.models.get(r.sha256)))!.text);
      if (values.json) json(r);
      else out(describeTraining(r));
      return;
    }
    case 'activate': {
      const { values, positionals } = parse(args, { message: { type: 'string', short: 'm' }, 'if-version': { type: 'string' }, json: { type: 'boolean' } }, { min: 1, max: 1 });
      const v = await withStorage(settings, async (s) => activateModel(deps(s), {
        sha256: positionals[0]!, ...(values.message ? { message: values.message } : {}), ifVersion: int('if-version', values['if-version']) ?? await liveNumber(s),
      }, cliActor()));
      if (values.json) json(v);
      else out(`published version ${v.version} with model ${v.modelVersion} pinned (policy ${v.hash}): every instance serves it within POLICY_POLL_MS`);
      return;
    }
    case 'list': {
      const { values } = parse(args, { limit: { type: 'string' }, after: { type: 'string' }, json: { type: 'boolean' } }, { min: 0, max: 0 });
      const page = await withStorage(settings, (s) => listModels(deps(s), { limit: int('limit', values.limit, 1) ?? 20, ...(values.after ? { after: values.after } : {}) }));
      if (values.json) json(page);
      else {
        out(table(page.items.map((m) => {
          const held = (m.report as Partial<TrainReport>).heldOut;
          return { sha256: m.sha256, trained: m.createdAt.toISOString(), by: who(m.actor), 'held-out AUC before → after': held ? `${held.before.auc ?? 'n/a'} → ${held.after.auc ?? 'n/a'}` : '' };
        }), ['sha256', 'trained', 'by', 'held-out AUC before → after']));
        if (page.next) process.stderr.write(`more: idp model list --after ${page.next}\n`);
      }
      return;
    }
  }
}

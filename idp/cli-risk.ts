/**
 * `idp model …`, `idp policy check`, `idp simulate`: the risk engine's commands. They read
 * and write files; the engine itself (policies/) does neither.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { openGeo, type GeoLookup } from '../adapters/geoip.ts';
import { DEFAULT_TRAIN, serialiseModel, sha256Hex, trainForest } from '../policies/forest.ts';
import { describeMonitor } from '../policies/monitor.ts';
import { formatPolicyError, loadPolicy, PolicyLoadError, type CompiledPolicy } from '../policies/policy.ts';
import { EventError, parseEvent, type LoginEvent } from '../policies/event.ts';
import { SimulationReport } from '../policies/report.ts';
import { Replayer, Summary, type ScoredEvent } from '../policies/simulate.ts';
import type { Place } from '../policies/types.ts';
import { FEATURE_NAMES } from '../policies/signals.ts';
import { parseCmuKeystrokes, selectSubjects, type KeystrokeData } from '../policies/synth-behaviour.ts';
import { ATO_TYPES, DEFAULT_SYNTH, Rng, sampleWorld, synthesize, type AtoType } from '../policies/synth.ts';
import { NO_PROGRESS, progressBar, progressCount } from './progress.ts';
import { chartSource, simulationReportHtml } from './report-html.ts';
import { DEFAULT_POLICY_DIR } from './settings.ts';

export { progressBar };

export class CliError extends Error {}


export interface GeoSettings {
  geoipCityDb?: string | undefined;
  geoipAsnDb?: string | undefined;
  geoipCacheDir?: string | undefined;
  dataDir?: string | undefined;
}

export async function geo(s: GeoSettings): Promise<GeoLookup> {
  return openGeo({
    cityDb: s.geoipCityDb, asnDb: s.geoipAsnDb, cacheDir: s.geoipCacheDir, dataDir: s.dataDir,
    onAsnBuilt: (b) => process.stderr.write(`converted the ASN ranges into ${b.file} in ${(b.ms / 1000).toFixed(1)} s\n`),
  });
}

/** Loads a policy once; an invalid one becomes a CLI error listing every problem. */
export function policyOrExit(dir: string, opts: { withoutModel?: boolean } = {}): CompiledPolicy {
  try {
    return loadPolicy(dir, opts);
  } catch (e) {
    if (e instanceof PolicyLoadError) throw new CliError(`policy ${dir} is invalid:\n${e.errors.map(formatPolicyError).join('\n')}`);
    throw e;
  }
}

/**
 * Reads a JSONL event file, validating each line and handing each event to `each`; any
 * error, in the file or in replaying it, names the line.
 */
export async function forEachEvent(file: string, each: (e: LoginEvent, raw: unknown) => unknown, progress?: (bytes: number) => void): Promise<number> {
  let stream: fs.ReadStream;
  notADirectory(file);
  try {
    fs.accessSync(file, fs.constants.R_OK);
    stream = fs.createReadStream(file);
  } catch {
    throw new CliError(`cannot read ${file}`);
  }
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  let bytes = 0;
  for await (const line of rl) {
    n += 1;
    bytes += line.length + 1;
    if (progress && n % 10_000 === 0) progress(bytes);
    if (!line.trim()) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new CliError(`${file}:${n}: not valid JSON`);
    }
    try {
      await each(parseEvent(parsed), parsed);
    } catch (e) {
      if (e instanceof EventError) throw new CliError(`${file}:${n}: ${e.message}`);
      throw e;
    }
  }
  return n;
}

/**
 * A directory passes the access check and fails only when read (EISDIR, "unexpected error");
 * pipes and process substitutions (`<(zcat events.jsonl.gz)`) stay readable inputs.
 */
function notADirectory(file: string): void {
  let dir = false;
  try {
    dir = fs.statSync(file).isDirectory();
  } catch {
    // Missing or unreadable: the caller's own check names it.
  }
  if (dir) throw new CliError(`cannot read ${file}: it is a directory`);
}

/** Size of a readable input file, or a one-line error. */
export function inputSize(file: string): number {
  notADirectory(file);
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return fs.statSync(file).size;
  } catch {
    throw new CliError(`cannot read ${file}`);
  }
}

/** Buffered line writer that respects back-pressure. */
export function lineWriter(file: string) {
  const out = fs.createWriteStream(file);
  let buf = '';
  return {
    async write(line: string) {
      buf += `${line}\n`;
      if (buf.length > 1 << 20) {
        const chunk = buf;
        buf = '';
        if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      }
    },
    async close() {
      out.end(buf);
      await new Promise((r) => out.once('finish', r));
    },
  };
}

/** `naive=1,same_network=2`: relative weights of the account-takeover attacks (unnamed ones 0). */
function attackMixOf(spec: string): Record<AtoType, number> {
  const mix = Object.fromEntries(ATO_TYPES.map((t) => [t, 0])) as Record<AtoType, number>;
  for (const part of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [name = '', weight = ''] = part.split('=').map((x) => x.trim());
    const w = Number(weight);
    if (!(ATO_TYPES as readonly string[]).includes(name)) throw new CliError(`--attack-mix: unknown attack "${name}" (one of ${ATO_TYPES.join(', ')})`);
    if (weight === '' || !Number.isFinite(w) || w < 0) throw new CliError(`--attack-mix: "${part}" needs a weight of 0 or more, e.g. ${name}=1`);
    mix[name as AtoType] = w;
  }
  if (!Object.values(mix).some((w) => w > 0)) throw new CliError('--attack-mix: at least one attack needs a weight above 0');
  return mix;
}

/** The CMU benchmark file (and a choice of its subjects), or a clear error. */
function keystrokesOf(file: string, subjects: string | undefined): { data: KeystrokeData; source: Record<string, unknown> } {
  let text: Buffer;
  try {
    text = fs.readFileSync(file);
  } catch (e) {
    throw new CliError(`--keystrokes: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const all = parseCmuKeystrokes(text.toString('utf8'));
    const data = subjects === undefined ? all : selectSubjects(all, subjects);
    return { data, source: { file: path.basename(file), sha256: sha256Hex(text), subjects: data.subjects.length, positions: data.positions } };
  } catch (e) {
    throw new CliError(`--keystrokes ${file}: ${(e as Error).message}`);
  }
}

export async function synthCommand(s: GeoSettings, o: {
  seed?: number; users?: number; days?: number; start?: string; victimRate?: number; stuffingPerDay?: number; sharedNatRate?: number;
  passwordManagerRate?: number; privateRate?: number; attackMix?: string; keystrokes?: string; keystrokeSubjects?: string; out?: string;
}) {
  const given = {
    seed: o.seed, users: o.users, days: o.days, start: o.start, victimRate: o.victimRate, stuffingPerDay: o.stuffingPerDay, sharedNatRate: o.sharedNatRate,
    passwordManagerRate: o.passwordManagerRate, privateRate: o.privateRate, attackMix: o.attackMix === undefined ? undefined : attackMixOf(o.attackMix),
  };
  const opts = { ...DEFAULT_SYNTH, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
  if (Number.isNaN(Date.parse(opts.start))) throw new CliError(`--start: not an ISO date: ${opts.start}`);
  if (opts.users < 1 || opts.days <= 0) throw new CliError('--users must be at least 1 and --days above 0');
  for (const [flag, v] of [
    ['--victim-rate', opts.victimRate], ['--shared-nat-rate', opts.sharedNatRate], ['--password-manager-rate', opts.passwordManagerRate], ['--private-rate', opts.privateRate],
  ] as const) {
    if (v < 0 || v > 1) throw new CliError(`${flag}: a fraction between 0 and 1, got ${v}`);
  }
  if (opts.stuffingPerDay < 0) throw new CliError('--stuffing-per-day: not below 0');
  if (o.keystrokeSubjects !== undefined && o.keystrokes === undefined) throw new CliError('--keystroke-subjects needs --keystrokes');
  const keystrokes = o.keystrokes === undefined ? undefined : keystrokesOf(o.keystrokes, o.keystrokeSubjects);
  const lookup = await geo(s);
  const rng = new Rng(opts.seed);
  const policy = loadPolicy(DEFAULT_POLICY_DIR, { withoutModel: true });
  const samples = 400_000;
  // Progress on the terminal, unless the events themselves are going there.
  const quiet = !o.out && process.stdout.isTTY;
  const sampling = progressBar('world', quiet ? 0 : samples, { unit: 'addresses' });
  const world = sampleWorld(rng, (ip) => lookup.lookup(ip), samples, policy.lists.hostingAsns, sampling.update);
  sampling.done();
  const start = Date.parse(opts.start);
  const bar = progressBar('synth', quiet ? 0 : opts.days * 24, { unit: 'hours of logins' });
  const writer = o.out ? lineWriter(o.out) : undefined;
  const counts: Record<string, number> = {};
  const logins: Record<string, number> = {};
  const behaviour: Record<string, number> = {};
  const add = (c: Record<string, number>, k: string) => { c[k] = (c[k] ?? 0) + 1; };
  for (const e of synthesize(opts, world, rng, keystrokes?.data)) {
    add(counts, e.label === 'attack' ? `attack:${e.attackType}` : 'legit');
    if (e.scenario !== undefined) add(counts, `scenario:${e.scenario}`);
    // Successful logins by kind: what `idp model eval` reports on.
    if (e.success) add(logins, e.label === 'attack' ? `attack:${e.attackType}` : e.scenario === undefined ? 'legit' : `legit:${e.scenario}`);
    if (e.success && e.label === 'legit') {
      add(behaviour, e.behaviour === undefined ? 'none' : e.behaviour.keystroke ? 'keystroke' : e.behaviour.unusable ?? 'no_timings');
      if (e.behaviour?.pointer) add(behaviour, 'pointer');
      if (e.deviceKey !== undefined) add(behaviour, 'device_key');
    }
    const line = JSON.stringify(e);
    if (writer) await writer.write(line);
    else process.stdout.write(`${line}\n`);
    bar.update((Date.parse(e.ts) - start) / 3_600_000);
  }
  await writer?.close();
  bar.done();
  process.stderr.write(`${JSON.stringify({
    options: opts, geo: lookup.sources, ...(keystrokes ? { keystrokes: keystrokes.source } : { keystrokes: 'parametric' }),
    events: counts, logins, legitBehaviour: behaviour,
  })}\n`);
}

export async function trainCommand(s: GeoSettings, o: { events: string; out: string; policy?: string; trees?: number; maxDepth?: number; seed?: number; maxRows?: number }) {
  const policyDir = o.policy ?? DEFAULT_POLICY_DIR;
  const policy = policyOrExit(policyDir, { withoutModel: true });
  const lookup = await geo(s);
  // Histories as if every login had been challenged: labels never shape the features.
  const replay = new Replayer(policy, (ip) => lookup.lookup(ip), { mode: 'mfa', keepFeatures: true });
  const opts = { ...DEFAULT_TRAIN, ...(o.trees ? { trees: o.trees } : {}), ...(o.maxDepth ? { maxDepth: o.maxDepth } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}) };
  const maxRows = o.maxRows ?? 60_000;
  const attacks: number[][] = [];
  const legit: number[][] = [];
  let legitSeen = 0;
  const rng = new Rng(opts.seed);
  const size = inputSize(o.events);
  const bar = progressBar('features', size, { unit: 'bytes' });
  let events = 0;
  await forEachEvent(o.events, (e) => {
    events += 1;
    const r = replay.process(e);
    if (!r?.features || !r.label) return;
    if (r.label === 'attack') attacks.push([...r.features]);
    else {
      // Reservoir sample of legitimate rows, so memory stays bounded.
      legitSeen += 1;
      const cap = maxRows;
      if (legit.length < cap) legit.push([...r.features]);
      else {
        const j = rng.int(legitSeen);
        if (j < cap) legit[j] = [...r.features];
      }
    }
  }, bar.update);
  bar.done();
  if (attacks.length === 0 || legit.length === 0) throw new CliError('the events need labels ("label": "legit" / "attack") of both kinds to train on');
  const keepLegit = Math.min(legit.length, Math.max(attacks.length * 4, maxRows - attacks.length));
  // Shuffled (seeded): ml-cart counts classes with `indexOf` per row, which is quadratic
  // when one class sits in a long block at the front.
  const rows = [...attacks.map((x) => [x, 1] as const), ...legit.slice(0, keepLegit).map((x) => [x, 0] as const)];
  for (let i = rows.length - 1; i > 0; i -= 1) {
    const j = rng.int(i + 1);
    [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  }
  const X = rows.map((r) => r[0]);
  const y = rows.map((r) => r[1]);
  const started = performance.now();
  const trees = progressBar('training', opts.trees, { unit: 'trees' });
  const { file } = trainForest(X, y, FEATURE_NAMES, opts, {
    events: path.basename(o.events), eventsSha256: sha256Hex(fs.readFileSync(o.events)), eventCount: events,
    rows: { attack: attacks.length, legit: keepLegit }, geo: lookup.sources,
    // What of the policy shapes the features (not its version: that pins this very model).
    featurePolicy: sha256Hex(JSON.stringify({
      history: policy.risk.history, coldStart: policy.risk.cold_start,
      lists: sha256Hex(fs.readFileSync(path.join(policy.dir, 'lists.yml'))),
    })).slice(0, 12),
  }, (done) => trees.update(done));
  trees.done();
  const text = serialiseModel(file);
  fs.writeFileSync(o.out, text);
  process.stdout.write(`${JSON.stringify({
    out: o.out, sha256: sha256Hex(text), trees: file.trees.length, rows: X.length, attackRows: attacks.length,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)), next: 'set model.sha256 in risk.yml to this sha256',
  }, null, 2)}\n`);
}

async function replayInto(policy: CompiledPolicy, lookup: GeoLookup, file: string, onEach: (s: ScoredEvent | undefined, e: LoginEvent) => Promise<void> | void, label = 'replay') {
  const replay = new Replayer(policy, (ip) => lookup.lookup(ip));
  const bar = progressBar(label, inputSize(file), { unit: 'bytes' });
  await forEachEvent(file, (e) => onEach(replay.process(e), e), bar.update);
  bar.done();
}

export async function evalCommand(s: GeoSettings, o: { events: string; policy?: string }) {
  const policy = policyOrExit(o.policy ?? DEFAULT_POLICY_DIR);
  const lookup = await geo(s);
  const summary = new Summary();
  await replayInto(policy, lookup, o.events, (r, e) => summary.add(r, e.success), 'eval');
  const d = summary.toJSON().detection;
  if (!d) throw new CliError('the events carry no labels of both kinds: nothing to evaluate');
  const pct = (x: number) => (Number.isNaN(x) ? '   n/a' : `${(x * 100).toFixed(1).padStart(5)}%`);
  const lines = [`policy ${policy.version}, model ${policy.forest.version}; ${d.legit.n} legitimate logins (${pct(d.legit.challengedOrBlocked).trim()} challenged or blocked)`,
    `${'attack type'.padEnd(22)} ${'n'.padStart(6)}  ${'model AUC'.padStart(9)} ${'TPR@1%'.padStart(7)} ${'TPR@5%'.padStart(7)}  |  ${'score AUC'.padStart(9)} ${'TPR@1%'.padStart(7)} ${'TPR@5%'.padStart(7)}  caught`];
  const row = (name: string, b: { n: number; model: { auc: number; tprAt1pctFpr: number; tprAt5pctFpr: number }; score: { auc: number; tprAt1pctFpr: number; tprAt5pctFpr: number }; caught?: number }) =>
    `${name.padEnd(22)} ${String(b.n).padStart(6)}  ${b.model.auc.toFixed(3).padStart(9)} ${pct(b.model.tprAt1pctFpr)} ${pct(b.model.tprAt5pctFpr)}  |  ${b.score.auc.toFixed(3).padStart(9)} ${pct(b.score.tprAt1pctFpr)} ${pct(b.score.tprAt5pctFpr)}  ${b.caught === undefined ? '' : pct(b.caught)}`;
  for (const [t, b] of Object.entries(d.attacks)) lines.push(row(t, b));
  lines.push(row('all attacks', d.all));
  // Named situations among the legitimate logins (e.g. shared_nat: many users behind one
  // address): the cost of the policy for the people in them.
  const scenarios = Object.entries(d.legit.scenarios);
  if (scenarios.length) {
    lines.push('', `${'legitimate logins by scenario'.padEnd(30)} ${'n'.padStart(6)}  ${'challenged'.padStart(10)}  ${'blocked'.padStart(7)}`);
    lines.push(`${'all legitimate logins'.padEnd(30)} ${String(d.legit.n).padStart(6)}  ${pct(d.legit.challengedOrBlocked - d.legit.blocked).padStart(10)}  ${pct(d.legit.blocked).padStart(7)}`);
    for (const [name, c] of scenarios) {
      lines.push(`${name.padEnd(30)} ${String(c.n).padStart(6)}  ${pct(c.challengedOrBlocked - c.blocked).padStart(10)}  ${pct(c.blocked).padStart(7)}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return d;
}

/**
 * `idp simulate`: replays the events through the policy (and a baseline). With `out`, writes
 * decisions.jsonl, summary.json (and changes.jsonl against a baseline) there; with `report`,
 * the HTML report (idp/report-html.ts); either or both.
 */
export async function simulateCommand(s: GeoSettings, o: { events: string; policy?: string; baseline?: string; out?: string | undefined; report?: string | undefined }) {
  if (!o.out && !o.report) throw new CliError('give --out <dir>, --report <file.html> or both');
  const policy = policyOrExit(o.policy ?? DEFAULT_POLICY_DIR);
  const baseline = o.baseline ? policyOrExit(o.baseline) : undefined;
  const size = inputSize(o.events);
  if (o.report) {
    checkWritable(o.report);
    chartSource();
  }
  const lookup = await geo(s);
  if (o.out) fs.mkdirSync(o.out, { recursive: true });
  const decisions = o.out ? lineWriter(path.join(o.out, 'decisions.jsonl')) : undefined;
  const changes = baseline && o.out ? lineWriter(path.join(o.out, 'changes.jsonl')) : undefined;
  const summary = new Summary();
  const report = o.report ? new SimulationReport() : undefined;
  const placeOf = cachedPlaces(lookup);
  const replay = new Replayer(policy, placeOf);
  const base = baseline ? new Replayer(baseline, placeOf) : undefined;
  const bar = progressBar('simulate', size, { unit: 'bytes' });
  const started = performance.now();
  await forEachEvent(o.events, async (e) => {
    const r = replay.process(e);
    summary.add(r, e.success);
    const b = base?.process(e);
    report?.add(e, r ? placeOf(e.ip) : undefined, r, b);
    if (!r) return;
    await decisions?.write(JSON.stringify({
      id: r.id, score: Number(r.assessment.score.toFixed(4)), level: r.assessment.level, decision: r.decision.decision,
      requiredAcr: r.decision.requiredAcr ?? null,
      reasons: r.assessment.reasons.map((x) => ({ factor: x.factor, contribution: Number(x.contribution.toFixed(4)), ...(x.monitor ? { monitor: true } : {}) })),
      // Monitor mode: what the policy would have decided were every part enforced.
      ...(r.monitor ? { monitor: { score: Number(r.monitor.assessment.score.toFixed(4)), level: r.monitor.assessment.level, decision: r.monitor.decision.decision, requiredAcr: r.monitor.decision.requiredAcr ?? null } } : {}),
    }));
    if (b && b.decision.decision !== r.decision.decision) {
      summary.change(b.decision.decision, r.decision.decision);
      await changes?.write(JSON.stringify({ id: r.id, baseline: b.decision.decision, candidate: r.decision.decision, baselineScore: Number(b.assessment.score.toFixed(4)), candidateScore: Number(r.assessment.score.toFixed(4)) }));
    }
  }, bar.update);
  bar.done();
  await decisions?.close();
  await changes?.close();
  const seconds = (performance.now() - started) / 1000;
  const eventsPerSecond = Math.round(summary.events / seconds);
  if (o.out) {
    const json = summary.toJSON({
      policyVersion: policy.version, modelVersion: policy.forest.version, geo: lookup.sources,
      ...(baseline ? { baseline: { policyVersion: baseline.version, changedDecisions: summary.changed, transitions: summary.transitions, listedIn: 'changes.jsonl' } } : {}),
      seconds: Number(seconds.toFixed(2)), eventsPerSecond,
    });
    fs.writeFileSync(path.join(o.out, 'summary.json'), `${JSON.stringify(json, null, 2)}\n`);
  }
  if (report && o.report) {
    fs.writeFileSync(o.report, simulationReportHtml(report.toJSON(), {
      policyVersion: policy.version, modelVersion: policy.forest.version, input: path.basename(o.events), generated: new Date().toISOString(),
      ...(baseline ? { baseline: { policyVersion: baseline.version, modelVersion: baseline.forest.version } } : {}),
      changesFile: changes !== undefined,
    }));
  }
  process.stdout.write(`${JSON.stringify({
    ...(o.out ? { out: o.out } : {}), ...(o.report ? { report: o.report } : {}), events: summary.events, scored: summary.scored, decisions: summary.decisions,
    ...(summary.monitor ? { monitorDecisions: summary.monitor.decisions } : {}),
    eventsPerSecond, ...(baseline ? { changedDecisions: summary.changed } : {}),
  })}\n`);
}

/** Fails early (before a long replay) when the report cannot be written where asked. */
export function checkWritable(file: string): void {
  const dir = path.dirname(path.resolve(file));
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new CliError(`cannot write ${file}: ${dir} is not a writable directory`);
  }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new CliError(`cannot write ${file}: it is a directory`);
}

/** Address → place, cached (the replayers and the reports ask for the same addresses). */
export function cachedPlaces(lookup: GeoLookup): (ip: string) => Place {
  const cache = new Map<string, Place>();
  return (ip) => {
    let p = cache.get(ip);
    if (!p) {
      if (cache.size > 200_000) cache.clear();
      p = lookup.lookup(ip);
      cache.set(ip, p);
    }
    return p;
  };
}

/**
 * `idp events export`: every stored event as one JSON line, as recorded (with the provider's
 * `assessment`), each checked against the event format first. A record that does not match
 * it is left out and named (id and field) on stderr, and the command then exits 1, so a
 * partial export is not taken for a whole one; the rest is still exported, because one bad
 * record must not hold back the audit trail. A record the store cannot parse at all ends the
 * store's listing, so the export stops there with one line naming the last good record.
 */
export async function eventsExportCommand(records: AsyncIterable<unknown>, out: NodeJS.WritableStream): Promise<void> {
  let exported = 0;
  let skipped = 0;
  let lastId: string | undefined;
  // A count on the terminal, unless the events themselves are going there.
  const bar = (out as { isTTY?: boolean }).isTTY ? NO_PROGRESS : progressCount('events export', { unit: 'events' });
  try {
    for await (const record of records) {
      try {
        lastId = parseEvent(record).id;
      } catch (e) {
        if (!(e instanceof EventError)) throw e;
        const id = (record as { id?: unknown } | null)?.id;
        process.stderr.write(`idp: skipped event ${typeof id === 'string' && id ? id : '(without an id)'}: ${e.message}\n`);
        skipped += 1;
        continue;
      }
      if (!out.write(`${JSON.stringify(record)}\n`)) await new Promise((r) => out.once('drain', r));
      bar.update((exported += 1));
    }
  } catch (e) {
    // The stores keep each event as JSON text and parse it while listing.
    if (!(e instanceof SyntaxError)) throw e;
    throw new CliError(`a stored event ${lastId ? `after ${lastId}` : 'at the start'} is not valid JSON: export stopped after ${exported} event(s)`);
  } finally {
    bar.done();
  }
  process.stderr.write(`exported ${exported} events${skipped ? `; skipped ${skipped} malformed (named above)` : ''}\n`);
  if (skipped) process.exitCode = 1;
}

export function policyCheckCommand(dir: string): boolean {
  try {
    const p = loadPolicy(dir);
    process.stdout.write(`policy ${path.resolve(dir)} is valid (version ${p.version}, model ${p.forest.version})\n`);
    const monitor = describeMonitor(p.risk);
    if (monitor) process.stdout.write(`${monitor}\n`);
    return true;
  } catch (e) {
    if (!(e instanceof PolicyLoadError)) throw e;
    for (const err of e.errors) process.stderr.write(`${formatPolicyError({ ...err, file: path.join(dir, err.file) })}\n`);
    return false;
  }
}

/**
 * Retraining the model from labelled login events (the feedback loop), and activating it.
 * One implementation for `idp model train --labels`, `idp model activate` and the admin API.
 *
 * Training (`trainModel`):
 * - The stored login events are replayed in time order through the live policy's signals,
 *   building each user's history as live operation built it: a login the provider let in
 *   joins it, a blocked one does not, a challenged one does unless its label says `attack`
 *   (the event does not record how the challenge ended, and most challenged logins are their
 *   owner's). Each labelled login scored this way gives a row of features; its own label never
 *   shapes its features (policies/simulate.ts contextOf).
 * - The labelled events are split once, by a hash of the event id and the seed, into a
 *   training part and a held-out part (`holdout`, default 30%): with the same seed an event
 *   stays on the same side across retrainings, so the held-out figures never grade a model on
 *   what it was trained with.
 * - Training rows: the labelled events of the training part, each repeated `labelWeight`
 *   times (default 10; a random forest's split counts weigh a repeated row as a weight would),
 *   and, when given, synthetic events (`idp model synth`) replayed in a world of their own.
 *   So real, labelled logins weigh above synthetic ones.
 * - The report compares the live model and the new one on the held-out labelled events (ROC
 *   AUC, true-positive rate at 1% and 5% false positives), before anything is activated. The
 *   model is kept in the store as a candidate under its sha256; nothing serves it yet.
 *
 * Activating (`activateModel`) publishes the live policy with the candidate as its model
 * file and its sha256 pinned in risk.yml (`model.sha256`): a policy version like any other,
 * checked by the same loader, live on every instance through the store, and undone by a
 * rollback.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { z } from 'zod';
import type { ModelStore, Page } from '../../adapters/storage/port.ts';
import type { Actor, LabelRecord, ModelCandidate, PolicyVersion, PolicyVersionWithFiles } from '../../models/types.ts';
import { parseEvent, EventError, type LoginEvent } from '../../policies/event.ts';
import { compileForest, DEFAULT_TRAIN, serialiseModel, sha256Hex, trainForest, type Forest, type TrainOptions } from '../../policies/forest.ts';
import { rocAuc, tprAtFpr } from '../../policies/metrics.ts';
import { formatPolicyError, loadPolicyFiles, PolicyLoadError, withModel, type CompiledPolicy } from '../../policies/policy.ts';
import { Replayer } from '../../policies/simulate.ts';
import { FEATURE_NAMES } from '../../policies/signals.ts';
import { Rng } from '../../policies/synth.ts';
import { ConflictError, InvalidError, NotFoundError, parseInput, type AdminError } from './errors.ts';
import { allLabels } from './labels.ts';
import { pageSchema, type PageInput } from './page.ts';
import { policyInputErrors, publishChecked, type DryRunDeps, type PolicyDeps } from './policies.ts';

export interface ModelDeps extends DryRunDeps {
  storage: DryRunDeps['storage'] & { models: ModelStore };
  /** Told as each tree of the forest is trained (the CLI's progress bar); not called by the API. */
  treeProgress?: ((done: number, total: number) => void) | undefined;
}

export const trainSchema = z.strictObject({
  labelWeight: z.number().int().min(1).max(1000).default(10).describe('How many times each labelled real event counts, against once for a synthetic one'),
  holdout: z.number().min(0.05).max(0.9).default(0.3).describe('Share of the labelled events held out of training, to report the figures on'),
  days: z.number().int().min(1).max(3660).optional().describe('Replay only the events stored in the last this many days (default: all)'),
  trees: z.number().int().min(1).max(500).default(DEFAULT_TRAIN.trees).describe('Trees in the forest'),
  maxDepth: z.number().int().min(1).max(30).default(DEFAULT_TRAIN.maxDepth).describe('Depth of each tree'),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(DEFAULT_TRAIN.seed).describe('Seed of the training and of the held-out split'),
  maxRows: z.number().int().min(100).max(1_000_000).default(60_000).describe('At most this many legitimate synthetic rows (a uniform sample)'),
}).describe('Retrain the model from labelled login events (and synthetic ones)');

export const activateSchema = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lowercase hex').describe('The trained model to activate (its sha256, as training reported it)'),
  message: z.string().trim().min(1).max(1000).optional().describe('Why (default: "activate model <sha256>")'),
  ifVersion: z.number().int().min(0).describe('The live policy version this is based on (If-Match)'),
}).describe('Publish the live policy with a trained model pinned');

export type TrainInput = z.input<typeof trainSchema>;
export type ActivateInput = z.input<typeof activateSchema>;

/** How well a model separates the held-out attacks from the held-out legitimate logins. */
export interface HeldOutFigures {
  model: string;
  auc: number | null;
  tprAt1pctFpr: number | null;
  tprAt5pctFpr: number | null;
}

export interface TrainReport {
  sha256: string;
  modelVersion: string;
  /** The live policy whose signals made the features, and whose model is the "before". */
  policy: { version: number; hash: string; modelVersion: string };
  data: {
    storedEvents: number;
    labelled: { attack: number; legit: number; notScored: number; notStored: number };
    train: { attack: number; legit: number };
    heldOut: { attack: number; legit: number };
    synthetic: { source: string; events: number; attack: number; legit: number } | null;
    labelWeight: number;
    rows: { attack: number; legit: number };
  };
  /** On the held-out labelled events, before (the live model) and after (this one). Null where a class is missing there. */
  heldOut: { before: HeldOutFigures; after: HeldOutFigures; note?: string | undefined };
  options: TrainOptions & { holdout: number; days: number | null };
  seconds: number;
}

const DAY = 86_400_000;

/** Synthetic events from a JSON-lines file (`idp model synth --out`), checked line by line. */
export async function* eventsFromFile(file: string): AsyncGenerator<LoginEvent> {
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n += 1;
    if (!line.trim()) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new InvalidError('events_invalid', `${file}:${n}: not valid JSON`);
    }
    try {
      yield parseEvent(parsed);
    } catch (e) {
      if (e instanceof EventError) throw new InvalidError('events_invalid', `${file}:${n}: ${e.message}`);
      throw e;
    }
  }
}

/** Held out or not: a hash of the seed and the event id, so the split is stable across runs. */
function heldOut(eventId: string, seed: number, share: number): boolean {
  const h = crypto.createHash('sha256').update(`${seed}:${eventId}`).digest();
  return h.readUInt32BE(0) / 2 ** 32 < share;
}

function figures(forest: Forest, rows: { x: number[]; attack: boolean }[]): HeldOutFigures {
  const pos = rows.filter((r) => r.attack).map((r) => forest.probability(r.x));
  const neg = rows.filter((r) => !r.attack).map((r) => forest.probability(r.x));
  const num = (x: number) => (Number.isNaN(x) ? null : Number(x.toFixed(4)));
  return { model: forest.version, auc: num(rocAuc(pos, neg)), tprAt1pctFpr: num(tprAtFpr(pos, neg, 0.01)), tprAt5pctFpr: num(tprAtFpr(pos, neg, 0.05)) };
}

async function liveVersion(deps: Pick<PolicyDeps, 'storage'>): Promise<PolicyVersionWithFiles> {
  for (let i = 0; i < 5; i += 1) {
    const live = await deps.storage.policies.live();
    if (!live) throw new NotFoundError('policy_not_published', 'no policy has been published to the store yet');
    const full = await deps.storage.policies.get(live.version);
    if (full) return full;
  }
  throw new Error('the live policy kept changing while it was read');
}

/**
 * Trains a model from the stored login events and their labels (and `synthetic` events, if
 * given), keeps it as a candidate, and reports on the held-out labelled events. Activates
 * nothing. InvalidError `training_data_insufficient` when the rows lack a class.
 */
export async function trainModel(deps: ModelDeps, input: TrainInput, actor: Actor, opts: { synthetic?: { source: string; events: AsyncIterable<LoginEvent> | Iterable<LoginEvent> } } = {}, now = Date.now()): Promise<TrainReport> {
  const p = parseInput(trainSchema, input);
  const started = performance.now();
  const live = await liveVersion(deps);
  let livePolicy: CompiledPolicy;
  let featurePolicy: CompiledPolicy;
  try {
    livePolicy = loadPolicyFiles(live.files, `store v${live.version}`);
    featurePolicy = loadPolicyFiles(live.files, `store v${live.version}`, { withoutModel: true });
  } catch (e) {
    if (e instanceof PolicyLoadError) throw new ConflictError('policy_live_invalid', `the live policy (version ${live.version}) does not load: ${e.errors.map(formatPolicyError).join('; ')}`);
    throw e;
  }
  const labels = await allLabels(deps.storage.labels);
  const train: { x: number[]; attack: boolean }[] = [];
  const held: { x: number[]; attack: boolean }[] = [];
  const seen = new Set<string>();
  let storedEvents = 0;

  // The stored events, histories grown as live grew them (see the header).
  const replay = new Replayer(featurePolicy, deps.placeOf, { mode: 'mfa', keepFeatures: true });
  let read = 0;
  for await (const record of deps.storage.events.list({ since: p.days === undefined ? undefined : now - p.days * DAY })) {
    deps.progress?.((read += 1));
    let e: LoginEvent;
    try {
      e = parseEvent(record);
    } catch (err) {
      if (err instanceof EventError) continue; // a record edited by hand (`idp events export` names it)
      throw err;
    }
    storedEvents += 1;
    const label: LabelRecord | undefined = labels.get(e.id);
    const decision = record.assessment?.decision;
    const mfa = decision === 'allow' ? 'pass' : decision === 'step_up' ? (label?.label === 'attack' ? 'fail' : 'pass') : decision === 'block' ? 'fail' : undefined;
    const r = replay.process({ ...e, ...(mfa ? { mfa } : {}) });
    if (!label) continue;
    seen.add(e.id);
    if (!r?.features) continue;
    const row = { x: [...r.features], attack: label.label === 'attack' };
    (heldOut(e.id, p.seed, p.holdout) ? held : train).push(row);
  }
  const labelledScored = train.length + held.length;
  const count = (rows: { attack: boolean }[], attack: boolean) => rows.filter((r) => r.attack === attack).length;

  // Synthetic events: a world of their own, so their own Replayer.
  const rng = new Rng(p.seed);
  const synth = { attack: [] as number[][], legit: [] as number[][], events: 0, legitSeen: 0 };
  if (opts.synthetic) {
    const r = new Replayer(featurePolicy, deps.placeOf, { mode: 'mfa', keepFeatures: true });
    for await (const e of opts.synthetic.events) {
      synth.events += 1;
      deps.progress?.((read += 1));
      const s = r.process(e);
      if (!s?.features || !s.label) continue;
      if (s.label === 'attack') synth.attack.push([...s.features]);
      else {
        // A uniform sample of the legitimate rows (reservoir), as `idp model train` takes them.
        synth.legitSeen += 1;
        if (synth.legit.length < p.maxRows) synth.legit.push([...s.features]);
        else {
          const j = rng.int(synth.legitSeen);
          if (j < p.maxRows) synth.legit[j] = [...s.features];
        }
      }
    }
  }
  const keepLegit = Math.min(synth.legit.length, Math.max(synth.attack.length * 4, p.maxRows - synth.attack.length));
  const rows: (readonly [number[], 0 | 1])[] = [
    ...synth.attack.map((x) => [x, 1] as const),
    ...synth.legit.slice(0, keepLegit).map((x) => [x, 0] as const),
  ];
  for (const r of train) for (let i = 0; i < p.labelWeight; i += 1) rows.push([r.x, r.attack ? 1 : 0]);
  const attackRows = rows.filter((r) => r[1] === 1).length;
  if (attackRows === 0 || attackRows === rows.length) {
    throw new InvalidError('training_data_insufficient', `training needs attack and legitimate rows: ${attackRows} attack and ${rows.length - attackRows} legitimate (label more events, or add synthetic ones)`, { detail: {
      train: { attack: count(train, true), legit: count(train, false) }, synthetic: { attack: synth.attack.length, legit: keepLegit },
    } });
  }
  // Shuffled (seeded), as `idp model train` does: ml-cart is quadratic on long runs of one class.
  for (let i = rows.length - 1; i > 0; i -= 1) {
    const j = rng.int(i + 1);
    [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  }
  const options: TrainOptions = { ...DEFAULT_TRAIN, trees: p.trees, maxDepth: p.maxDepth, seed: p.seed };
  const { file } = trainForest(rows.map((r) => r[0]), rows.map((r) => r[1]), FEATURE_NAMES, options, {
    source: 'labelled events', policy: live.hash, labelled: { train: train.length, heldOut: held.length }, labelWeight: p.labelWeight,
    synthetic: opts.synthetic ? { source: opts.synthetic.source, events: synth.events } : null, storedEvents,
    // What of the policy shapes the features (as `idp model train` records it).
    featurePolicy: sha256Hex(JSON.stringify({
      history: featurePolicy.risk.history, coldStart: featurePolicy.risk.cold_start, lists: sha256Hex(live.files['lists.yml'] ?? ''),
    })).slice(0, 12),
  }, deps.treeProgress);
  const text = serialiseModel(file);
  const sha256 = sha256Hex(text);
  const after = compileForest(file, sha256.slice(0, 12));
  const heldAttack = count(held, true);
  const heldLegit = count(held, false);
  const report: TrainReport = {
    sha256, modelVersion: sha256.slice(0, 12),
    policy: { version: live.version, hash: live.hash, modelVersion: livePolicy.forest.version },
    data: {
      storedEvents,
      labelled: {
        attack: [...labels.values()].filter((l) => l.label === 'attack').length, legit: [...labels.values()].filter((l) => l.label === 'legit').length,
        notScored: seen.size - labelledScored, notStored: labels.size - seen.size,
      },
      train: { attack: count(train, true), legit: count(train, false) },
      heldOut: { attack: heldAttack, legit: heldLegit },
      synthetic: opts.synthetic ? { source: opts.synthetic.source, events: synth.events, attack: synth.attack.length, legit: keepLegit } : null,
      labelWeight: p.labelWeight,
      rows: { attack: attackRows, legit: rows.length - attackRows },
    },
    heldOut: {
      before: figures(livePolicy.forest, held), after: figures(after, held),
      ...(heldAttack === 0 || heldLegit === 0 ? { note: 'the held-out labelled events need both attacks and legitimate logins for these figures: label more events' } : {}),
    },
    options: { ...options, holdout: p.holdout, days: p.days ?? null },
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
  await deps.storage.models.save({ sha256, text, report: report as unknown as Record<string, unknown>, actor, createdAt: new Date() });
  await deps.audit({
    actor, action: 'model.train', outcome: 'success', target: { type: 'model', id: sha256 },
    after: { sha256, heldOut: report.heldOut, data: report.data }, detail: { options: report.options },
  });
  return report;
}

/** A kept candidate with its report. NotFoundError `model_not_found`. */
export async function getModel(deps: { storage: { models: ModelStore } }, sha256: string): Promise<ModelCandidate> {
  const m = /^[0-9a-f]{64}$/.test(sha256) ? await deps.storage.models.get(sha256) : undefined;
  if (!m) throw new NotFoundError('model_not_found', `no trained model ${sha256}`);
  return m;
}

/** Kept candidates, newest first, without the model itself. */
export async function listModels(deps: { storage: { models: ModelStore } }, page: PageInput = {}): Promise<Page<Omit<ModelCandidate, 'text'>>> {
  return deps.storage.models.list(parseInput(pageSchema, page));
}

/**
 * Publishes the live policy with the candidate as its model and its sha256 pinned in
 * risk.yml, on `ifVersion`. NotFoundError `model_not_found`, ConflictError `policy_unchanged`
 * (it is the live model already), InvalidError `policy_invalid`, VersionConflictError.
 */
export async function activateModel(deps: PolicyDeps & { storage: PolicyDeps['storage'] & { models: ModelStore } }, input: ActivateInput, actor: Actor): Promise<PolicyVersion> {
  const p = parseInput(activateSchema, input);
  const live = await liveVersion(deps);
  const target = { type: 'model', id: p.sha256 };
  const refuse = async (err: AdminError): Promise<never> => {
    await deps.audit({ actor, action: 'model.activate', outcome: 'failure', target, detail: { reason: err.reason, live: live.version } });
    throw err;
  };
  const candidate = await deps.storage.models.get(p.sha256);
  if (!candidate) return refuse(new NotFoundError('model_not_found', `no trained model ${p.sha256}`));
  const files = withModel(live.files, candidate.text);
  let policy: CompiledPolicy;
  try {
    policy = loadPolicyFiles(files, 'candidate');
  } catch (e) {
    if (!(e instanceof PolicyLoadError)) throw e;
    const messages = e.errors.map(formatPolicyError);
    return refuse(new InvalidError('policy_invalid', `the policy with this model is invalid:\n${messages.join('\n')}`, { errors: policyInputErrors(e.errors), detail: { errors: e.errors, messages } }));
  }
  if (policy.version === live.hash) return refuse(new ConflictError('policy_unchanged', `model ${p.sha256.slice(0, 12)} is the live model already (policy version ${live.version})`, { live: live.version }));
  return publishChecked(deps, {
    files, policy, live, message: p.message ?? `activate model ${p.sha256.slice(0, 12)}`, ifVersion: p.ifVersion, actor, source: 'model', action: 'model.activate',
  });
}

/**
 * `idp keystroke eval`: the keystroke detectors on the CMU keystroke benchmark
 * (DSL-StrongPasswordData.csv, Killourhy & Maxion 2009), by the benchmark's own procedure
 * (policies/keystroke-eval.ts). Reads the file and prints; the evaluation is pure.
 */
import fs from 'node:fs';
import { DETECTOR_NAMES, DETECTORS, type Calibration, type DetectorName } from '../policies/keystroke.ts';
import { evaluateDetector, fireRates, fitCalibration, repsNeeded, SPLITS, type DetectorResult, type FireRates, type SplitName, type Subject } from '../policies/keystroke-eval.ts';
import { CliError } from './cli-risk.ts';
import { progressBar } from './progress.ts';

/** The paper's Table 2: scaled Manhattan, the best of the 14 detectors it compared. */
export const PAPER_SCALED_MANHATTAN = { eer: 0.096, sd: 0.069 } as const;
/** Template sizes the live score is shown for: risk.yml behaviour.keystroke learn and keep. */
const LIVE_TEMPLATE = 30;

/**
 * The benchmark's CSV as subjects, each with its repetitions in the order typed. The header
 * must be `subject,sessionIndex,rep` then timing columns in the CMU order (H, DD, UD per key,
 * ending with the last key's H): keystrokeVector's layout, which the detectors rely on.
 */
export function readCmuCsv(file: string): Subject[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`cannot read ${file}`);
  }
  // The published file has CRLF line ends.
  const lines = text.split(/\r?\n/);
  const header = lines[0]!.split(',');
  const timings = header.slice(3);
  const kinds = timings.map((c) => c.split('.')[0]);
  const layoutOk = timings.length >= 4 && timings.length % 3 === 1 && kinds.every((k, i) => k === ['H', 'DD', 'UD'][i % 3]);
  if (header[0] !== 'subject' || header[1] !== 'sessionIndex' || header[2] !== 'rep' || !layoutOk) {
    throw new CliError(`${file}: not the CMU keystroke data: the header must be subject,sessionIndex,rep then H.*, DD.*, UD.* columns per key, ending with H.*`);
  }
  const bySubject = new Map<string, { session: number; rep: number; v: number[] }[]>();
  for (let n = 1; n < lines.length; n += 1) {
    const line = lines[n]!;
    if (!line.trim()) continue;
    const cells = line.split(',');
    if (cells.length !== header.length) throw new CliError(`${file}:${n + 1}: ${cells.length} columns, the header has ${header.length}`);
    const nums = cells.slice(1).map(Number);
    if (!cells[0] || nums.some((x) => !Number.isFinite(x))) throw new CliError(`${file}:${n + 1}: expected a subject and numbers`);
    const list = bySubject.get(cells[0]) ?? [];
    list.push({ session: nums[0]!, rep: nums[1]!, v: nums.slice(2) });
    bySubject.set(cells[0], list);
  }
  return [...bySubject].map(([id, reps]) => ({
    id, reps: reps.sort((a, b) => a.session - b.session || a.rep - b.rep).map((r) => r.v),
  }));
}

export interface KeystrokeEvalOptions {
  data: string;
  detectors?: string[] | undefined;
  split?: string | undefined;
  /** The threshold of the live score (risk.yml keystroke_anomaly.above). */
  above: number;
  /** Also fit each detector's calibration on the split, and print it beside the shipped one. */
  calibrate?: boolean | undefined;
  json?: boolean | undefined;
}

export function keystrokeEvalCommand(o: KeystrokeEvalOptions) {
  const names = (o.detectors ?? [...DETECTOR_NAMES]).map((d) => d.trim()).filter(Boolean);
  const unknown = names.filter((d) => !(DETECTOR_NAMES as readonly string[]).includes(d));
  if (unknown.length || names.length === 0) throw new CliError(`--detectors: unknown detector "${unknown[0] ?? ''}" (known: ${DETECTOR_NAMES.join(', ')})`);
  const splitName = (o.split ?? 'protocol') as SplitName;
  if (!Object.hasOwn(SPLITS, splitName)) throw new CliError(`--split: "${o.split}" is not one of ${Object.keys(SPLITS).join(', ')}`);
  if (!(o.above >= 0 && o.above <= 1)) throw new CliError(`--above: a score between 0 and 1, got ${o.above}`);
  const split = SPLITS[splitName];
  const subjects = readCmuCsv(o.data);
  if (subjects.length < 2) throw new CliError(`${o.data}: ${subjects.length} subject(s); the procedure needs at least 2 (one genuine, the others impostors)`);
  const short = subjects.find((s) => s.reps.length < repsNeeded(split));
  if (short) throw new CliError(`${o.data}: subject ${short.id} has ${short.reps.length} repetitions; the ${splitName} split needs at least ${repsNeeded(split)}`);

  const detectors = (names as DetectorName[]).map((n) => DETECTORS[n]);
  const templates = [10, LIVE_TEMPLATE];
  // Per detector: the full training set, the newest LIVE_TEMPLATE, and the live score per template size.
  const bar = progressBar('keystroke eval', detectors.length * subjects.length * (2 + templates.length + (o.calibrate ? 3 : 0)), { unit: 'steps' });
  let done = 0;
  const step = () => bar.update(++done);
  const results: DetectorResult[] = [];
  const fires: FireRates[] = [];
  const calibrations: Record<string, { shipped: Calibration; fitted: Calibration }> = {};
  for (const d of detectors) {
    results.push(evaluateDetector(subjects, d, { split, progress: step }));
    results.push(evaluateDetector(subjects, d, { split, template: LIVE_TEMPLATE, progress: step }));
    for (const template of templates) {
      fires.push(fireRates(subjects, d, { split, template, above: o.above }));
      done += subjects.length - 1;
      step();
    }
    if (o.calibrate) {
      calibrations[d.name] = { shipped: d.calibration, fitted: fitCalibration(subjects, d, { split, templates: [10, 20, 30] }) };
      done += 3 * subjects.length - 1;
      step();
    }
  }
  bar.done();

  const summary = {
    data: o.data, split: splitName, subjects: subjects.length,
    paper: { detector: 'scaled_manhattan', ...PAPER_SCALED_MANHATTAN },
    results: results.map((r) => ({ detector: r.detector, template: r.template, subjects: r.subjects, eer: r.eer, farAt5: r.farAt5 })), live: fires,
    ...(o.calibrate ? { calibration: calibrations } : {}),
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return summary;
  }
  const f3 = (x: number) => x.toFixed(3);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const s = split;
  const lines = [
    `CMU keystroke benchmark, ${subjects.length} subjects, ${splitName} split: train on repetitions ${s.train[0] + 1}-${s.train[1]}, `
      + `genuine tests ${s.genuine[0] + 1}-${s.genuine[1]}, impostors: repetitions ${s.impostor[0] + 1}-${s.impostor[1]} of each other subject`,
    '',
    `${'detector'.padEnd(20)} ${'trained on'.padEnd(12)} ${'mean EER'.padStart(8)} ${'sd'.padStart(6)} ${'FAR@5%FRR'.padStart(9)}`,
    ...results.map((r) => `${r.detector.padEnd(20)} ${(r.template === 'all' ? `${s.train[1] - s.train[0]} reps` : `newest ${r.template}`).padEnd(12)} ${f3(r.eer.mean).padStart(8)} ${f3(r.eer.sd).padStart(6)} ${f3(r.farAt5.mean).padStart(9)}`),
    `${'paper: scaled Manh.'.padEnd(20)} ${'200 reps'.padEnd(12)} ${f3(PAPER_SCALED_MANHATTAN.eer).padStart(8)} ${f3(PAPER_SCALED_MANHATTAN.sd).padStart(6)}`,
    '',
    `live score (templateScore, one threshold for all users), fires above ${o.above}:`,
    `${'detector'.padEnd(20)} ${'template'.padStart(8)} ${'genuine fires'.padStart(13)} ${'impostor fires'.padStart(14)} ${'median: genuine'.padStart(15)} ${'impostor'.padStart(8)}`,
    ...fires.map((r) => `${r.detector.padEnd(20)} ${String(r.template).padStart(8)} ${pct(r.genuineFires).padStart(13)} ${pct(r.impostorFires).padStart(14)} ${r.genuineMedian.toFixed(2).padStart(15)} ${r.impostorMedian.toFixed(2).padStart(8)}`),
  ];
  if (o.calibrate) {
    lines.push('', 'calibration (logistic on ln(anomaly / own median) and ln(template size / 30), templates of 10, 20, 30):');
    for (const [name, c] of Object.entries(calibrations)) {
      const show = (k: Calibration) => `slope ${k.slope.toFixed(2)} offset ${k.offset.toFixed(2)} size ${k.size.toFixed(2)}`;
      lines.push(`${name.padEnd(20)} fitted ${show(c.fitted)}   shipped ${show(c.shipped)}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return summary;
}

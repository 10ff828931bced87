/**
 * Evaluation of the keystroke detectors (keystroke.ts) on the CMU keystroke benchmark's
 * procedure (Killourhy & Maxion, DSN 2009; the data's README): for each subject as the
 * genuine user, train on its first 200 repetitions, score its other 200 and the first 5 of
 * every other subject, and take the equal-error rate on the ROC. Pure: the CLI
 * (idp/cli-keystroke.ts) reads the file and prints.
 *
 * Two splits of the same data:
 * - `protocol`: the published one (train 1-200; genuine test 201-400; impostors 1-5).
 * - `cv`: a validation split inside the training repetitions, for choosing hyper-parameters
 *   without touching the test ones: train 1-150; genuine test 151-200; impostors 51-55 of
 *   the others (their training repetitions, and not the protocol's impostor repetitions).
 */
import { anomalyRatio, calibrated, CALIBRATION_SIZE, median, type Calibration, type Detector, type Vector } from './keystroke.ts';

/** One typist: repetitions in the order typed (session, then repetition). */
export interface Subject {
  id: string;
  reps: Vector[];
}

export interface Split {
  /** Repetitions [from, to) of the genuine user to train on. */
  train: readonly [number, number];
  /** Repetitions [from, to) of the genuine user to test. */
  genuine: readonly [number, number];
  /** Repetitions [from, to) of every other subject, as impostors. */
  impostor: readonly [number, number];
}

export const SPLITS = {
  protocol: { train: [0, 200], genuine: [200, 400], impostor: [0, 5] },
  cv: { train: [0, 150], genuine: [150, 200], impostor: [50, 55] },
} as const satisfies Record<string, Split>;
export type SplitName = keyof typeof SPLITS;

/** Repetitions a subject needs for a split (the genuine test may be cut short by the data). */
export function repsNeeded(split: Split): number {
  return Math.max(split.train[1] + 1, split.impostor[1]);
}

/**
 * The ROC of a detector on one subject, as (false-reject rate, false-accept rate) points, one
 * per distinct score (a sample is rejected when its score is at least the threshold), from
 * "reject nothing" (0, 1) to "reject all" (1, 0). Ties move together, as in ROCR, which the
 * paper's evaluation used.
 */
export function roc(genuine: readonly number[], impostor: readonly number[]): [number, number][] {
  const all = [...genuine.map((s) => [s, 0] as const), ...impostor.map((s) => [s, 1] as const)].sort((a, b) => b[0] - a[0]);
  const points: [number, number][] = [[0, 1]];
  let rejectedGenuine = 0;
  let rejectedImpostor = 0;
  for (let i = 0; i < all.length;) {
    const v = all[i]![0];
    while (i < all.length && all[i]![0] === v) {
      if (all[i]![1]) rejectedImpostor += 1;
      else rejectedGenuine += 1;
      i += 1;
    }
    points.push([rejectedGenuine / genuine.length, 1 - rejectedImpostor / impostor.length]);
  }
  return points;
}

/**
 * Equal-error rate: where the ROC crosses FRR = FAR, interpolated linearly between the two
 * points on either side (the paper's procedure).
 */
export function equalErrorRate(genuine: readonly number[], impostor: readonly number[]): number {
  const p = roc(genuine, impostor);
  for (let i = 1; i < p.length; i += 1) {
    const [x1, y1] = p[i - 1]!;
    const [x2, y2] = p[i]!;
    const d1 = x1 - y1;
    const d2 = x2 - y2;
    if (d1 <= 0 && d2 >= 0) return d1 === d2 ? x1 : x1 + (d1 / (d1 - d2)) * (x2 - x1);
  }
  return NaN; // unreachable: the ROC runs from (0, 1) to (1, 0)
}

/**
 * Zero-effort false-accept rate at a false-reject rate of `frr`: the lowest FAR of the ROC
 * with at most that FRR, interpolated between the points on either side of it.
 */
export function farAtFrr(genuine: readonly number[], impostor: readonly number[], frr: number): number {
  const p = roc(genuine, impostor);
  let last = 0;
  while (last + 1 < p.length && p[last + 1]![0] <= frr) last += 1;
  const [x1, y1] = p[last]!;
  const next = p[last + 1];
  if (x1 === frr || !next) return y1;
  const [x2, y2] = next;
  return y1 + ((frr - x1) / (x2 - x1)) * (y2 - y1);
}

const mean = (a: readonly number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const sd = (a: readonly number[]) => {
  const m = mean(a);
  return a.length < 2 ? 0 : Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1));
};

/** One subject's test: its training template, its own test samples, the others' samples. */
function* cases(subjects: readonly Subject[], split: Split, template?: number) {
  for (const s of subjects) {
    let train = s.reps.slice(...split.train);
    // What live operation keeps: the newest `template` of the training repetitions.
    if (template !== undefined) train = train.slice(-template);
    const genuine = s.reps.slice(...split.genuine);
    const impostor = subjects.filter((o) => o !== s).flatMap((o) => o.reps.slice(...split.impostor));
    yield { subject: s.id, train, genuine, impostor };
  }
}

export interface DetectorResult {
  detector: string;
  /** Training repetitions per subject: all of the split's, or the newest `template`. */
  template: number | 'all';
  subjects: number;
  eer: { mean: number; sd: number };
  /** Zero-effort false-accept rate at 5% false rejects. */
  farAt5: { mean: number; sd: number };
  perSubject: { subject: string; eer: number; farAt5: number }[];
}

/** The benchmark's procedure for one detector (per-subject thresholds, as the paper). */
export function evaluateDetector(subjects: readonly Subject[], detector: Detector, o: { split?: Split; template?: number; progress?: (done: number) => void } = {}): DetectorResult {
  const perSubject: DetectorResult['perSubject'] = [];
  for (const c of cases(subjects, o.split ?? SPLITS.protocol, o.template)) {
    const f = detector.fit(c.train);
    const g = c.genuine.map((x) => f.anomaly(x));
    const i = c.impostor.map((x) => f.anomaly(x));
    perSubject.push({ subject: c.subject, eer: equalErrorRate(g, i), farAt5: farAtFrr(g, i, 0.05) });
    o.progress?.(perSubject.length);
  }
  const eers = perSubject.map((r) => r.eer);
  const fars = perSubject.map((r) => r.farAt5);
  return {
    detector: detector.name, template: o.template ?? 'all', subjects: perSubject.length,
    eer: { mean: mean(eers), sd: sd(eers) }, farAt5: { mean: mean(fars), sd: sd(fars) }, perSubject,
  };
}

/** The live score (templateScore) of the genuine and impostor test samples, against templates of `template` samples. */
export function liveScores(subjects: readonly Subject[], detector: Detector, o: { split?: Split; template: number; calibration?: Calibration }) {
  const cal = o.calibration ?? detector.calibration;
  const genuine: number[] = [];
  const impostor: number[] = [];
  for (const c of cases(subjects, o.split ?? SPLITS.protocol, o.template)) {
    const ratio = anomalyRatio(detector.fit(c.train));
    for (const x of c.genuine) genuine.push(calibrated(ratio(x), c.train.length, cal));
    for (const x of c.impostor) impostor.push(calibrated(ratio(x), c.train.length, cal));
  }
  return { genuine, impostor };
}

export interface FireRates {
  detector: string;
  template: number;
  above: number;
  /** Share of the user's own test samples scored above `above` (the factor would fire). */
  genuineFires: number;
  /** Share of other typists' samples scored above `above`. */
  impostorFires: number;
  genuineMedian: number;
  impostorMedian: number;
}

/**
 * How the keystroke factor would behave live: one threshold for everyone (risk.yml
 * keystroke_anomaly.above), on templateScore against a template of the newest `template`
 * training repetitions.
 */
export function fireRates(subjects: readonly Subject[], detector: Detector, o: { split?: Split; template: number; above: number }): FireRates {
  const { genuine, impostor } = liveScores(subjects, detector, o);
  const share = (a: number[]) => a.filter((s) => s > o.above).length / a.length;
  return {
    detector: detector.name, template: o.template, above: o.above,
    genuineFires: share(genuine), impostorFires: share(impostor), genuineMedian: median(genuine), impostorMedian: median(impostor),
  };
}

/**
 * Fits a detector's Calibration: logistic regression of "from another typist" on ln(ratio)
 * and ln(template size / 30), both classes weighted equally within each template size, over
 * templates of each size in `templates` (the newest of the split's training repetitions).
 * Newton's method on three parameters.
 */
export function fitCalibration(subjects: readonly Subject[], detector: Detector, o: { split?: Split; templates: readonly number[] }): Calibration {
  const rows: { x: [number, number, number]; y: number; w: number }[] = [];
  for (const template of o.templates) {
    const g: number[] = [];
    const i: number[] = [];
    for (const c of cases(subjects, o.split ?? SPLITS.cv, template)) {
      const ratio = anomalyRatio(detector.fit(c.train));
      for (const x of c.genuine) g.push(ratio(x));
      for (const x of c.impostor) i.push(ratio(x));
    }
    for (const [list, y] of [[g, 0], [i, 1]] as const) {
      for (const r of list) {
        if (!(r > 0 && Number.isFinite(r))) continue;
        rows.push({ x: [Math.log(r), 1, Math.log(template / CALIBRATION_SIZE)], y, w: 1 / list.length });
      }
    }
  }
  const beta = [1, 0, 0];
  for (let it = 0; it < 100; it += 1) {
    const grad = [0, 0, 0];
    const hess = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
    for (const { x, y, w } of rows) {
      const p = 1 / (1 + Math.exp(-(beta[0]! * x[0] + beta[1]! * x[1] + beta[2]! * x[2])));
      for (let a = 0; a < 3; a += 1) {
        grad[a]! += w * (p - y) * x[a]!;
        for (let b = 0; b < 3; b += 1) hess[a]![b]! += w * p * (1 - p) * x[a]! * x[b]!;
      }
    }
    const step = solve3(hess, grad);
    if (!step) break;
    for (let a = 0; a < 3; a += 1) beta[a]! -= step[a]!;
    if (Math.abs(step[0]!) + Math.abs(step[1]!) + Math.abs(step[2]!) < 1e-10) break;
  }
  return { slope: beta[0]!, offset: beta[1]!, size: beta[2]! };
}

/** Solves the 3×3 system m·x = v (Cramer's rule); undefined when singular. */
function solve3(m: number[][], v: number[]): number[] | undefined {
  const det3 = (a: number[][]) => a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!)
    - a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!)
    + a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!);
  const d = det3(m);
  if (!(Math.abs(d) > 1e-300)) return undefined;
  return [0, 1, 2].map((c) => det3(m.map((row, r) => row.map((x, k) => (k === c ? v[r]! : x)))) / d);
}

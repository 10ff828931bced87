/**
 * Anomaly detectors for behavioural templates: a user's recent samples (vectors of equal
 * length) against one new sample, and the calibrated score the engine uses. Pure functions
 * of plain numbers; nothing is cached between calls (a template belongs to one user).
 *
 * Detectors, measured with `idp keystroke eval` on the CMU benchmark (Killourhy & Maxion,
 * "Comparing Anomaly-Detection Algorithms for Keystroke Dynamics", DSN 2009; README,
 * "Keystroke dynamics"):
 * - `scaled_manhattan`: the paper's best detector, exactly as published: Σ |x_i − mean_i| /
 *   (mean absolute deviation_i). Mean EER 0.096 on the protocol, as the paper reports.
 * - `nearest_neighbour` (the default): the mean scaled-Manhattan distance to the k = 5
 *   nearest template samples, with three changes that each help on keystroke timings:
 *   hold and keydown→keydown times on a log scale (timing noise grows with the interval);
 *   robust scaling (median and median absolute deviation per feature, so a few wild
 *   training samples do not widen a feature); and each feature's scaled deviation clipped
 *   at 3, so one long pause between two keys cannot outweigh the rhythm of all the others.
 *   Mean EER 0.050 on the protocol.
 *   Hyper-parameters were chosen by cross-validation inside the training repetitions only:
 *   train on repetitions 1-150 of each subject, validate on its repetitions 151-200 against
 *   repetitions 51-55 of the other subjects (the split `idp keystroke eval --split cv`
 *   evaluates; the grid itself was a throw-away script over it). Sessions 5-8 and
 *   the impostor test repetitions (1-5) were never used to choose anything. Searched: log
 *   scale or not; MAD or mean absolute deviation; clip ∈ {2, 3, 4, 5, 6, 8, none}; k ∈ {1, 3,
 *   5} or the distance to the median, and half-and-half mixes of the two. Best: log, MAD,
 *   clip 3, k 5, CV EER 0.053 (without the log scale 0.063; mean absolute deviation 0.060;
 *   distance to the median instead of neighbours 0.075; no clipping 0.100; scaled Manhattan
 *   0.111).
 *
 * Vectors: keystroke vectors are keystrokeVector's (seconds, the CMU column order H, DD, UD
 * per key); pointer vectors are pointerVector's. The keystroke detectors know that layout
 * (UD, which is negative when keys overlap, stays linear); POINTER_DETECTOR is the same
 * nearest-neighbour detector without the log scale (pointerVector already log-scales the
 * quantities that span orders of magnitude).
 */
import type { Keystroke, PointerSummary } from './behaviour.ts';

export type Vector = readonly number[];

export const DETECTOR_NAMES = ['scaled_manhattan', 'nearest_neighbour'] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

/** A detector trained on one template. */
export interface Fitted {
  /** Raw anomaly of `x`: 0 = typical, larger = less like the template (detector-specific units). */
  anomaly(x: Vector): number;
  /**
   * Each template sample's anomaly against the rest of the template (left out of the centre
   * or of its own neighbours; the scaling of the whole template, which keeps this one pass):
   * how far the user's own samples lie from each other, templateScore's yardstick.
   */
  ownAnomalies(): number[];
}

/**
 * templateScore's mapping of r = anomaly / median own anomaly, for a template of n samples,
 * to [0, 1]: 1 / (1 + exp(−(slope · ln r + offset + size · ln(n / 30)))). The size term is
 * there because a new sample's ratio grows with the template (its own samples, typed close
 * together, crowd closer as there are more of them; a new login comes days later).
 * Fitted by logistic regression (both classes weighted equally) on the cross-validation
 * split of the CMU data, templates of 10, 20 and 30 samples (`idp keystroke eval --split cv
 * --calibrate` prints the fit): so the score is about the chance that a sample came from
 * someone else, 0.5 where the user's and others' samples are equally likely.
 */
export interface Calibration {
  readonly slope: number;
  readonly offset: number;
  readonly size: number;
}

/** The template size the calibration's size term is relative to (risk.yml behaviour keep). */
export const CALIBRATION_SIZE = 30;

export interface Detector {
  readonly name: DetectorName;
  fit(train: readonly Vector[]): Fitted;
  readonly calibration: Calibration;
}

/**
 * Median of the first `n` values of `a`, which it reorders (Hoare's quickselect: a fit takes
 * two medians per feature, and a typed array's sort() alone costs about 1 µs a call).
 */
function medianInPlace(a: Float64Array, n = a.length): number {
  if (n === 0) return NaN;
  const h = n >> 1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i += 1;
      while (a[j]! > pivot) j -= 1;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i += 1;
        j -= 1;
      }
    }
    if (h <= j) hi = j;
    else if (h >= i) lo = i;
    else break;
  }
  if (n % 2) return a[h]!;
  // Even: the largest value below position h is the lower middle one.
  let below = -Infinity;
  for (let i = 0; i < h; i += 1) if (a[i]! > below) below = a[i]!;
  return (below + a[h]!) / 2;
}

/** Median of a list of numbers (the list is not changed). */
export function median(values: readonly number[]): number {
  return medianInPlace(Float64Array.from(values));
}

/** Killourhy & Maxion (2009): Σ |x_i − mean_i| / mean absolute deviation_i. */
const scaledManhattan: Detector = {
  name: 'scaled_manhattan',
  // templateScore's mapping for this detector (see Calibration).
  calibration: { slope: 4.22, offset: -3.17, size: 0.47 },
  fit(train) {
    const n = train.length;
    const d = train[0]?.length ?? 0;
    const mean = new Float64Array(d);
    for (const v of train) for (let i = 0; i < d; i += 1) mean[i]! += v[i]! / n;
    const mad = new Float64Array(d);
    for (const v of train) for (let i = 0; i < d; i += 1) mad[i]! += Math.abs(v[i]! - mean[i]!) / n;
    for (let i = 0; i < d; i += 1) mad[i] = Math.max(mad[i]!, 1e-6);
    const distance = (x: Vector, centre: (i: number) => number) => {
      let s = 0;
      for (let i = 0; i < d; i += 1) s += Math.abs(x[i]! - centre(i)) / mad[i]!;
      return s;
    };
    return {
      anomaly: (x) => distance(x, (i) => mean[i]!),
      // The mean without sample j: (n·mean − v_j) / (n − 1).
      ownAnomalies: () => (n < 2 ? [] : train.map((v) => distance(v, (i) => (n * mean[i]! - v[i]!) / (n - 1)))),
    };
  },
};

/** Options of the nearest-neighbour detector (the defaults are the cross-validated ones). */
interface NearestNeighbourOptions {
  /** Neighbours averaged (fewer when the template is smaller). */
  k: number;
  /** Largest scaled deviation one feature may contribute. */
  clip: number;
  /** Whether feature `i` is compared on a log scale (it must be a positive duration). */
  log: (i: number) => boolean;
  /** Smallest scale of a feature (its units after the log): a template of identical values. */
  minScale: { log: number; linear: number };
}

/** Below this a duration is taken as this (1 ms: the capture's resolution), so log stays finite. */
const MIN_SECONDS = 0.001;

/**
 * Clipped scaled-Manhattan distance of the rows of `a` and `b` at offsets `ao` and `bo` (d
 * features). Math.min, not a comparison: it compiles without a branch, and whether a feature
 * is clipped is a coin toss the processor cannot predict (twice as fast measured).
 */
function distance(a: Float64Array, ao: number, b: Float64Array, bo: number, d: number, clip: number): number {
  let s = 0;
  for (let i = 0; i < d; i += 1) s += Math.min(Math.abs(a[ao + i]! - b[bo + i]!), clip);
  return s;
}

/** Distances of every pair of the n rows of `z` into `pair` (n × n, symmetric); `distance` inlined by hand. */
function pairwiseDistances(z: Float64Array, n: number, d: number, clip: number, pair: Float64Array): void {
  for (let a = 0; a < n; a += 1) {
    const ao = a * d;
    for (let b = a + 1; b < n; b += 1) {
      const bo = b * d;
      let s = 0;
      for (let i = 0; i < d; i += 1) s += Math.min(Math.abs(z[ao + i]! - z[bo + i]!), clip);
      pair[a * n + b] = s;
      pair[b * n + a] = s;
    }
  }
}

/** Mean of the k smallest of the n values of `ds` from `offset`, skipping index `skip` (insertion into `best`). */
function meanOfSmallest(ds: Float64Array, offset: number, n: number, skip: number, best: Float64Array, k: number): number {
  best.fill(Infinity);
  for (let j = 0; j < n; j += 1) {
    const t = ds[offset + j]!;
    if (j === skip || t >= best[k - 1]!) continue;
    let p = k - 1;
    while (p > 0 && best[p - 1]! > t) {
      best[p] = best[p - 1]!;
      p -= 1;
    }
    best[p] = t;
  }
  let s = 0;
  for (let p = 0; p < k; p += 1) s += best[p]!;
  return s / k;
}

/** Consecutive views of `buf` of the given lengths. */
function carve(buf: Float64Array, lengths: readonly number[]): Float64Array[] {
  let at = 0;
  return lengths.map((l) => buf.subarray(at, (at += l)));
}

/** A nearest-neighbour fit: the template in scaled units and its scratch space. */
class NearestNeighbourFit implements Fitted {
  readonly #n: number;
  readonly #d: number;
  readonly #k: number;
  readonly #clip: number;
  readonly #logged: boolean[];
  /** The template, transformed and then in scaled units, row-major (n × d). */
  readonly #z: Float64Array;
  readonly #scale: Float64Array;
  /** The k smallest distances so far (meanOfSmallest's scratch). */
  readonly #best: Float64Array;
  /** Scratch of anomaly(): the query in scaled units (d) and its distances to the template (n). */
  readonly #query: Float64Array;
  readonly #dists: Float64Array;
  /** Scratch of ownAnomalies(): pairwise distances (n × n). */
  readonly #pair: Float64Array;

  constructor(train: readonly Vector[], o: NearestNeighbourOptions) {
    const n = train.length;
    const d = train[0]?.length ?? 0;
    const k = Math.max(1, Math.min(o.k, n - 1));
    this.#n = n;
    this.#d = d;
    this.#k = k;
    this.#clip = o.clip;
    this.#logged = Array.from({ length: d }, (_, i) => o.log(i));
    // One allocation for all the fit's arrays (views of it, scratch included): a typed array
    // of more than 64 bytes lives outside the JS heap and is comparatively costly to allocate
    // and to collect, once per login.
    const views = carve(new Float64Array(n * d + d + n + k + d + n + n * n), [n * d, d, n, k, d, n, n * n]);
    const [z, scale, col] = views as [Float64Array, Float64Array, Float64Array];
    this.#z = z;
    this.#scale = scale;
    this.#best = views[3]!;
    this.#query = views[4]!;
    this.#dists = views[5]!;
    this.#pair = views[6]!;
    for (let j = 0; j < n; j += 1) for (let i = 0; i < d; i += 1) z[j * d + i] = this.#tf(train[j]!, i);
    // Robust scale per feature: median absolute deviation from the median.
    for (let i = 0; i < d; i += 1) {
      for (let j = 0; j < n; j += 1) col[j] = z[j * d + i]!;
      const m = medianInPlace(col);
      for (let j = 0; j < n; j += 1) col[j] = Math.abs(z[j * d + i]! - m);
      scale[i] = Math.max(medianInPlace(col), this.#logged[i] ? o.minScale.log : o.minScale.linear);
    }
    for (let j = 0; j < n; j += 1) for (let i = 0; i < d; i += 1) z[j * d + i]! /= scale[i]!;
  }

  #tf(v: Vector, i: number): number {
    return this.#logged[i] ? Math.log(Math.max(v[i]!, MIN_SECONDS)) : v[i]!;
  }

  anomaly(x: Vector): number {
    const n = this.#n;
    const d = this.#d;
    const q = this.#query;
    for (let i = 0; i < d; i += 1) q[i] = this.#tf(x, i) / this.#scale[i]!;
    const ds = this.#dists;
    for (let j = 0; j < n; j += 1) ds[j] = distance(q, 0, this.#z, j * d, d, this.#clip);
    return meanOfSmallest(ds, 0, n, -1, this.#best, this.#k);
  }

  ownAnomalies(): number[] {
    const n = this.#n;
    if (n < 2) return [];
    // Pairwise distances once (symmetric), then each sample's nearest others.
    const pair = this.#pair;
    pairwiseDistances(this.#z, n, this.#d, this.#clip, pair);
    const out = new Array<number>(n);
    for (let a = 0; a < n; a += 1) out[a] = meanOfSmallest(pair, a * n, n, a, this.#best, this.#k);
    return out;
  }
}

function nearestNeighbour(o: NearestNeighbourOptions, calibration: Calibration): Detector {
  return { name: 'nearest_neighbour', calibration, fit: (train) => new NearestNeighbourFit(train, o) };
}

/** keystrokeVector's layout: H, DD, UD per key, then the last key's H. UD (i % 3 = 2) can be negative. */
const isKeystrokeDuration = (i: number) => i % 3 !== 2;

const NEAREST_NEIGHBOUR_OPTIONS = { k: 5, clip: 3 } as const;

export const DETECTORS: Readonly<Record<DetectorName, Detector>> = {
  scaled_manhattan: scaledManhattan,
  nearest_neighbour: nearestNeighbour(
    // Scales: 1% on the log scale, 1 ms on the linear (UD, seconds).
    { ...NEAREST_NEIGHBOUR_OPTIONS, log: isKeystrokeDuration, minScale: { log: 0.01, linear: MIN_SECONDS } },
    { slope: 18.30, offset: -6.11, size: -1.03 },
  ),
};

/**
 * The detector of pointer templates (pointerVector): nearest neighbour, no log scale. There
 * is no public pointer benchmark to calibrate on here, so it borrows the keystroke
 * calibration (the ratio to the template's own spread is unit-free); the pointer factor's
 * higher threshold (risk.yml pointer_anomaly.above) allows for that.
 */
export const POINTER_DETECTOR: Detector = nearestNeighbour(
  { ...NEAREST_NEIGHBOUR_OPTIONS, log: () => false, minScale: { log: 0.01, linear: 0.01 } },
  DETECTORS.nearest_neighbour.calibration,
);

/**
 * The raw anomaly of a sample over the template's own median anomaly (1 = as typical as the
 * template's own samples). Returns a function, so one template's yardstick is worked out once.
 */
export function anomalyRatio(fitted: Fitted): (x: Vector) => number {
  const ref = median(fitted.ownAnomalies());
  return (x) => {
    const a = fitted.anomaly(x);
    if (!(ref > 0)) return a > 0 ? Infinity : 1;
    return a / ref;
  };
}

/** The calibrated score of a ratio against a template of `n` samples (see Calibration). */
export function calibrated(ratio: number, n: number, c: Calibration): number {
  if (ratio <= 0) return 0;
  if (ratio === Infinity) return 1;
  return 1 / (1 + Math.exp(-(c.slope * Math.log(ratio) + c.offset + c.size * Math.log(n / CALIBRATION_SIZE))));
}

/**
 * A calibrated anomaly in [0, 1] of `x` against a template: how far `x` lies from the
 * template, relative to how far the template's samples lie from each other (the median of
 * their leave-one-out anomalies), mapped by the detector's calibration. Smooth in `x` (no
 * steps of 1/n as a percentile of n samples would have). On the CMU test repetitions
 * (README, "Keystroke dynamics"), nearest_neighbour with a template of 30: the user's own
 * later samples score 0.03 (median; 2.3% above 0.9), other typists' 0.99 (83% above 0.9).
 * Fewer than 2 samples give 0: nothing to compare with (confidence is 0 then anyway).
 */
export function templateScore(detector: Detector, samples: readonly Vector[], x: Vector): number {
  if (samples.length < 2) return 0;
  return calibrated(anomalyRatio(detector.fit(samples))(x), samples.length, detector.calibration);
}

/**
 * Whether keystroke vector `x` is one of the template's samples to the last digit: a person
 * never types four keys or more to the same millisecond twice (hold, keydown→keydown and
 * keyup→keydown of each), so an exact copy is a recording of an earlier login, replayed.
 * Not for pointer summaries: a few mouse moves, rounded, can repeat by chance.
 */
export function isReplayed(samples: readonly Vector[], x: Vector): boolean {
  return samples.some((v) => v.length === x.length && v.every((y, i) => y === x[i]));
}

/** A keystroke sample as a vector, in seconds, in the CMU column order: H1, DD1, UD1, H2, … Hn. */
export function keystrokeVector(k: Keystroke): number[] {
  const out: number[] = [];
  for (let i = 0; i < k.hold.length; i += 1) {
    out.push(k.hold[i]! / 1000);
    if (i < k.dd.length) out.push(k.dd[i]! / 1000, k.ud[i]! / 1000);
  }
  return out;
}

/** A pointer summary as a vector (log scale for the quantities that span orders of magnitude). */
export function pointerVector(p: PointerSummary): number[] {
  return [
    Math.log1p(p.speedMean), Math.log1p(p.speedSd), Math.log1p(p.accelMean), p.curvatureMean, p.straightness,
    Math.log1p(p.pauses), Math.log1p(p.clickDwellMean), Math.log1p(p.duration / 1000),
  ];
}

/**
 * Anomaly detectors for behavioural templates: a user's recent samples (vectors of equal
 * length) against one new sample. Pure functions of plain numbers.
 *
 * PLACEHOLDER (contract only): the interface the engine uses. The detectors and their
 * evaluation on the CMU benchmark are being written; this version has the scaled-Manhattan
 * baseline only.
 */
import type { Keystroke, PointerSummary } from './behaviour.ts';

export type Vector = readonly number[];

export const DETECTOR_NAMES = ['scaled_manhattan', 'nearest_neighbour'] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

/** A detector trained on one template. */
export interface Fitted {
  /** Raw anomaly of `x`: 0 = typical, larger = less like the template (detector-specific units). */
  anomaly(x: Vector): number;
}

export interface Detector {
  readonly name: DetectorName;
  fit(train: readonly Vector[]): Fitted;
}

/** Killourhy & Maxion (2009): Σ |x_i − mean_i| / mean absolute deviation_i. */
const scaledManhattan: Detector = {
  name: 'scaled_manhattan',
  fit(train) {
    const d = train[0]?.length ?? 0;
    const mean = new Array<number>(d).fill(0);
    for (const v of train) for (let i = 0; i < d; i += 1) mean[i]! += v[i]! / train.length;
    const mad = new Array<number>(d).fill(0);
    for (const v of train) for (let i = 0; i < d; i += 1) mad[i]! += Math.abs(v[i]! - mean[i]!) / train.length;
    return {
      anomaly(x) {
        let s = 0;
        for (let i = 0; i < d; i += 1) s += Math.abs(x[i]! - mean[i]!) / Math.max(mad[i]!, 1e-6);
        return s;
      },
    };
  },
};

export const DETECTORS: Readonly<Record<DetectorName, Detector>> = { scaled_manhattan: scaledManhattan, nearest_neighbour: scaledManhattan };

/**
 * A calibrated anomaly in [0, 1] of `x` against a template: how far `x` lies beyond the
 * template's own spread (leave-one-out anomalies of its samples). About 0.5 or less is
 * typical of the user; near 1 is unlike any of their samples.
 */
export function templateScore(detector: Detector, samples: readonly Vector[], x: Vector): number {
  if (samples.length < 2) return 0;
  const own: number[] = [];
  for (let i = 0; i < samples.length; i += 1) {
    own.push(detector.fit(samples.filter((_, j) => j !== i)).anomaly(samples[i]!));
  }
  const a = detector.fit(samples).anomaly(x);
  const below = own.filter((o) => o < a).length;
  return below / own.length;
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

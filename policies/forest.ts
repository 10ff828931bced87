/**
 * The random forest: trained with `ml-random-forest`, then compiled into flat arrays for
 * inference. The library's own prediction walks Matrix views and allocates per tree; the
 * compiled form walks plain arrays with no allocation, which keeps an assessment well under
 * a millisecond. A test checks that the compiled trees vote as the library's trees do.
 *
 * The model file is JSON; its sha256 is pinned in the policy (risk.yml `model.sha256`) and a
 * file that does not match is refused.
 */
import crypto from 'node:crypto';
import { RandomForestClassifier } from 'ml-random-forest';

const MODEL_FORMAT = 'adaptive-idp/forest@1';

/** One tree, node-indexed: feature < 0 marks a leaf. */
export interface FlatTree {
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  /** Leaf: P(attack) among the training rows that reached it. */
  p: number[];
  /** Leaf: the class the library's tree predicts (first maximum of the distribution). */
  vote: number[];
}

export interface ModelFile {
  format: typeof MODEL_FORMAT;
  features: string[];
  trees: FlatTree[];
  /** How it was made: enough to reproduce it. */
  provenance: Record<string, unknown>;
}

export interface Forest {
  readonly features: readonly string[];
  readonly version: string;
  readonly trees: readonly FlatTree[];
  /** Mean leaf probability of attack over the trees (soft vote), in [0, 1]. */
  probability(x: ArrayLike<number>): number;
  /**
   * Fraction of trees voting attack (hard vote). ml-random-forest's predictProbability means
   * this but drops the first tree (its `reduce` has no initial value); this counts them all.
   */
  votes(x: ArrayLike<number>): number;
}

export interface TrainOptions {
  trees: number;
  maxDepth: number;
  /** Fraction of the features each tree sees. */
  maxFeatures: number;
  minSamples: number;
  seed: number;
}

export const DEFAULT_TRAIN: TrainOptions = { trees: 50, maxDepth: 10, maxFeatures: 0.6, minSamples: 5, seed: 42 };

interface MlNode {
  splitColumn?: number;
  splitValue?: number;
  left?: MlNode;
  right?: MlNode;
  distribution?: { to2DArray(): number[][] };
}

function flatten(root: MlNode, columns: number[]): FlatTree {
  const t: FlatTree = { feature: [], threshold: [], left: [], right: [], p: [], vote: [] };
  const visit = (n: MlNode): number => {
    const id = t.feature.length;
    t.feature.push(-1); t.threshold.push(0); t.left.push(-1); t.right.push(-1); t.p.push(0); t.vote.push(0);
    if (n.left && n.right && n.splitColumn !== undefined && n.splitValue !== undefined) {
      // The tree saw only its own subset of columns; map back to the full feature vector.
      t.feature[id] = columns[n.splitColumn]!;
      t.threshold[id] = n.splitValue;
      t.left[id] = visit(n.left);
      t.right[id] = visit(n.right);
    } else {
      const dist = n.distribution?.to2DArray()[0] ?? [1];
      t.p[id] = dist[1] ?? 0;
      let best = 0;
      for (let k = 1; k < dist.length; k += 1) if (dist[k]! > dist[best]!) best = k;
      t.vote[id] = best;
    }
    return id;
  };
  visit(root);
  return t;
}

function leaf(tree: FlatTree, x: ArrayLike<number>): number {
  let i = 0;
  // ml-cart sends a row left when row[column] < splitValue.
  while (tree.feature[i]! >= 0) i = x[tree.feature[i]!]! < tree.threshold[i]! ? tree.left[i]! : tree.right[i]!;
  return i;
}

export function compileForest(file: ModelFile, version: string): Forest {
  const trees = file.trees;
  return {
    features: file.features,
    version,
    trees,
    probability(x) {
      let sum = 0;
      for (const t of trees) sum += t.p[leaf(t, x)]!;
      return sum / trees.length;
    },
    votes(x) {
      // Same rounding as ml-random-forest's predictProbability.
      const round = 1e6;
      let acc = 0;
      for (const t of trees) if (t.vote[leaf(t, x)] === 1) acc += round / trees.length;
      return Math.round(acc) / round;
    },
  };
}

/**
 * Calls `onTree(done, total)` as ml-random-forest trains each tree. The library has no hook
 * and trains all trees in one synchronous call (minutes on a large file), so the instance's
 * `estimators` array is observed instead: the library assigns `estimators[i]` just before it
 * trains tree i, so that assignment means i trees are done. Observing changes nothing the
 * library computes (same seeds, same trees).
 */
function observeTrees(rf: object, total: number, onTree: (done: number, total: number) => void): void {
  let observed: unknown[] = [];
  Object.defineProperty(rf, 'estimators', {
    configurable: true, enumerable: true,
    get: () => observed,
    set(list: unknown[]) {
      observed = new Proxy(list, {
        set(target, key, value) {
          const i = typeof key === 'string' ? Number(key) : NaN;
          if (Number.isInteger(i)) onTree(i, total);
          return Reflect.set(target, key, value);
        },
      });
    },
  });
}

/** Trains a forest on rows X with labels y (1 = attack) and returns it with the library model. */
export function trainForest(
  X: number[][], y: number[], features: readonly string[], opts: TrainOptions, provenance: Record<string, unknown>,
  onTree?: (done: number, total: number) => void,
) {
  if (!y.includes(0) || !y.includes(1)) throw new Error('training data needs both legitimate and attack examples');
  const rf = new RandomForestClassifier({
    nEstimators: opts.trees,
    maxFeatures: opts.maxFeatures,
    seed: opts.seed,
    replacement: false,
    useSampleBagging: true,
    noOOB: true,
    treeOptions: { maxDepth: opts.maxDepth, minNumSamples: opts.minSamples },
  });
  if (onTree) observeTrees(rf, opts.trees, onTree);
  rf.train(X, y);
  onTree?.(opts.trees, opts.trees);
  const internals = rf as unknown as { estimators: { root: MlNode }[]; indexes: number[][] };
  const file: ModelFile = {
    format: MODEL_FORMAT,
    features: [...features],
    trees: internals.estimators.map((e, i) => flatten(e.root, internals.indexes[i]!)),
    provenance: { ...provenance, options: opts },
  };
  return { file, library: rf };
}

export function serialiseModel(file: ModelFile): string {
  return `${JSON.stringify(file)}\n`;
}

export function sha256Hex(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/**
 * Parses and checks a model file's bytes: the pinned sha256, the format, and the feature
 * list the engine computes. Throws with what is wrong.
 */
export function loadModel(bytes: Buffer, expectedSha256: string, expectedFeatures: readonly string[]): Forest {
  const actual = sha256Hex(bytes);
  if (actual !== expectedSha256) throw new Error(`model file sha256 is ${actual}, the policy pins ${expectedSha256}: refusing a tampered or mismatched model`);
  let file: ModelFile;
  try {
    file = JSON.parse(bytes.toString('utf8')) as ModelFile;
  } catch {
    throw new Error('model file is not valid JSON');
  }
  if (file.format !== MODEL_FORMAT) throw new Error(`model format is ${String(file.format)}, expected ${MODEL_FORMAT}`);
  if (JSON.stringify(file.features) !== JSON.stringify(expectedFeatures)) {
    throw new Error('model was trained on other features than this engine computes: retrain it (idp model train)');
  }
  if (!Array.isArray(file.trees) || file.trees.length === 0) throw new Error('model has no trees');
  for (const t of file.trees) {
    const n = t.feature.length;
    const ok = [t.threshold, t.left, t.right, t.p, t.vote].every((a) => Array.isArray(a) && a.length === n)
      && t.feature.every((f, i) => f < 0 || (f < expectedFeatures.length && t.left[i]! > i && t.right[i]! > i && t.right[i]! < n));
    if (!ok) throw new Error('model has a malformed tree');
  }
  return compileForest(file, actual.slice(0, 12));
}

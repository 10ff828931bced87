/** Detection metrics over scores (higher = more likely an attack). */

/** ROC AUC by the rank-sum (Mann–Whitney U) statistic, ties counted half. */
export function rocAuc(pos: number[], neg: number[]): number {
  if (pos.length === 0 || neg.length === 0) return NaN;
  const all = [...pos.map((s) => [s, 1] as const), ...neg.map((s) => [s, 0] as const)].sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j]![0] === all[i]![0]) j += 1;
    const avgRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k += 1) if (all[k]![1] === 1) rankSum += avgRank;
    i = j;
  }
  return (rankSum - (pos.length * (pos.length + 1)) / 2) / (pos.length * neg.length);
}

/**
 * True-positive rate at a false-positive rate of at most `fpr`: the threshold is the
 * smallest score that flags no more than that share of the negatives.
 */
export function tprAtFpr(pos: number[], neg: number[], fpr: number): number {
  if (pos.length === 0 || neg.length === 0) return NaN;
  const sorted = [...neg].sort((a, b) => b - a);
  const allowed = Math.floor(fpr * sorted.length);
  // Everything strictly above the (allowed+1)-th highest negative is flagged.
  const threshold = sorted[Math.min(allowed, sorted.length - 1)]!;
  return pos.filter((s) => s > threshold).length / pos.length;
}

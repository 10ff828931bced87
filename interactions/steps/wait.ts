/** Waits in words, for the pages that say how long sign-in is paused. */

/** "in 5 seconds", "in 2 minutes": how long a paused sign-in waits, for people. */
export function waitText(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

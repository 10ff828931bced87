/** Keystroke files in the CMU benchmark's format (DSL-StrongPasswordData.csv), made up for tests. */
import { Rng } from '../../policies/synth.ts';

/** A CMU-format file: `subjects` typists, 2 sessions of 50 repetitions of 11 keys, in seconds (CRLF). */
export function cmuCsv(subjects: number, seed = 11): string {
  const keys = ['period', 't', 'i', 'e', 'five', 'Shift.r', 'o', 'a', 'n', 'l', 'Return'];
  const header = ['subject', 'sessionIndex', 'rep', ...keys.flatMap((k, i) => (i + 1 < keys.length ? [`H.${k}`, `DD.${k}.${keys[i + 1]}`, `UD.${k}.${keys[i + 1]}`] : [`H.${k}`]))];
  const rng = new Rng(seed);
  const lines = [header.join(',')];
  for (let s = 0; s < subjects; s += 1) {
    const hold = keys.map(() => rng.between(0.06, 0.14));
    const ud = keys.slice(1).map(() => rng.between(0.02, 0.4));
    for (let session = 1; session <= 2; session += 1) {
      for (let rep = 1; rep <= 50; rep += 1) {
        const cells: string[] = [`s${String(s + 2).padStart(3, '0')}`, String(session), String(rep)];
        keys.forEach((_, i) => {
          const h = Number((hold[i]! * (0.8 + 0.4 * rng.next())).toFixed(4));
          cells.push(h.toFixed(4));
          if (i < ud.length) {
            const u = Number((ud[i]! * (0.7 + 0.6 * rng.next())).toFixed(4));
            cells.push((h + u).toFixed(4), u.toFixed(4));
          }
        });
        lines.push(cells.join(','));
      }
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}

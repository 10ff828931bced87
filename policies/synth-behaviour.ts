/**
 * How the synthetic world's people type and move the mouse (policies/synth.ts), as the
 * sign-in page's script would record it (policies/behaviour.ts): the behaviour that still
 * tells an attacker holding the password from the account's owner when network, place,
 * browser and hour all match.
 *
 * Keystrokes come from one of two sources:
 * - parametric (default): each person has a typing profile for their password (8-16
 *   positions): a mean hold per position (60-150 ms) and a mean keydown→keydown per pair
 *   (100-400 ms, some pairs slower: chunk boundaries, shifted characters). Each login draws
 *   log-normal noise around it, a whole-login tempo, now and then a hesitation (0.3-1.5 s),
 *   and the means drift slowly over the weeks (a slow wave per timing and a practice trend).
 * - the CMU benchmark (`parseCmuKeystrokes`, Killourhy & Maxion 2009): each person is one of
 *   the 51 subjects and types that subject's repetitions of `.tie5Roanl` in their recorded
 *   order (so the rhythm drifts as the subject's did), starting somewhere in sessions 3-6;
 *   the 11 keys, Return included, are the 11 positions.
 * An attacker types the victim's password as someone else: a fresh profile a little slower
 * and more hesitant (the password is unfamiliar), or another CMU subject's session-1
 * repetition (the benchmark's impostors are that subject's first repetitions too).
 *
 * What the script would send instead of timings: password managers autofill (or paste from a
 * vault app); Android's on-screen keyboards compose characters (keyCode 229, no key timings);
 * corrections spoil a sample; a timing beyond the accepted ranges (a pause of seconds mid-
 * password) means no timings at all. Phones type with the thumbs: slower, the same person's
 * rhythm. Pointer summaries come from desktops only (touch gives none), drawn from a
 * per-person mouse profile with per-login noise; keyboard users often send none.
 *
 * All draws come from the caller's generator, which synth.ts keeps separate from the one
 * that decides who logs in when and where: the same seed gives the same logins whichever
 * keystroke source is used.
 */
import { keystrokeSchema, type Behaviour, type Keystroke, type PointerSummary } from './behaviour.ts';
import type { Rng } from './synth.ts';

const WEEK = 7 * 86_400_000;

/** Someone typing one password. */
export interface Typist {
  readonly positions: number;
  /**
   * One sample typed at `t` (epoch ms), or undefined when the script would send no timings
   * (a hold or a pause beyond the ranges policies/behaviour.ts accepts).
   */
  type(rng: Rng, t: number): Keystroke | undefined;
}

const lognormal = (rng: Rng, sigma: number) => Math.exp(sigma * rng.normal());
const logUniform = (rng: Rng, lo: number, hi: number) => Math.exp(rng.between(Math.log(lo), Math.log(hi)));
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round = (x: number, digits: number) => Number(x.toFixed(digits));

/**
 * Whole-millisecond timings as the script measures them (key-down and key-up times), so
 * keydown→keydown = hold + keyup→keydown exactly; undefined beyond the accepted ranges.
 */
export function keystrokeOf(hold: readonly number[], dd: readonly number[]): Keystroke | undefined {
  const h = hold.map((x) => Math.max(0, Math.round(x)));
  const d = dd.map((x) => Math.max(0, Math.round(x)));
  const k = { hold: h, dd: d, ud: d.map((x, i) => x - h[i]!) };
  return keystrokeSchema.safeParse(k).success ? k : undefined;
}

/** A slow wave per timing plus a practice trend: the multiplier of the means `w` weeks in. */
interface Drift { amp: number[]; period: number[]; phase: number[]; trend: number }

function makeDrift(rng: Rng, n: number): Drift {
  const amp: number[] = [];
  const period: number[] = [];
  const phase: number[] = [];
  for (let i = 0; i < n; i += 1) {
    amp.push(rng.between(0.03, 0.12));
    period.push(rng.between(3, 12));
    phase.push(rng.between(0, 2 * Math.PI));
  }
  // Mostly a little faster with practice (about -0.3% a week), some slower.
  return { amp, period, phase, trend: -0.003 + 0.01 * rng.normal() };
}

const drifted = (d: Drift, i: number, w: number) => Math.exp(d.amp[i]! * Math.sin((2 * Math.PI * w) / d.period[i]! + d.phase[i]!) + d.trend * w);

/**
 * How far one person's means depart from the password's shape (log-normal sigmas): the
 * between-person spread, set so that scaled Manhattan separates an attacker from the user
 * about as well as it does on the CMU benchmark (test/unit/synth-behaviour.test.ts).
 */
const PERSONAL = { hold: 0.15, dd: 0.22 };

/**
 * What a password makes anyone who types it do: relative hold per position and relative
 * keydown→keydown per pair (a shifted character, a digit after letters, a change of hand).
 * The user and an attacker typing the same password share it, as the CMU subjects share
 * `.tie5Roanl`'s.
 */
export interface PasswordShape { positions: number; hold: number[]; dd: number[] }

export function passwordShape(rng: Rng, positions: number): PasswordShape {
  return {
    positions,
    hold: Array.from({ length: positions }, () => lognormal(rng, 0.1)),
    dd: Array.from({ length: positions - 1 }, () => lognormal(rng, 0.25) * (rng.chance(0.15) ? rng.between(1.8, 3.5) : 1)),
  };
}

/**
 * A typing profile for a password of that shape, starting at `start` (epoch ms; drift is
 * measured from there). `unfamiliar`: someone who has just learnt the password (an
 * attacker): slower between keys and more hesitant.
 */
export function parametricTypist(rng: Rng, shape: PasswordShape, start: number, unfamiliar = false): Typist {
  const positions = shape.positions;
  const baseDd = logUniform(rng, 100, 400) * (unfamiliar ? rng.between(1, 1.3) : 1);
  // Fast typists hold keys briefly too (and overlap them: keyup→keydown below zero).
  const baseHold = rng.between(60, Math.min(150, Math.max(65, baseDd * 0.8)));
  const hold = shape.hold.map((m) => baseHold * m * lognormal(rng, PERSONAL.hold));
  const dd = shape.dd.map((m) => baseDd * m * lognormal(rng, PERSONAL.dd));
  const holdSigma = rng.between(0.08, 0.2);
  const ddSigma = rng.between(0.12, 0.3);
  const hesitation = rng.between(0.005, 0.03) * (unfamiliar ? 3 : 1);
  const drift = makeDrift(rng, 2 * positions - 1);
  return {
    positions,
    type(r, t) {
      const w = (t - start) / WEEK;
      // Some logins are hurried, some careful: one factor for the whole password.
      const tempo = lognormal(r, 0.08);
      const press = lognormal(r, 0.05);
      return keystrokeOf(
        hold.map((m, i) => m * drifted(drift, i, w) * press * lognormal(r, holdSigma)),
        dd.map((m, i) => m * drifted(drift, positions + i, w) * tempo * lognormal(r, ddSigma) + (r.chance(hesitation) ? r.between(300, 1500) : 0)),
      );
    },
  };
}

/** The same person on a phone's on-screen keyboard: thumbs, slower between keys, noisier. */
export function onPhone(rng: Rng, desk: Typist): Typist {
  const holdScale = rng.between(0.8, 1.3);
  const ddScale = rng.between(1.3, 2.2);
  return {
    positions: desk.positions,
    type(r, t) {
      const k = desk.type(r, t);
      return k && keystrokeOf(k.hold.map((h) => h * holdScale * lognormal(r, 0.1)), k.dd.map((d) => d * ddScale * lognormal(r, 0.15)));
    },
  };
}

// --- the CMU benchmark ------------------------------------------------------------------------

/** The benchmark's repetitions by subject, in recorded order; undefined where a timing is out of range. */
export interface KeystrokeData {
  positions: number;
  subjects: string[];
  reps: Map<string, (Keystroke | undefined)[]>;
}

/** Session 1: the repetitions the benchmark's impostors type (the password still new to them). */
const IMPOSTOR_REPS = 50;

/**
 * Parses DSL-StrongPasswordData.csv (`subject,sessionIndex,rep`, then H, DD, UD … H in
 * seconds). Seconds become whole milliseconds as the script measures them (hold and
 * keydown→keydown rounded, keyup→keydown their difference). Throws naming the line.
 */
export function parseCmuKeystrokes(text: string): KeystrokeData {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((s) => s.trim());
  const timings = header.slice(3);
  const positions = (timings.length + 2) / 3;
  const shape = header[0] === 'subject' && header[1] === 'sessionIndex' && header[2] === 'rep' && Number.isInteger(positions) && positions >= 2
    && timings.every((c, i) => c.startsWith(['H.', 'DD.', 'UD.'][i % 3]!));
  if (!shape) throw new Error('line 1: not the CMU benchmark header (subject,sessionIndex,rep,H.…,DD.…,UD.…,…,H.…)');
  const rows = new Map<string, { order: number; k: Keystroke | undefined }[]>();
  for (let n = 1; n < lines.length; n += 1) {
    const cells = lines[n]!.split(',').map((s) => s.trim());
    const values = cells.slice(1).map(Number);
    if (cells.length !== header.length || !cells[0] || values.some((v) => !Number.isFinite(v))) {
      throw new Error(`line ${n + 1}: expected a subject and ${header.length - 1} numbers`);
    }
    const [session, rep, ...s] = values as [number, number, ...number[]];
    const hold = s.filter((_, i) => i % 3 === 0).map((x) => x * 1000);
    const dd = s.filter((_, i) => i % 3 === 1).map((x) => x * 1000);
    const list = rows.get(cells[0]) ?? [];
    list.push({ order: session * 100_000 + rep, k: keystrokeOf(hold, dd) });
    rows.set(cells[0], list);
  }
  if (rows.size === 0) throw new Error('no repetitions');
  return {
    positions,
    subjects: [...rows.keys()],
    reps: new Map([...rows].map(([s, list]) => [s, list.sort((a, b) => a.order - b.order).map((x) => x.k)])),
  };
}

/**
 * The subjects named by `spec`: ids and inclusive ranges in the file's order, comma-separated
 * (`s002-s036,s040`), e.g. one part for training and the rest for a held-out evaluation.
 */
export function selectSubjects(data: KeystrokeData, spec: string): KeystrokeData {
  const chosen = new Set<string>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [a, b = a] = part.split('-').map((s) => s.trim());
    const i = data.subjects.indexOf(a!);
    const j = data.subjects.indexOf(b!);
    if (i < 0 || j < 0 || j < i) throw new Error(`unknown subject or empty range "${part}" (the file has ${data.subjects[0]}…${data.subjects.at(-1)})`);
    for (let k = i; k <= j; k += 1) chosen.add(data.subjects[k]!);
  }
  if (chosen.size < 2) throw new Error('at least two subjects are needed (attackers type as another one)');
  const subjects = data.subjects.filter((s) => chosen.has(s));
  return { positions: data.positions, subjects, reps: new Map(subjects.map((s) => [s, data.reps.get(s)!])) };
}

/**
 * One subject's repetitions in order from `first`, turning back at either end (the rhythm
 * stays continuous when a person logs in more often than the subject typed).
 */
export function cmuTypist(data: KeystrokeData, subject: string, first: number): Typist {
  const reps = data.reps.get(subject) ?? [];
  const period = Math.max(1, 2 * reps.length - 2);
  let k = first;
  return {
    positions: data.positions,
    type() {
      const i = k % period;
      k += 1;
      return reps[i < reps.length ? i : period - i];
    },
  };
}

/** A person of the benchmark: a subject and where in their repetitions they start (sessions 3-6). */
export function cmuPerson(rng: Rng, data: KeystrokeData): { subject: string; typist: Typist } {
  if (data.subjects.length < 2) throw new Error('at least two subjects are needed (attackers type as another one)');
  const subject = rng.pick(data.subjects);
  const n = data.reps.get(subject)?.length ?? 0;
  return { subject, typist: cmuTypist(data, subject, Math.floor(rng.between(0.25, 0.75) * n)) };
}

/** An impostor: another subject typing the password while it is still new to them (session 1). */
export function cmuImpostor(rng: Rng, data: KeystrokeData, victimSubject: string): Typist {
  const others = data.subjects.filter((s) => s !== victimSubject);
  const subject = rng.pick(others);
  const reps = data.reps.get(subject) ?? [];
  return { positions: data.positions, type: (r) => reps[r.int(Math.min(IMPOSTOR_REPS, reps.length))] };
}

// --- the pointer -------------------------------------------------------------------------------

/** How one person moves the mouse on the sign-in page. */
export interface Mouse {
  speed: number; cv: number; accel: number; curvature: number; straightness: number;
  pauseRate: number; dwell: number; duration: number; active: number;
}

/**
 * People differ less in these summaries than in their typing, and one login's summary is
 * noisy (where the pointer starts, whether the fields are clicked or tabbed to): the spreads
 * below make a stranger's summary look unusual but not unmistakable (an attacker's mean
 * template score about 0.85 against the user's own 0.5, test/unit/synth-behaviour.test.ts),
 * weaker evidence than typing, as published mouse-dynamics results on short sessions are.
 */
export function makeMouse(rng: Rng): Mouse {
  return {
    speed: logUniform(rng, 0.4, 1.5), cv: rng.between(0.7, 1.2), accel: logUniform(rng, 0.008, 0.03), curvature: rng.between(0.25, 0.6),
    straightness: rng.between(0.65, 0.9), pauseRate: rng.between(0.3, 0.8), dwell: rng.between(80, 150), duration: logUniform(rng, 2000, 7000),
    active: rng.between(0.35, 0.6),
  };
}

function poisson(rng: Rng, mean: number): number {
  const limit = Math.exp(-Math.min(mean, 500));
  let k = 0;
  for (let p = rng.next(); p > limit; p *= rng.next()) k += 1;
  return k;
}

/** One login's pointer summary: the person's profile with per-login noise. */
export function movePointer(rng: Rng, m: Mouse): PointerSummary {
  const duration = clamp(m.duration * lognormal(rng, 0.5), 200, 120_000);
  const speedMean = clamp(m.speed * lognormal(rng, 0.3), 0.01, 100);
  const active = clamp(m.active * lognormal(rng, 0.2), 0.05, 1);
  return {
    // About one pointer event per 16 ms frame while the mouse moves.
    moves: Math.max(1, Math.round((duration * active) / 16)),
    distance: round(speedMean * duration * active, 1),
    duration: Math.round(duration),
    speedMean: round(speedMean, 4),
    speedSd: round(clamp(speedMean * m.cv * lognormal(rng, 0.2), 0, 100), 4),
    accelMean: round(clamp(m.accel * lognormal(rng, 0.35), 0, 100), 5),
    curvatureMean: round(clamp(m.curvature * lognormal(rng, 0.3), 0, Math.PI), 4),
    straightness: round(clamp(m.straightness + 0.1 * rng.normal(), 0, 1), 4),
    pauses: poisson(rng, (m.pauseRate * duration) / 1000),
    clicks: 1 + poisson(rng, 0.8),
    clickDwellMean: round(clamp(m.dwell * lognormal(rng, 0.3), 1, 5000), 1),
  };
}

// --- one login's sample --------------------------------------------------------------------------

export type Screen = 'desktop' | 'android' | 'ios';

/** A legitimate user's behaviour on the sign-in page. */
export interface Person {
  desktop: Typist;
  phone: Typist;
  mouse: Mouse;
  /** A password manager fills the password in: never any timings. */
  manager: boolean;
  /** Share of typed logins with a correction (Backspace). */
  correction: number;
  /** Share of desktop logins where the mouse moved (keyboard users: few). */
  pointer: number;
  /** The CMU subject, when typing comes from the benchmark. */
  subject?: string | undefined;
  /** Their password's shape, when typing is parametric (an attacker types the same password). */
  shape?: PasswordShape | undefined;
}

/** Android keyboards compose (keyCode 229): the script sees no key timings on almost every login. */
const ANDROID_COMPOSES = 0.95;

export function makePerson(rng: Rng, desktop: Typist, managerRate: number, of: { subject?: string; shape?: PasswordShape } = {}): Person {
  return {
    desktop,
    phone: onPhone(rng, desktop),
    mouse: makeMouse(rng),
    manager: rng.chance(managerRate),
    correction: rng.between(0.03, 0.15),
    pointer: rng.chance(0.15) ? rng.between(0.05, 0.3) : rng.between(0.8, 1),
    subject: of.subject,
    shape: of.shape,
  };
}

function sample(rng: Rng, typist: Typist, screen: Screen, t: number, o: { filled?: boolean; correction: number }): Behaviour['keystroke'] | Behaviour['unusable'] {
  if (o.filled) return rng.chance(0.85) ? 'autofill' : 'paste';
  if (screen === 'android' && rng.chance(ANDROID_COMPOSES)) return 'composition';
  if (rng.chance(o.correction)) return 'correction';
  return typist.type(rng, t);
}

function assemble(k: Behaviour['keystroke'] | Behaviour['unusable'], pointer: PointerSummary | undefined): Behaviour {
  return { v: 1, ...(typeof k === 'string' ? { unusable: k } : k ? { keystroke: k } : {}), ...(pointer ? { pointer } : {}) };
}

/** What the script records when `p` signs in on `screen` at `t`. */
export function legitBehaviour(rng: Rng, p: Person, screen: Screen, t: number): Behaviour {
  const k = sample(rng, screen === 'desktop' ? p.desktop : p.phone, screen, t, { filled: p.manager, correction: p.correction });
  return assemble(k, screen === 'desktop' && rng.chance(p.pointer) ? movePointer(rng, p.mouse) : undefined);
}

/** An attacker who pastes the password now and then (from the list it came in), or types it. */
export const ATTACKER_PASTES = 0.15;

/** What the script records for an attacker typing the victim's password as `typist`. */
export function attackerBehaviour(rng: Rng, typist: Typist, screen: Screen, t: number): Behaviour {
  const k = rng.chance(ATTACKER_PASTES) ? 'paste' as const : sample(rng, typist, screen, t, { correction: 0.1 });
  return assemble(k, screen === 'desktop' && rng.chance(0.9) ? movePointer(rng, makeMouse(rng)) : undefined);
}

/** A device key's RFC 7638 thumbprint: 32 random bytes, base64url (43 characters). */
export function randomThumbprint(rng: Rng): string {
  const b = Buffer.alloc(32);
  for (let i = 0; i < b.length; i += 1) b[i] = rng.int(256);
  return b.toString('base64url');
}

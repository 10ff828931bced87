/**
 * Behavioural samples of one login: how the password was typed and how the pointer moved,
 * as the login page's script measures them (interactions/assets/behaviour.js). One schema
 * serves the form field (interactions/behaviour.ts), the login event format (event.ts) and
 * the engine, so a recorded event replays exactly what was scored live.
 *
 * What a sample holds, and what it never holds:
 * - keystrokes: timings by position of the password's characters (Killourhy & Maxion 2009:
 *   hold time of each key, keydown→keydown and keyup→keydown of consecutive keys). Never
 *   which key: nothing in it reveals a character. It does reveal the password's length,
 *   which is why raw samples are kept only for BEHAVIOUR_RETENTION_DAYS in events.
 * - pointer: a summary of the mouse's movement on the page (speed, acceleration, curvature,
 *   pauses, click dwell), not the path.
 * A sample the script knows to be unreliable (a correction, a paste, autofill, an input
 * method composing characters) carries no keystrokes, only the reason: absent, never wrong.
 *
 * Ranges are strict: a value outside them makes the whole field absent (confidence 0), so a
 * forged field can at worst look like a login without JavaScript.
 */
import { z } from 'zod';

/** Positions captured at most; a longer password gives no keystroke sample. */
export const MAX_KEY_POSITIONS = 64;
/** Fewer characters than this carry too little rhythm to compare. */
export const MIN_KEY_POSITIONS = 4;
/** The form field's size limit (bytes of JSON). */
export const MAX_BEHAVIOUR_FIELD_BYTES = 4096;

const ms = (min: number, max: number) => z.number().finite().min(min).max(max);
/**
 * Whole milliseconds, as the script rounds them: a fraction is no measurement, and would let
 * a replayed sample differ from its recording by less than any typist can (keystroke.ts
 * isReplayed).
 */
const wholeMs = (min: number, max: number) => z.int().min(min).max(max);

export const keystrokeSchema = z.strictObject({
  /** Hold time (keydown→keyup) of each position, ms. */
  hold: z.array(wholeMs(0, 2000)).min(MIN_KEY_POSITIONS).max(MAX_KEY_POSITIONS),
  /** keydown→keydown of positions i and i+1, ms (`hold.length - 1` values). */
  dd: z.array(wholeMs(0, 5000)).max(MAX_KEY_POSITIONS - 1),
  /** keyup→keydown of positions i and i+1, ms; negative when the keys overlap. */
  ud: z.array(wholeMs(-2000, 5000)).max(MAX_KEY_POSITIONS - 1),
}).refine((k) => k.dd.length === k.hold.length - 1 && k.ud.length === k.hold.length - 1, {
  message: 'dd and ud must have one value fewer than hold',
}).refine((k) => k.dd.every((dd, i) => Math.abs(dd - (k.hold[i]! + k.ud[i]!)) <= 2), {
  // keydown→keydown = hold + keyup→keydown, by definition (to the script's 1 ms rounding).
  message: 'dd must equal hold + ud at each position',
});

export const pointerSchema = z.strictObject({
  /** Pointer-move events summarised (mouse only; touch gives no pointer sample). */
  moves: z.int().min(1).max(100_000),
  /** Total path length, CSS px. */
  distance: z.number().finite().min(0).max(1_000_000),
  /** First to last move, ms. */
  duration: ms(0, 3_600_000),
  /** Speed between consecutive moves, px/ms: mean and standard deviation. */
  speedMean: z.number().finite().min(0).max(100),
  speedSd: z.number().finite().min(0).max(100),
  /** Mean absolute change of speed, px/ms². */
  accelMean: z.number().finite().min(0).max(100),
  /** Mean absolute change of direction between consecutive moves, radians. */
  curvatureMean: z.number().finite().min(0).max(Math.PI),
  /** Straight-line displacement over path length, per stroke, averaged (1 = straight). */
  straightness: z.number().finite().min(0).max(1),
  /** Stops of more than 300 ms between moves. */
  pauses: z.int().min(0).max(10_000),
  /** Clicks, and their mean press duration (mousedown→mouseup), ms. */
  clicks: z.int().min(0).max(1_000),
  clickDwellMean: ms(0, 5000),
});

/** Why the script gave no keystroke sample although the password was typed. */
export const UNUSABLE_REASONS = ['correction', 'paste', 'autofill', 'composition', 'navigation', 'too_long', 'too_short'] as const;

export const behaviourSchema = z.strictObject({
  v: z.literal(1),
  keystroke: keystrokeSchema.optional(),
  /** Set when the password field was filled in a way that makes timings meaningless. */
  unusable: z.enum(UNUSABLE_REASONS).optional(),
  pointer: pointerSchema.optional(),
});

export type Keystroke = z.infer<typeof keystrokeSchema>;
export type PointerSummary = z.infer<typeof pointerSchema>;
export type Behaviour = z.infer<typeof behaviourSchema>;

/**
 * The form field's value as a sample, or undefined: absent, oversized, not JSON or out of
 * range all mean "no behavioural signal" (confidence 0), never an error. `passwordLength`
 * (in characters, as typed) must match the positions: a script that missed a key gives
 * timings of another password.
 */
export function parseBehaviour(raw: string | undefined, passwordLength: number): Behaviour | undefined {
  if (!raw || Buffer.byteLength(raw) > MAX_BEHAVIOUR_FIELD_BYTES) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const r = behaviourSchema.safeParse(json);
  if (!r.success) return undefined;
  const b = r.data;
  if (b.keystroke && (b.unusable !== undefined || b.keystroke.hold.length !== passwordLength)) {
    return { v: b.v, unusable: b.unusable, pointer: b.pointer };
  }
  return b;
}

/**
 * The login event format (README "Login events"): one schema, the TypeScript type inferred
 * from it (STYLE.md §5). `idp simulate`, `idp model eval`, `idp model train` and
 * `idp events export` all check events with it, so a malformed line or record is reported
 * by field instead of failing somewhere in the engine.
 *
 * Unknown keys are dropped rather than refused: recorded events carry the provider's
 * `assessment`, and files written by other versions may carry more.
 */
import { z } from 'zod';
import { behaviourSchema } from './behaviour.ts';

export const ATTACK_TYPES = [
  'naive', 'vpn_hosting', 'targeted', 'credential_stuffing', 'impossible_travel', 'griefing', 'same_network', 'cookie_theft',
] as const;
export type AttackType = (typeof ATTACK_TYPES)[number];

const text = z.string().min(1);

export const loginEventSchema = z.object({
  id: text,
  /** A time zone is required: a local time would mean something else on every machine. */
  ts: z.iso.datetime({ offset: true }),
  /** Account id; `unknown:<keyed hash>` for a username that does not exist. */
  user: text,
  ip: text,
  userAgent: z.string(),
  deviceId: text.optional(),
  /** The password was correct. */
  success: z.boolean(),
  clientId: text.optional(),
  /** Requested scopes, space-separated. */
  scope: z.string().optional(),
  /** Keystroke-timing anomaly (0 typical … 1 unlike the user) and its confidence. */
  keystroke: z.strictObject({ score: z.number().min(0).max(1), confidence: z.number().min(0).max(1) }).optional(),
  /** Raw behavioural sample: keystroke timings by position and a pointer summary (policies/behaviour.ts). */
  behaviour: behaviourSchema.optional(),
  /** RFC 7638 thumbprint of the device key the browser proved (a fresh nonce signed), if any. */
  deviceKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url SHA-256 thumbprint').optional(),
  /** The outcome a step-up challenge had (or would have had); read only after the decision. */
  mfa: z.enum(['pass', 'fail']).optional(),
  // Evaluation only: these three never reach the scorer (policies/simulate.ts contextOf).
  label: z.enum(['legit', 'attack']).optional(),
  attackType: z.enum(ATTACK_TYPES).optional(),
  /** A named situation to report separately in metrics, e.g. `shared_nat`. */
  scenario: z.string().regex(/^[a-z0-9_]{1,64}$/, 'must be 1-64 characters of a-z 0-9 _').optional(),
}).refine((e) => e.attackType === undefined || e.label === 'attack', { path: ['attackType'], message: 'needs "label": "attack"' });

/** One login attempt as JSON lines carry it: what `idp events export` writes and `idp simulate` reads. */
export type LoginEvent = z.infer<typeof loginEventSchema>;

/** The fields that are for metrics only: never part of a recorded event, never seen by the scorer. */
export type EvaluationField = 'label' | 'attackType' | 'scenario';

export class EventError extends Error {
  override name = 'EventError';
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : t === 'string' ? 'a string' : t === 'number' ? 'a number' : t === 'boolean' ? 'true/false' : t;
}

const EXPECTED: Record<string, string> = { string: 'a string', number: 'a number', boolean: 'true or false', object: 'a JSON object' };

function valueAt(x: unknown, path: readonly PropertyKey[]): unknown {
  let v = x;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

/** One issue as `"field" must be …`; values are described by kind, never echoed. */
function describe(issue: z.core.$ZodIssue, input: unknown): string {
  const field = issue.path.map(String).join('.');
  const where = field ? `"${field}"` : 'an event';
  switch (issue.code) {
    case 'invalid_type': {
      const got = valueAt(input, issue.path);
      const want = EXPECTED[issue.expected] ?? issue.expected;
      return got === undefined ? `${where} is missing (${want})` : `${where} must be ${want}, not ${kindOf(got)}`;
    }
    case 'invalid_value':
      return `${where} must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'datetime' ? `${where} must be an ISO 8601 time with a time zone, e.g. 2026-03-05T09:20:00Z` : `${where} ${issue.message}`;
    case 'too_small':
      return issue.origin === 'string' ? `${where} must not be empty` : `${where} must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return `${where} must be at most ${String(issue.maximum)}`;
    case 'unrecognized_keys':
      return `${where} has unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    default:
      return `${where} ${issue.message}`;
  }
}

/** Checks one parsed JSON value against the event format; the error names every bad field. */
export function parseEvent(x: unknown): LoginEvent {
  const r = loginEventSchema.safeParse(x);
  if (r.success) return r.data;
  throw new EventError(r.error.issues.map((i) => describe(i, x)).join('; '));
}

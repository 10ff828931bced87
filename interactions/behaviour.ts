/**
 * The sign-in form's `behaviour` field (written by interactions/assets/behaviour.js) as a
 * behavioural sample, or nothing. The field is a hint, never a requirement: missing (no
 * JavaScript), empty, oversized, not JSON, out of range or of another length than the
 * password all give no sample (confidence 0, the login goes on as without the script), never
 * an error page. The strict checks are policies/behaviour.ts parseBehaviour, shared with the
 * event format.
 */
import { parseBehaviour, type Behaviour } from '../policies/behaviour.ts';

/** `password` as submitted: its length in characters (code points) must match the positions. */
export function readBehaviour(form: ReadonlyMap<string, string>, password: string): Behaviour | undefined {
  return parseBehaviour(form.get('behaviour'), [...password].length);
}

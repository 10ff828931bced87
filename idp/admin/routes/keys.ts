/**
 * Admin API: signing keys, the same three rotation steps as `idp keys` (adapters/keys.ts).
 * The key file is the source of truth; every instance picks a change up within
 * KEYS_RELOAD_INTERVAL. The key set's revision is its version (ETag / If-Match).
 */
import * as z from 'zod';
import { activateKeys, describeKeys, KeyFileError, KeyRevisionError, keyTimings, readKeyFile, retireKeys, rotateKeys } from '../../../adapters/keys.ts';
import { Problem } from '../problem.ts';
import { defineRoute, type AdminRoute } from '../route.ts';

const Key = z.object({
  kid: z.string(),
  alg: z.string(),
  state: z.enum(['next', 'current', 'previous']),
  createdAt: z.string(),
  demotedAt: z.string().optional(),
}).meta({ id: 'SigningKey', description: 'A signing key\'s public description (never key material).' });
const KeySet = z.object({ revision: z.int(), keys: z.array(Key) }).meta({ id: 'SigningKeys' });

export interface KeyRouteDeps {
  keysFile: string;
  reloadSeconds: number;
  idTokenTtl: number;
  audit(e: import('../../../models/types.ts').AuditInput): Promise<void>;
}

/**
 * A refused step as a problem: a stale revision is 412, a step not allowed now is 409, a key
 * file that is not there is 503 (the API never makes one: a new data key would orphan every
 * stored secret at the next start).
 */
function step<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof KeyRevisionError) throw new Problem('version_conflict', err.message, { headers: { etag: `"${err.current}"` } });
    if (err instanceof KeyFileError) throw new Problem('conflict', err.message);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Problem('unavailable', 'the key file is not there (KEYS_FILE); the keys in use stay until it is back');
    throw err;
  }
}

export function keyRoutes(d: KeyRouteDeps): AdminRoute[] {
  const timings = () => keyTimings(d.reloadSeconds, d.idTokenTtl);
  const current = () => step(() => {
    const k = readKeyFile(d.keysFile);
    return { revision: k.revision ?? 0, keys: describeKeys(k) };
  });
  const Result = z.looseObject({ revision: z.int() });
  return [
    defineRoute({
      method: 'get', path: '/keys', operationId: 'listKeys', tag: 'keys', scope: 'admin:read',
      summary: 'The signing keys and their states.',
      responses: { 200: { description: 'The key set.', schema: KeySet, etag: true } },
      handler: async () => {
        const set = current();
        return { body: set, version: set.revision };
      },
    }),
    defineRoute({
      method: 'post', path: '/keys/rotate', operationId: 'rotateKeys', tag: 'keys', scope: 'admin:keys', sensitive: true, ifMatch: true,
      summary: 'Stage new signing keys (published, not yet signing).',
      responses: { 200: { description: 'The staged kids and when they may be activated.', schema: Result, etag: true } },
      handler: async ({ ifMatch, principal }) => {
        const r = step(() => rotateKeys(d.keysFile, timings(), Date.now(), ifMatch));
        await d.audit({ actor: principal.actor, action: 'keys.rotate', outcome: 'success', detail: r });
        const revision = current().revision;
        return { body: { ...r, revision }, version: revision };
      },
    }),
    defineRoute({
      method: 'post', path: '/keys/activate', operationId: 'activateKeys', tag: 'keys', scope: 'admin:keys', sensitive: true, ifMatch: true,
      summary: 'Make the staged keys sign; the current ones stay published as previous.',
      responses: { 200: { description: 'The activated and demoted kids.', schema: Result, etag: true } },
      handler: async ({ ifMatch, principal }) => {
        const r = step(() => activateKeys(d.keysFile, timings(), Date.now(), ifMatch));
        await d.audit({ actor: principal.actor, action: 'keys.activate', outcome: 'success', detail: r });
        const revision = current().revision;
        return { body: { ...r, revision }, version: revision };
      },
    }),
    defineRoute({
      method: 'post', path: '/keys/retire', operationId: 'retireKeys', tag: 'keys', scope: 'admin:keys', sensitive: true, ifMatch: true,
      summary: 'Remove previous keys that are due (or the one named).',
      query: z.object({ kid: z.string().min(1).max(200).optional().describe('Only this key.') }),
      responses: { 200: { description: 'The retired kids and those kept, with when they become due.', schema: Result, etag: true } },
      handler: async ({ query, ifMatch, principal }) => {
        const r = step(() => retireKeys(d.keysFile, timings(), { kid: query.kid, ifRevision: ifMatch }));
        await d.audit({ actor: principal.actor, action: 'keys.retire', outcome: 'success', detail: r });
        const revision = current().revision;
        return { body: { ...r, revision }, version: revision };
      },
    }),
  ];
}

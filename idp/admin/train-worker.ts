/**
 * Retraining off the event loop: trainModel (idp/admin/model.ts) is minutes of synchronous
 * CPU on real data, which inside the server would stall every login. The admin API runs it in
 * this worker thread, which opens its own store connection, geolocation and audit trail
 * (the same settings and key file as the server), trains, and posts the report back (or the
 * error's name, code, reason and message: never a stack into a response).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openStorage } from '../../adapters/storage/index.ts';
import { openGeo } from '../../adapters/geoip.ts';
import { loadOrCreateKeys } from '../../adapters/keys.ts';
import { AuditTrail } from '../audit.ts';
import { trainModel, type TrainInput } from './model.ts';
import type { Actor } from '../../models/types.ts';
import { DEFAULT_SYNTH, Rng, sampleWorld, synthesize } from '../../policies/synth.ts';
import { loadPolicy } from '../../policies/policy.ts';
import { DEFAULT_POLICY_DIR } from '../settings.ts';

export interface TrainJob {
  store: { mongodbUri: string | undefined; dataDir: string };
  geo: { cityDb: string | undefined; asnDb: string | undefined; cacheDir: string | undefined; dataDir: string };
  keysFile: string;
  input: TrainInput;
  actor: Actor;
  /** Synthetic logins to train on beside the labelled ones (policies/synth.ts, as `idp model synth`). */
  synthetic?: { users: number; days: number; seed: number } | undefined;
}

export type TrainOutcome =
  | { ok: true; report: unknown }
  | { ok: false; error: { name: string; message: string; code?: string | undefined; reason?: string | undefined } };

async function run(job: TrainJob): Promise<TrainOutcome> {
  const storage = await openStorage(job.store);
  try {
    const geo = await openGeo(job.geo);
    const trail = new AuditTrail({ storage, dataKey: loadOrCreateKeys(job.keysFile).dataKey });
    const placeOf = (ip: string) => geo.lookup(ip);
    let synthetic;
    if (job.synthetic) {
      // The generator's world (cities, networks) drawn from the same geolocation data, its
      // hosting networks from the shipped lists, as `idp model synth` does.
      const s = { ...DEFAULT_SYNTH, ...job.synthetic };
      const rng = new Rng(s.seed);
      const world = sampleWorld(rng, placeOf, 100_000, loadPolicy(DEFAULT_POLICY_DIR, { withoutModel: true }).lists.hostingAsns);
      synthetic = { source: `synthetic (seed ${s.seed}, ${s.users} users, ${s.days} days)`, events: synthesize(s, world, rng) };
    }
    const report = await trainModel({ storage, audit: trail.audit, placeOf }, job.input, job.actor, synthetic ? { synthetic } : {});
    return { ok: true, report };
  } catch (err) {
    const e = err as Error & { code?: unknown; reason?: unknown };
    return { ok: false, error: { name: e.name, message: e.message, code: typeof e.code === 'string' ? e.code : undefined, reason: typeof e.reason === 'string' ? e.reason : undefined } };
  } finally {
    await storage.close();
  }
}

if (parentPort) {
  const port = parentPort;
  run(workerData as TrainJob).then((o) => port.postMessage(o), (err: unknown) => port.postMessage({ ok: false, error: { name: 'Error', message: (err as Error).message } } satisfies TrainOutcome));
}

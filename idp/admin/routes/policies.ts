/**
 * Admin API: the policy lifecycle, event labels and the model (idp/admin/policies.ts,
 * labels.ts, model.ts; `idp policy`, `idp label`, `idp model` on the CLI). Publishing,
 * rolling back and activating a model take If-Match on the live policy version; a label
 * change takes If-Match on the label's version ("0": the event has none yet).
 *
 * Retraining runs in a worker thread (train-worker.ts) as a job: POST answers 202 with the
 * job's URL, which answers with the report once training is done. One job at a time per
 * instance; jobs live in this process's memory (the trained model itself is stored).
 */
import crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';
import * as z from 'zod';
import type { Settings } from '../../settings.ts';
import type { Storage } from '../../../adapters/storage/port.ts';
import type { AuditInput } from '../../../models/types.ts';
import type { Place } from '../../../policies/types.ts';
import { activateModel, activateSchema, getModel, listModels, trainSchema } from '../model.ts';
import { candidateSchema, dryRunPolicy, dryRunSchema, getLivePolicy, getPolicyVersion, policyHistory, publishPolicy, rollbackPolicy, rollbackSchema, validatePolicy } from '../policies.ts';
import { eventIdSchema, getLabel, labelHistory, listLabels, setLabel, setLabelSchema } from '../labels.ts';
import { Problem } from '../problem.ts';
import { defineRoute, PageQuery, pageOf, pageReply, type AdminRoute } from '../route.ts';
import type { TrainJob, TrainOutcome } from '../train-worker.ts';

export interface PolicyRouteDeps {
  settings: Settings;
  storage: Storage;
  audit(e: AuditInput): Promise<void>;
  placeOf(ip: string): Place;
}

const ActorView = z.looseObject({ kind: z.string(), id: z.string() });
const PolicyVersionView = z.looseObject({
  version: z.int(), hash: z.string(), modelVersion: z.string(), message: z.string(), actor: ActorView,
  publishedAt: z.string(), source: z.enum(['publish', 'file', 'rollback', 'model']), rollbackOf: z.int().optional(),
}).meta({ id: 'PolicyVersion' });
const PolicyWithFiles = PolicyVersionView.extend({ files: z.record(z.string(), z.string()) }).meta({ id: 'PolicyVersionWithFiles' });
const LiveView = z.looseObject({ version: PolicyVersionView, files: z.record(z.string(), z.string()), acrValues: z.array(z.string()), monitor: z.string().optional() }).meta({ id: 'LivePolicy' });
const ValidationView = z.looseObject({
  valid: z.boolean(), errors: z.array(z.looseObject({})), messages: z.array(z.string()),
  hash: z.string().optional(), modelVersion: z.string().optional(), live: z.int().optional(), publishedAs: z.int().optional(),
}).meta({ id: 'PolicyValidation' });
const DryRunView = z.looseObject({
  window: z.looseObject({}), live: z.looseObject({}), candidate: z.looseObject({}), changed: z.looseObject({}), transitions: z.looseObject({}),
  examples: z.array(z.looseObject({})),
}).meta({ id: 'DryRunReport' });
const LabelView = z.looseObject({ eventId: z.string(), version: z.int(), label: z.enum(['attack', 'legit']), note: z.string().optional(), actor: ActorView, at: z.string() }).meta({ id: 'Label' });
const ModelView = z.looseObject({ sha256: z.string(), report: z.looseObject({}), actor: ActorView, createdAt: z.string() }).meta({ id: 'ModelCandidate' });
const JobView = z.object({
  id: z.string(), state: z.enum(['running', 'done', 'failed']), started_at: z.string(), finished_at: z.string().optional(),
  report: z.looseObject({}).optional().describe('The training report (held-out figures before and after): nothing is active until POST /model/activate.'),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
}).meta({ id: 'TrainJob' });

const VersionParam = z.object({ version: z.coerce.number().int().min(1).max(1e9) });
/** The services' input without `ifVersion`, which the API takes from If-Match instead. */
const withoutIfVersion = <T extends z.ZodObject>(s: T) => ('ifVersion' in s.shape ? s.omit({ ifVersion: true } as never) : s) as unknown as T;

/** `o` without `key` (the worker's training input takes no synthetic options: they go beside it). */
function withoutKey<T extends object, K extends keyof T>(o: T, key: K): Omit<T, K> {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

interface Job { id: string; state: 'running' | 'done' | 'failed'; startedAt: Date; finishedAt?: Date; report?: unknown; error?: { code: string; message: string } }

export function policyRoutes(d: PolicyRouteDeps): AdminRoute[] {
  const deps = { storage: d.storage, audit: d.audit };
  const jobs = new Map<string, Job>();
  const jobView = (j: Job) => ({
    id: j.id, state: j.state, started_at: j.startedAt.toISOString(),
    ...(j.finishedAt ? { finished_at: j.finishedAt.toISOString() } : {}),
    ...(j.report !== undefined ? { report: j.report as Record<string, unknown> } : {}),
    ...(j.error ? { error: j.error } : {}),
  });
  return [
    defineRoute({
      method: 'get', path: '/policies/live', operationId: 'getLivePolicy', tag: 'policies', scope: 'admin:read',
      summary: 'The live policy: its version (ETag), files and ACR values.',
      responses: { 200: { description: 'The live policy.', schema: LiveView, etag: true } },
      handler: async () => {
        const live = await getLivePolicy(deps);
        return { body: live, version: live.version.version };
      },
    }),
    defineRoute({
      method: 'post', path: '/policies/validate', operationId: 'validatePolicy', tag: 'policies', scope: 'admin:policy',
      summary: 'Check a candidate with the same checks, and the same file/line/key messages, as a file edit.',
      body: candidateSchema,
      responses: { 200: { description: 'Whether it is valid, and every problem.', schema: ValidationView } },
      handler: async ({ body }) => ({ body: await validatePolicy(deps, body) }),
    }),
    defineRoute({
      method: 'post', path: '/policies/dry-run', operationId: 'dryRunPolicy', tag: 'policies', scope: 'admin:policy',
      summary: 'Replay the last days of stored login events through a candidate and the live policy, and compare.',
      body: dryRunSchema,
      responses: { 200: { description: 'Decisions and levels of both, what changed, labelled-event figures, examples.', schema: DryRunView } },
      handler: async ({ body }) => ({ body: await dryRunPolicy({ ...deps, placeOf: d.placeOf }, body) }),
    }),
    defineRoute({
      method: 'post', path: '/policies', operationId: 'publishPolicy', tag: 'policies', scope: 'admin:policy', sensitive: true,
      summary: 'Publish a candidate as the next version (live on every instance within POLICY_POLL_MS); If-Match the live version.',
      body: candidateSchema.extend({ message: z.string().trim().min(1).max(1000).describe('Why: shown in the history and on the audit trail') }),
      ifMatch: true,
      responses: { 201: { description: 'The published version.', schema: PolicyVersionView, etag: true } },
      handler: async ({ body, ifMatch, principal }) => {
        const v = await publishPolicy(deps, { ...(body as { files: Record<string, string>; message: string }), ifVersion: ifMatch! }, principal.actor);
        return { status: 201, body: v, version: v.version };
      },
    }),
    defineRoute({
      method: 'get', path: '/policies/versions', operationId: 'listPolicyVersions', tag: 'policies', scope: 'admin:read',
      summary: 'Published versions, newest first.',
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: PageQuery.cursor }),
      responses: { 200: { description: 'A page of versions.', schema: pageOf(PolicyVersionView, 'PolicyVersionPage') } },
      handler: async ({ query, url }) => pageReply(await policyHistory(deps, { limit: query.limit, after: query.cursor }), url),
    }),
    defineRoute({
      method: 'get', path: '/policies/versions/{version}', operationId: 'getPolicyVersion', tag: 'policies', scope: 'admin:read',
      summary: 'One published version with its files.',
      params: VersionParam,
      responses: { 200: { description: 'The version.', schema: PolicyWithFiles } },
      handler: async ({ params }) => ({ body: await getPolicyVersion(deps, params.version) }),
    }),
    defineRoute({
      method: 'post', path: '/policies/rollback', operationId: 'rollbackPolicy', tag: 'policies', scope: 'admin:policy', sensitive: true,
      summary: 'Publish an earlier version\'s files again, as the next version; If-Match the live version.',
      body: withoutIfVersion(rollbackSchema), ifMatch: true,
      responses: { 201: { description: 'The new version.', schema: PolicyVersionView, etag: true } },
      handler: async ({ body, ifMatch, principal }) => {
        const v = await rollbackPolicy(deps, { ...(body as { version: number; message: string }), ifVersion: ifMatch! }, principal.actor);
        return { status: 201, body: v, version: v.version };
      },
    }),
    defineRoute({
      method: 'get', path: '/events/{eventId}/label', operationId: 'getEventLabel', tag: 'labels', scope: 'admin:read',
      summary: 'The event\'s label and its history (newest first).',
      params: z.object({ eventId: eventIdSchema }),
      responses: { 200: { description: 'The label.', schema: LabelView.extend({ history: z.array(LabelView) }), etag: true } },
      handler: async ({ params }) => {
        const l = await getLabel(deps, params.eventId);
        return { body: { ...l, history: await labelHistory(deps, params.eventId) }, version: l.version };
      },
    }),
    defineRoute({
      method: 'put', path: '/events/{eventId}/label', operationId: 'setEventLabel', tag: 'labels', scope: 'admin:write',
      summary: 'Label a login event attack or legit, with a note; If-Match the label\'s version ("0" for an event without one).',
      params: z.object({ eventId: eventIdSchema }), body: withoutIfVersion(setLabelSchema), ifMatch: true,
      responses: { 200: { description: 'The label as set.', schema: LabelView, etag: true } },
      handler: async ({ params, body, ifMatch, principal }) => {
        const l = await setLabel(deps, params.eventId, { ...(body as { label: 'attack' | 'legit'; note?: string }), ifVersion: ifMatch }, principal.actor);
        return { body: l, version: l.version };
      },
    }),
    defineRoute({
      method: 'get', path: '/labels', operationId: 'listLabels', tag: 'labels', scope: 'admin:read',
      summary: 'Labelled events, the current label of each.',
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: PageQuery.cursor }),
      responses: { 200: { description: 'A page of labels.', schema: pageOf(LabelView, 'LabelPage') } },
      handler: async ({ query, url }) => pageReply(await listLabels(deps, { limit: query.limit, after: query.cursor }), url),
    }),
    defineRoute({
      method: 'post', path: '/model/train', operationId: 'trainModel', tag: 'model', scope: 'admin:policy',
      summary: 'Retrain the model from labelled events (weighted above synthetic ones); the report shows held-out figures before anything is activated.',
      description: 'Runs as a job in a worker thread: answered 202 with the job; GET it until `state` is `done`. Nothing becomes live until POST /model/activate.',
      body: trainSchema.extend({
        synthetic: z.strictObject({
          users: z.int().min(10).max(10_000).default(1000).describe('Synthetic users'),
          days: z.int().min(1).max(180).default(30).describe('Days of synthetic logins'),
          seed: z.int().min(0).max(2 ** 31 - 1).default(1).describe('Seed of the generator'),
        }).optional().describe('Also train on synthetic logins (labelled by construction; each counts once, a labelled real event `labelWeight` times), as `idp model synth` makes them'),
      }),
      responses: { 202: { description: 'The job.', schema: JobView } },
      handler: async ({ body, principal, url }) => {
        if ([...jobs.values()].some((j) => j.state === 'running')) throw new Problem('conflict', 'a training job is running on this instance; wait for it');
        const job: Job = { id: crypto.randomUUID(), state: 'running', startedAt: new Date() };
        jobs.set(job.id, job);
        const data: TrainJob = {
          store: { mongodbUri: d.settings.mongodbUri, dataDir: d.settings.dataDir },
          geo: { cityDb: d.settings.geoipCityDb, asnDb: d.settings.geoipAsnDb, cacheDir: d.settings.geoipCacheDir, dataDir: d.settings.dataDir },
          keysFile: d.settings.keysFile, input: withoutKey(body, 'synthetic'), actor: principal.actor, synthetic: body.synthetic,
        };
        const worker = new Worker(new URL('../train-worker.js', import.meta.url), { workerData: data });
        const finish = (o: TrainOutcome) => {
          job.finishedAt = new Date();
          if (o.ok) Object.assign(job, { state: 'done', report: o.report });
          else Object.assign(job, { state: 'failed', error: { code: o.error.reason ?? o.error.code ?? 'training_failed', message: o.error.message } });
        };
        worker.once('message', finish);
        worker.once('error', () => finish({ ok: false, error: { name: 'Error', message: 'training stopped unexpectedly' } }));
        worker.once('exit', (code) => { if (job.state === 'running') finish({ ok: false, error: { name: 'Exit', message: `training stopped (exit ${code})` } }); });
        // Finished jobs are kept an hour, for their report.
        for (const [id, j] of jobs) if (j.finishedAt && Date.now() - j.finishedAt.getTime() > 3_600_000) jobs.delete(id);
        return { status: 202, body: jobView(job), headers: { location: `${url.origin}/admin/api/v1/model/train/${job.id}` } };
      },
    }),
    defineRoute({
      method: 'get', path: '/model/train/{jobId}', operationId: 'getTrainJob', tag: 'model', scope: 'admin:policy',
      summary: 'A training job of this instance and, once done, its report.',
      params: z.object({ jobId: z.uuid() }),
      responses: { 200: { description: 'The job.', schema: JobView } },
      handler: async ({ params }) => {
        const j = jobs.get(params.jobId);
        if (!j) throw new Problem('not_found', `no training job ${params.jobId} on this instance`);
        return { body: jobView(j) };
      },
    }),
    defineRoute({
      method: 'get', path: '/models', operationId: 'listModels', tag: 'model', scope: 'admin:read',
      summary: 'Trained models (active or not), newest first, with their reports.',
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: PageQuery.cursor }),
      responses: { 200: { description: 'A page of models.', schema: pageOf(ModelView, 'ModelPage') } },
      handler: async ({ query, url }) => pageReply(await listModels(deps, { limit: query.limit, after: query.cursor }), url),
    }),
    defineRoute({
      method: 'get', path: '/models/{sha256}', operationId: 'getModel', tag: 'model', scope: 'admin:read',
      summary: 'One trained model\'s report (not the model file).',
      params: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
      responses: { 200: { description: 'The model.', schema: ModelView } },
      handler: async ({ params }) => {
        const m: Partial<Awaited<ReturnType<typeof getModel>>> = { ...(await getModel(deps, params.sha256)) };
        delete m.text;
        return { body: m };
      },
    }),
    defineRoute({
      method: 'post', path: '/model/activate', operationId: 'activateModel', tag: 'model', scope: 'admin:policy', sensitive: true,
      summary: 'Make a trained model live: publishes the live policy with its sha256 pinned; If-Match the live version.',
      body: withoutIfVersion(activateSchema), ifMatch: true,
      responses: { 201: { description: 'The policy version that pins it.', schema: PolicyVersionView, etag: true } },
      handler: async ({ body, ifMatch, principal }) => {
        const v = await activateModel(deps, { ...(body as { sha256: string; message?: string }), ifVersion: ifMatch! }, principal.actor);
        return { status: 201, body: v, version: v.version };
      },
    }),
  ];
}

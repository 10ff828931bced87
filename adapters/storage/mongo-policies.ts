/**
 * The MongoDB store's part of the policy lifecycle and the feedback loop (port.ts
 * PolicyStore, LabelStore, ModelStore).
 *
 * FerretDB v1 has no transactions and applies conditional updates as a query then a write
 * (mongo.ts), so no compare-and-set here is an update: each new version is an insert under a
 * unique `_id` (the policy's version number, `<event>#<version>` for a label). A writer
 * first checks that the newest version is the one the caller read (`ifVersion`), then
 * inserts the next number; of several writers that passed the check with the same number,
 * the unique index lets exactly one insert, on every MongoDB-compatible server. Numbers never
 * skip: the next one is inserted only by a writer that found its predecessor.
 *
 * A publish writes in three steps: the files (content-addressed, so a writer that then
 * loses leaves only a harmless duplicate of files someone may publish again), the version,
 * and the change stamp every instance polls. A process that dies between the last two has
 * published a version the stamp does not announce: idp/policy-sync.ts also reads the live
 * version itself now and then, so every instance still installs it.
 */
import crypto from 'node:crypto';
import type { Connection } from 'mongoose';
import { registerPolicyModels, type LabelDoc, type ModelCandidateDoc, type PolicyVersionDoc } from '../../models/mongoose.ts';
import type { Actor, LabelRecord, PolicyVersion } from '../../models/types.ts';
import { canonicalFiles, encodeCursor, eventAfter, limitOf, timeAndKeyAfter, versionAfter, VersionConflictError, type LabelStore, type ModelStore, type PolicyStore } from './port.ts';

const isDuplicateKey = (err: unknown) => (err as { code?: number }).code === 11000;

const toActor = (a: { kind: Actor['kind']; id: string; ip?: string | null }): Actor => ({ kind: a.kind, id: a.id, ...(a.ip ? { ip: a.ip } : {}) });
const actorDoc = (a: Actor) => ({ kind: a.kind, id: a.id, ...(a.ip !== undefined ? { ip: a.ip } : {}) });

function toVersion(d: Omit<PolicyVersionDoc, 'filesId'>): PolicyVersion {
  return {
    version: d._id, hash: d.hash, modelVersion: d.modelVersion, message: d.message, actor: toActor(d.actor),
    publishedAt: new Date(d.publishedAt), source: d.source, ...(typeof d.rollbackOf === 'number' ? { rollbackOf: d.rollbackOf } : {}),
  };
}

function toLabel(d: LabelDoc): LabelRecord {
  return {
    eventId: d.eventId, version: d.version, label: d.label, ...(typeof d.note === 'string' ? { note: d.note } : {}),
    actor: toActor(d.actor), at: new Date(d.at),
  };
}

/** Creates the collections and indexes (idempotent; several instances may run it at once). */
export async function openMongoPolicyStores(conn: Connection): Promise<{ policies: PolicyStore; labels: LabelStore; models: ModelStore }> {
  const { PolicyVersion, PolicyFiles, Label, ModelCandidate } = registerPolicyModels(conn);
  for (const m of [PolicyVersion, PolicyFiles, Label, ModelCandidate]) {
    await m.createCollection().catch((err: unknown) => {
      // 48 NamespaceExists: another instance created it first.
      if ((err as { code?: number }).code !== 48) throw err;
    });
  }
  await PolicyVersion.collection.createIndex({ hash: 1, _id: -1 });
  await Label.collection.createIndex({ eventId: 1, version: -1 });
  await ModelCandidate.collection.createIndex({ createdAt: -1, _id: -1 });
  const stamps = conn.collection<{ _id: string; stamp: string }>('stamps');
  const HEADER = { filesId: 0 } as const;

  const latest = async () => (await PolicyVersion.findOne({}, HEADER).sort({ _id: -1 }).lean()) ?? undefined;

  const policies: PolicyStore = {
    async publish(v, ifVersion) {
      const live = await latest();
      const current = live?._id ?? 0;
      if (current !== ifVersion) throw new VersionConflictError('the live policy', current);
      const files = canonicalFiles(v.files);
      try {
        await PolicyFiles.create({ _id: files.id, files: files.json });
      } catch (err) {
        // The same files, stored by an earlier version or a writer that lost.
        if (!isDuplicateKey(err)) throw err;
      }
      const doc: PolicyVersionDoc = {
        _id: current + 1, hash: v.hash, modelVersion: v.modelVersion, message: v.message, actor: actorDoc(v.actor), publishedAt: new Date(),
        source: v.source, ...(v.rollbackOf !== undefined ? { rollbackOf: v.rollbackOf } : {}), filesId: files.id,
      };
      try {
        await PolicyVersion.create(doc);
      } catch (err) {
        if (isDuplicateKey(err)) throw new VersionConflictError('the live policy', (await latest())?._id ?? current + 1);
        throw err;
      }
      // After the version: an instance that sees the new stamp finds the version. Two first
      // upserts at once may collide on FerretDB (mongo.ts replaceById): the loser writes again.
      const stamp = () => stamps.replaceOne({ _id: 'policy' }, { stamp: crypto.randomUUID() }, { upsert: true });
      await stamp().catch((err: unknown) => (isDuplicateKey(err) ? stamp() : Promise.reject(err)));
      return toVersion(doc);
    },
    async live() {
      const d = await latest();
      return d && toVersion(d);
    },
    async get(version) {
      const d = await PolicyVersion.findById(version).lean();
      if (!d) return undefined;
      const f = await PolicyFiles.findById(d.filesId).lean();
      if (!f) throw new Error(`policy version ${version}: its files ${d.filesId} are missing from the store`);
      return { ...toVersion(d), files: JSON.parse(f.files) as Record<string, string> };
    },
    async findByHash(hash) {
      const d = await PolicyVersion.findOne({ hash }, HEADER).sort({ _id: -1 }).lean();
      return d ? toVersion(d) : undefined;
    },
    async history({ after, limit }) {
      const before = after === undefined ? Number.MAX_SAFE_INTEGER : versionAfter(after);
      const n = limitOf(limit);
      const docs = await PolicyVersion.find({ _id: { $lt: before } }, HEADER).sort({ _id: -1 }).limit(n + 1).lean();
      const items = docs.slice(0, n).map(toVersion);
      return { items, next: docs.length > n ? encodeCursor([items[items.length - 1]!.version]) : undefined };
    },
    async stamp() {
      return (await stamps.findOne({ _id: 'policy' }))?.stamp ?? '';
    },
  };

  const currentLabel = async (eventId: string) => (await Label.findOne({ eventId }).sort({ version: -1 }).lean()) ?? undefined;

  const labels: LabelStore = {
    async set(l, ifVersion) {
      const cur = await currentLabel(l.eventId);
      const current = cur?.version ?? 0;
      const what = `the label of event ${l.eventId}`;
      if (current !== ifVersion) throw new VersionConflictError(what, current || undefined);
      const version = current + 1;
      try {
        await Label.create({
          _id: `${l.eventId}#${version}`, eventId: l.eventId, version, label: l.label, ...(l.note !== undefined ? { note: l.note } : {}),
          actor: actorDoc(l.actor), at: l.at,
        });
      } catch (err) {
        if (isDuplicateKey(err)) throw new VersionConflictError(what, (await currentLabel(l.eventId))?.version ?? version);
        throw err;
      }
      return { ...l, version };
    },
    async get(eventId) {
      const d = await currentLabel(eventId);
      return d && toLabel(d);
    },
    async history(eventId) {
      return (await Label.find({ eventId }).sort({ version: 1 }).lean()).map(toLabel);
    },
    async list({ after, limit }) {
      // Every version is a document: walk them by event id, newest version first, and keep
      // the first of each event, until the page is full.
      let from = after === undefined ? '' : eventAfter(after);
      const n = limitOf(limit);
      const items: LabelRecord[] = [];
      const batch = Math.min(2 * n + 10, 2000);
      for (;;) {
        const docs = await Label.find({ eventId: { $gt: from } }).sort({ eventId: 1, version: -1 }).limit(batch).lean();
        for (const d of docs) {
          if (d.eventId === items[items.length - 1]?.eventId) continue;
          if (items.length === n) return { items, next: encodeCursor([items[n - 1]!.eventId]) };
          items.push(toLabel(d));
        }
        if (docs.length < batch) return { items };
        // The last event of the batch is complete (its newest version came first); go on after it.
        from = docs[docs.length - 1]!.eventId;
      }
    },
  };

  const models: ModelStore = {
    async save(c) {
      try {
        await ModelCandidate.create({ _id: c.sha256, text: c.text, report: JSON.stringify(c.report), actor: actorDoc(c.actor), createdAt: c.createdAt });
      } catch (err) {
        // The same bytes: the same model, kept once.
        if (!isDuplicateKey(err)) throw err;
      }
    },
    async get(sha256) {
      const d = await ModelCandidate.findById(sha256).lean();
      return d ? { sha256: d._id, text: d.text, report: JSON.parse(d.report) as Record<string, unknown>, actor: toActor(d.actor), createdAt: new Date(d.createdAt) } : undefined;
    },
    async list({ after, limit }) {
      const n = limitOf(limit);
      const filter = after === undefined ? {} : (() => {
        const [t, sha] = timeAndKeyAfter(after);
        return { $or: [{ createdAt: { $lt: new Date(t) } }, { createdAt: new Date(t), _id: { $lt: sha } }] };
      })();
      const docs = await ModelCandidate.find(filter, { text: 0 }).sort({ createdAt: -1, _id: -1 }).limit(n + 1).lean() as Omit<ModelCandidateDoc, 'text'>[];
      const items = docs.slice(0, n).map((d) => ({ sha256: d._id, report: JSON.parse(d.report) as Record<string, unknown>, actor: toActor(d.actor), createdAt: new Date(d.createdAt) }));
      const last = items[items.length - 1];
      return { items, next: docs.length > n && last ? encodeCursor([last.createdAt.getTime(), last.sha256]) : undefined };
    },
  };

  return { policies, labels, models };
}

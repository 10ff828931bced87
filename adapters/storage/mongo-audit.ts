/**
 * The MongoDB store's audit trail (port.ts AuditStore), in the `audit` collection.
 *
 * No transactions and no atomic read-modify-write on FerretDB v1 (mongo.ts header), so the
 * chain rests on the one thing every MongoDB-compatible server enforces: the unique `_id`.
 * A record's `_id` is its sequence number. An instance links its records to the newest record
 * it knows (remembered from its own last write) and inserts them; if another instance took
 * one of those numbers first, the insert fails with a duplicate key, and the instance reads
 * the newest record, links the rest again and retries. A number is therefore never used twice,
 * and never skipped (a record is inserted only right after the one it links to).
 *
 * Within a process appends are queued: while one insert is in flight, the records that arrive
 * wait and go together in the next one (an ordered insertMany), so contention is between
 * instances only and a busy instance makes one round trip per batch, not per record. Each
 * caller is answered once its record is written (the driver's acknowledged write concern).
 */
import type { Connection } from 'mongoose';
import crypto from 'node:crypto';
import type { AuditRecord } from '../../models/types.ts';
import type { AuditDoc } from '../../models/mongoose.ts';
import { chainRecord, GENESIS_HASH, jsonText, type AuditEntry, type AuditSealer } from './audit-chain.ts';
import type { AuditFilter, AuditStore } from './port.ts';

/** Inserts a batch may lose to other instances before its callers are told it failed. */
const MAX_TRIES = 50;

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { '!unparseable': text };
  }
}

function toRecord(d: AuditDoc): AuditRecord {
  const actor = d.actor ?? ({} as AuditDoc['actor']);
  return {
    id: d.id,
    seq: Number(d._id),
    ts: new Date(d.ts).toISOString(),
    actor: { kind: actor.kind, id: actor.id, ...(actor.ip !== undefined && actor.ip !== null ? { ip: actor.ip } : {}) },
    action: d.action,
    outcome: d.outcome,
    ...(d.target ? { target: { type: d.target.type, id: d.target.id } } : {}),
    ...(typeof d.before === 'string' ? { before: parsed(d.before) } : {}),
    ...(typeof d.after === 'string' ? { after: parsed(d.after) } : {}),
    ...(typeof d.detail === 'string' ? { detail: parsed(d.detail) as Record<string, unknown> } : {}),
    prevHash: d.prevHash,
    hash: d.hash,
    seal: d.seal,
  };
}

function toDoc(r: AuditRecord): AuditDoc {
  return {
    _id: r.seq, id: r.id, ts: new Date(r.ts), actor: r.actor, action: r.action, outcome: r.outcome,
    ...(r.target ? { target: r.target } : {}),
    ...(r.before !== undefined ? { before: jsonText(r.before)! } : {}),
    ...(r.after !== undefined ? { after: jsonText(r.after)! } : {}),
    ...(r.detail !== undefined ? { detail: jsonText(r.detail)! } : {}),
    prevHash: r.prevHash, hash: r.hash, seal: r.seal,
  };
}

/**
 * Of an ordered insert that failed: how many documents went in before a duplicate `_id`
 * stopped it, or -1 when it failed for another reason.
 */
function insertedBeforeClash(err: unknown): number {
  const e = err as { code?: number; writeErrors?: unknown };
  const list = Array.isArray(e.writeErrors) ? e.writeErrors : e.writeErrors ? [e.writeErrors] : [];
  const first = list[0] as { index?: number; code?: number } | undefined;
  if (first) return first.code === 11000 && typeof first.index === 'number' ? first.index : -1;
  // A single-document insert reports the clash on the error itself.
  return e.code === 11000 ? 0 : -1;
}

interface Pending {
  entry: AuditEntry;
  id: string;
  seal: AuditSealer;
  resolve: (r: AuditRecord) => void;
  reject: (err: unknown) => void;
}

export async function openMongoAudit(conn: Connection): Promise<AuditStore> {
  await conn.createCollection('audit').catch((err: unknown) => {
    // 48 NamespaceExists: another instance created it first.
    if ((err as { code?: number }).code !== 48) throw err;
  });
  const col = conn.collection<AuditDoc>('audit');
  await col.createIndex({ ts: 1 });
  await col.createIndex({ 'target.id': 1 });
  await col.createIndex({ 'actor.id': 1 });

  /** The newest record this process knows of; undefined: read it before the next insert. */
  let tail: { seq: number; hash: string } | undefined;
  let queue: Pending[] = [];
  let writing = false;

  const readTail = async () => {
    const d = await col.find({}, { projection: { hash: 1 } }).sort({ _id: -1 }).limit(1).next();
    return d ? { seq: Number(d._id), hash: d.hash } : { seq: 0, hash: GENESIS_HASH };
  };

  async function writeBatch(batch: Pending[]): Promise<void> {
    let rest = batch;
    for (let tries = 0; rest.length > 0; tries += 1) {
      if (tries === MAX_TRIES) throw new Error(`audit append: the sequence number was taken by another instance ${MAX_TRIES} times in a row`);
      const from = tail ?? (tail = await readTail());
      const ts = Date.now();
      let prev = from;
      const recs = rest.map((p) => {
        const r = chainRecord(p.entry, { id: p.id, seq: prev.seq + 1, ts, prevHash: prev.hash }, p.seal);
        prev = { seq: r.seq, hash: r.hash };
        return r;
      });
      try {
        await col.insertMany(recs.map(toDoc), { ordered: true });
        tail = prev;
        rest.forEach((p, i) => p.resolve(recs[i]!));
        return;
      } catch (err) {
        tail = undefined;
        const done = insertedBeforeClash(err);
        if (done < 0) throw err;
        rest.slice(0, done).forEach((p, i) => p.resolve(recs[i]!));
        rest = rest.slice(done);
        // Another instance is appending: let it finish its batch before reading where it ended.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** tries, 50)));
      }
    }
  }

  async function drain(): Promise<void> {
    writing = true;
    try {
      while (queue.length > 0) {
        const batch = queue;
        queue = [];
        await writeBatch(batch).catch((err: unknown) => { for (const p of batch) p.reject(err); });
      }
    } finally {
      writing = false;
    }
  }

  return {
    append(entry, seal) {
      return new Promise<AuditRecord>((resolve, reject) => {
        queue.push({ entry, id: crypto.randomUUID(), seal, resolve, reject });
        if (!writing) void drain();
      });
    },
    async query(f: AuditFilter, { after, limit, order }) {
      const filter: Record<string, unknown> = {};
      if (f.actorKind !== undefined) filter['actor.kind'] = f.actorKind;
      if (f.actorId !== undefined) filter['actor.id'] = f.actorId;
      if (f.targetType !== undefined) filter['target.type'] = f.targetType;
      if (f.targetId !== undefined) filter['target.id'] = f.targetId;
      if (f.outcome !== undefined) filter.outcome = f.outcome;
      if (f.actionPrefix !== undefined) filter.action = { $gte: f.actionPrefix, $lt: `${f.actionPrefix}\uffff` };
      if (f.since !== undefined || f.until !== undefined) {
        filter.ts = { ...(f.since !== undefined ? { $gte: new Date(f.since) } : {}), ...(f.until !== undefined ? { $lt: new Date(f.until) } : {}) };
      }
      if (after !== undefined) filter._id = order === 'asc' ? { $gt: after } : { $lt: after };
      const docs = await col.find(filter).sort({ _id: order === 'asc' ? 1 : -1 }).limit(limit).toArray();
      return docs.map(toRecord);
    },
    async *scan({ from = 1, batch = 1000 } = {}) {
      const cursor = col.find({ _id: { $gte: from } }).sort({ _id: 1 }).batchSize(batch);
      try {
        for await (const d of cursor) yield toRecord(d);
      } finally {
        await cursor.close();
      }
    },
  };
}

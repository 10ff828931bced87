/**
 * MongoDB implementation of the storage port, through mongoose. For production and for
 * several stateless IdP instances sharing one database.
 *
 * No multi-document transactions are used (FerretDB v1, our CI server, has none), and no
 * security decision rests on a read-modify-write update either: FerretDB v1 applies `$inc`
 * and conditional updates non-atomically (20 concurrent `$inc` were seen to leave 1).
 * Counters and single-use markers are unique-key inserts instead, which every
 * MongoDB-compatible server enforces, so limits hold under concurrency and across instances.
 */
import crypto from 'node:crypto';
import mongoose from 'mongoose';
import type { Account, AttemptReservation, ClientRecord, OidcRecord } from '../../models/types.ts';
import { registerModels, type AccountDoc, type ClientDoc, type OidcDoc } from '../../models/mongoose.ts';
import { DuplicateError, type ReserveOptions, type Storage } from './port.ts';

export interface MongoOptions {
  /** Called with a message when the server refuses an optional feature (TTL index). */
  warn?: (msg: string) => void;
}

const isDuplicateKey = (err: unknown) => (err as { code?: number }).code === 11000;

function toAccount(d: AccountDoc): Account {
  return {
    id: d._id,
    username: d.username,
    email: d.email ?? undefined,
    emailVerified: d.emailVerified,
    name: d.name ?? undefined,
    passwordHash: d.passwordHash,
    trustedDevices: [...(d.trustedDevices ?? [])],
    createdAt: new Date(d.createdAt),
    updatedAt: new Date(d.updatedAt),
  };
}

function toClient(d: ClientDoc): ClientRecord {
  return {
    clientId: d._id,
    secretCiphertext: d.secretCiphertext ?? undefined,
    metadata: JSON.parse(d.metadata) as Record<string, unknown>,
    createdAt: new Date(d.createdAt),
  };
}

function toOidc(d: OidcDoc | null, now: number): OidcRecord | undefined {
  if (!d) return undefined;
  const expiresAt = d.expiresAt ? new Date(d.expiresAt).getTime() : undefined;
  // Expired records are filtered on read: a TTL index may be missing or late.
  if (expiresAt !== undefined && expiresAt <= now) return undefined;
  return {
    model: d.model,
    id: d.id,
    payload: JSON.parse(d.payload) as Record<string, unknown>,
    grantId: d.grantId ?? undefined,
    uid: d.uid ?? undefined,
    userCode: d.userCode ?? undefined,
    expiresAt,
    consumed: d.consumed ?? undefined,
  };
}

export async function openMongoStorage(uri: string, options: MongoOptions = {}): Promise<Storage> {
  const conn = mongoose.createConnection(uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false });
  await conn.asPromise();
  const { Account, Client, Attempt, Oidc, Consumed } = registerModels(conn);

  for (const m of [Account, Client, Attempt, Oidc, Consumed]) {
    await m.createCollection().catch((err: unknown) => {
      // 48 NamespaceExists: another instance created it first.
      if ((err as { code?: number }).code !== 48) throw err;
    });
  }
  await Account.collection.createIndex({ username: 1 }, { unique: true });
  await Attempt.collection.createIndex({ key: 1, n: -1 });
  await Attempt.collection.createIndex({ key: 1, blockedUntil: -1 });
  await Oidc.collection.createIndex({ grantId: 1 }, { sparse: true });
  await Oidc.collection.createIndex({ model: 1, uid: 1 }, { sparse: true });
  await Oidc.collection.createIndex({ model: 1, userCode: 1 }, { sparse: true });
  try {
    // A TTL index only reclaims space; expiry is enforced on read, so a server that
    // refuses it (FerretDB v1) loses nothing.
    await Oidc.collection.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0 });
  } catch (err) {
    options.warn?.(`MongoDB refused the TTL index on oidc.expiresAt (${(err as Error).message}); expired records are filtered on read and swept periodically`);
    await Oidc.collection.createIndex({ expiresAt: 1 });
  }

  /**
   * Bucket state: counted attempts, latest delay, and the newest slot. Counting is done by
   * inserting a document per attempt under a unique `_id` (`${key}#${n}`): the database's
   * unique index lets exactly one writer claim slot n+1, so two attempts can never both be
   * counted as the same one, on MongoDB and on servers without atomic updates alike.
   */
  async function bucket(key: string, now: number, windowMs: number) {
    const top = await Attempt.findOne({ key, n: { $gt: 0 } }).sort({ n: -1 }).lean();
    if (!top || top.at + windowMs <= now) return { top, stale: true, count: 0, blockedUntil: 0 };
    const [count, latest] = await Promise.all([
      Attempt.countDocuments({ key, n: { $gt: 0 } }),
      Attempt.findOne({ key }).sort({ blockedUntil: -1 }).lean(),
    ]);
    return { top, stale: false, count, blockedUntil: latest?.blockedUntil ?? 0 };
  }

  async function reserve(key: string, { now, max, windowMs }: ReserveOptions): Promise<AttemptReservation> {
    for (let tries = 0; tries < 50; tries += 1) {
      const b = await bucket(key, now, windowMs);
      if (b.stale && b.top) await Attempt.deleteMany({ key, at: { $lte: now - windowMs } });
      if (b.count >= max) return { allowed: false, reason: 'limit', count: b.count, blockedUntil: b.blockedUntil };
      if (now < b.blockedUntil) return { allowed: false, reason: 'delayed', count: b.count, blockedUntil: b.blockedUntil };
      const n = b.stale || !b.top ? 1 : b.top.n + 1;
      try {
        // Succeeds only if nobody claimed slot n since we read the bucket, so the count we
        // checked against `max` is still the count.
        await Attempt.create({ _id: `${key}#${n}`, key, n, at: now, blockedUntil: 0 });
        return { allowed: true, count: b.count + 1, blockedUntil: b.blockedUntil };
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    }
    // Unending contention: refuse, the strict outcome.
    return { allowed: false, reason: 'delayed', count: max, blockedUntil: now };
  }

  return {
    kind: 'mongodb',
    accounts: {
      async create(a) {
        const now = new Date();
        try {
          const doc = await Account.create({
            _id: a.id, username: a.username, email: a.email, emailVerified: a.emailVerified, name: a.name,
            passwordHash: a.passwordHash, trustedDevices: [], createdAt: now, updatedAt: now,
          });
          return toAccount(doc.toObject());
        } catch (err) {
          if (isDuplicateKey(err)) throw new DuplicateError('account', a.username);
          throw err;
        }
      },
      async findById(id) {
        const d = await Account.findById(id).lean();
        return d ? toAccount(d) : undefined;
      },
      async findByUsername(username) {
        const d = await Account.findOne({ username }).lean();
        return d ? toAccount(d) : undefined;
      },
      async list() {
        return (await Account.find().sort({ username: 1 }).lean()).map(toAccount);
      },
      async setPasswordHash(id, passwordHash) {
        await Account.updateOne({ _id: id }, { $set: { passwordHash, updatedAt: new Date() } });
      },
      async addTrustedDevice(id, deviceId, keep) {
        // Two single-document updates; a concurrent add can at worst keep one extra entry.
        await Account.updateOne({ _id: id }, { $pull: { trustedDevices: deviceId } });
        await Account.updateOne({ _id: id }, { $push: { trustedDevices: { $each: [deviceId], $slice: -keep } } });
      },
    },
    clients: {
      async create(c) {
        const createdAt = new Date();
        try {
          await Client.create({ _id: c.clientId, secretCiphertext: c.secretCiphertext, metadata: JSON.stringify(c.metadata), createdAt });
        } catch (err) {
          if (isDuplicateKey(err)) throw new DuplicateError('client', c.clientId);
          throw err;
        }
        return { ...c, createdAt };
      },
      async find(clientId) {
        const d = await Client.findById(clientId).lean();
        return d ? toClient(d) : undefined;
      },
      async list() {
        return (await Client.find().sort({ _id: 1 }).lean()).map(toClient);
      },
    },
    attempts: {
      reserve,
      async delay(key, until) {
        // A delay is its own document (n = 0): no update of a shared document to lose.
        await Attempt.create({ _id: `${key}#d#${crypto.randomUUID()}`, key, n: 0, at: Date.now(), blockedUntil: until });
      },
      async reset(key) {
        await Attempt.deleteMany({ key });
      },
      async refund(key) {
        for (let tries = 0; tries < 5; tries += 1) {
          const top = await Attempt.findOne({ key, n: { $gt: 0 } }).sort({ n: -1 }).lean();
          if (!top) return;
          if ((await Attempt.deleteOne({ _id: top._id })).deletedCount === 1) return;
        }
      },
      async get(key, now, windowMs) {
        const b = await bucket(key, now, windowMs);
        return { count: b.count, blockedUntil: b.blockedUntil };
      },
    },
    oidc: {
      async upsert(rec) {
        const doc = {
          model: rec.model, id: rec.id, payload: JSON.stringify(rec.payload), grantId: rec.grantId ?? null,
          uid: rec.uid ?? null, userCode: rec.userCode ?? null,
          expiresAt: rec.expiresAt === undefined ? null : new Date(rec.expiresAt), consumed: rec.consumed ?? null,
        };
        await Oidc.replaceOne({ _id: `${rec.model}:${rec.id}` }, doc, { upsert: true });
      },
      async find(model, id, now) {
        return toOidc(await Oidc.findById(`${model}:${id}`).lean(), now);
      },
      async findByUid(model, uid, now) {
        return toOidc(await Oidc.findOne({ model, uid }).lean(), now);
      },
      async findByUserCode(model, userCode, now) {
        return toOidc(await Oidc.findOne({ model, userCode }).lean(), now);
      },
      async consume(model, id, at) {
        // The marker's unique _id decides who consumed it: exactly one caller inserts it.
        const rec = await Oidc.findById(`${model}:${id}`).lean();
        if (!rec || rec.consumed) return false;
        try {
          await Consumed.create({ _id: `${model}:${id}`, at, expiresAt: rec.expiresAt ?? null });
        } catch (err) {
          if (isDuplicateKey(err)) return false;
          throw err;
        }
        await Oidc.updateOne({ _id: `${model}:${id}` }, { $set: { consumed: at } });
        return true;
      },
      async destroy(model, id) {
        await Oidc.deleteOne({ _id: `${model}:${id}` });
      },
      async revokeByGrantId(grantId) {
        await Oidc.deleteMany({ grantId });
      },
      async sweep(now) {
        const r = await Oidc.deleteMany({ expiresAt: { $lte: new Date(now) } });
        await Consumed.deleteMany({ expiresAt: { $lte: new Date(now) } });
        return r.deletedCount;
      },
    },
    async close() {
      await conn.close();
    },
  };
}

/**
 * MongoDB implementation of the storage port, through mongoose. For production and for
 * several stateless IdP instances sharing one database.
 *
 * No multi-document transactions are used (FerretDB v1, our CI server, has none): every
 * security counter is a single-document conditional update, which MongoDB applies
 * atomically, so limits hold across instances.
 */
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
  const { Account, Client, Attempt, Oidc } = registerModels(conn);

  for (const m of [Account, Client, Attempt, Oidc]) {
    await m.createCollection().catch((err: unknown) => {
      // 48 NamespaceExists: another instance created it first.
      if ((err as { code?: number }).code !== 48) throw err;
    });
  }
  await Account.collection.createIndex({ username: 1 }, { unique: true });
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

  async function reserve(key: string, { now, max, windowMs }: ReserveOptions): Promise<AttemptReservation> {
    const finite = Number.isFinite(windowMs);
    const liveSince = finite ? { lastAt: { $gt: now - windowMs } } : {};
    // Linearizable through single-document conditional updates: each branch's guard is
    // re-checked by the server, and a lost race retries from the top.
    for (let tries = 0; tries < 20; tries += 1) {
      const counted = await Attempt.findOneAndUpdate(
        { _id: key, ...liveSince, count: { $lt: max }, blockedUntil: { $lte: now } },
        { $inc: { count: 1 }, $set: { lastAt: now } },
        { returnDocument: 'after', lean: true },
      );
      if (counted) return { allowed: true, count: counted.count, blockedUntil: counted.blockedUntil };

      const current = await Attempt.findById(key).lean();
      if (!current) {
        try {
          await Attempt.create({ _id: key, count: 1, lastAt: now, blockedUntil: 0 });
          return { allowed: true, count: 1, blockedUntil: 0 };
        } catch (err) {
          if (isDuplicateKey(err)) continue;
          throw err;
        }
      }
      if (finite && current.lastAt <= now - windowMs) {
        const restarted = await Attempt.findOneAndUpdate(
          { _id: key, lastAt: current.lastAt, count: current.count },
          { $set: { count: 1, lastAt: now, blockedUntil: 0 } },
          { returnDocument: 'after', lean: true },
        );
        if (restarted) return { allowed: true, count: 1, blockedUntil: 0 };
        continue;
      }
      if (current.count >= max) return { allowed: false, reason: 'limit', count: current.count, blockedUntil: current.blockedUntil };
      if (now < current.blockedUntil) {
        return { allowed: false, reason: 'delayed', count: current.count, blockedUntil: current.blockedUntil };
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
        await Attempt.updateOne({ _id: key }, { $max: { blockedUntil: until } });
      },
      async reset(key) {
        await Attempt.deleteOne({ _id: key });
      },
      async refund(key) {
        await Attempt.updateOne({ _id: key, count: { $gt: 0 } }, { $inc: { count: -1 } });
      },
      async get(key, now, windowMs) {
        const d = await Attempt.findById(key).lean();
        if (!d || d.lastAt + windowMs <= now) return { count: 0, blockedUntil: 0 };
        return { count: d.count, blockedUntil: d.blockedUntil };
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
        const r = await Oidc.updateOne({ _id: `${model}:${id}`, consumed: null }, { $set: { consumed: at } });
        return r.modifiedCount === 1;
      },
      async destroy(model, id) {
        await Oidc.deleteOne({ _id: `${model}:${id}` });
      },
      async revokeByGrantId(grantId) {
        await Oidc.deleteMany({ grantId });
      },
      async sweep(now) {
        const r = await Oidc.deleteMany({ expiresAt: { $lte: new Date(now) } });
        return r.deletedCount;
      },
    },
    async close() {
      await conn.close();
    },
  };
}

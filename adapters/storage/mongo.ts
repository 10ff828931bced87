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
import mongoose, { type Model } from 'mongoose';
import type { Account, AttemptReservation, ClientRecord, LoginEventRecord, OidcRecord, RiskObservation } from '../../models/types.ts';
import { oidcSchema, registerModels, type AccountDoc, type ClientDoc, type EventDoc, type OidcDoc } from '../../models/mongoose.ts';
import { DuplicateError, nextAttemptAt, type ReserveOptions, type Storage } from './port.ts';
import { disambiguatedSkeleton, usernameSkeleton } from './skeleton.ts';

export interface MongoOptions {
  /** Called with a message when the server refuses an optional feature (TTL index). */
  warn?: (msg: string) => void;
}

const isDuplicateKey = (err: unknown) => (err as { code?: number }).code === 11000;

/**
 * Upsert by `_id`. Two concurrent upserts of a missing document can both try the insert and
 * one fail with a duplicate key (MongoDB ≥ 4.2 retries that itself; FerretDB v1 does not):
 * the document then exists, so the loser's write is retried as a plain replace.
 */
async function replaceById<T>(model: Model<T>, _id: string, doc: Partial<T>): Promise<void> {
  try {
    await model.replaceOne({ _id } as never, doc as never, { upsert: true });
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    await model.replaceOne({ _id } as never, doc as never, { upsert: true });
  }
}

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

/**
 * oidc-provider's models, and our LoginRecord (interactions/login-record.ts) kept beside them;
 * tokens that belong to a grant are revoked with it.
 */
const OIDC_MODELS = [
  'Session', 'Interaction', 'Grant', 'AccessToken', 'AuthorizationCode', 'RefreshToken', 'ClientCredentials', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest', 'ReplayDetection', 'InitialAccessToken', 'RegistrationAccessToken',
  'LoginRecord',
] as const;
const GRANTABLE = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'];

function toOidc(model: string, d: OidcDoc | null, now: number): OidcRecord | undefined {
  if (!d) return undefined;
  const expiresAt = d.expiresAt ? new Date(d.expiresAt).getTime() : undefined;
  // Expired records are filtered on read: a TTL index may be missing or late.
  if (expiresAt !== undefined && expiresAt <= now) return undefined;
  return {
    model,
    id: d._id,
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
  const { Account, Client, Attempt, Consumed, Event, RiskUser, Observation } = registerModels(conn);
  // One collection per oidc-provider model (as oidc-provider's own MongoDB example does):
  // short-lived tokens do not crowd the collections sessions and grants are looked up in.
  const oidcModels = new Map<string, Model<OidcDoc>>();
  for (const name of OIDC_MODELS) {
    oidcModels.set(name, conn.model<OidcDoc>(`Oidc${name}`, oidcSchema.clone().set('collection', `oidc_${name.toLowerCase()}`)));
  }
  const oidcModel = (name: string): Model<OidcDoc> => {
    const m = oidcModels.get(name);
    if (!m) throw new Error(`unknown oidc-provider model ${name}`);
    return m;
  };

  for (const m of [Account, Client, Attempt, Consumed, Event, RiskUser, Observation, ...oidcModels.values()]) {
    await m.createCollection().catch((err: unknown) => {
      // 48 NamespaceExists: another instance created it first.
      if ((err as { code?: number }).code !== 48) throw err;
    });
  }
  await Account.collection.createIndex({ username: 1 }, { unique: true });
  // Accounts created before skeletons existed get theirs, then the unique index goes on
  // (idempotent; rows that already collide are kept, see disambiguatedSkeleton).
  for (const d of await Account.find({ skeleton: { $exists: false } }, { username: 1, createdAt: 1 }).sort({ createdAt: 1, _id: 1 }).lean()) {
    const skeleton = usernameSkeleton(d.username);
    const clash = await Account.exists({ skeleton, _id: { $ne: d._id } });
    await Account.updateOne({ _id: d._id }, { $set: { skeleton: clash ? disambiguatedSkeleton(skeleton, d._id) : skeleton } });
  }
  await Account.collection.createIndex({ skeleton: 1 }, { unique: true });
  await Event.collection.createIndex({ ts: 1, _id: 1 });
  await Attempt.collection.createIndex({ key: 1, at: -1 });
  await Observation.collection.createIndex({ user: 1, kind: 1, ts: -1 });
  await Observation.collection.createIndex({ ip: 1, kind: 1, ts: -1 });
  await Observation.collection.createIndex({ expiresAt: 1 });
  let ttlRefused = false;
  for (const [name, m] of oidcModels) {
    if (GRANTABLE.includes(name)) await m.collection.createIndex({ grantId: 1 });
    if (name === 'Session') await m.collection.createIndex({ uid: 1 });
    if (name === 'DeviceCode') await m.collection.createIndex({ userCode: 1 });
    try {
      // A TTL index only reclaims space; expiry is enforced on read, so a server that
      // refuses it (FerretDB v1) loses nothing.
      if (!ttlRefused) await m.collection.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0 });
    } catch (err) {
      ttlRefused = true;
      options.warn?.(`MongoDB refused a TTL index (${(err as Error).message}); expired records are filtered on read and swept periodically`);
    }
    if (ttlRefused) await m.collection.createIndex({ expiresAt: 1 });
  }

  /** Bucket state: its counted attempts and the newest. `fresh` when that is older than the window. */
  async function bucket(key: string, now: number, windowMs: number) {
    const last = await Attempt.findOne({ key, kind: 'attempt' }).sort({ at: -1 }).lean();
    if (!last || last.at + windowMs <= now) return { fresh: true, stale: Boolean(last), count: 0, lastAt: 0 };
    const count = await Attempt.countDocuments({ key, kind: 'attempt' });
    return { fresh: false, stale: false, count, lastAt: last.at };
  }

  /**
   * Insert-then-count: the attempt is counted by inserting its own document, then it counts
   * the bucket and looks at the newest other attempt. If the count is over the limit, or the
   * progressive delay for the attempts before it has not passed since the newest other one,
   * it withdraws and is refused.
   * - Limit: any two attempts both admitted would each have counted the other's document,
   *   so no more than `max` are ever admitted.
   * - Delay: of two attempts inside each other's delay, the one that counts second sees the
   *   first's document, so it is refused; a burst of parallel attempts therefore gets at most
   *   the free allowance verified.
   * No count is lost, whatever the server's update atomicity. Under contention an attempt
   * may be refused early (a withdrawn document still counted): the strict side.
   */
  async function reserve(key: string, { now, max, windowMs, waitMs }: ReserveOptions): Promise<AttemptReservation> {
    const b = await bucket(key, now, windowMs);
    if (b.stale) await Attempt.deleteMany({ key, at: { $lte: now - windowMs } });
    if (b.count >= max) return { allowed: false, reason: 'limit', count: b.count, blockedUntil: 0 };
    const waitUntil = nextAttemptAt(b.count, b.lastAt, waitMs);
    if (now < waitUntil) return { allowed: false, reason: 'delayed', count: b.count, blockedUntil: waitUntil };
    const _id = `${key}#${crypto.randomUUID()}`;
    await Attempt.create({ _id, key, kind: 'attempt', at: now });
    const count = await Attempt.countDocuments({ key, kind: 'attempt' });
    if (count > max) {
      await Attempt.deleteOne({ _id });
      return { allowed: false, reason: 'limit', count: max, blockedUntil: 0 };
    }
    const wait = waitMs(count - 1);
    if (wait > 0) {
      const other = await Attempt.findOne({ key, kind: 'attempt', _id: { $ne: _id } }).sort({ at: -1 }).lean();
      if (other && now < other.at + wait) {
        await Attempt.deleteOne({ _id });
        return { allowed: false, reason: 'delayed', count: count - 1, blockedUntil: other.at + wait };
      }
    }
    return { allowed: true, id: _id, count, blockedUntil: now + waitMs(count) };
  }

  return {
    kind: 'mongodb',
    accounts: {
      async create(a) {
        const now = new Date();
        try {
          const doc = await Account.create({
            _id: a.id, username: a.username, skeleton: usernameSkeleton(a.username), email: a.email, emailVerified: a.emailVerified, name: a.name,
            passwordHash: a.passwordHash, trustedDevices: [], createdAt: now, updatedAt: now,
          });
          return toAccount(doc.toObject());
        } catch (err) {
          if (isDuplicateKey(err)) {
            const taken = await Account.exists({ $or: [{ username: a.username }, { _id: a.id }] });
            throw new DuplicateError('account', a.username, taken ? 'taken' : 'similar');
          }
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
        // Read, compute, write: FerretDB v1 ignores `$push` with `$slice`. Only the finish step
        // of a fully successful login calls this, so only the owner can race it: two of their
        // logins finishing at once on different browsers may drop one of the two. That
        // browser is then unrecognised, and uses the account's shared unrecognised-browser
        // bucket, until its next full login.
        const d = await Account.findById(id, { trustedDevices: 1 }).lean();
        if (!d) return;
        const devices = [...(d.trustedDevices ?? []).filter((x) => x !== deviceId), deviceId].slice(-keep);
        await Account.updateOne({ _id: id }, { $set: { trustedDevices: devices } });
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
      async reset(key) {
        await Attempt.deleteMany({ key });
      },
      async refund(_key, attemptId) {
        // Its own document: a refund can neither uncount another attempt nor be lost.
        await Attempt.deleteOne({ _id: attemptId });
      },
      async get(key, now, windowMs, waitMs = () => 0) {
        const b = await bucket(key, now, windowMs);
        return { count: b.count, blockedUntil: nextAttemptAt(b.count, b.lastAt, waitMs) };
      },
    },
    oidc: {
      async upsert(rec) {
        const doc = {
          payload: JSON.stringify(rec.payload), grantId: rec.grantId ?? null, uid: rec.uid ?? null, userCode: rec.userCode ?? null,
          expiresAt: rec.expiresAt === undefined ? null : new Date(rec.expiresAt), consumed: rec.consumed ?? null,
        };
        await replaceById(oidcModel(rec.model), rec.id, doc);
      },
      async find(model, id, now) {
        return toOidc(model, await oidcModel(model).findById(id).lean(), now);
      },
      async findByUid(model, uid, now) {
        return toOidc(model, await oidcModel(model).findOne({ uid }).lean(), now);
      },
      async findByUserCode(model, userCode, now) {
        return toOidc(model, await oidcModel(model).findOne({ userCode }).lean(), now);
      },
      async consume(model, id, at) {
        // The marker's unique _id decides who consumed it: exactly one caller inserts it.
        const rec = await oidcModel(model).findById(id).lean();
        if (!rec || rec.consumed) return false;
        try {
          await Consumed.create({ _id: `${model}:${id}`, at, expiresAt: rec.expiresAt ?? null });
        } catch (err) {
          if (isDuplicateKey(err)) return false;
          throw err;
        }
        await oidcModel(model).updateOne({ _id: id }, { $set: { consumed: at } });
        return true;
      },
      async destroy(model, id) {
        await oidcModel(model).deleteOne({ _id: id });
      },
      async revokeByGrantId(grantId) {
        await Promise.all(GRANTABLE.map((name) => oidcModel(name).deleteMany({ grantId })));
      },
      async sweep(now) {
        const cutoff = new Date(now);
        let deleted = 0;
        for (const m of oidcModels.values()) deleted += (await m.deleteMany({ expiresAt: { $lte: cutoff } })).deletedCount;
        await Consumed.deleteMany({ expiresAt: { $lte: cutoff } });
        await Observation.deleteMany({ expiresAt: { $lte: cutoff } });
        return deleted;
      },
    },
    events: {
      async append(e) {
        await Event.create({ _id: e.id, ts: Date.parse(e.ts), user: e.user, doc: JSON.stringify(e) });
      },
      async *list({ since }) {
        const cursor = Event.find({ ts: { $gte: since ?? 0 } }).sort({ ts: 1, _id: 1 }).lean().cursor();
        for await (const d of cursor) yield JSON.parse((d as EventDoc).doc) as LoginEventRecord;
      },
      async findById(id) {
        const d = await Event.findById(id).lean();
        return d ? (JSON.parse(d.doc) as LoginEventRecord) : undefined;
      },
    },
    risk: {
      async getUser(user) {
        const d = await RiskUser.findById(user).lean();
        return d ? JSON.parse(d.doc) : undefined;
      },
      async putUser(user, history) {
        await replaceById(RiskUser, user, { doc: JSON.stringify(history) });
      },
      async observe(o, expiresAt) {
        await Observation.create({ _id: crypto.randomUUID(), kind: o.kind, ts: o.ts, user: o.user, ip: o.ip, country: o.country ?? null, expiresAt: new Date(expiresAt) });
      },
      async observations(by, kind, since, limit) {
        // Expired records are filtered on read: a TTL index may be missing or late.
        const docs = await Observation.find({ ...by, kind, ts: { $gt: since }, expiresAt: { $gt: new Date() } }).sort({ ts: -1 }).limit(limit).lean();
        return docs.reverse().map((d): RiskObservation => ({ kind: d.kind, ts: d.ts, user: d.user, ip: d.ip, ...(d.country ? { country: d.country } : {}) }));
      },
    },
    async close() {
      await conn.close();
    },
  };
}

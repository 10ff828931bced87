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
import type { Account, AttemptReservation, ClientRecord, FactorRecord, LoginEventRecord, OidcRecord, RiskObservation } from '../../models/types.ts';
import { oidcSchema, registerModels, type AccountDoc, type AccountVersionDoc, type ClientDoc, type EventDoc, type FactorDoc, type FactorMarkDoc, type OidcDoc } from '../../models/mongoose.ts';
import {
  ACCOUNT_PAGE_MAX, decodeCursor, DuplicateError, encodeCursor, eventCursor, nextAttemptAt, prefixEnd, VersionConflictError,
  usernameCursor, type AccountFilter, type ReserveOptions, type Storage, type StoreObserver,
} from './port.ts';
import { disambiguatedSkeleton, usernameSkeleton } from './skeleton.ts';
import { openMongoAudit } from './mongo-audit.ts';
import { openMongoPolicyStores } from './mongo-policies.ts';

export interface MongoOptions {
  /** Called with a message when the server refuses an optional feature (TTL index). */
  warn?: (msg: string) => void;
  /** Sees every command sent, as sent (test/bench/explain.ts explains the queries among them). */
  onCommand?: (commandName: string, command: Readonly<Record<string, unknown>>) => void;
}

/** Lower counter marks a factor may gather before advance() clears them (see there). */
const KEEP_COUNTER_MARKS = 8;

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
    ...(d.directory ? { directory: { ...d.directory, syncedAt: new Date(d.directory.syncedAt) } } : {}),
    ...(d.claims ? { claims: d.claims } : {}),
    createdAt: new Date(d.createdAt),
    updatedAt: new Date(d.updatedAt),
    version: d.version ?? 1,
    ...(d.disabled ? { disabled: { at: new Date(d.disabled.at), reason: d.disabled.reason, ...(d.disabled.by ? { by: d.disabled.by } : {}) } } : {}),
    profileUpdatedAt: new Date(d.profileUpdatedAt ?? d.updatedAt),
  };
}

/** A writer that made a version marker and did not apply its change within this long is taken for dead (versioned()). */
const VERSION_STALE_MS = 30_000;

/** Usernames beginning with `prefix`: a range on the unique index (no regular expression to escape). */
function prefixRange(prefix: string): { $gte: string; $lt: string } {
  return { $gte: prefix, $lt: `${prefix}\u{10ffff}` };
}

/** AccountStore.page's query. */
function accountQuery(f: AccountFilter, after: string | undefined): Record<string, unknown> {
  const q: Record<string, unknown> = {};
  const username: Record<string, string> = {};
  if (f.usernamePrefix !== undefined) Object.assign(username, prefixRange(f.usernamePrefix));
  if (after !== undefined) username.$gt = after;
  if (Object.keys(username).length) q.username = username;
  if (f.email !== undefined) q.email = f.email;
  if (f.disabled !== undefined) q['disabled.at'] = { $exists: f.disabled };
  if (f.directory !== undefined) q['directory.name'] = f.directory;
  const created: Record<string, Date> = {};
  if (f.createdAfter !== undefined) created.$gt = f.createdAfter;
  if (f.createdBefore !== undefined) created.$lt = f.createdBefore;
  if (Object.keys(created).length) q.createdAt = created;
  return q;
}

function toClient(d: ClientDoc): ClientRecord {
  return {
    clientId: d._id,
    secretCiphertext: d.secretCiphertext ?? undefined,
    metadata: JSON.parse(d.metadata) as Record<string, unknown>,
    createdAt: new Date(d.createdAt),
    updatedAt: new Date(d.updatedAt ?? d.createdAt),
    version: d.version ?? 1,
  };
}

/** A version marker stuck this long (its writer died between the marker and the change) may be taken over. */
const STUCK_VERSION_MS = 30_000;
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A factor as stored plus its marks: the counter is the highest of the stored one and the
 * accepted values marked, `recovery.used` the codes marked used.
 */
function toFactor(d: FactorDoc, marks: FactorMarkDoc[]): FactorRecord {
  const own = marks.filter((m) => m.factorId === d._id);
  const counter = Math.max(d.counter, ...own.filter((m) => m.kind === 'counter').map((m) => m.value ?? 0));
  const w = d.webauthn;
  return {
    id: d._id,
    accountId: d.accountId,
    kind: d.kind,
    label: d.label,
    createdAt: new Date(d.createdAt),
    ...(d.lastUsedAt ? { lastUsedAt: new Date(d.lastUsedAt) } : {}),
    counter,
    enrolledVia: d.enrolledVia,
    ...(d.totp ? { totp: { secretCiphertext: d.totp.secretCiphertext, algorithm: d.totp.algorithm, digits: d.totp.digits, period: d.totp.period } } : {}),
    ...(w ? {
      webauthn: {
        credentialId: w.credentialId, publicKey: w.publicKey, transports: [...w.transports], deviceType: w.deviceType, backedUp: w.backedUp,
        ...(w.aaguid ? { aaguid: w.aaguid } : {}), userVerified: w.userVerified,
      },
    } : {}),
    ...(d.recovery ? {
      recovery: {
        hashes: [...d.recovery.hashes],
        used: own.filter((m) => m.kind === 'recovery').sort((a, b) => +a.at - +b.at).map((m) => ({ hash: m.hash ?? '', at: new Date(m.at) })),
      },
    } : {}),
  };
}

/**
 * oidc-provider's models, then our own short-lived records kept the same way: a login's state
 * between its steps, the per-login record behind the `risk` claim, WebAuthn challenges, the
 * account page's sign-ins and pending authenticator apps (interactions/account/), device-key
 * nonces (interactions/device-key.ts). Tokens that belong to a grant are revoked with it.
 */
const OIDC_MODELS = [
  'Session', 'Interaction', 'Grant', 'AccessToken', 'AuthorizationCode', 'RefreshToken', 'ClientCredentials', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest', 'ReplayDetection', 'InitialAccessToken', 'RegistrationAccessToken',
  'LoginTransaction', 'LoginRecord', 'WebAuthnChallenge', 'AccountSignIn', 'AccountPendingTotp', 'AccountTotpClaim',
  'DeviceNonce',
] as const;
/**
 * Models oidc-provider saves once, under a new id (tokens, codes; changed later only by
 * consume()): inserted, which a server checks against the unique `_id` index, where an upsert
 * is a lookup first (on FerretDB v1 a scan of the collection, which grows with every token).
 * One round trip either way; an id that exists after all is replaced, as an upsert would.
 */
const WRITE_ONCE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'ClientCredentials', 'ReplayDetection', 'PushedAuthorizationRequest']);
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
    accountId: d.accountId ?? undefined,
  };
}

/**
 * Command failures that are answers, not the store failing (idp_store_errors_total):
 * duplicate key (the unique-key markers' refusal), write conflict, a collection that already
 * exists or does not.
 */
const ANSWER_CODES = new Set([11000, 11001, 112, 48, 26]);

/**
 * Errors raised before any command was sent: no server to send it to (the store unreachable)
 * or a client closed. Command monitoring never sees these, so a sustained outage would leave
 * idp_store_errors_total still once the pool's last commands had failed; they are counted as
 * the operation `serverSelection` instead, in the errors and in the operations.
 */
const UNSENT_ERRORS = new Set(['MongoServerSelectionError', 'MongoNotConnectedError', 'MongoTopologyClosedError']);

/** The store with each part's methods reporting an unsent operation's failure to `unsent`. */
function reportingUnsent(storage: Storage, unsent: (seconds: number) => void): Storage {
  const wrap = (part: object): object => {
    const wrapped = new Map<PropertyKey, { fn: unknown; call: (...a: unknown[]) => unknown }>();
    return new Proxy(part, {
      get(target, key) {
        const fn = Reflect.get(target, key, target) as unknown;
        if (typeof fn !== 'function') return fn;
        let w = wrapped.get(key);
        if (w?.fn !== fn) {
          const call = (...args: unknown[]) => {
            const start = performance.now();
            const out = (fn as (...a: unknown[]) => unknown).apply(target, args);
            // Promises only: an async generator (a scan) is left as it is.
            if (!(out instanceof Promise)) return out;
            return out.catch((err: unknown) => {
              if (UNSENT_ERRORS.has((err as Error | undefined)?.name ?? '')) unsent((performance.now() - start) / 1000);
              throw err;
            });
          };
          w = { fn, call };
          wrapped.set(key, w);
        }
        return w.call;
      },
    });
  };
  return Object.fromEntries(Object.entries(storage).map(([k, v]) => [k, k !== 'stats' && typeof v === 'object' && v !== null ? wrap(v as object) : v])) as unknown as Storage;
}

export async function openMongoStorage(uri: string, options: MongoOptions = {}): Promise<Storage> {
  // monitorCommands: every command sent is counted (StoreStats), as `command:collection`.
  const conn = mongoose.createConnection(uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false, monitorCommands: true });
  const ops = new Map<string, number>();
  // Timing (StoreStats.observe): the driver measures each command; the name is the started one's.
  let observer: StoreObserver | undefined;
  const started = new Map<number, string>();
  conn.getClient().on('commandStarted', (e) => {
    const target = (e.command as Record<string, unknown>)[e.commandName];
    const name = typeof target === 'string' ? `${e.commandName}:${target}` : e.commandName;
    ops.set(name, (ops.get(name) ?? 0) + 1);
    if (observer) started.set(e.requestId, name);
    options.onCommand?.(e.commandName, e.command as Record<string, unknown>);
  });
  const finished = (requestId: number, ms: number, failed: boolean) => {
    const name = started.get(requestId);
    if (name === undefined) return;
    started.delete(requestId);
    observer?.op(name, ms / 1000, failed);
  };
  conn.getClient().on('commandSucceeded', (e) => finished(e.requestId, e.duration, false));
  conn.getClient().on('commandFailed', (e) => finished(e.requestId, e.duration, !ANSWER_CODES.has((e.failure as { code?: number }).code ?? -1)));
  await conn.asPromise();
  const { Account, Client, Attempt, Consumed, Event, RiskUser, Observation, Factor, FactorMark, VersionMark, Role } = registerModels(conn);
  // One collection per oidc-provider model (as oidc-provider's own MongoDB example does):
  // short-lived tokens do not crowd the collections sessions and grants are looked up in.
  // Change stamps (StoreStats' ClientStore.stamp): one small document per kind of record.
  const stamps = conn.collection<{ _id: string; stamp: string }>('stamps');
  // Markers of versioned account changes (see versioned()).
  const versions = conn.collection<AccountVersionDoc>('account_versions');
  // Migrations done once per database: a document each, inserted when it has run.
  const migrations = conn.collection<{ _id: string; at: Date }>('migrations');
  const oidcModels = new Map<string, Model<OidcDoc>>();
  for (const name of OIDC_MODELS) {
    oidcModels.set(name, conn.model<OidcDoc>(`Oidc${name}`, oidcSchema.clone().set('collection', `oidc_${name.toLowerCase()}`)));
  }
  const oidcModel = (name: string): Model<OidcDoc> => {
    const m = oidcModels.get(name);
    if (!m) throw new Error(`unknown oidc-provider model ${name}`);
    return m;
  };

  for (const m of [Account, Client, Attempt, Consumed, Event, RiskUser, Observation, Factor, FactorMark, ...oidcModels.values()]) {
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
  await versions.createIndex({ accountId: 1 });
  await Event.collection.createIndex({ ts: 1, _id: 1 });
  await Event.collection.createIndex({ user: 1, ts: -1, _id: -1 });
  // Clients stored before versions are version 1, so a versioned change can name them.
  await Client.updateMany({ version: { $exists: false } }, { $set: { version: 1 } });
  await Event.collection.createIndex({ behaviourTs: 1 }, { sparse: true });
  await Attempt.collection.createIndex({ key: 1, at: -1 });
  await Observation.collection.createIndex({ user: 1, kind: 1, ts: -1 });
  await Observation.collection.createIndex({ ip: 1, kind: 1, ts: -1 });
  await Observation.collection.createIndex({ expiresAt: 1 });
  await Factor.collection.createIndex({ accountId: 1, createdAt: 1 });
  // Sparse: only passkeys have a credential id; it is unique across all accounts. (FerretDB v1
  // does not implement partialFilterExpression; sparse works on both.)
  await Factor.collection.createIndex({ 'webauthn.credentialId': 1 }, { unique: true, sparse: true });
  await FactorMark.collection.createIndex({ factorId: 1, kind: 1, value: -1 });
  let ttlRefused = false;
  // The consumed markers expire with their records: the sweep looks them up by expiry too.
  for (const [name, m] of [...oidcModels, ['Consumed', Consumed] as const]) {
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
  // A user's sessions, grants and tokens (issue 11). Sparse: client-credentials tokens and
  // interactions have no account.
  await Promise.all([...oidcModels.values()].map((m) => m.collection.createIndex({ accountId: 1 }, { sparse: true })));
  // Records stored before the account id was kept get it from their payload, once per
  // database (the marker); two instances migrating at once write the same values.
  if (!(await migrations.findOne({ _id: 'oidc-account-id' }))) {
    for (const m of oidcModels.values()) {
      for await (const d of m.find({ accountId: { $exists: false } }, { payload: 1 }).lean().cursor()) {
        let accountId: unknown;
        try {
          accountId = (JSON.parse((d as OidcDoc).payload) as { accountId?: unknown }).accountId;
        } catch {
          continue;
        }
        await m.updateOne({ _id: d._id }, { $set: { accountId: typeof accountId === 'string' ? accountId : null } });
      }
    }
    await migrations.updateOne({ _id: 'oidc-account-id' }, { $set: { at: new Date() } }, { upsert: true }).catch((err: unknown) => {
      if (!isDuplicateKey(err)) throw err;
    });
  }

  /** Bucket state: its counted attempts and the newest. `fresh` when that is older than the window. */
  async function bucket(key: string, now: number, windowMs: number) {
    const last = await Attempt.findOne({ key, kind: 'attempt' }).sort({ at: -1 }).lean();
    if (!last || last.at + windowMs <= now) return { fresh: true, stale: Boolean(last), count: 0, lastAt: 0 };
    const count = await Attempt.countDocuments({ key, kind: 'attempt' });
    return { fresh: false, stale: false, count, lastAt: last.at };
  }

  /**
   * The bucket's attempts, newest first, in one round trip (a count and a look at the newest
   * would be two): at most `max + 1`, which is all of them whenever the limit is not passed;
   * beyond that only "over the limit" matters. A bucket holds at most `max` counted attempts
   * (and, for a moment, the attempts of parallel callers about to withdraw).
   */
  async function attemptsOf(key: string, max: number): Promise<{ _id: string; at: number }[]> {
    return Attempt.find({ key, kind: 'attempt' }, { at: 1 }).sort({ at: -1 }).limit(max + 1).lean();
  }

  /**
   * Check, insert, then count: the attempt is counted by inserting its own document, then it
   * reads the bucket (its count and the newest other attempt, in one read). If the count is
   * over the limit, or the progressive delay for the attempts before it has not passed since
   * the newest other one, it withdraws and is refused.
   * - Limit: any two attempts both admitted would each have counted the other's document,
   *   so no more than `max` are ever admitted.
   * - Delay: of two attempts inside each other's delay, the one that reads second sees the
   *   first's document, so it is refused; a burst of parallel attempts therefore gets at most
   *   the free allowance verified.
   * No count is lost, whatever the server's update atomicity. Under contention an attempt
   * may be refused early (a withdrawn document still counted): the strict side. The check
   * before the insert refuses an attempt over the limit or inside its delay without writing,
   * so a flood of refused attempts leaves no documents that could hold up a later one.
   */
  async function reserve(key: string, { now, max, windowMs, waitMs }: ReserveOptions): Promise<AttemptReservation> {
    const before = await attemptsOf(key, max);
    const stale = before.length > 0 && before[0]!.at + windowMs <= now;
    if (stale) await Attempt.deleteMany({ key, at: { $lte: now - windowMs } });
    const counted = stale ? 0 : before.length;
    if (counted >= max) return { allowed: false, reason: 'limit', count: max, blockedUntil: 0 };
    const waitUntil = nextAttemptAt(counted, before[0]?.at ?? 0, waitMs);
    if (now < waitUntil) return { allowed: false, reason: 'delayed', count: counted, blockedUntil: waitUntil };
    const _id = `${key}#${crypto.randomUUID()}`;
    await Attempt.create({ _id, key, kind: 'attempt', at: now });
    const after = await attemptsOf(key, max);
    const count = after.length;
    if (count > max) {
      await Attempt.deleteOne({ _id });
      return { allowed: false, reason: 'limit', count: max, blockedUntil: 0 };
    }
    const wait = waitMs(count - 1);
    const other = after.find((d) => d._id !== _id);
    if (wait > 0 && other && now < other.at + wait) {
      await Attempt.deleteOne({ _id });
      return { allowed: false, reason: 'delayed', count: count - 1, blockedUntil: other.at + wait };
    }
    return { allowed: true, id: _id, count, blockedUntil: now + waitMs(count) };
  }

  /** The factors with their marks (see toFactor). */
  async function withMarks(docs: FactorDoc[]): Promise<FactorRecord[]> {
    if (docs.length === 0) return [];
    // One factor (the usual case) by equality: FerretDB v1 pushes `$in` down to neither backend.
    const marks = await FactorMark.find({ factorId: docs.length === 1 ? docs[0]!._id : { $in: docs.map((d) => d._id) } }).lean();
    return docs.map((d) => toFactor(d, marks));
  }

  /**
   * Inserts a factor's single-use marker; false when it exists (another call got there first).
   * A unique `_id` insert: atomic on every MongoDB-compatible server, unlike a conditional
   * update on FerretDB v1 (100 parallel `updateOne({counter: {$lt: v}})` were seen to modify 44).
   */
  async function mark(doc: FactorMarkDoc): Promise<boolean> {
    try {
      await FactorMark.create(doc);
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  /**
   * Compare-and-set of a record's version without transactions or atomic conditional updates
   * (FerretDB v1, see the header): the one change of version `from` that inserts the marker
   * `<kind>:<id>:<from + 1>` (a unique `_id`) may write; every other gets false. A marker whose
   * record is still at `from` after STUCK_VERSION_MS belongs to a writer that died before
   * writing: it is removed (only that marker, by its time, so two takers cannot both remove a
   * fresh one) and the insert tried once more.
   */
  async function claimVersion(kind: string, id: string, from: number, current: () => Promise<number | undefined>): Promise<boolean> {
    const _id = `${kind}:${id}:${from + 1}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await VersionMark.create({ _id, at: new Date() });
        return true;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
      const mark = await VersionMark.findById(_id).lean();
      if (!mark || Date.now() - new Date(mark.at).getTime() < STUCK_VERSION_MS || (await current()) !== from) return false;
      await VersionMark.deleteOne({ _id, at: mark.at });
    }
    return false;
  }

  /** Removes a record's version markers (with the record: a new one of the same id starts at 1). */
  async function dropVersionMarks(kind: string, id: string): Promise<void> {
    await VersionMark.deleteMany({ _id: { $regex: `^${escapeRegex(`${kind}:${id}:`)}` } });
  }

  /**
   * A versioned change of an account (AccountStore.updateProfile / setDisabled). FerretDB v1
   * applies a conditional update as a query and then a write (mongo.ts header), so 100
   * parallel `updateOne({ version: v })` could all match. Instead, each version is made by
   * whoever inserts its marker (`<account>:<created>:<v + 1>`, unique `_id`): exactly one
   * caller per version, on every MongoDB-compatible server, also across instances. Only that
   * caller writes version v + 1. Markers stay until the account is deleted: a caller that read
   * version v long ago must still find v + 1 taken (the account's creation time in the id keeps
   * a re-created account, a directory user linked again, from meeting its predecessor's markers).
   *
   * A caller that dies between its marker and its write leaves the account at v with v + 1
   * taken; the marker holds the change, so a later caller that finds it older than
   * VERSION_STALE_MS applies it for the dead one (conditionally on v: an exact check on
   * MongoDB; on FerretDB v1 it narrows the race to one update's query and write), and is
   * refused as it would have been had the first one finished.
   */
  async function versioned(id: string, ifVersion: number, set: Record<string, unknown>, unset: string[]) {
    const what = `account ${id}`;
    const d = await Account.findById(id, { version: 1, createdAt: 1 }).lean();
    if (!d) throw new VersionConflictError(what, undefined);
    if ((d.version ?? 1) !== ifVersion) throw new VersionConflictError(what, d.version ?? 1);
    const next = ifVersion + 1;
    const markId = `${id}:${new Date(d.createdAt).getTime()}:${next}`;
    const apply = (change: AccountVersionDoc['change'], filter: Record<string, unknown>) => Account.updateOne(
      { _id: id, ...filter },
      { $set: { ...change.set, version: next }, ...(change.unset.length ? { $unset: Object.fromEntries(change.unset.map((k) => [k, 1])) } : {}) },
    );
    try {
      await versions.insertOne({ _id: markId, accountId: id, version: next, change: { set, unset }, at: new Date() });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const mark = await versions.findOne({ _id: markId });
      const now = await Account.findById(id, { version: 1 }).lean();
      if (mark && now && (now.version ?? 1) === ifVersion && Date.now() - mark.at.getTime() > VERSION_STALE_MS) {
        await apply(mark.change, ifVersion === 1 ? { $or: [{ version: 1 }, { version: { $exists: false } }] } : { version: ifVersion });
      }
      throw new VersionConflictError(what, now ? Math.max(now.version ?? 1, next) : undefined);
    }
    await apply({ set, unset }, {});
    const after = await Account.findById(id).lean();
    // Deleted meanwhile: the change went with it.
    if (!after) throw new VersionConflictError(what, undefined);
    return toAccount(after);
  }

  /** Sets lastUsedAt; false when the factor is gone (removed while it was being used). */
  async function touched(id: string, at: Date): Promise<boolean> {
    return (await Factor.updateOne({ _id: id }, { $set: { lastUsedAt: at } })).matchedCount === 1;
  }

  // The audit trail (issue 11): its own module and collection.
  const audit = await openMongoAudit(conn);
  // Policy lifecycle and feedback loop (issue 11).
  const policyStores = await openMongoPolicyStores(conn);

  const storage: Storage = {
    kind: 'mongodb',
    stats: {
      ops,
      observe: (o) => {
        observer = o;
        if (!o) started.clear();
      },
    },
    audit,
    ...policyStores,
    accounts: {
      async create(a) {
        const now = new Date();
        try {
          const doc = await Account.create({
            _id: a.id, username: a.username, skeleton: usernameSkeleton(a.username), email: a.email, emailVerified: a.emailVerified, name: a.name,
            passwordHash: a.passwordHash, trustedDevices: [], createdAt: now, updatedAt: now, version: 1, profileUpdatedAt: now,
            ...(a.directory ? { directory: a.directory } : {}), ...(a.claims ? { claims: a.claims } : {}),
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
        const current = d.trustedDevices ?? [];
        const devices = [...current.filter((x) => x !== deviceId), deviceId].slice(-keep);
        // A returning browser is usually the newest already: nothing to write.
        if (devices.length === current.length && devices.every((x, i) => x === current[i])) return;
        await Account.updateOne({ _id: id }, { $set: { trustedDevices: devices } });
      },
      async syncDirectoryProfile(id, p) {
        await Account.updateOne({ _id: id }, {
          $set: {
            directory: p.directory, email: p.email ?? null, emailVerified: p.emailVerified, name: p.name ?? null, claims: p.claims, updatedAt: new Date(),
            ...(p.profileUpdatedAt ? { profileUpdatedAt: p.profileUpdatedAt } : {}),
          },
        });
      },
      // ——— Administration (issue 11) ———
      async updateProfile(id, p, at, ifVersion) {
        return versioned(id, ifVersion, {
          email: p.email ?? null, emailVerified: p.emailVerified, name: p.name ?? null, claims: p.claims, profileUpdatedAt: at, updatedAt: new Date(),
        }, []);
      },
      async setDisabled(id, disabled, ifVersion) {
        return disabled
          ? versioned(id, ifVersion, { disabled: { at: disabled.at, reason: disabled.reason, ...(disabled.by ? { by: disabled.by } : {}) }, updatedAt: new Date() }, [])
          : versioned(id, ifVersion, { updatedAt: new Date() }, ['disabled']);
      },
      async page(f, { after, limit }) {
        const from = after === undefined ? undefined : usernameCursor(after);
        const n = Math.max(1, Math.min(Math.floor(limit), ACCOUNT_PAGE_MAX));
        // One more than asked: whether there is a next page, without a second query.
        const docs = await Account.find(accountQuery(f, from)).sort({ username: 1 }).limit(n + 1).lean();
        const items = docs.slice(0, n).map(toAccount);
        return { items, ...(docs.length > n ? { next: encodeCursor([items[items.length - 1]!.username]) } : {}) };
      },
      async delete(id) {
        const removed = (await Account.deleteOne({ _id: id })).deletedCount === 1;
        await versions.deleteMany({ accountId: id });
        return removed;
      },
    },
    clients: {
      async create(c) {
        const createdAt = new Date();
        try {
          await Client.create({ _id: c.clientId, secretCiphertext: c.secretCiphertext, metadata: JSON.stringify(c.metadata), createdAt, updatedAt: createdAt, version: 1 });
        } catch (err) {
          if (isDuplicateKey(err)) throw new DuplicateError('client', c.clientId);
          throw err;
        }
        // After the change: a cache that sees the new stamp reads the new client (no transactions).
        await stamps.replaceOne({ _id: 'clients' }, { stamp: crypto.randomUUID() }, { upsert: true });
        return { ...c, createdAt, updatedAt: createdAt, version: 1 };
      },
      async find(clientId) {
        const d = await Client.findById(clientId).lean();
        return d ? toClient(d) : undefined;
      },
      async list() {
        return (await Client.find().sort({ _id: 1 }).lean()).map(toClient);
      },
      async page({ after, limit }) {
        const filter = after === undefined ? {} : { _id: { $gt: String(decodeCursor(after, 1)[0]) } };
        const docs = (await Client.find(filter).sort({ _id: 1 }).limit(limit + 1).lean()).map(toClient);
        const items = docs.slice(0, limit);
        return { items, next: docs.length > limit ? encodeCursor([items.at(-1)!.clientId]) : undefined };
      },
      async update(clientId, change, ifVersion) {
        const versionNow = async () => { const d = await Client.findById(clientId, { version: 1 }).lean(); return d ? (d.version ?? 1) : undefined; };
        const seen = await versionNow();
        if (seen !== ifVersion || !(await claimVersion('client', clientId, ifVersion, versionNow))) {
          throw new VersionConflictError(`client "${clientId}"`, seen === ifVersion ? ifVersion + 1 : seen);
        }
        const updatedAt = new Date();
        const r = await Client.updateOne({ _id: clientId, version: ifVersion }, {
          $set: { secretCiphertext: change.secretCiphertext ?? null, metadata: JSON.stringify(change.metadata), updatedAt, version: ifVersion + 1 },
        });
        // Removed between the check and the write (a removal claims no version).
        if (r.matchedCount === 0) throw new VersionConflictError(`client "${clientId}"`, undefined);
        await stamps.replaceOne({ _id: 'clients' }, { stamp: crypto.randomUUID() }, { upsert: true });
        const d = await Client.findById(clientId).lean();
        if (!d) throw new VersionConflictError(`client "${clientId}"`, undefined);
        return toClient(d);
      },
      async remove(clientId, ifVersion) {
        const versionNow = async () => { const d = await Client.findById(clientId, { version: 1 }).lean(); return d ? (d.version ?? 1) : undefined; };
        const seen = await versionNow();
        // A removal claims the next version like a change, so it cannot interleave with one.
        if (seen !== ifVersion || !(await claimVersion('client', clientId, ifVersion, versionNow))) {
          throw new VersionConflictError(`client "${clientId}"`, seen === ifVersion ? ifVersion + 1 : seen);
        }
        // The version in the filter: a remover that read the version before another removal (and
        // the markers it dropped) finds nothing here, and must not report a removal.
        const r = await Client.deleteOne({ _id: clientId, version: ifVersion });
        if (r.deletedCount === 0) throw new VersionConflictError(`client "${clientId}"`, undefined);
        await stamps.replaceOne({ _id: 'clients' }, { stamp: crypto.randomUUID() }, { upsert: true });
        await dropVersionMarks('client', clientId);
      },
      async stamp() {
        return (await stamps.findOne({ _id: 'clients' }))?.stamp ?? '';
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
      async settle(resets, refund) {
        await Promise.all([
          // One key by equality: FerretDB v1 pushes `$in` down to neither backend.
          resets.length ? Attempt.deleteMany({ key: resets.length === 1 ? resets[0]! : { $in: [...resets] } }) : undefined,
          refund ? Attempt.deleteOne({ _id: refund.attemptId }) : undefined,
        ]);
      },
      async get(key, now, windowMs, waitMs = () => 0) {
        const b = await bucket(key, now, windowMs);
        return { count: b.count, blockedUntil: nextAttemptAt(b.count, b.lastAt, waitMs) };
      },
      async sweep(now, rules) {
        // A bucket is its documents: one whose newest is older than the window counts as empty
        // (reserve deletes them itself when the key comes back). Found by key, newest first,
        // then deleted by age, so an attempt counted meanwhile (newer than the cutoff) stays
        // and counts alone, as it would have anyway. Reset buckets leave no documents here,
        // so `idleMs` has nothing to find.
        for (const { prefix, windowMs } of rules) {
          if (!Number.isFinite(windowMs)) continue;
          const cutoff = now - windowMs;
          // The keys whose newest document is old, read in key order, newest first within a
          // key (the {key, at} index), streamed: neither `$max` in `$group` (FerretDB v1 has
          // none) nor `distinct` (one reply, at most 16 MB: a large spray would stop the sweep).
          const cursor = Attempt.find({ key: { $gte: prefix, $lt: prefixEnd(prefix) }, kind: 'attempt' }, { key: 1, at: 1 })
            .sort({ key: 1, at: -1 }).lean().cursor();
          let stale: string[] = [];
          let previous: string | undefined;
          // Many keys a statement: FerretDB v1 does not push `$in` down, so each is a scan.
          const flush = async () => {
            if (stale.length) await Attempt.deleteMany({ key: stale.length === 1 ? stale[0]! : { $in: stale }, at: { $lte: cutoff } });
            stale = [];
          };
          for await (const d of cursor as AsyncIterable<{ key: string; at: number }>) {
            if (d.key === previous) continue;
            previous = d.key;
            if (d.at <= cutoff) stale.push(d.key);
            if (stale.length >= 5000) await flush();
          }
          await flush();
        }
      },
    },
    oidc: {
      async upsert(rec) {
        const doc = {
          payload: JSON.stringify(rec.payload), grantId: rec.grantId ?? null, uid: rec.uid ?? null, userCode: rec.userCode ?? null,
          expiresAt: rec.expiresAt === undefined ? null : new Date(rec.expiresAt), consumed: rec.consumed ?? null, accountId: rec.accountId ?? null,
        };
        const m = oidcModel(rec.model);
        if (WRITE_ONCE.has(rec.model)) {
          try {
            await m.collection.insertOne({ _id: rec.id, ...doc } as never); // the driver types `_id` as an ObjectId; ours are strings
            return;
          } catch (err) {
            if (!isDuplicateKey(err)) throw err;
          }
        }
        await replaceById(m, rec.id, doc);
      },
      async replace(rec, now) {
        const res = await oidcModel(rec.model).updateOne(
          { _id: rec.id, $or: [{ expiresAt: null }, { expiresAt: { $gt: new Date(now) } }] },
          { $set: {
            payload: JSON.stringify(rec.payload), grantId: rec.grantId ?? null, uid: rec.uid ?? null, userCode: rec.userCode ?? null,
            expiresAt: rec.expiresAt === undefined ? null : new Date(rec.expiresAt), accountId: rec.accountId ?? null,
          } },
        );
        return res.matchedCount === 1;
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
      async claim(model, id, expiresAt) {
        // The same unique-_id marker as consume: exactly one caller inserts it.
        try {
          await Consumed.create({ _id: `${model}:${id}`, at: Math.floor(Date.now() / 1000), expiresAt: new Date(expiresAt) });
          return true;
        } catch (err) {
          if (isDuplicateKey(err)) return false;
          throw err;
        }
      },
      async consume(model, id, at) {
        // The marker's unique _id decides who consumed it: exactly one caller inserts it. The
        // record is stamped first, in the round trip that also reads what the marker needs (that
        // the record exists, whether it was stamped before, its expiry so both are swept
        // together): two round trips, not three. Whoever finds a stamp already there refuses;
        // a stamp whose marker insert failed leaves the record unusable: the safe side. A
        // refused caller's stamp may replace the first one's time with its own: the record is a
        // replayed one then, revoked with its grant (adapters/oidc-adapter.ts consume()).
        // (No projection: FerretDB v1 refuses one in findAndModify.)
        const rec = await oidcModel(model).findOneAndUpdate({ _id: id }, { $set: { consumed: at } }).lean();
        if (!rec || rec.consumed) return false;
        try {
          await Consumed.create({ _id: `${model}:${id}`, at, expiresAt: rec.expiresAt ?? null });
        } catch (err) {
          if (isDuplicateKey(err)) return false;
          throw err;
        }
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
      // ——— Administration (issue 11) ———
      async listByAccount(model, accountId, now) {
        const docs = await oidcModel(model).find({ accountId }).sort({ _id: 1 }).lean();
        return docs.map((d) => toOidc(model, d, now)).filter((r): r is OidcRecord => r !== undefined);
      },
      async removeByAccount(accountId) {
        const counts = await Promise.all([...oidcModels.values()].map((m) => m.deleteMany({ accountId })));
        return counts.reduce((n, r) => n + r.deletedCount, 0);
      },
    },
    events: {
      async append(e) {
        const ts = Date.parse(e.ts);
        await Event.create({ _id: e.id, ts, user: e.user, doc: JSON.stringify(e), ...(e.behaviour ? { behaviourTs: ts } : {}) });
      },
      async *list({ since }) {
        const cursor = Event.find({ ts: { $gte: since ?? 0 } }).sort({ ts: 1, _id: 1 }).lean().cursor();
        for await (const d of cursor) yield JSON.parse((d as EventDoc).doc) as LoginEventRecord;
      },
      async findById(id) {
        const d = await Event.findById(id).lean();
        return d ? (JSON.parse(d.doc) as LoginEventRecord) : undefined;
      },
      async query(f, { after, limit }) {
        const range = { $gte: f.from ?? 0, $lt: f.to ?? Number.MAX_SAFE_INTEGER };
        const filter: Record<string, unknown> = { ...(f.user !== undefined ? { user: f.user } : {}), ts: range };
        if (after !== undefined) {
          const [cts, cid] = eventCursor(after);
          filter.$or = [{ ts: { $lt: Number(cts) } }, { ts: Number(cts), _id: { $lt: String(cid) } }];
        }
        const docs = (await Event.find(filter).sort({ ts: -1, _id: -1 }).limit(limit + 1).lean()).map((d) => JSON.parse(d.doc) as LoginEventRecord);
        const items = docs.slice(0, limit);
        const last = items.at(-1);
        return { items, next: docs.length > limit && last ? encodeCursor([Date.parse(last.ts), last.id]) : undefined };
      },
      async pruneBehaviour(before) {
        let changed = 0;
        for (;;) {
          const batch = await Event.find({ behaviourTs: { $lt: before } }, { doc: 1 }).limit(500).lean();
          let progress = 0;
          for (const d of batch) {
            let e: LoginEventRecord;
            try {
              e = JSON.parse(d.doc) as LoginEventRecord;
            } catch {
              // Not JSON (edited by hand): `idp events export` names it; the prune goes on.
              continue;
            }
            delete e.behaviour;
            // Conditional on the text read, so a concurrent writer's change is never overwritten
            // with an older text (a concurrent prune writes the same result).
            const r = await Event.updateOne({ _id: d._id, doc: d.doc }, { $set: { doc: JSON.stringify(e) }, $unset: { behaviourTs: 1 } });
            progress += r.modifiedCount;
          }
          changed += progress;
          if (batch.length < 500 || progress === 0) return changed;
        }
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
      async snapshot(user, queries) {
        const [doc, ...observations] = await Promise.all([this.getUser(user), ...queries.map((qy) => this.observations(qy.by, qy.kind, qy.since, qy.limit))]);
        return { doc, observations: observations as RiskObservation[][] };
      },
      async forget(user) {
        await Promise.all([RiskUser.deleteOne({ _id: user }), Observation.deleteMany({ user })]);
      },
    },
    roles: {
      async get(accountId) {
        const d = await Role.findById(accountId).lean();
        return d ? { scopes: [...d.scopes], version: d.version } : { scopes: [], version: 0 };
      },
      async set(accountId, scopes, ifVersion) {
        const sorted = [...new Set(scopes)].sort();
        const versionNow = async () => (await Role.findById(accountId, { version: 1 }).lean())?.version ?? 0;
        if (ifVersion === 0) {
          // The first set is an insert: the unique _id lets one of parallel firsts in.
          try {
            await Role.create({ _id: accountId, scopes: sorted, version: 1 });
            return { scopes: sorted, version: 1 };
          } catch (err) {
            if (!isDuplicateKey(err)) throw err;
            throw new VersionConflictError(`the roles of account "${accountId}"`, await versionNow());
          }
        }
        const seen = await versionNow();
        if (seen !== ifVersion || !(await claimVersion('roles', accountId, ifVersion, versionNow))) {
          throw new VersionConflictError(`the roles of account "${accountId}"`, seen === ifVersion ? ifVersion + 1 : seen);
        }
        await Role.updateOne({ _id: accountId, version: ifVersion }, { $set: { scopes: sorted, version: ifVersion + 1 } });
        return { scopes: sorted, version: ifVersion + 1 };
      },
      async list() {
        return (await Role.find({ 'scopes.0': { $exists: true } }).sort({ _id: 1 }).lean()).map((d) => ({ accountId: d._id, scopes: [...d.scopes], version: d.version }));
      },
    },
    factors: {
      async add(f) {
        const createdAt = new Date();
        try {
          await Factor.create({
            _id: f.id, accountId: f.accountId, kind: f.kind, label: f.label, createdAt, counter: f.counter ?? 0, enrolledVia: f.enrolledVia,
            ...(f.totp ? { totp: f.totp } : {}), ...(f.webauthn ? { webauthn: f.webauthn } : {}),
            ...(f.recovery ? { recovery: { hashes: f.recovery.hashes } } : {}),
          });
        } catch (err) {
          if (isDuplicateKey(err)) throw new DuplicateError('factor', f.webauthn?.credentialId ?? f.id);
          throw err;
        }
        // Codes already marked used when the record was made (a restored record) stay used.
        for (const u of f.recovery?.used ?? []) await mark({ _id: `${f.id}:recovery:${u.hash}`, factorId: f.id, kind: 'recovery', hash: u.hash, at: u.at });
        const [rec] = await withMarks([(await Factor.findById(f.id).lean())!]);
        return rec!;
      },
      async list(accountId) {
        return withMarks(await Factor.find({ accountId }).sort({ createdAt: 1, _id: 1 }).lean());
      },
      async find(accountId, id) {
        // By `_id` alone and the owner checked here: FerretDB v1 on SQLite evaluates no other filter in SQL.
        const d = await Factor.findById(id).lean();
        return d && d.accountId === accountId ? (await withMarks([d]))[0] : undefined;
      },
      async findByCredentialId(credentialId) {
        // `kind` as well: FerretDB v1 pushes no dotted path down, but that equality, so only passkeys are read.
        const d = await Factor.findOne({ kind: 'webauthn', 'webauthn.credentialId': credentialId }).lean();
        return d ? (await withMarks([d]))[0] : undefined;
      },
      async remove(accountId, id) {
        const removed = (await Factor.deleteOne({ _id: id, accountId })).deletedCount === 1;
        if (removed) await FactorMark.deleteMany({ factorId: id });
        return removed;
      },
      async removeAll(accountId, kind) {
        const ids = (await Factor.find({ accountId, ...(kind ? { kind } : {}) }, { _id: 1 }).lean()).map((d) => d._id);
        if (ids.length === 0) return 0;
        const { deletedCount } = await Factor.deleteMany({ _id: { $in: ids } });
        await FactorMark.deleteMany({ factorId: { $in: ids } });
        return deletedCount;
      },
      async advance(id, value, at) {
        // Mark-then-check, never a conditional update alone (see mark()). Of two calls with the
        // same value, the unique marker admits one. Of two with different values, a call that
        // finds a higher value marked refuses: both can succeed only when the lower one checked
        // before the higher one marked, i.e. in increasing order. So the accepted values only grow.
        const markId = `${id}:counter:${value}`;
        if (!(await mark({ _id: markId, factorId: id, kind: 'counter', value, at }))) return false;
        const marks = await FactorMark.find({ factorId: id, kind: 'counter' }, { value: 1 }).lean();
        if (marks.some((m) => (m.value ?? 0) > value)) return false;
        // The stored counter is raised and lastUsedAt stamped in one update, only while the
        // counter is below `value`: that refuses a value at or below the counter a factor was
        // enrolled with (no mark holds it), and a factor removed meanwhile (its marks are
        // removed with it; this call's own goes too). The marks stay authoritative for the
        // counter read back: a lost update here (FerretDB v1) cannot lower it.
        if ((await Factor.updateOne({ _id: id, counter: { $lt: value } }, { $set: { counter: value, lastUsedAt: at } })).matchedCount !== 1) {
          await FactorMark.deleteOne({ _id: markId });
          return false;
        }
        // Lower marks are no longer needed: cleared once a few have gathered, not at every use
        // (a round trip saved per sign-in; readers take the highest mark anyway).
        if (marks.filter((m) => (m.value ?? 0) < value).length >= KEEP_COUNTER_MARKS) {
          await FactorMark.deleteMany({ factorId: id, kind: 'counter', value: { $lt: value } });
        }
        return true;
      },
      async touch(id, at) {
        await touched(id, at);
      },
      async useRecoveryCode(id, hash, at) {
        // By `_id` alone, checked here: the one filter FerretDB v1 evaluates in SQL on both backends.
        const f = await Factor.findById(id, { kind: 1, recovery: 1 }).lean();
        if (f?.kind !== 'recovery' || !f.recovery?.hashes.includes(hash)) return false;
        const _id = `${id}:recovery:${hash}`;
        if (!(await mark({ _id, factorId: id, kind: 'recovery', hash, at }))) return false;
        // Replaced (removed) while being used: the old set's code does not count.
        if (!(await touched(id, at))) {
          await FactorMark.deleteOne({ _id });
          return false;
        }
        return true;
      },
    },
    async close() {
      await conn.close();
    },
  };
  return reportingUnsent(storage, (seconds) => {
    ops.set('serverSelection', (ops.get('serverSelection') ?? 0) + 1);
    observer?.op('serverSelection', seconds, true);
  });
}

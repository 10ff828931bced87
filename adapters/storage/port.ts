/**
 * The storage port: the only way the rest of the code reaches persistent data.
 * Two implementations pass one contract suite (test/integration/storage.contract.test.ts):
 * the embedded store (adapters/storage/embedded.ts) and MongoDB (adapters/storage/mongo.ts).
 * Only adapters/ knows which one is in use (ARCHITECTURE.md).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import type { AuditEntry, AuditSealer } from './audit-chain.ts';
import type { Actor, AuditRecord } from '../../models/types.ts';
import type { Account, AccountDisabled, AccountProfile, DirectoryProfile, AttemptReservation, ClientRecord, FactorKind, FactorRecord, LoginEventRecord, NewAccount, NewFactor, OidcRecord, RiskObservation } from '../../models/types.ts';
import type { LabelRecord, ModelCandidate, NewLabel, NewPolicyVersion, PolicyVersion, PolicyVersionWithFiles } from '../../models/types.ts';

export class DuplicateError extends Error {
  override name = 'DuplicateError';
  readonly kind: 'account' | 'client' | 'factor';
  readonly key: string;
  /** 'similar': an account's username is free, but one that looks the same is taken. */
  readonly reason: 'taken' | 'similar';
  constructor(kind: 'account' | 'client' | 'factor', key: string, reason: 'taken' | 'similar' = 'taken') {
    super(reason === 'similar' ? `${kind} "${key}" looks like an existing username (a confusable of it); choose another` : `${kind} "${key}" already exists`);
    this.kind = kind;
    this.key = key;
    this.reason = reason;
  }
}

/**
 * Thrown by a versioned update (`ifVersion`) when the record's version is no longer the one
 * the caller read: someone else changed it meanwhile (the admin API answers 412, RFC 9110
 * §13.1.1 If-Match). `current` is the version now, undefined when the record is gone.
 */
export class VersionConflictError extends Error {
  override name = 'VersionConflictError';
  readonly current: number | undefined;
  constructor(what: string, current: number | undefined) {
    super(current === undefined ? `${what} no longer exists` : `${what} was changed meanwhile (now version ${current})`);
    this.current = current;
  }
}

/**
 * One page of a listing, in a stable order (usually by id): `next` is an opaque cursor to
 * pass as `after` for the following page, absent on the last one. Cursors, not offsets, so a
 * record added or removed meanwhile neither repeats nor skips another one.
 */
export interface Page<T> {
  items: T[];
  next?: string | undefined;
}

/** An opaque cursor for the position after `key` (the sort key of the last item of a page). */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A cursor that is not one this store handed out (the admin API answers 400 invalid_request). */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
  readonly code = 'invalid_request';
  constructor() {
    super('the cursor is not one a previous page returned');
  }
}

/** The key encodeCursor packed, of `length` elements; InvalidCursorError for anything else. */
export function decodeCursor(cursor: string, length: number): (string | number)[] {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === 'string' || typeof x === 'number')) throw new InvalidCursorError();
  return v as (string | number)[];
}

export interface PageRequest {
  /** The `next` of the previous page. */
  after?: string | undefined;
  /** At most this many items (the store may cap it). */
  limit: number;
}

// ——— Administration (issue 11): listing accounts ———

/** The username an AccountStore.page cursor resumes after; InvalidCursorError for another cursor. */
export function usernameCursor(after: string): string {
  const [username] = decodeCursor(after, 1);
  if (typeof username !== 'string') throw new InvalidCursorError();
  return username;
}

/** The (time in ms, id) an EventStore.query cursor resumes after; InvalidCursorError for another cursor. */
export function eventCursor(after: string): [number, string] {
  const [ts, id] = decodeCursor(after, 2);
  if (typeof ts !== 'number' || !Number.isFinite(ts) || typeof id !== 'string') throw new InvalidCursorError();
  return [ts, id];
}

/** Largest page AccountStore.page returns, whatever the request's limit. */
export const ACCOUNT_PAGE_MAX = 1000;

/** What AccountStore.page selects; every given condition must hold. */
export interface AccountFilter {
  /** Usernames that begin with this (as stored: PRECIS-mapped, lower case). */
  usernamePrefix?: string | undefined;
  /** The email, exactly as stored. */
  email?: string | undefined;
  disabled?: boolean | undefined;
  /** Accounts linked to the directory of this configured name. */
  directory?: string | undefined;
  createdAfter?: Date | undefined;
  createdBefore?: Date | undefined;
}

export interface AccountStore {
  /**
   * Throws DuplicateError when the username, or one with the same UTS #39 skeleton
   * (adapters/storage/skeleton.ts), is taken; enforced by a unique index, also against
   * parallel creations from several processes. Never overwrites.
   */
  create(account: NewAccount): Promise<Account>;
  findById(id: string): Promise<Account | undefined>;
  findByUsername(username: string): Promise<Account | undefined>;
  list(): Promise<Account[]>;
  setPasswordHash(id: string, passwordHash: string): Promise<void>;
  /** Adds a device id to the account's recognised devices, keeping the newest `keep`. */
  addTrustedDevice(id: string, deviceId: string, keep: number): Promise<void>;
  /** Refreshes a directory-linked account's link and claims (at each of its sign-ins). */
  syncDirectoryProfile(id: string, profile: DirectoryProfile): Promise<void>;

  // ——— Administration (issue 11): versioned changes, listing, deletion ———

  /**
   * Replaces the user's information (email, name, claims), sets `profileUpdatedAt` to `at`
   * and the version to `ifVersion + 1`, only if the account is at version `ifVersion`;
   * otherwise throws VersionConflictError (with the version now, undefined when the account
   * is gone). Atomic, also across processes and instances: of 100 parallel calls with one
   * `ifVersion`, exactly one succeeds.
   */
  updateProfile(id: string, profile: AccountProfile, at: Date, ifVersion: number): Promise<Account>;
  /** Disables (a value) or enables (undefined) the account; versioned like updateProfile. */
  setDisabled(id: string, disabled: AccountDisabled | undefined, ifVersion: number): Promise<Account>;
  /**
   * One page of accounts matching `filter`, ordered by username (unique, so the order is
   * stable); `next` resumes after the last one. Throws InvalidCursorError for an `after` this
   * store did not hand out. At most ACCOUNT_PAGE_MAX per page.
   */
  page(filter: AccountFilter, page: PageRequest): Promise<Page<Account>>;
  /** Removes the account record (its other records are the caller's: factors, risk, tokens). True when this call removed it. */
  delete(id: string): Promise<boolean>;
}

/** What a change of a client sets: its secret (absent: a public client) and its metadata. */
export interface ClientChange {
  secretCiphertext?: string | undefined;
  metadata: Record<string, unknown>;
}

export interface ClientStore {
  /** Throws DuplicateError when the client id is taken; never overwrites. */
  create(client: Pick<ClientRecord, 'clientId' | 'secretCiphertext' | 'metadata'>): Promise<ClientRecord>;
  find(clientId: string): Promise<ClientRecord | undefined>;
  list(): Promise<ClientRecord[]>;
  /** Clients in client id order, a page at a time. */
  page(req: PageRequest): Promise<Page<ClientRecord>>;
  /**
   * Replaces the secret and metadata of version `ifVersion`, making it version `ifVersion + 1`;
   * VersionConflictError when the client is at another version or gone. One winner among any
   * number of parallel changes of one version, also across instances. Changes the stamp.
   */
  update(clientId: string, change: ClientChange, ifVersion: number): Promise<ClientRecord>;
  /** Removes version `ifVersion` of the client; VersionConflictError otherwise. Changes the stamp. */
  remove(clientId: string, ifVersion: number): Promise<void>;
  /**
   * A value that changes with every change to any client (written after the change, in the
   * same transaction where the store has them), seen by every process and instance sharing
   * the store: a cache that read the same stamp before and after has nothing stale
   * (adapters/client-cache.ts). Random, not a counter: two changes at once on a server
   * without atomic increments (FerretDB v1) still leave a value nobody has seen before.
   */
  stamp(): Promise<string>;
}

export interface ReserveOptions {
  now: number;
  /** Counted attempts at which the bucket refuses all further attempts. */
  max: number;
  /** Ms after the last counted attempt at which the bucket starts afresh; Infinity = never. */
  windowMs: number;
  /**
   * The progressive delay: how long (ms) after the previous counted attempt an attempt may
   * be made when `count` attempts are already counted (0 = at once).
   */
  waitMs: (count: number) => number;
}

/**
 * When the next attempt of a bucket may be made: the wait for `count` counted attempts after
 * the last one, or 0 (none). No wait is no wait, even when a parallel attempt stamped its time
 * a moment later than the caller's clock.
 */
export function nextAttemptAt(count: number, lastAt: number, waitMs: (count: number) => number): number {
  const wait = count > 0 ? waitMs(count) : 0;
  return wait > 0 ? lastAt + wait : 0;
}

/**
 * The first string after every string that starts with `prefix` (its last UTF-16 unit plus
 * one), so a prefix can be looked up as a range of an index: keys from `prefix` (inclusive)
 * to this (exclusive). Our prefixes are ASCII, where code-unit, byte and collation orders agree.
 */
export function prefixEnd(prefix: string): string {
  if (!prefix) throw new Error('an empty prefix has no end');
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/**
 * Failure counters. `reserve` checks the limit and the progressive delay and counts the
 * attempt in one atomic step, before the password is checked, so parallel attempts can
 * neither be lost nor slip past the limit or the delay (ARCHITECTURE.md "Storage"; also
 * across instances sharing one MongoDB). The delay is derived from the count and the time
 * of the newest counted attempt, never written after the check: 100 parallel attempts see the
 * delay of each other's reservations, so beyond the free allowance an attempt is admitted
 * only once its delay since the newest counted one has passed, whichever order the
 * callers' clocks were read and their attempts counted in.
 */
export interface AttemptStore {
  reserve(key: string, opts: ReserveOptions): Promise<AttemptReservation>;
  reset(key: string): Promise<void>;
  /** Uncounts the attempt `reserve` returned (a success that should not count against a shared bucket). */
  refund(key: string, attemptId: string): Promise<void>;
  /**
   * A finished login's bookkeeping in one go: `reset` each of `resets`, and `refund` the one
   * attempt given (its key is never among `resets`).
   */
  settle(resets: readonly string[], refund?: { key: string; attemptId: string }): Promise<void>;
  /** The bucket now: counted attempts, and until when the next attempt must wait (0 = none). */
  get(key: string, now: number, windowMs: number, waitMs?: (count: number) => number): Promise<{ count: number; blockedUntil: number }>;
  /**
   * Reclaims space only: removes buckets that already count as empty, so keys seen once (a
   * sprayed address, a reset account) do not stay forever. A bucket whose key starts with a
   * rule's prefix goes once its newest attempt is `windowMs` old (reserve and get treat it as
   * empty from then on); a bucket at count 0 goes once its newest attempt is `idleMs` old (the
   * delay after zero failures has passed). Every other bucket stays, however old: an account's
   * count has no window and lasts until a login succeeds or an administrator unlocks it.
   * Safe beside parallel reserves: a bucket counted again is no longer old.
   */
  sweep(now: number, rules: readonly { prefix: string; windowMs: number }[], idleMs: number): Promise<void>;
}

/**
 * oidc-provider saves a record by upserting it. Saves made while `fn` runs only update a record
 * that is still stored (OidcStore.replace), and throw RecordGoneError when it is not, rather
 * than write it back: for an interaction loaded earlier in a request, which a parallel request
 * may have finished and resumed (destroying it) meanwhile (adapters/oidc-adapter.ts upsert).
 */
export const storedOnly = new AsyncLocalStorage<true>();
export function savingStoredOnly<T>(fn: () => Promise<T>): Promise<T> {
  return storedOnly.run(true, fn);
}

export class RecordGoneError extends Error {
  override name = 'RecordGoneError';
}

/** The oidc-provider models revoked with their grant (oidc-provider lib/helpers/revoke.js). */
export const GRANT_BOUND_MODELS = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'] as const;

/** oidc-provider's artefacts (see adapters/oidc-adapter.ts), keyed by model and id. */
export interface OidcStore {
  upsert(record: OidcRecord): Promise<void>;
  find(model: string, id: string, now: number): Promise<OidcRecord | undefined>;
  findByUid(model: string, uid: string, now: number): Promise<OidcRecord | undefined>;
  findByUserCode(model: string, userCode: string, now: number): Promise<OidcRecord | undefined>;
  /**
   * Records `id` under `model` as used, once: true for the one call that recorded it (a
   * unique-key insert on every store), false when it was recorded already. For values that
   * carry their own proof and expiry (a stateless nonce): the record only stops a second use,
   * and lives until `expiresAt` (epoch ms), when the value has expired anyway.
   */
  claim(model: string, id: string, expiresAt: number): Promise<boolean>;
  /** Marks consumed (epoch seconds) if not yet consumed; returns whether this call consumed it. */
  consume(model: string, id: string, at: number): Promise<boolean>;
  destroy(model: string, id: string): Promise<void>;
  /**
   * Updates a record that is still there (stored, not destroyed, not expired at `now`), in one
   * atomic step, and never creates one; `consumed` is left as it is. Returns whether it was there.
   */
  replace(record: OidcRecord, now: number): Promise<boolean>;
  /**
   * Removes the tokens of a grant (GRANT_BOUND_MODELS), not every record that names it: an
   * Interaction carries the grantId of the authorization it serves, and must outlive the
   * revocation a logout makes of the grants of the session it ends (oidc-provider's resume
   * logs the previous account out when another one signs in, then resumes that interaction).
   */
  revokeByGrantId(grantId: string): Promise<void>;
  /** Deletes expired records; returns how many. Correctness never depends on it. */
  sweep(now: number): Promise<number>;

  // ——— Administration (issue 11): records by account ———

  /** The live records of `model` whose `accountId` is this one (a user's sessions, grants). */
  listByAccount(model: string, accountId: string, now: number): Promise<OidcRecord[]>;
  /** Deletes every record (any model) of the account: sessions, grants, tokens, login records. Returns how many. */
  removeByAccount(accountId: string): Promise<number>;
}

export interface EventFilter {
  user?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

/** Login events: the audit trail, the input of the simulator (README: event format). */
export interface EventStore {
  append(e: LoginEventRecord): Promise<void>;
  /** Events in time order (then id), from `since` (epoch ms) on; streamed in pages. */
  list(opts: { since?: number | undefined; batch?: number }): AsyncGenerator<LoginEventRecord>;
  findById(id: string): Promise<LoginEventRecord | undefined>;
  /**
   * Events newest first (time, then id, descending), of one user when `user` is given, with
   * `from` <= time < `to` (epoch ms). Other filters are the caller's: it pages through these.
   */
  query(filter: EventFilter, req: PageRequest): Promise<Page<LoginEventRecord>>;
  /**
   * Removes the raw behavioural sample (`behaviour`) from events older than `before` (epoch
   * ms), keeping the rest of each event (BEHAVIOUR_RETENTION_DAYS). Idempotent; returns how
   * many events this call changed (two instances pruning at once may both count one).
   */
  pruneBehaviour(before: number): Promise<number>;
}

/**
 * The risk engine's state. Two kinds, stored differently on purpose:
 * - observations of attempts (failed passwords, first-factor successes) are one record
 *   each, inserted and never updated, so 100 parallel attempts leave 100 records: an
 *   attacker cannot blind the credential-stuffing, failure or country-hopping signals by
 *   racing (no read-modify-write);
 * - a user's trusted history (places, devices, hours) is one document, written only by the
 *   finish step of a fully successful login. Two logins of one user finishing at the same
 *   instant may lose one entry: only the owner can produce those, and it weakens a signal only.
 */
export interface RiskStateStore {
  getUser(user: string): Promise<unknown>;
  putUser(user: string, history: unknown): Promise<void>;
  /** Records one observation; it is dropped from reads after `expiresAt` (epoch ms). */
  observe(o: RiskObservation, expiresAt: number): Promise<void>;
  /** Observations of one kind for a user or an IP since `since` (exclusive), oldest first, the newest `limit`. */
  observations(by: { user: string } | { ip: string }, kind: RiskObservation['kind'], since: number, limit: number): Promise<RiskObservation[]>;
  /**
   * What scoring a login reads, in one go (one statement or round trip where the store can):
   * the user's document (getUser) and the answers to `queries` (observations), in order.
   */
  snapshot(user: string, queries: readonly ObservationQuery[]): Promise<{ doc: unknown; observations: RiskObservation[][] }>;
  /** Forgets a user: their history document and every observation recorded under their id (account deletion). */
  forget(user: string): Promise<void>;
}

export interface ObservationQuery {
  by: { user: string } | { ip: string };
  kind: RiskObservation['kind'];
  since: number;
  limit: number;
}

/**
 * Second factors (models/types.ts FactorRecord). The checks that stop replay are atomic here,
 * also across instances sharing one MongoDB: 100 parallel submissions of one code or one
 * assertion get exactly one success.
 */
export interface FactorStore {
  /** Throws DuplicateError('factor') when a WebAuthn credential id is already registered (unique index). */
  add(factor: NewFactor): Promise<FactorRecord>;
  /** The account's factors, oldest first. */
  list(accountId: string): Promise<FactorRecord[]>;
  find(accountId: string, id: string): Promise<FactorRecord | undefined>;
  /** The passkey with this credential id, whoever holds it (username-less sign-in). */
  findByCredentialId(credentialId: string): Promise<FactorRecord | undefined>;
  /** True when this call removed it. */
  remove(accountId: string, id: string): Promise<boolean>;
  /** Removes the account's factors (of one kind, when given); returns how many. */
  removeAll(accountId: string, kind?: FactorKind): Promise<number>;
  /**
   * Compare-and-set: `counter := value` and `lastUsedAt := at` only if `counter < value`.
   * True for the one call that advanced it.
   */
  advance(id: string, value: number, at: Date): Promise<boolean>;
  /** Sets `lastUsedAt` (a passkey without a signature counter). */
  touch(id: string, at: Date): Promise<void>;
  /**
   * Marks one recovery code used, only if `hash` is one of the record's codes and not yet
   * used. True for the one call that marked it.
   */
  useRecoveryCode(id: string, hash: string, at: Date): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------
// Policy lifecycle and feedback loop (issue 11).
// ---------------------------------------------------------------------------------------

/**
 * Published policy versions (models/types.ts PolicyVersion). The live version is the newest;
 * every instance sharing the store serves it (idp/policy-sync.ts polls `stamp`).
 */
export interface PolicyStore {
  /**
   * Publishes `v` as the next version, only while the live version is `ifVersion` (0: none
   * published yet): a compare-and-set, so of 100 parallel publishes with the same `ifVersion`,
   * from any number of processes or instances sharing the store, exactly one succeeds; the
   * others throw VersionConflictError with the live version. Versions never skip a number.
   */
  publish(v: NewPolicyVersion, ifVersion: number): Promise<PolicyVersion>;
  /** The live version (the newest), without its files; undefined before the first publish. */
  live(): Promise<PolicyVersion | undefined>;
  /** One version with its files. */
  get(version: number): Promise<PolicyVersionWithFiles | undefined>;
  /** The newest version with this content hash (was this content ever published?). */
  findByHash(hash: string): Promise<PolicyVersion | undefined>;
  /** Versions, newest first, without their files. */
  history(page: PageRequest): Promise<Page<PolicyVersion>>;
  /**
   * A value that changes with every publish, seen by every process and instance sharing the
   * store; one small read (by key), so each instance can poll it every second (as
   * ClientStore.stamp). Random, for the same reason as there.
   */
  stamp(): Promise<string>;
}

/**
 * Labels on login events (models/types.ts LabelRecord): one per event, versioned. `set` is a
 * compare-and-set on the label's version (0: the event has no label yet), atomic as
 * PolicyStore.publish is; every version is kept (`history`).
 */
export interface LabelStore {
  set(label: NewLabel, ifVersion: number): Promise<LabelRecord>;
  /** The event's label now (its newest version). */
  get(eventId: string): Promise<LabelRecord | undefined>;
  /** Every version of the event's label, oldest first. */
  history(eventId: string): Promise<LabelRecord[]>;
  /** Labels now, by event id. */
  list(page: PageRequest): Promise<Page<LabelRecord>>;
}

/** Trained models kept until activated (models/types.ts ModelCandidate). */
export interface ModelStore {
  /** Keeps a candidate; the same sha256 again (the same bytes) is kept once, the first one. */
  save(c: ModelCandidate): Promise<void>;
  get(sha256: string): Promise<ModelCandidate | undefined>;
  /** Newest first, without the model text. */
  list(page: PageRequest): Promise<Page<Omit<ModelCandidate, 'text'>>>;
}

/**
 * A policy version's files as the stores keep them: canonical JSON (keys sorted) and its
 * sha256, under which the files are stored once however many versions share them.
 */
export function canonicalFiles(files: Readonly<Record<string, string>>): { id: string; json: string } {
  const json = JSON.stringify(Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  return { id: crypto.createHash('sha256').update(json).digest('hex'), json };
}

/** The most a page may hold, whatever the caller asks. */
export const MAX_PAGE = 1000;

// The policy, label and model stores' page helpers (embedded-policies.ts, mongo-policies.ts).
export const limitOf = (n: number) => Math.max(1, Math.min(Math.floor(n) || 1, MAX_PAGE));
/** The key a cursor holds, checked: a store's own cursor, or InvalidCursorError. */
export const versionAfter = (cursor: string): number => {
  const [v] = decodeCursor(cursor, 1);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InvalidCursorError();
  return v;
};
export const eventAfter = (cursor: string): string => {
  const [v] = decodeCursor(cursor, 1);
  if (typeof v !== 'string') throw new InvalidCursorError();
  return v;
};
export const timeAndKeyAfter = (cursor: string): [number, string] => {
  const [t, k] = decodeCursor(cursor, 2);
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || typeof k !== 'string') throw new InvalidCursorError();
  return [t, k];
};


/** The admin roles of an account: the admin scopes it holds, versioned (0 = none ever set). */
export interface AdminRoles {
  scopes: string[];
  version: number;
}

/**
 * Admin roles (idp/admin/auth.ts cuts an administrator's token to them), kept apart from the
 * account so that what an administrator may do changes only through its own audited,
 * versioned operation, never with a profile edit.
 */
export interface RoleStore {
  /** The account's roles; `{ scopes: [], version: 0 }` when none were ever set. */
  get(accountId: string): Promise<AdminRoles>;
  /**
   * Sets the account's roles if they are at `ifVersion` (0: never set); VersionConflictError
   * otherwise. One winner among parallel changes of one version, also across instances.
   */
  set(accountId: string, scopes: readonly string[], ifVersion: number): Promise<AdminRoles>;
  /** Every account holding at least one role. */
  list(): Promise<(AdminRoles & { accountId: string })[]>;
}

/**
 * What the store has sent to its database since it was opened, by operation: SQL statements
 * (embedded: the prepared statement's name, and BEGIN/COMMIT) or wire-protocol commands
 * (MongoDB: `command:collection`). For the benchmark's statements-per-login figure and
 * /metrics; names are a fixed set, never a value from a request.
 */
export interface StoreStats {
  readonly ops: ReadonlyMap<string, number>;
  /**
   * Tells `observer` the latency of every operation from now on, and whether it failed
   * (the store or its connection; not "not found", not a uniqueness or version conflict,
   * which are answers). The server turns these into /metrics (idp/metrics.ts); the store
   * knows nothing of Prometheus. Undefined: no timing at all.
   */
  observe(observer: StoreObserver | undefined): void;
}

export interface StoreObserver {
  /** `op` is the name counted in `ops`; `seconds` from sending to the answer. */
  op(op: string, seconds: number, failed: boolean): void;
}

export interface Storage {
  readonly kind: 'embedded' | 'mongodb';
  readonly stats: StoreStats;
  readonly events: EventStore;
  readonly risk: RiskStateStore;
  readonly accounts: AccountStore;
  readonly clients: ClientStore;
  readonly attempts: AttemptStore;
  readonly oidc: OidcStore;
  readonly factors: FactorStore;
  readonly roles: RoleStore;
  /** The audit trail (AuditStore below). */
  readonly audit: AuditStore;
  // Policy lifecycle and feedback loop (issue 11).
  readonly policies: PolicyStore;
  readonly labels: LabelStore;
  readonly models: ModelStore;
  close(): Promise<void>;
}

// --- Audit trail (issue 11) ---------------------------------------------------------------

/** Which audit records a query returns; every field given must match. */
export interface AuditFilter {
  actorKind?: Actor['kind'] | undefined;
  actorId?: string | undefined;
  /** Actions that begin with this, e.g. `user.` or `auth.decision`. */
  actionPrefix?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
}

/**
 * The audit trail: append-only (there is no update and no delete), each record linked to the
 * one before by its hash (adapters/storage/audit-chain.ts). Sequence numbers are contiguous
 * across every process and instance sharing the store: the next one is taken, and the record
 * linked to its predecessor, in one atomic step (embedded: one statement under SQLite's write
 * lock; MongoDB: an insert under the unique `_id` = seq, retried on a clash), so 100 parallel
 * appends through two store objects leave 100 records, numbered without gaps, whose chain verifies.
 */
export interface AuditStore {
  /**
   * Appends `entry` (plain JSON, secrets masked) as the next record, linked and sealed with
   * `seal`; resolves once the record is durable, with the record as stored.
   */
  append(entry: AuditEntry, seal: AuditSealer): Promise<AuditRecord>;
  /** Records matching `filter`, by sequence number (`asc` or `desc`), after sequence number `after`, at most `limit`. */
  query(filter: AuditFilter, page: { after?: number | undefined; limit: number; order: 'asc' | 'desc' }): Promise<AuditRecord[]>;
  /** Every record from sequence number `from` (default 1) on, in order, read in batches. */
  scan(opts?: { from?: number | undefined; batch?: number | undefined }): AsyncGenerator<AuditRecord>;
}

/**
 * The embedded, file-backed store: SQLite through Node's built-in `node:sqlite`.
 *
 * Why SQLite: it needs no server, it is durable across a restart and a kill -9 (every
 * commit is in the write-ahead log before it returns), and several processes may open
 * the same file at once, so `idp user add` run beside a live server is seen by it at once.
 * Why `node:sqlite`: it ships with Node itself (no native add-on to compile, no download
 * at install) and is maintained with it.
 *
 * Atomicity: statements that must not interleave across processes run in
 * `BEGIN IMMEDIATE` transactions, which take SQLite's single write lock up front.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import type { Account, AccountDisabled, AttemptReservation, DirectoryLink, ProfileClaims, ClientRecord, FactorRecord, LoginEventRecord, NewAccount, OidcRecord, RiskObservation } from '../../models/types.ts';
import {
  ACCOUNT_PAGE_MAX, decodeCursor, DuplicateError, encodeCursor, eventCursor, GRANT_BOUND_MODELS, nextAttemptAt, prefixEnd, VersionConflictError,
  usernameCursor, type AccountFilter, type ReserveOptions, type Storage, type StoreObserver,
} from './port.ts';
import { disambiguatedSkeleton, usernameSkeleton } from './skeleton.ts';
import { openEmbeddedAudit } from './embedded-audit.ts';
import { openEmbeddedPolicyStores, POLICY_SCHEMA } from './embedded-policies.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  skeleton TEXT,
  email TEXT,
  email_verified INTEGER NOT NULL DEFAULT 0,
  name TEXT,
  password_hash TEXT NOT NULL,
  trusted_devices TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  directory TEXT,
  claims TEXT,
  version INTEGER NOT NULL DEFAULT 1,
  disabled TEXT,
  profile_updated_at INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY,
  secret_ct TEXT,
  metadata TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
-- Change stamps: a random value rewritten with every change of a kind of record (clients).
CREATE TABLE IF NOT EXISTS stamps (
  name TEXT PRIMARY KEY,
  stamp TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS admin_roles (
  account_id TEXT PRIMARY KEY,
  scopes TEXT NOT NULL,
  version INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS attempts (
  key TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  last_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS oidc (
  model TEXT NOT NULL,
  id TEXT NOT NULL,
  payload TEXT NOT NULL,
  grant_id TEXT,
  uid TEXT,
  user_code TEXT,
  expires_at INTEGER,
  consumed INTEGER,
  account_id TEXT,
  PRIMARY KEY (model, id)
) STRICT;
CREATE TABLE IF NOT EXISTS login_events (
  id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL,
  user TEXT NOT NULL,
  doc TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS login_events_ts ON login_events (ts, id);
-- The admin API's events of one user, newest first.
CREATE INDEX IF NOT EXISTS login_events_user ON login_events (user, ts, id);
-- Only the events that still hold a behavioural sample: the hourly prune reads nothing else.
-- CASE, not AND: json_type must never see a record that is not JSON (an insert would fail).
CREATE INDEX IF NOT EXISTS login_events_behaviour ON login_events (ts)
  WHERE (CASE WHEN json_valid(doc) THEN json_type(doc, '$.behaviour') END) IS NOT NULL;
CREATE TABLE IF NOT EXISTS risk_users (
  user TEXT PRIMARY KEY,
  doc TEXT NOT NULL
) STRICT;
-- One row per observed attempt, inserted and never updated (adapters/storage/port.ts).
CREATE TABLE IF NOT EXISTS risk_observations (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  ts INTEGER NOT NULL,
  user TEXT NOT NULL,
  ip TEXT NOT NULL,
  country TEXT,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS risk_observations_user ON risk_observations (user, kind, ts);
CREATE INDEX IF NOT EXISTS risk_observations_ip ON risk_observations (ip, kind, ts);
CREATE INDEX IF NOT EXISTS risk_observations_expires ON risk_observations (expires_at);
-- Replaced by risk_observations (per-IP documents lost parallel updates).
DROP TABLE IF EXISTS risk_ips;
-- Second factors (models/types.ts FactorRecord). The kind-specific part is JSON in \`data\`;
-- a passkey's credential id has its own column under a unique index (NULLs, the other kinds,
-- do not collide).
CREATE TABLE IF NOT EXISTS factors (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  counter INTEGER NOT NULL,
  enrolled_via TEXT NOT NULL,
  credential_id TEXT UNIQUE,
  data TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS factors_account ON factors (account_id, created_at);
-- One row per recovery code used: the primary key makes a second use of a code impossible.
CREATE TABLE IF NOT EXISTS factor_codes_used (
  factor_id TEXT NOT NULL REFERENCES factors (id) ON DELETE CASCADE,
  hash TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (factor_id, hash)
) STRICT;
CREATE INDEX IF NOT EXISTS oidc_grant ON oidc (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_uid ON oidc (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_user_code ON oidc (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_expires ON oidc (expires_at) WHERE expires_at IS NOT NULL;
-- The audit trail (port.ts AuditStore, audit-chain.ts). seq is the rowid, taken as MAX + 1 by
-- the statement that inserts the record (auditAppend). before/after/detail/actor are JSON text.
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  actor_ip TEXT,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL,
  target_type TEXT,
  target_id TEXT,
  before TEXT,
  after TEXT,
  detail TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  seal TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target_id);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor_id);
-- Append-only against mistakes (the hash chain and its seal are what stand against intent:
-- whoever can write the file can drop these).
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
`;

type Row = Record<string, SQLInputValue>;

function isUniqueViolation(err: unknown): boolean {
  // SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
  const code = (err as { errcode?: number }).errcode;
  return code === 2067 || code === 1555;
}

/** Any SQLITE_CONSTRAINT (19, and its extended codes): an answer of the store, not its failure. */
function isConstraint(err: unknown): boolean {
  const code = (err as { errcode?: number }).errcode;
  return code !== undefined && (code & 0xff) === 19;
}

function toLink(j: Record<string, unknown>): DirectoryLink {
  return { name: j.name as string, id: j.id as string, dn: j.dn as string, syncedAt: new Date(j.syncedAt as string) };
}

function toAccount(r: Row): Account {
  return {
    id: r.id as string,
    username: r.username as string,
    email: (r.email as string | null) ?? undefined,
    emailVerified: r.email_verified === 1,
    name: (r.name as string | null) ?? undefined,
    passwordHash: r.password_hash as string,
    trustedDevices: JSON.parse(r.trusted_devices as string) as string[],
    ...(r.directory ? { directory: toLink(JSON.parse(r.directory as string) as Record<string, unknown>) } : {}),
    ...(r.claims ? { claims: JSON.parse(r.claims as string) as ProfileClaims } : {}),
    createdAt: new Date(r.created_at as number),
    updatedAt: new Date(r.updated_at as number),
    version: r.version as number,
    ...(r.disabled ? { disabled: toDisabled(JSON.parse(r.disabled as string) as Record<string, unknown>) } : {}),
    // Accounts made before updated_at was kept: their last change is the best answer there is.
    profileUpdatedAt: new Date((r.profile_updated_at ?? r.updated_at) as number),
  };
}

function toDisabled(j: Record<string, unknown>): AccountDisabled {
  return { at: new Date(j.at as number), reason: j.reason as string, ...(typeof j.by === 'string' ? { by: j.by } : {}) };
}

function disabledJson(d: AccountDisabled | undefined): string | null {
  return d ? JSON.stringify({ at: d.at.getTime(), reason: d.reason, ...(d.by ? { by: d.by } : {}) }) : null;
}

function toClient(r: Row): ClientRecord {
  return {
    clientId: r.client_id as string,
    secretCiphertext: (r.secret_ct as string | null) ?? undefined,
    metadata: JSON.parse(r.metadata as string) as Record<string, unknown>,
    createdAt: new Date(r.created_at as number),
    updatedAt: new Date((r.updated_at as number | null) ?? (r.created_at as number)),
    version: r.version as number,
  };
}

function toObservation(r: Row): RiskObservation {
  return {
    kind: r.kind as RiskObservation['kind'], ts: r.ts as number, user: r.user as string, ip: r.ip as string,
    ...(r.country !== null ? { country: r.country as string } : {}),
  };
}

/**
 * RiskStateStore.snapshot's one statement for a shape of queries (`u`: by user, `i`: by IP,
 * in order): the user's document (q = 0), then each query's newest `limit` rows (q = 1, 2, …),
 * each oldest first, as riskByUser / riskByIp answer them.
 */
function snapshotSql(shape: string): string {
  const parts = ['SELECT 0 AS q, NULL AS kind, NULL AS ts, NULL AS user, NULL AS ip, NULL AS country, NULL AS id, doc FROM risk_users WHERE user = ?'];
  [...shape].forEach((by, i) => {
    const col = by === 'u' ? 'user' : 'ip';
    parts.push(`SELECT * FROM (SELECT ${i + 1} AS q, kind, ts, user, ip, country, id, NULL AS doc FROM risk_observations
                WHERE ${col} = ? AND kind = ? AND ts > ? AND expires_at > ? ORDER BY ts DESC, id DESC LIMIT ?)`);
  });
  return `SELECT * FROM (${parts.join(' UNION ALL ')}) ORDER BY q, ts, id`;
}

function toOidc(r: Row | undefined, now: number): OidcRecord | undefined {
  if (!r) return undefined;
  // Expired records are filtered on read; the sweep only reclaims space.
  if (r.expires_at !== null && (r.expires_at as number) <= now) return undefined;
  return {
    model: r.model as string,
    id: r.id as string,
    payload: JSON.parse(r.payload as string) as Record<string, unknown>,
    grantId: (r.grant_id as string | null) ?? undefined,
    uid: (r.uid as string | null) ?? undefined,
    userCode: (r.user_code as string | null) ?? undefined,
    expiresAt: (r.expires_at as number | null) ?? undefined,
    consumed: (r.consumed as number | null) ?? undefined,
    accountId: (r.account_id as string | null) ?? undefined,
  };
}

/** The kind-specific part of a factor, stored as JSON. */
type FactorData = Pick<FactorRecord, 'totp' | 'webauthn'> & { recovery?: { hashes: string[] } };

function toFactor(r: Row, used: (factorId: string) => { hash: string; at: Date }[]): FactorRecord {
  const data = JSON.parse(r.data as string) as FactorData;
  return {
    id: r.id as string,
    accountId: r.account_id as string,
    kind: r.kind as FactorRecord['kind'],
    label: r.label as string,
    createdAt: new Date(r.created_at as number),
    ...(r.last_used_at !== null ? { lastUsedAt: new Date(r.last_used_at as number) } : {}),
    counter: r.counter as number,
    enrolledVia: r.enrolled_via as FactorRecord['enrolledVia'],
    ...(data.totp ? { totp: data.totp } : {}),
    ...(data.webauthn ? { webauthn: data.webauthn } : {}),
    ...(data.recovery ? { recovery: { hashes: data.recovery.hashes, used: used(r.id as string) } } : {}),
  };
}

/** Files made before client versions (issue 11) get their columns; idempotent, in one write transaction. */
function migrateClientVersions(db: DatabaseSync, immediate: <T>(fn: () => T) => T): void {
  immediate(() => {
    const columns = new Set((db.prepare('PRAGMA table_info(clients)').all() as Row[]).map((c) => c.name as string));
    if (!columns.has('version')) db.exec('ALTER TABLE clients ADD COLUMN version INTEGER NOT NULL DEFAULT 1');
    if (!columns.has('updated_at')) db.exec('ALTER TABLE clients ADD COLUMN updated_at INTEGER');
  });
}

/** Files made before directory links (issue 9) get the two columns; idempotent, in one write transaction. */
function migrateDirectoryColumns(db: DatabaseSync, immediate: <T>(fn: () => T) => T): void {
  immediate(() => {
    const columns = new Set((db.prepare('PRAGMA table_info(accounts)').all() as Row[]).map((c) => c.name as string));
    for (const c of ['directory', 'claims']) if (!columns.has(c)) db.exec(`ALTER TABLE accounts ADD COLUMN ${c} TEXT`);
  });
}

/**
 * Gives every account its username's skeleton and puts the unique index on it. Runs at each
 * open (idempotent); in one write transaction, so processes opening an old file at once
 * migrate it once. Rows that already collide are kept (see disambiguatedSkeleton).
 */
function migrateSkeletons(db: DatabaseSync, immediate: <T>(fn: () => T) => T): void {
  immediate(() => {
    const columns = db.prepare('PRAGMA table_info(accounts)').all() as Row[];
    if (!columns.some((c) => c.name === 'skeleton')) db.exec('ALTER TABLE accounts ADD COLUMN skeleton TEXT');
    const pending = db.prepare('SELECT id, username FROM accounts WHERE skeleton IS NULL ORDER BY created_at, id').all() as Row[];
    const taken = db.prepare('SELECT 1 FROM accounts WHERE skeleton = ?');
    const set = db.prepare('UPDATE accounts SET skeleton = ? WHERE id = ?');
    for (const r of pending) {
      const skeleton = usernameSkeleton(r.username as string);
      set.run(taken.get(skeleton) ? disambiguatedSkeleton(skeleton, r.id as string) : skeleton, r.id as string);
    }
    db.exec('CREATE UNIQUE INDEX IF NOT EXISTS accounts_skeleton ON accounts (skeleton)');
  });
}

/**
 * Files made before the administration work (issue 11) get the account's version, disabled
 * state and updated_at, and the oidc records their account id, read from the payloads
 * oidc-provider stored (`payload.accountId`), under an index. Idempotent; in one write
 * transaction, so processes opening an old file at once migrate it once.
 */
function migrateAdminColumns(db: DatabaseSync, immediate: <T>(fn: () => T) => T): void {
  immediate(() => {
    const columns = (table: string) => new Set((db.prepare(`PRAGMA table_info(${table})`).all() as Row[]).map((c) => c.name as string));
    const accounts = columns('accounts');
    if (!accounts.has('version')) db.exec('ALTER TABLE accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 1');
    if (!accounts.has('disabled')) db.exec('ALTER TABLE accounts ADD COLUMN disabled TEXT');
    if (!accounts.has('profile_updated_at')) db.exec('ALTER TABLE accounts ADD COLUMN profile_updated_at INTEGER');
    if (!columns('oidc').has('account_id')) {
      db.exec('ALTER TABLE oidc ADD COLUMN account_id TEXT');
      // CASE, not AND: json_type must never see a payload that is not JSON.
      db.exec(`UPDATE oidc SET account_id = json_extract(payload, '$.accountId')
               WHERE (CASE WHEN json_valid(payload) THEN json_type(payload, '$.accountId') END) = 'text'`);
    }
    db.exec('CREATE INDEX IF NOT EXISTS oidc_account ON oidc (account_id, model) WHERE account_id IS NOT NULL');
  });
}

/** The statement of one shape of AccountStore.page (which conditions are present). */
function accountPageSql(f: AccountFilter, after: boolean): string {
  const where: string[] = [];
  if (after) where.push('username > ?');
  if (f.usernamePrefix !== undefined) where.push("substr(username, 1, length(?)) = ?");
  if (f.email !== undefined) where.push('email = ?');
  if (f.disabled !== undefined) where.push(f.disabled ? 'disabled IS NOT NULL' : 'disabled IS NULL');
  if (f.directory !== undefined) where.push("json_extract(directory, '$.name') = ?");
  if (f.createdAfter !== undefined) where.push('created_at > ?');
  if (f.createdBefore !== undefined) where.push('created_at < ?');
  return `SELECT * FROM accounts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY username LIMIT ?`;
}

export function openEmbeddedStorage(dataDir: string): Storage {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'idp.sqlite');
  // Created owner-only before SQLite opens it: SQLite gives the -wal and -shm files the
  // database file's permissions.
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      fs.chmodSync(f, 0o600);
    } catch {
      /* not there yet, or a filesystem without modes */
    }
  }
  const db = new DatabaseSync(file, { timeout: 10_000 });
  // WAL lets readers in other processes proceed while one writes; synchronous=NORMAL in WAL
  // mode keeps every committed transaction across a process crash (kill -9).
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
  db.exec(SCHEMA);

  // The progressive delay of the reservation being made (attempts.reserve sets it just before).
  let currentWait: (count: number) => number = () => 0;
  db.function('idp_next_attempt_at', { deterministic: false, directOnly: true }, (count, lastAt) => nextAttemptAt(Number(count), Number(lastAt), currentWait));
  const ops = new Map<string, number>();
  const counted = (name: string) => ops.set(name, (ops.get(name) ?? 0) + 1);
  // Timing only while someone observes (StoreStats.observe): statements are synchronous, so
  // the time around the call is the statement's.
  let observer: StoreObserver | undefined;
  const timed = <T>(name: string, fn: () => T): T => {
    counted(name);
    if (!observer) return fn();
    const start = performance.now();
    let failed = false;
    try {
      return fn();
    } catch (err) {
      failed = !isConstraint(err);
      throw err;
    } finally {
      observer.op(name, (performance.now() - start) / 1000, failed);
    }
  };
  const exec = (sql: 'BEGIN IMMEDIATE' | 'COMMIT' | 'ROLLBACK') => timed(sql, () => db.exec(sql));
  const immediate = <T>(fn: () => T): T => {
    exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      exec('COMMIT');
      return out;
    } catch (err) {
      exec('ROLLBACK');
      throw err;
    }
  };
  migrateSkeletons(db, immediate);
  migrateDirectoryColumns(db, immediate);
  migrateClientVersions(db, immediate);
  migrateAdminColumns(db, immediate);
  // Policy lifecycle and feedback loop (issue 11): tables and statements of their own.
  db.exec(POLICY_SCHEMA);
  const policyStores = openEmbeddedPolicyStores({
    db, immediate,
    prepare: (name, sql) => {
      const st = db.prepare(sql);
      return {
        run: (...a) => timed(name, () => st.run(...a)),
        get: (...a) => timed(name, () => st.get(...a)),
        all: (...a) => timed(name, () => st.all(...a)),
      };
    },
  });

  const q = (sql: string) => db.prepare(sql);
  const raw = {
    accountSync: q(`UPDATE accounts SET directory = ?, email = ?, email_verified = ?, name = ?, claims = ?, updated_at = ?,
                    profile_updated_at = COALESCE(?, profile_updated_at) WHERE id = ?`),
    accountInsert: q(`INSERT INTO accounts (id, username, skeleton, email, email_verified, name, password_hash, created_at, updated_at, directory, claims, profile_updated_at)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    // Versioned changes (issue 11): the check and the write in one statement, which SQLite
    // runs alone, across processes too; RETURNING answers with what was written.
    accountUpdateProfile: q(`UPDATE accounts SET email = ?, email_verified = ?, name = ?, claims = ?, profile_updated_at = ?, updated_at = ?,
                             version = version + 1 WHERE id = ? AND version = ? RETURNING *`),
    accountSetDisabled: q('UPDATE accounts SET disabled = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ? RETURNING *'),
    accountVersion: q('SELECT version FROM accounts WHERE id = ?'),
    accountDelete: q('DELETE FROM accounts WHERE id = ?'),
    accountById: q('SELECT * FROM accounts WHERE id = ?'),
    accountByName: q('SELECT * FROM accounts WHERE username = ?'),
    accountList: q('SELECT * FROM accounts ORDER BY username'),
    accountSetHash: q('UPDATE accounts SET password_hash = ?, updated_at = ? WHERE id = ?'),
    // One statement: the device moves to (or joins at) the end, the newest ?2 are kept, in
    // order; nothing is written when it is the newest already.
    accountAddDevice: q(`UPDATE accounts SET trusted_devices = (
                           SELECT json_group_array(value ORDER BY k) FROM (
                             SELECT value, k FROM (
                               SELECT value, CAST(key AS INTEGER) AS k FROM json_each(accounts.trusted_devices) WHERE value <> ?1
                               UNION ALL SELECT ?1, 1e15
                             ) ORDER BY k DESC LIMIT ?2))
                         WHERE id = ?3 AND json_extract(trusted_devices, '$[#-1]') IS NOT ?1`),
    clientInsert: q('INSERT INTO clients (client_id, secret_ct, metadata, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, 1)'),
    clientFind: q('SELECT * FROM clients WHERE client_id = ?'),
    clientList: q('SELECT * FROM clients ORDER BY client_id'),
    clientPage: q('SELECT * FROM clients WHERE client_id > ? ORDER BY client_id LIMIT ?'),
    clientUpdate: q('UPDATE clients SET secret_ct = ?, metadata = ?, updated_at = ?, version = version + 1 WHERE client_id = ? AND version = ? RETURNING *'),
    clientDelete: q('DELETE FROM clients WHERE client_id = ? AND version = ?'),
    clientVersion: q('SELECT version FROM clients WHERE client_id = ?'),
    rolesGet: q('SELECT scopes, version FROM admin_roles WHERE account_id = ?'),
    rolesInsert: q('INSERT INTO admin_roles (account_id, scopes, version) VALUES (?, ?, 1) ON CONFLICT (account_id) DO NOTHING'),
    rolesUpdate: q('UPDATE admin_roles SET scopes = ?, version = version + 1 WHERE account_id = ? AND version = ? RETURNING version'),
    rolesList: q("SELECT account_id, scopes, version FROM admin_roles WHERE scopes <> '[]' ORDER BY account_id"),
    stampGet: q('SELECT stamp FROM stamps WHERE name = ?'),
    stampSet: q('INSERT INTO stamps (name, stamp) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET stamp = excluded.stamp'),
    attemptGet: q('SELECT * FROM attempts WHERE key = ?'),
    // The check and the count in one statement (SQLite runs one write at a time, across
    // processes too): the row is counted only where the WHERE allows it, else nothing is
    // returned. A bucket whose window has passed starts afresh; otherwise the attempt must be
    // under the limit and past the delay since the newest counted attempt (idp_next_attempt_at,
    // port.ts nextAttemptAt). last_at never goes back: a caller's clock is read before its turn
    // at the lock, so an attempt stamped earlier may be counted after a later one, and the
    // delay runs from the newest counted attempt.
    attemptReserve: q(`INSERT INTO attempts (key, count, last_at) VALUES (?1, 1, ?2)
                       ON CONFLICT (key) DO UPDATE SET
                         count = CASE WHEN attempts.last_at + ?3 <= ?2 THEN 1 ELSE attempts.count + 1 END,
                         last_at = CASE WHEN attempts.last_at + ?3 <= ?2 THEN ?2 ELSE MAX(attempts.last_at, ?2) END
                       WHERE attempts.last_at + ?3 <= ?2 OR (attempts.count < ?4 AND ?2 >= idp_next_attempt_at(attempts.count, attempts.last_at))
                       RETURNING count`),
    // A count of 0 is an empty bucket (reserve and get read it so), and one statement covers
    // every key: the finished login's resets and its IP refund.
    attemptSettle: q(`UPDATE attempts SET count = CASE WHEN key = ?2 THEN MAX(count - 1, 0) ELSE 0 END
                      WHERE key IN (SELECT value FROM json_each(?1)) OR key = ?2`),
    attemptReset: q('DELETE FROM attempts WHERE key = ?'),
    // Keys from ?1 (inclusive) to ?2 (exclusive): a prefix as a range of the primary key. In
    // chunks of ?4 rows, so a large sweep does not hold the write lock or the event loop long.
    attemptSweepStale: q('DELETE FROM attempts WHERE rowid IN (SELECT rowid FROM attempts WHERE key >= ?1 AND key < ?2 AND last_at <= ?3 LIMIT ?4)'),
    attemptSweepIdle: q('DELETE FROM attempts WHERE rowid IN (SELECT rowid FROM attempts WHERE count = 0 AND last_at <= ?1 LIMIT ?2)'),
    attemptRefund: q('UPDATE attempts SET count = MAX(count - 1, 0) WHERE key = ?'),
    oidcUpsert: q(`INSERT INTO oidc (model, id, payload, grant_id, uid, user_code, expires_at, consumed, account_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
                   uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at,
                   consumed = excluded.consumed, account_id = excluded.account_id`),
    oidcReplace: q(`UPDATE oidc SET payload = ?, grant_id = ?, uid = ?, user_code = ?, expires_at = ?, account_id = ?
                    WHERE model = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)`),
    oidcByAccount: q('SELECT * FROM oidc WHERE account_id = ? AND model = ? ORDER BY id'),
    oidcRemoveAccount: q('DELETE FROM oidc WHERE account_id = ?'),
    riskForgetUser: q('DELETE FROM risk_users WHERE user = ?'),
    riskForgetObservations: q('DELETE FROM risk_observations WHERE user = ?'),
    oidcFind: q('SELECT * FROM oidc WHERE model = ? AND id = ?'),
    oidcByUid: q('SELECT * FROM oidc WHERE model = ? AND uid = ?'),
    oidcByUserCode: q('SELECT * FROM oidc WHERE model = ? AND user_code = ?'),
    oidcClaim: q(`INSERT INTO oidc (model, id, payload, expires_at) VALUES (?, ?, '{}', ?) ON CONFLICT (model, id) DO NOTHING`),
    oidcConsume: q('UPDATE oidc SET consumed = ? WHERE model = ? AND id = ? AND consumed IS NULL'),
    oidcDestroy: q('DELETE FROM oidc WHERE model = ? AND id = ?'),
    // The grant's tokens only (port.ts revokeByGrantId): not the interaction that names it.
    oidcRevokeGrant: q(`DELETE FROM oidc WHERE grant_id = ? AND model IN (${GRANT_BOUND_MODELS.map((m) => `'${m}'`).join(', ')})`),
    oidcSweep: q('DELETE FROM oidc WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    eventInsert: q('INSERT INTO login_events (id, ts, user, doc) VALUES (?, ?, ?, ?)'),
    eventById: q('SELECT doc FROM login_events WHERE id = ?'),
    // The WHERE repeats the partial index's condition word for word, so the index serves it.
    eventPruneBehaviour: q(`UPDATE login_events SET doc = json_remove(doc, '$.behaviour')
                            WHERE (CASE WHEN json_valid(doc) THEN json_type(doc, '$.behaviour') END) IS NOT NULL AND ts < ?`),
    eventQuery: q(`SELECT doc FROM login_events WHERE ts >= ?1 AND ts < ?2 AND (ts < ?3 OR (ts = ?3 AND id < ?4))
                   ORDER BY ts DESC, id DESC LIMIT ?5`),
    eventQueryUser: q(`SELECT doc FROM login_events WHERE user = ?6 AND ts >= ?1 AND ts < ?2 AND (ts < ?3 OR (ts = ?3 AND id < ?4))
                   ORDER BY ts DESC, id DESC LIMIT ?5`),
    eventPage: q('SELECT id, ts, doc FROM login_events WHERE (ts > ? OR (ts = ? AND id > ?)) ORDER BY ts, id LIMIT ?'),
    riskUserGet: q('SELECT doc FROM risk_users WHERE user = ?'),
    riskUserPut: q('INSERT INTO risk_users (user, doc) VALUES (?, ?) ON CONFLICT (user) DO UPDATE SET doc = excluded.doc'),
    riskObserve: q('INSERT INTO risk_observations (kind, ts, user, ip, country, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
    // The newest `limit`, returned oldest first.
    riskByUser: q(`SELECT * FROM (SELECT kind, ts, user, ip, country, id FROM risk_observations
                   WHERE user = ? AND kind = ? AND ts > ? AND expires_at > ? ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY ts, id`),
    riskByIp: q(`SELECT * FROM (SELECT kind, ts, user, ip, country, id FROM risk_observations
                 WHERE ip = ? AND kind = ? AND ts > ? AND expires_at > ? ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY ts, id`),
    riskSweep: q('DELETE FROM risk_observations WHERE expires_at <= ?'),
    factorInsert: q(`INSERT INTO factors (id, account_id, kind, label, created_at, last_used_at, counter, enrolled_via, credential_id, data)
                     VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)`),
    factorById: q('SELECT * FROM factors WHERE id = ?'),
    factorFind: q('SELECT * FROM factors WHERE account_id = ? AND id = ?'),
    factorList: q('SELECT * FROM factors WHERE account_id = ? ORDER BY created_at, rowid'),
    factorByCredential: q('SELECT * FROM factors WHERE credential_id = ?'),
    factorRemove: q('DELETE FROM factors WHERE account_id = ? AND id = ?'),
    factorRemoveAll: q('DELETE FROM factors WHERE account_id = ?'),
    factorRemoveKind: q('DELETE FROM factors WHERE account_id = ? AND kind = ?'),
    // Compare-and-set in one statement: SQLite runs one write at a time, across processes too.
    factorAdvance: q('UPDATE factors SET counter = ?, last_used_at = ? WHERE id = ? AND counter < ?'),
    factorTouch: q('UPDATE factors SET last_used_at = ? WHERE id = ?'),
    // Inserts only when the hash is one of the record's codes; the primary key refuses a second use.
    factorUseCode: q(`INSERT OR IGNORE INTO factor_codes_used (factor_id, hash, at)
                      SELECT f.id, ?, ? FROM factors f, json_each(f.data, '$.recovery.hashes') h
                      WHERE f.id = ? AND f.kind = 'recovery' AND h.value = ?`),
    factorCodesUsed: q('SELECT hash, at FROM factor_codes_used WHERE factor_id = ? ORDER BY at, rowid'),
  };
  // Each statement counts its executions under its own name (StoreStats).
  const stmt = Object.fromEntries(Object.entries(raw).map(([name, st]) => [name, {
    run: (...a: SQLInputValue[]) => timed(name, () => st.run(...a)),
    get: (...a: SQLInputValue[]) => timed(name, () => st.get(...a)),
    all: (...a: SQLInputValue[]) => timed(name, () => st.all(...a)),
  }])) as unknown as Record<keyof typeof raw, Pick<ReturnType<typeof q>, 'run' | 'get' | 'all'>>;
  /**
   * Group commit: writes that need no answer before the caller's next step (an upsert, an
   * append, a delete) are queued and run together at the next turn of the event loop, in one
   * transaction when more than one is waiting. Each caller's promise settles only after the
   * COMMIT, so a write is durable (in the WAL) before anyone is told it happened, as before;
   * what changes is that concurrent requests share one commit (one lock, one WAL write)
   * instead of one each: about 35 µs of CPU per autocommit write here, 9-16 µs batched.
   * Checks that decide something (attempts.reserve, consume, creations that may be refused)
   * are not queued: they run at once, each its own atomic statement.
   */
  let queue: { run: () => void; resolve: () => void; reject: (err: unknown) => void }[] = [];
  const flush = () => {
    const batch = queue;
    queue = [];
    if (!batch.length) return;
    if (closed) {
      for (const w of batch) w.reject(new Error('store closed'));
      return;
    }
    if (batch.length === 1) {
      const [w] = batch;
      try { w!.run(); w!.resolve(); } catch (err) { w!.reject(err); }
      return;
    }
    const failed = new Map<number, unknown>();
    try {
      exec('BEGIN IMMEDIATE');
      // A statement that fails is undone alone (SQLite's statement journal); the others stand.
      batch.forEach((w, i) => { try { w.run(); } catch (err) { failed.set(i, err); } });
      exec('COMMIT');
    } catch (err) {
      try { if (db.isTransaction) exec('ROLLBACK'); } catch { /* reported to the callers below */ }
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => (failed.has(i) ? w.reject(failed.get(i)) : w.resolve()));
  };
  const write = (run: () => void): Promise<void> => new Promise((resolve, reject) => {
    queue.push({ run, resolve, reject });
    if (queue.length === 1) setImmediate(flush);
  });

  type AllOnly = { all: (...a: SQLInputValue[]) => Row[] };
  const snapshots = new Map<string, AllOnly>();
  const snapshotStatement = (shape: string): AllOnly => {
    const known = snapshots.get(shape);
    if (known) return known;
    const prepared = q(snapshotSql(shape));
    const name = `riskSnapshot_${shape}`;
    const st: AllOnly = { all: (...a) => timed(name, () => prepared.all(...a)) as Row[] };
    snapshots.set(shape, st);
    return st;
  };
  /** AccountStore.page's statements, one per shape of filter. */
  const pages = new Map<string, ReturnType<typeof q>>();
  const codesUsed = (factorId: string) =>
    (stmt.factorCodesUsed.all(factorId) as Row[]).map((u) => ({ hash: u.hash as string, at: new Date(u.at as number) }));

  let closed = false;
  // The audit trail (issue 11): its own module, on this store's statement counter and group commit.
  const audit = openEmbeddedAudit(db, { timed, write });

  return {
    kind: 'embedded',
    stats: { ops, observe: (o) => { observer = o; } },
    audit,
    accounts: {
      async create(a: NewAccount) {
        const now = Date.now();
        try {
          stmt.accountInsert.run(a.id, a.username, usernameSkeleton(a.username), a.email ?? null, a.emailVerified ? 1 : 0, a.name ?? null, a.passwordHash, now, now,
            a.directory ? JSON.stringify(a.directory) : null, a.claims ? JSON.stringify(a.claims) : null, now);
        } catch (err) {
          if (isUniqueViolation(err)) {
            const taken = stmt.accountByName.get(a.username) !== undefined || stmt.accountById.get(a.id) !== undefined;
            throw new DuplicateError('account', a.username, taken ? 'taken' : 'similar');
          }
          throw err;
        }
        return toAccount(stmt.accountById.get(a.id) as Row);
      },
      async findById(id) {
        const r = stmt.accountById.get(id) as Row | undefined;
        return r && toAccount(r);
      },
      async findByUsername(username) {
        const r = stmt.accountByName.get(username) as Row | undefined;
        return r && toAccount(r);
      },
      async list() {
        return (stmt.accountList.all() as Row[]).map(toAccount);
      },
      async setPasswordHash(id, hash) {
        stmt.accountSetHash.run(hash, Date.now(), id);
      },
      async addTrustedDevice(id, deviceId, keep) {
        await write(() => stmt.accountAddDevice.run(deviceId, keep, id));
      },
      async syncDirectoryProfile(id, p) {
        stmt.accountSync.run(JSON.stringify(p.directory), p.email ?? null, p.emailVerified ? 1 : 0, p.name ?? null, JSON.stringify(p.claims), Date.now(),
          p.profileUpdatedAt?.getTime() ?? null, id);
      },
      // ——— Administration (issue 11) ———
      async updateProfile(id, p, at, ifVersion) {
        const r = stmt.accountUpdateProfile.get(p.email ?? null, p.emailVerified ? 1 : 0, p.name ?? null, JSON.stringify(p.claims), at.getTime(), Date.now(), id, ifVersion) as Row | undefined;
        if (!r) throw new VersionConflictError(`account ${id}`, (stmt.accountVersion.get(id) as Row | undefined)?.version as number | undefined);
        return toAccount(r);
      },
      async setDisabled(id, disabled, ifVersion) {
        const r = stmt.accountSetDisabled.get(disabledJson(disabled), Date.now(), id, ifVersion) as Row | undefined;
        if (!r) throw new VersionConflictError(`account ${id}`, (stmt.accountVersion.get(id) as Row | undefined)?.version as number | undefined);
        return toAccount(r);
      },
      async page(f, { after, limit }) {
        const from = after === undefined ? undefined : usernameCursor(after);
        const n = Math.max(1, Math.min(Math.floor(limit), ACCOUNT_PAGE_MAX));
        const params: SQLInputValue[] = [];
        if (from !== undefined) params.push(from);
        if (f.usernamePrefix !== undefined) params.push(f.usernamePrefix, f.usernamePrefix);
        if (f.email !== undefined) params.push(f.email);
        if (f.directory !== undefined) params.push(f.directory);
        if (f.createdAfter !== undefined) params.push(f.createdAfter.getTime());
        if (f.createdBefore !== undefined) params.push(f.createdBefore.getTime());
        // One more than asked: whether there is a next page, without a second query.
        params.push(n + 1);
        const sql = accountPageSql(f, from !== undefined);
        let st = pages.get(sql);
        if (!st) pages.set(sql, (st = q(sql)));
        const page = st;
        const rows = timed('accountPage', () => page.all(...params)) as Row[];
        const items = rows.slice(0, n).map(toAccount);
        return { items, ...(rows.length > n ? { next: encodeCursor([items[items.length - 1]!.username]) } : {}) };
      },
      async delete(id) {
        return Number(stmt.accountDelete.run(id).changes) === 1;
      },
    },
    clients: {
      async create(c) {
        const now = Date.now();
        try {
          immediate(() => {
            stmt.clientInsert.run(c.clientId, c.secretCiphertext ?? null, JSON.stringify(c.metadata), now, now);
            stmt.stampSet.run('clients', crypto.randomUUID());
          });
        } catch (err) {
          if (isUniqueViolation(err)) throw new DuplicateError('client', c.clientId);
          throw err;
        }
        return { ...c, createdAt: new Date(now), updatedAt: new Date(now), version: 1 };
      },
      async page({ after, limit }) {
        const from = after === undefined ? '' : String(decodeCursor(after, 1)[0]);
        const rows = (stmt.clientPage.all(from, limit + 1) as Row[]).map(toClient);
        const items = rows.slice(0, limit);
        return { items, next: rows.length > limit ? encodeCursor([items.at(-1)!.clientId]) : undefined };
      },
      async update(clientId, change, ifVersion) {
        // The version check and the write are one statement, and the stamp changes in the same transaction.
        const row = immediate(() => {
          const r = stmt.clientUpdate.get(change.secretCiphertext ?? null, JSON.stringify(change.metadata), Date.now(), clientId, ifVersion) as Row | undefined;
          if (r) stmt.stampSet.run('clients', crypto.randomUUID());
          return r;
        });
        if (!row) throw new VersionConflictError(`client "${clientId}"`, (stmt.clientVersion.get(clientId) as Row | undefined)?.version as number | undefined);
        return toClient(row);
      },
      async remove(clientId, ifVersion) {
        const removed = immediate(() => {
          const n = Number(stmt.clientDelete.run(clientId, ifVersion).changes);
          if (n) stmt.stampSet.run('clients', crypto.randomUUID());
          return n;
        });
        if (!removed) throw new VersionConflictError(`client "${clientId}"`, (stmt.clientVersion.get(clientId) as Row | undefined)?.version as number | undefined);
      },
      async find(clientId) {
        const r = stmt.clientFind.get(clientId) as Row | undefined;
        return r && toClient(r);
      },
      async list() {
        return (stmt.clientList.all() as Row[]).map(toClient);
      },
      async stamp() {
        return ((stmt.stampGet.get('clients') as Row | undefined)?.stamp as string | undefined) ?? '';
      },
    },
    attempts: {
      async reserve(key: string, { now, max, windowMs, waitMs }: ReserveOptions): Promise<AttemptReservation> {
        // SQLite takes no Infinity: "never" is a window no clock reaches.
        const window = Number.isFinite(windowMs) ? windowMs : Number.MAX_SAFE_INTEGER;
        // Twice at most: a bucket emptied between the refusing statement and the read of why
        // (an unlock or a reset in another process) is tried again, now that nothing stands in the way.
        for (let tries = 0; ; tries += 1) {
          if (max > 0) {
            // The statement calls back into waitMs (synchronously, within this run).
            currentWait = waitMs;
            const row = stmt.attemptReserve.get(key, now, window, max) as Row | undefined;
            if (row) {
              const count = row.count as number;
              return { allowed: true, id: `${key}#${count}`, count, blockedUntil: now + waitMs(count) };
            }
          }
          // Refused: why, from the bucket as it stands (nothing was written).
          const r = stmt.attemptGet.get(key) as Row | undefined;
          const count = r && (r.last_at as number) + window > now ? (r.count as number) : 0;
          if (count >= max) return { allowed: false, reason: 'limit', count, blockedUntil: 0 };
          if (r && count > 0) return { allowed: false, reason: 'delayed', count, blockedUntil: nextAttemptAt(count, r.last_at as number, waitMs) };
          if (tries > 0) return { allowed: false, reason: 'delayed', count, blockedUntil: now };
        }
      },
      async settle(resets, refund) {
        await write(() => stmt.attemptSettle.run(JSON.stringify(resets), refund?.key ?? null));
      },
      async reset(key) {
        stmt.attemptReset.run(key);
      },
      async refund(key) {
        // A counter: any one attempt is as good as another to uncount.
        stmt.attemptRefund.run(key);
      },
      async get(key, now, windowMs, waitMs = () => 0) {
        const r = stmt.attemptGet.get(key) as Row | undefined;
        if (!r || (r.last_at as number) + windowMs <= now) return { count: 0, blockedUntil: 0 };
        const count = r.count as number;
        return { count, blockedUntil: nextAttemptAt(count, r.last_at as number, waitMs) };
      },
      async sweep(now, rules, idleMs) {
        // Each statement alone is atomic (and SQLite writes one at a time across processes):
        // a bucket another request counts again meanwhile has a fresh last_at and stays.
        // Chunk by chunk, other work running in between (5,000 rows: some ms each).
        const chunk = 5000;
        const drain = async (run: () => number) => {
          while (run() === chunk) await new Promise((resolve) => setImmediate(resolve));
        };
        for (const { prefix, windowMs } of rules) {
          if (!Number.isFinite(windowMs)) continue;
          await drain(() => Number(stmt.attemptSweepStale.run(prefix, prefixEnd(prefix), now - windowMs, chunk).changes));
        }
        await drain(() => Number(stmt.attemptSweepIdle.run(now - idleMs, chunk).changes));
      },
    },
    oidc: {
      async upsert(rec) {
        const payload = JSON.stringify(rec.payload);
        await write(() => stmt.oidcUpsert.run(
          rec.model, rec.id, payload, rec.grantId ?? null, rec.uid ?? null,
          rec.userCode ?? null, rec.expiresAt ?? null, rec.consumed ?? null, rec.accountId ?? null,
        ));
      },
      async replace(rec, now) {
        // At once, not queued: the caller acts on the answer.
        return Number(stmt.oidcReplace.run(
          JSON.stringify(rec.payload), rec.grantId ?? null, rec.uid ?? null, rec.userCode ?? null, rec.expiresAt ?? null, rec.accountId ?? null, rec.model, rec.id, now,
        ).changes) === 1;
      },
      async find(model, id, now) {
        return toOidc(stmt.oidcFind.get(model, id) as Row | undefined, now);
      },
      async findByUid(model, uid, now) {
        return toOidc(stmt.oidcByUid.get(model, uid) as Row | undefined, now);
      },
      async findByUserCode(model, userCode, now) {
        return toOidc(stmt.oidcByUserCode.get(model, userCode) as Row | undefined, now);
      },
      async claim(model, id, expiresAt) {
        return Number(stmt.oidcClaim.run(model, id, expiresAt).changes) === 1;
      },
      async consume(model, id, at) {
        return Number(stmt.oidcConsume.run(at, model, id).changes) === 1;
      },
      async destroy(model, id) {
        await write(() => stmt.oidcDestroy.run(model, id));
      },
      async revokeByGrantId(grantId) {
        await write(() => stmt.oidcRevokeGrant.run(grantId));
      },
      async sweep(now) {
        stmt.riskSweep.run(now);
        return Number(stmt.oidcSweep.run(now).changes);
      },
      // ——— Administration (issue 11) ———
      async listByAccount(model, accountId, now) {
        return (stmt.oidcByAccount.all(accountId, model) as Row[]).map((r) => toOidc(r, now)).filter((r): r is OidcRecord => r !== undefined);
      },
      async removeByAccount(accountId) {
        // Through the queue: after any write of the account's records still waiting in it.
        let removed = 0;
        await write(() => { removed = Number(stmt.oidcRemoveAccount.run(accountId).changes); });
        return removed;
      },
    },
    events: {
      async append(e) {
        const doc = JSON.stringify(e);
        await write(() => stmt.eventInsert.run(e.id, Date.parse(e.ts), e.user, doc));
      },
      async *list({ since, batch = 1000 }) {
        let ts = (since ?? 0) - 1;
        let id = '\uffff';
        for (;;) {
          const rows = stmt.eventPage.all(ts, ts, id, batch) as Row[];
          for (const r of rows) yield JSON.parse(r.doc as string) as LoginEventRecord;
          if (rows.length < batch) return;
          const last = rows[rows.length - 1]!;
          ts = last.ts as number;
          id = last.id as string;
        }
      },
      async findById(id) {
        const r = stmt.eventById.get(id) as Row | undefined;
        return r ? (JSON.parse(r.doc as string) as LoginEventRecord) : undefined;
      },
      async query(f, { after, limit }) {
        const [cts, cid] = after === undefined ? [Number.MAX_SAFE_INTEGER, ''] : eventCursor(after);
        const args = [f.from ?? 0, f.to ?? Number.MAX_SAFE_INTEGER, Number(cts), String(cid), limit + 1] as const;
        const rows = (f.user === undefined ? stmt.eventQuery.all(...args) : stmt.eventQueryUser.all(...args, f.user)) as Row[];
        const docs = rows.map((r) => JSON.parse(r.doc as string) as LoginEventRecord);
        const items = docs.slice(0, limit);
        const last = items.at(-1);
        return { items, next: docs.length > limit && last ? encodeCursor([Date.parse(last.ts), last.id]) : undefined };
      },
      async pruneBehaviour(before) {
        return Number(stmt.eventPruneBehaviour.run(before).changes);
      },
    },
    risk: {
      async getUser(user) {
        const r = stmt.riskUserGet.get(user) as Row | undefined;
        return r ? JSON.parse(r.doc as string) : undefined;
      },
      async putUser(user, history) {
        const doc = JSON.stringify(history);
        await write(() => stmt.riskUserPut.run(user, doc));
      },
      async observe(o, expiresAt) {
        await write(() => stmt.riskObserve.run(o.kind, o.ts, o.user, o.ip, o.country ?? null, expiresAt));
      },
      async observations(by, kind, since, limit) {
        const rows = ('user' in by ? stmt.riskByUser.all(by.user, kind, since, Date.now(), limit)
          : stmt.riskByIp.all(by.ip, kind, since, Date.now(), limit)) as Row[];
        return rows.map(toObservation);
      },
      async snapshot(user, queries) {
        const shape = queries.map((qy) => ('user' in qy.by ? 'u' : 'i')).join('');
        const now = Date.now();
        const params: SQLInputValue[] = [user];
        for (const qy of queries) params.push('user' in qy.by ? qy.by.user : qy.by.ip, qy.kind, qy.since, now, qy.limit);
        const rows = snapshotStatement(shape).all(...params);
        const observations: RiskObservation[][] = queries.map(() => []);
        let doc: unknown;
        for (const r of rows) {
          if (r.q === 0) doc = JSON.parse(r.doc as string);
          else observations[(r.q as number) - 1]!.push(toObservation(r));
        }
        return { doc, observations };
      },
      async forget(user) {
        // Through the queue, after the user's history writes still waiting in it.
        await write(() => {
          stmt.riskForgetUser.run(user);
          stmt.riskForgetObservations.run(user);
        });
      },
    },
    roles: {
      async get(accountId) {
        const r = stmt.rolesGet.get(accountId) as Row | undefined;
        return r ? { scopes: JSON.parse(r.scopes as string) as string[], version: r.version as number } : { scopes: [], version: 0 };
      },
      async set(accountId, scopes, ifVersion) {
        const doc = JSON.stringify([...new Set(scopes)].sort());
        // One statement decides: the insert of version 1, or the update of exactly `ifVersion`.
        const ok = ifVersion === 0 ? Number(stmt.rolesInsert.run(accountId, doc).changes) === 1 : stmt.rolesUpdate.get(doc, accountId, ifVersion) !== undefined;
        if (!ok) throw new VersionConflictError(`the roles of account "${accountId}"`, ((stmt.rolesGet.get(accountId) as Row | undefined)?.version as number | undefined) ?? 0);
        return { scopes: JSON.parse(doc) as string[], version: ifVersion + 1 };
      },
      async list() {
        return (stmt.rolesList.all() as Row[]).map((r) => ({ accountId: r.account_id as string, scopes: JSON.parse(r.scopes as string) as string[], version: r.version as number }));
      },
    },
    factors: {
      async add(f) {
        const createdAt = Date.now();
        const data: FactorData = {
          ...(f.totp ? { totp: f.totp } : {}),
          ...(f.webauthn ? { webauthn: f.webauthn } : {}),
          ...(f.recovery ? { recovery: { hashes: f.recovery.hashes } } : {}),
        };
        try {
          immediate(() => {
            stmt.factorInsert.run(f.id, f.accountId, f.kind, f.label, createdAt, f.counter ?? 0, f.enrolledVia, f.webauthn?.credentialId ?? null, JSON.stringify(data));
            // Codes already marked used when the record was made (a restored record) stay used.
            for (const u of f.recovery?.used ?? []) stmt.factorUseCode.run(u.hash, u.at.getTime(), f.id, u.hash);
          });
        } catch (err) {
          if (isUniqueViolation(err)) throw new DuplicateError('factor', f.webauthn?.credentialId ?? f.id);
          throw err;
        }
        return toFactor(stmt.factorById.get(f.id) as Row, codesUsed);
      },
      async list(accountId) {
        return (stmt.factorList.all(accountId) as Row[]).map((r) => toFactor(r, codesUsed));
      },
      async find(accountId, id) {
        const r = stmt.factorFind.get(accountId, id) as Row | undefined;
        return r && toFactor(r, codesUsed);
      },
      async findByCredentialId(credentialId) {
        const r = stmt.factorByCredential.get(credentialId) as Row | undefined;
        return r && toFactor(r, codesUsed);
      },
      async remove(accountId, id) {
        return Number(stmt.factorRemove.run(accountId, id).changes) === 1;
      },
      async removeAll(accountId, kind) {
        return Number((kind ? stmt.factorRemoveKind.run(accountId, kind) : stmt.factorRemoveAll.run(accountId)).changes);
      },
      async advance(id, value, at) {
        return Number(stmt.factorAdvance.run(value, at.getTime(), id, value).changes) === 1;
      },
      async touch(id, at) {
        stmt.factorTouch.run(at.getTime(), id);
      },
      async useRecoveryCode(id, hash, at) {
        return immediate(() => {
          if (Number(stmt.factorUseCode.run(hash, at.getTime(), id, hash).changes) !== 1) return false;
          stmt.factorTouch.run(at.getTime(), id);
          return true;
        });
      },
    },
    ...policyStores,
    async close() {
      if (closed) return;
      // Writes already queued are committed first: their callers were not told otherwise.
      if (queue.length) flush();
      closed = true;
      db.close();
    },
  };
}

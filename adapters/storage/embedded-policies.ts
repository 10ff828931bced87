/**
 * The embedded store's part of the policy lifecycle and the feedback loop (port.ts
 * PolicyStore, LabelStore, ModelStore): SQLite tables beside the others in idp.sqlite.
 *
 * Compare-and-set: a publish (and a label change) reads the live version and inserts the
 * next one in one `BEGIN IMMEDIATE` transaction, which holds SQLite's single write lock across
 * processes, so no other writer can come between the check and the insert. The version
 * number is the primary key besides, so even a writer that skipped the check could not
 * publish a version twice.
 */
import crypto from 'node:crypto';
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import type { Actor, LabelRecord, PolicyVersion } from '../../models/types.ts';
import { canonicalFiles, encodeCursor, eventAfter, limitOf, timeAndKeyAfter, versionAfter, VersionConflictError, type LabelStore, type ModelStore, type PolicyStore } from './port.ts';

export const POLICY_SCHEMA = `
-- A policy version's files, by the sha256 of their canonical JSON: a rollback, or a file edit
-- published again elsewhere, stores its files once.
CREATE TABLE IF NOT EXISTS policy_files (
  id TEXT PRIMARY KEY,
  files TEXT NOT NULL
) STRICT;
-- Published policy versions; the newest is the live one.
CREATE TABLE IF NOT EXISTS policy_versions (
  version INTEGER PRIMARY KEY,
  hash TEXT NOT NULL,
  model_version TEXT NOT NULL,
  message TEXT NOT NULL,
  actor TEXT NOT NULL,
  published_at INTEGER NOT NULL,
  source TEXT NOT NULL,
  rollback_of INTEGER,
  files_id TEXT NOT NULL REFERENCES policy_files (id)
) STRICT;
CREATE INDEX IF NOT EXISTS policy_versions_hash ON policy_versions (hash, version);
-- Every version of every event's label; an event's label is its newest version.
CREATE TABLE IF NOT EXISTS labels (
  event_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  label TEXT NOT NULL,
  note TEXT,
  actor TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (event_id, version)
) STRICT;
CREATE TABLE IF NOT EXISTS model_candidates (
  sha256 TEXT PRIMARY KEY,
  text TEXT NOT NULL,
  report TEXT NOT NULL,
  actor TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS model_candidates_created ON model_candidates (created_at, sha256);
`;

type Row = Record<string, SQLInputValue>;
type Statement = { run: (...a: SQLInputValue[]) => { changes: number | bigint }; get: (...a: SQLInputValue[]) => unknown; all: (...a: SQLInputValue[]) => unknown[] };

export interface EmbeddedTools {
  db: DatabaseSync;
  /** Runs `fn` in a BEGIN IMMEDIATE transaction (embedded.ts). */
  immediate: <T>(fn: () => T) => T;
  /** A prepared statement that counts its executions under `name` (StoreStats). */
  prepare: (name: string, sql: string) => Statement;
}

const toActor = (json: unknown): Actor => JSON.parse(json as string) as Actor;
const actorJson = (a: Actor): string => JSON.stringify({ kind: a.kind, id: a.id, ...(a.ip !== undefined ? { ip: a.ip } : {}) });

function toVersion(r: Row): PolicyVersion {
  return {
    version: Number(r.version), hash: r.hash as string, modelVersion: r.model_version as string, message: r.message as string,
    actor: toActor(r.actor), publishedAt: new Date(r.published_at as number), source: r.source as PolicyVersion['source'],
    ...(r.rollback_of !== null ? { rollbackOf: Number(r.rollback_of) } : {}),
  };
}

function toLabel(r: Row): LabelRecord {
  return {
    eventId: r.event_id as string, version: Number(r.version), label: r.label as LabelRecord['label'],
    ...(r.note !== null ? { note: r.note as string } : {}), actor: toActor(r.actor), at: new Date(r.at as number),
  };
}


export function openEmbeddedPolicyStores({ immediate, prepare: q }: EmbeddedTools): { policies: PolicyStore; labels: LabelStore; models: ModelStore } {
  const HEADER = 'version, hash, model_version, message, actor, published_at, source, rollback_of';
  const st = {
    live: q('policyLive', `SELECT ${HEADER} FROM policy_versions ORDER BY version DESC LIMIT 1`),
    get: q('policyGet', `SELECT ${HEADER}, f.files FROM policy_versions v JOIN policy_files f ON f.id = v.files_id WHERE v.version = ?`),
    byHash: q('policyByHash', `SELECT ${HEADER} FROM policy_versions WHERE hash = ? ORDER BY version DESC LIMIT 1`),
    history: q('policyHistory', `SELECT ${HEADER} FROM policy_versions WHERE version < ? ORDER BY version DESC LIMIT ?`),
    filesInsert: q('policyFilesInsert', 'INSERT INTO policy_files (id, files) VALUES (?, ?) ON CONFLICT (id) DO NOTHING'),
    insert: q('policyInsert', `INSERT INTO policy_versions (version, hash, model_version, message, actor, published_at, source, rollback_of, files_id)
                               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    stampGet: q('stampGet', 'SELECT stamp FROM stamps WHERE name = ?'),
    stampSet: q('stampSet', 'INSERT INTO stamps (name, stamp) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET stamp = excluded.stamp'),
    labelGet: q('labelGet', 'SELECT * FROM labels WHERE event_id = ? ORDER BY version DESC LIMIT 1'),
    labelHistory: q('labelHistory', 'SELECT * FROM labels WHERE event_id = ? ORDER BY version'),
    labelInsert: q('labelInsert', 'INSERT INTO labels (event_id, version, label, note, actor, at) VALUES (?, ?, ?, ?, ?, ?)'),
    // The newest version of each event's label, by event id (the primary key serves both).
    labelList: q('labelList', `SELECT * FROM labels l WHERE l.event_id > ?
                               AND l.version = (SELECT MAX(version) FROM labels m WHERE m.event_id = l.event_id)
                               ORDER BY l.event_id LIMIT ?`),
    modelInsert: q('modelInsert', `INSERT INTO model_candidates (sha256, text, report, actor, created_at) VALUES (?, ?, ?, ?, ?)
                                   ON CONFLICT (sha256) DO NOTHING`),
    modelGet: q('modelGet', 'SELECT * FROM model_candidates WHERE sha256 = ?'),
    modelList: q('modelList', `SELECT sha256, report, actor, created_at FROM model_candidates
                               WHERE created_at < ?1 OR (created_at = ?1 AND sha256 < ?2) ORDER BY created_at DESC, sha256 DESC LIMIT ?3`),
  };

  const policies: PolicyStore = {
    async publish(v, ifVersion) {
      const files = canonicalFiles(v.files);
      const publishedAt = Date.now();
      const version = immediate(() => {
        const live = st.live.get() as Row | undefined;
        const current = live ? Number(live.version) : 0;
        if (current !== ifVersion) throw new VersionConflictError('the live policy', current);
        st.filesInsert.run(files.id, files.json);
        st.insert.run(current + 1, v.hash, v.modelVersion, v.message, actorJson(v.actor), publishedAt, v.source, v.rollbackOf ?? null, files.id);
        st.stampSet.run('policy', crypto.randomUUID());
        return current + 1;
      });
      return { version, hash: v.hash, modelVersion: v.modelVersion, message: v.message, actor: v.actor, publishedAt: new Date(publishedAt), source: v.source, ...(v.rollbackOf !== undefined ? { rollbackOf: v.rollbackOf } : {}) };
    },
    async live() {
      const r = st.live.get() as Row | undefined;
      return r && toVersion(r);
    },
    async get(version) {
      const r = st.get.get(version) as Row | undefined;
      return r && { ...toVersion(r), files: JSON.parse(r.files as string) as Record<string, string> };
    },
    async findByHash(hash) {
      const r = st.byHash.get(hash) as Row | undefined;
      return r && toVersion(r);
    },
    async history({ after, limit }) {
      const before = after === undefined ? Number.MAX_SAFE_INTEGER : versionAfter(after);
      const n = limitOf(limit);
      const rows = st.history.all(before, n + 1) as Row[];
      const items = rows.slice(0, n).map(toVersion);
      return { items, next: rows.length > n ? encodeCursor([items[items.length - 1]!.version]) : undefined };
    },
    async stamp() {
      return ((st.stampGet.get('policy') as Row | undefined)?.stamp as string | undefined) ?? '';
    },
  };

  const labels: LabelStore = {
    async set(l, ifVersion) {
      return immediate(() => {
        const cur = st.labelGet.get(l.eventId) as Row | undefined;
        const current = cur ? Number(cur.version) : 0;
        if (current !== ifVersion) throw new VersionConflictError(`the label of event ${l.eventId}`, current || undefined);
        st.labelInsert.run(l.eventId, current + 1, l.label, l.note ?? null, actorJson(l.actor), l.at.getTime());
        return { ...l, version: current + 1 };
      });
    },
    async get(eventId) {
      const r = st.labelGet.get(eventId) as Row | undefined;
      return r && toLabel(r);
    },
    async history(eventId) {
      return (st.labelHistory.all(eventId) as Row[]).map(toLabel);
    },
    async list({ after, limit }) {
      const from = after === undefined ? '' : eventAfter(after);
      const n = limitOf(limit);
      const rows = st.labelList.all(from, n + 1) as Row[];
      const items = rows.slice(0, n).map(toLabel);
      return { items, next: rows.length > n ? encodeCursor([items[items.length - 1]!.eventId]) : undefined };
    },
  };

  const models: ModelStore = {
    async save(c) {
      st.modelInsert.run(c.sha256, c.text, JSON.stringify(c.report), actorJson(c.actor), c.createdAt.getTime());
    },
    async get(sha256) {
      const r = st.modelGet.get(sha256) as Row | undefined;
      return r && {
        sha256: r.sha256 as string, text: r.text as string, report: JSON.parse(r.report as string) as Record<string, unknown>,
        actor: toActor(r.actor), createdAt: new Date(r.created_at as number),
      };
    },
    async list({ after, limit }) {
      const [t, sha] = after === undefined ? [Number.MAX_SAFE_INTEGER, ''] : timeAndKeyAfter(after);
      const n = limitOf(limit);
      const rows = st.modelList.all(t, sha, n + 1) as Row[];
      const items = rows.slice(0, n).map((r) => ({
        sha256: r.sha256 as string, report: JSON.parse(r.report as string) as Record<string, unknown>, actor: toActor(r.actor), createdAt: new Date(r.created_at as number),
      }));
      const last = items[items.length - 1];
      return { items, next: rows.length > n && last ? encodeCursor([last.createdAt.getTime(), last.sha256]) : undefined };
    },
  };

  return { policies, labels, models };
}

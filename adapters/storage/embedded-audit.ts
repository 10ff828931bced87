/**
 * The embedded store's audit trail (port.ts AuditStore), in the `audit` table of the same
 * SQLite file (schema in embedded.ts).
 *
 * An append is one statement: it takes the next sequence number (MAX + 1), reads the newest
 * record's hash and inserts the record linked to it, hash and seal computed by a function the
 * statement calls back into (idp_audit_link). One statement is atomic under SQLite's single
 * write lock, also against another process appending to the same file, so the chain needs no
 * transaction of its own and no retry; and it goes through the store's group commit (`write`),
 * so a login's audit record shares the commit of its login event: one more statement, no more
 * commits, and the caller is answered once the record is in the WAL (durable).
 */
import crypto from 'node:crypto';
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import type { AuditRecord } from '../../models/types.ts';
import { chainRecord, GENESIS_HASH, jsonText, type AuditEntry, type AuditSealer } from './audit-chain.ts';
import type { AuditFilter, AuditStore } from './port.ts';

type Row = Record<string, SQLInputValue>;

/** A stored JSON text that no longer parses (edited by hand) still gives a value: one that cannot hash as the original did. */
function parsed(text: unknown): unknown {
  try {
    return JSON.parse(String(text));
  } catch {
    return { '!unparseable': String(text) };
  }
}

function toRecord(r: Row): AuditRecord {
  return {
    id: r.id as string,
    seq: Number(r.seq),
    ts: new Date(Number(r.ts)).toISOString(),
    actor: { kind: r.actor_kind as AuditRecord['actor']['kind'], id: r.actor_id as string, ...(r.actor_ip !== null ? { ip: r.actor_ip as string } : {}) },
    action: r.action as string,
    outcome: r.outcome as AuditRecord['outcome'],
    ...(r.target_type !== null || r.target_id !== null ? { target: { type: r.target_type as string, id: r.target_id as string } } : {}),
    ...(r.before !== null ? { before: parsed(r.before) } : {}),
    ...(r.after !== null ? { after: parsed(r.after) } : {}),
    ...(r.detail !== null ? { detail: parsed(r.detail) as Record<string, unknown> } : {}),
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
    seal: r.seal as string,
  };
}

/** The store's statement counter and timer, and its group-commit queue (embedded.ts). */
export interface EmbeddedIo {
  /** Runs `fn`, counted and timed under `name` (StoreStats). */
  timed<T>(name: string, fn: () => T): T;
  write(run: () => void): Promise<void>;
}

export function openEmbeddedAudit(db: DatabaseSync, io: EmbeddedIo): AuditStore {
  /** The record being inserted, for idp_audit_link (statements run synchronously: one at a time). */
  let pending: { entry: AuditEntry; id: string; ts: number; seal: AuditSealer; rec?: AuditRecord } | undefined;
  db.function('idp_audit_link', { deterministic: false, directOnly: true }, (seq, prev, part) => {
    const p = pending;
    if (!p) throw new Error('idp_audit_link outside an append');
    if (p.rec?.seq !== Number(seq) || p.rec.prevHash !== prev) p.rec = chainRecord(p.entry, { id: p.id, seq: Number(seq), ts: p.ts, prevHash: String(prev) }, p.seal);
    return part === 'hash' ? p.rec.hash : p.rec.seal;
  });
  const append = db.prepare(`
    INSERT INTO audit (id, seq, ts, actor_kind, actor_id, actor_ip, action, outcome, target_type, target_id, before, after, detail, prev_hash, hash, seal)
    SELECT ?13, n.seq, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, n.prev, idp_audit_link(n.seq, n.prev, 'hash'), idp_audit_link(n.seq, n.prev, 'seal')
    FROM (SELECT COALESCE(MAX(a.seq), 0) + 1 AS seq, COALESCE((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), ?12) AS prev FROM audit a) n
    RETURNING seq`);
  const page = db.prepare('SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?');
  const queries = new Map<string, ReturnType<DatabaseSync['prepare']>>();

  return {
    async append(entry, seal) {
      let rec: AuditRecord | undefined;
      await io.write(() => {
        const e = entry;
        pending = { entry: e, id: crypto.randomUUID(), ts: Date.now(), seal };
        try {
          const p = pending;
          const row = io.timed('auditAppend', () => append.get(
            p.ts, e.actor.kind, e.actor.id, e.actor.ip ?? null, e.action, e.outcome, e.target?.type ?? null, e.target?.id ?? null,
            jsonText(e.before), jsonText(e.after), jsonText(e.detail), GENESIS_HASH, p.id,
          )) as Row;
          if (pending.rec?.seq !== Number(row.seq)) throw new Error('audit append: the record linked is not the record inserted');
          rec = pending.rec;
        } finally {
          pending = undefined;
        }
      });
      return rec!;
    },
    async query(f: AuditFilter, { after, limit, order }) {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      const eq = (col: string, v: string | undefined) => { if (v !== undefined) { where.push(`${col} = ?`); params.push(v); } };
      eq('actor_kind', f.actorKind);
      eq('actor_id', f.actorId);
      eq('target_type', f.targetType);
      eq('target_id', f.targetId);
      eq('outcome', f.outcome);
      // A prefix as a range: the BINARY collation compares bytes, and U+FFFF's UTF-8 sorts
      // after every character an action name may hold (idp/audit.ts: ASCII).
      if (f.actionPrefix !== undefined) { where.push('action >= ? AND action < ?'); params.push(f.actionPrefix, `${f.actionPrefix}\uffff`); }
      if (f.since !== undefined) { where.push('ts >= ?'); params.push(f.since); }
      if (f.until !== undefined) { where.push('ts < ?'); params.push(f.until); }
      if (after !== undefined) { where.push(order === 'asc' ? 'seq > ?' : 'seq < ?'); params.push(after); }
      const sql = `SELECT * FROM audit${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
      let st = queries.get(sql);
      if (!st) queries.set(sql, (st = db.prepare(sql)));
      const q = st;
      return (io.timed('auditQuery', () => q.all(...params, limit)) as Row[]).map(toRecord);
    },
    async *scan({ from = 1, batch = 1000 } = {}) {
      let next = from;
      for (;;) {
        const at = next;
        const rows = io.timed('auditScan', () => page.all(at, batch)) as Row[];
        for (const r of rows) yield toRecord(r);
        if (rows.length < batch) return;
        next = Number(rows[rows.length - 1]!.seq) + 1;
      }
    },
  };
}

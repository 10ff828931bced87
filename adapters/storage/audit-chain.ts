/**
 * The audit trail's hash chain, shared by both stores (which link each record as they append
 * it) and by `idp audit verify` (which checks the links): one definition of what is hashed.
 *
 * - `hash`: SHA-256 over the record's canonical JSON (RFC 8785 JSON Canonicalization Scheme:
 *   keys sorted by UTF-16 code units, ECMAScript number and string serialisation, no
 *   whitespace), with the previous record's hash inside it. Anyone can recompute it from an
 *   export: it shows a record changed, or removed from the middle, after the fact.
 * - `seal`: HMAC-SHA-256 of `hash` under a key derived from the key file's data key (adapters/
 *   keys.ts deriveKey, purpose 'audit-seal'). Needed because a chain alone stops only someone
 *   who does not recompute it: whoever can write to the database could change a record and
 *   rewrite every later hash, and the chain would verify. The key is in the key file, not in
 *   the database, so write access to the database alone cannot forge a seal. (Removing the
 *   newest records leaves a shorter chain that verifies: `idp audit verify` prints the head,
 *   to be compared with a copy kept elsewhere, e.g. the SIEM the trail is exported to.)
 */
import crypto from 'node:crypto';
import type { AuditInput, AuditRecord } from '../../models/types.ts';

/** `prevHash` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** Format of the hashed serialisation (inside it, so a later change cannot be mistaken for this one). */
const CHAIN_VERSION = 1;

/** Signs a record's hash; the stores receive it from whoever holds the key (idp/audit.ts). */
export type AuditSealer = (hash: string) => string;

export function hmacSealer(key: Buffer): AuditSealer {
  return (hash) => crypto.createHmac('sha256', key).update(`audit-seal v1\n${hash}`).digest('base64url');
}

/**
 * RFC 8785 canonical JSON. Our values are JSON already (idp/audit.ts normalises them), so
 * ECMAScript's own JSON.stringify serialises numbers and strings exactly as §3.2.2 requires;
 * only the member order (§3.2.3) and the absence of whitespace are ours to ensure.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonical JSON: a number must be finite (RFC 8785 §3.2.2.3)');
    if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') throw new TypeError(`canonical JSON: a ${typeof value} is not JSON`);
    return JSON.stringify(value) ?? 'null';
  }
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return canonicalJson(withJson.toJSON());
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  // Default sort compares UTF-16 code units, which is what §3.2.3 specifies.
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** What a store is given to append: an AuditInput whose values are plain JSON. */
export type AuditEntry = AuditInput;

/** The record without its hash and seal: what is hashed. */
export type ChainedBody = Omit<AuditRecord, 'hash' | 'seal'>;

/** The hex SHA-256 of a record's canonical form (its `hash` and `seal` left out, `prevHash` in). */
export function auditHash(r: ChainedBody): string {
  const body = {
    v: CHAIN_VERSION, id: r.id, seq: r.seq, ts: r.ts, actor: r.actor, action: r.action, outcome: r.outcome,
    target: r.target, before: r.before, after: r.after, detail: r.detail, prevHash: r.prevHash,
  };
  return crypto.createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex');
}

/** Where a record goes: its id, its place in the chain, its time (epoch ms). */
export interface ChainPlace {
  id: string;
  seq: number;
  ts: number;
  prevHash: string;
}

/** The record `entry` becomes at `place.seq`, after the record whose hash is `place.prevHash`. */
export function chainRecord(entry: AuditEntry, place: ChainPlace, seal: AuditSealer): AuditRecord {
  const { id, seq, ts, prevHash } = place;
  const body: ChainedBody = {
    id, seq, ts: new Date(ts).toISOString(),
    actor: { kind: entry.actor.kind, id: entry.actor.id, ...(entry.actor.ip !== undefined ? { ip: entry.actor.ip } : {}) },
    action: entry.action, outcome: entry.outcome,
    ...(entry.target ? { target: { type: entry.target.type, id: entry.target.id } } : {}),
    ...(entry.before !== undefined ? { before: entry.before } : {}),
    ...(entry.after !== undefined ? { after: entry.after } : {}),
    ...(entry.detail !== undefined ? { detail: entry.detail } : {}),
    prevHash,
  };
  const hash = auditHash(body);
  return { ...body, hash, seal: seal(hash) };
}

/** JSON text of a value the stores keep as text (before, after, detail); undefined stays absent. */
export const jsonText = (v: unknown): string | null => (v === undefined ? null : canonicalJson(v));

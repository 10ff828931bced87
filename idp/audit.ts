/**
 * The audit trail service (issue 11 "Audit trail"): what the provider, the `idp` CLI and the
 * admin API record, query, verify and export. One implementation for all of them.
 *
 * - record(): every admin action, authentication decision, factor enrolment or removal and
 *   policy change, with secrets masked (audit-mask.ts) whatever the caller passed, appended to
 *   the store's hash chain (adapters/storage/audit-chain.ts) and sealed with a key derived from
 *   the data key. Resolves once the record is durable: a caller that answers only afterwards
 *   (a login's response) never shows a decision the trail could lose.
 * - query(): filters and cursor pagination (Page / PageRequest of the storage port).
 * - verify(): walks the chain and names the first broken record: a gap, a broken link, a
 *   record whose content no longer matches its hash, or a hash its seal does not cover.
 * - export(): the records as Elastic Common Schema events (audit-ecs.ts).
 *
 * The action names in use are listed in README "Audit trail"; a new one is a dotted verb
 * (`<thing>.<verb>`) whose first word picks its ECS category.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import { auditHash, canonicalJson, GENESIS_HASH, hmacSealer, type AuditSealer } from '../adapters/storage/audit-chain.ts';
import { deriveKey } from '../adapters/keys.ts';
import type { AuditFilter, Page, Storage } from '../adapters/storage/port.ts';
import type { Actor, AuditInput, AuditRecord } from '../models/types.ts';
import { toEcs, type EcsAuditEvent } from './audit-ecs.ts';
import { maskSecrets } from './audit-mask.ts';

export { maskSecrets, MASKED } from './audit-mask.ts';

/** HKDF purpose of the seal key (adapters/keys.ts deriveKey). */
const SEAL_PURPOSE = 'audit-seal';

export function auditSealKey(dataKey: string): Buffer {
  return deriveKey(dataKey, SEAL_PURPOSE);
}

/** `<thing>.<verb>`, lowercase ASCII: the prefix filter compares bytes (port.ts AuditFilter). */
export const ACTION_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/** Before/after larger than this (canonical JSON, bytes) are kept as their digest: an audit record is not a backup. */
const MAX_VALUE_BYTES = 64 * 1024;

export type AuditErrorCode = 'invalid_record' | 'invalid_query' | 'invalid_cursor';

/** A refused record or query; `code` is stable (the admin API's problem type). */
export class AuditError extends Error {
  override name = 'AuditError';
  readonly code: AuditErrorCode;
  constructor(code: AuditErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export const ActorSchema = z.object({
  kind: z.enum(['user', 'client', 'cli', 'system']).describe('user: an account signed in through this provider; client: a client with its own credentials; cli: the idp command (id = OS user); system: the provider itself'),
  id: z.string().min(1).max(256).describe('Account id, client id, OS user name, or the component (e.g. login, policy-files)'),
  ip: z.string().max(64).optional().describe('Address of the request the action came in, if any'),
}).describe('Who did it');

export const AuditInputSchema = z.object({
  actor: ActorSchema,
  action: z.string().max(64).regex(ACTION_PATTERN, 'a dotted lowercase verb such as user.create').describe('What was done, e.g. user.create, auth.decision, factor.enrol, policy.publish'),
  outcome: z.enum(['success', 'failure']).describe('Whether it succeeded'),
  target: z.object({ type: z.string().min(1).max(64), id: z.string().min(1).max(256) }).optional().describe('What it was done to'),
  before: z.unknown().optional().describe('The changed record before the change (secrets masked)'),
  after: z.unknown().optional().describe('The changed record after the change (secrets masked)'),
  detail: z.record(z.string(), z.unknown()).optional().describe('Anything else worth keeping: reason, decision summary, message'),
});

export const AuditRecordSchema = AuditInputSchema.extend({
  id: z.string().describe('Random record id (ECS event.id)'),
  seq: z.number().int().positive().describe('Sequence number: 1, 2, 3, … without gaps'),
  ts: z.string().describe('When it was recorded (ISO 8601, UTC)'),
  prevHash: z.string().describe('hash of the previous record (64 zeros for the first)'),
  hash: z.string().describe('SHA-256 (hex) of the record\'s RFC 8785 canonical JSON, prevHash included'),
  seal: z.string().describe('HMAC-SHA-256 (base64url) of hash under a key only the provider holds'),
}).describe('One audit record');

const isoTime = (what: string) => z.iso.datetime({ offset: true }).optional().describe(what);

export const AuditQuerySchema = z.object({
  actorKind: ActorSchema.shape.kind.optional(),
  actorId: z.string().min(1).max(256).optional().describe('Only records by this actor id'),
  action: z.string().max(64).regex(/^[a-z0-9_.]+$/, 'lowercase letters, digits, _ and .').optional().describe('Only actions beginning with this, e.g. "user." or "auth.decision"'),
  targetType: z.string().min(1).max(64).optional().describe('Only records about this kind of target (user, client, policy, keys, …)'),
  targetId: z.string().min(1).max(256).optional().describe('Only records about this target id'),
  outcome: z.enum(['success', 'failure']).optional().describe('Only successes or only failures'),
  since: isoTime('Only records written at or after this time (ISO 8601)'),
  until: isoTime('Only records written before this time (ISO 8601)'),
  order: z.enum(['asc', 'desc']).default('desc').describe('By sequence number: desc (newest first, the default) or asc'),
  after: z.string().max(64).optional().describe('The `next` cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('At most this many records (1-1000, default 100)'),
});
export type AuditQuery = z.input<typeof AuditQuerySchema>;

export const AuditExportSchema = z.object({
  since: isoTime('Only records written at or after this time (ISO 8601)'),
  until: isoTime('Only records written before this time (ISO 8601)'),
});

export const AuditProblemSchema = z.enum(['gap', 'broken_link', 'hash_mismatch', 'seal_mismatch']);
export const AuditVerificationSchema = z.object({
  ok: z.boolean().describe('Whether every record checked is intact and linked'),
  checked: z.number().int().describe('Records checked (up to and including the first broken one)'),
  sealsChecked: z.boolean().describe('Whether seals were checked (needs the key file)'),
  head: z.object({ seq: z.number().int(), hash: z.string() }).optional().describe('The newest intact record: keep a copy elsewhere to detect a truncated trail'),
  broken: z.object({
    seq: z.number().int().describe('Sequence number of the first broken record (for a gap: the first missing one)'),
    problem: AuditProblemSchema.describe('gap: records missing; broken_link: prevHash is not the previous record\'s hash; hash_mismatch: the record was changed; seal_mismatch: the hash was recomputed without the key'),
    message: z.string(),
  }).optional(),
}).describe('The result of checking the chain');
export type AuditVerification = z.infer<typeof AuditVerificationSchema>;

/** Opaque page cursor: the order and the last sequence number seen. */
const encodeCursor = (order: 'asc' | 'desc', seq: number) => Buffer.from(`a1.${order}.${seq}`).toString('base64url');
function decodeCursor(cursor: string, order: 'asc' | 'desc'): number {
  const m = /^a1\.(asc|desc)\.([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new AuditError('invalid_cursor', 'the cursor is not one this listing returned');
  if (m[1] !== order) throw new AuditError('invalid_cursor', `the cursor belongs to a listing in ${m[1]} order`);
  return Number(m[2]);
}

const ms = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso));

/** A value too large to keep whole: its digest stands in for it (and still shows whether it changed). */
function bounded(v: unknown): unknown {
  if (v === undefined) return undefined;
  const text = canonicalJson(v);
  const bytes = Buffer.byteLength(text);
  return bytes <= MAX_VALUE_BYTES ? v : { '!digest': crypto.createHash('sha256').update(text).digest('hex'), bytes };
}

/**
 * Checks a chain given in sequence order, from record 1 on: the first broken record, or ok
 * with the head. `sealKey` absent: the links and hashes only (e.g. a third party's copy).
 */
export async function verifyChain(records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>, sealKey?: Buffer): Promise<AuditVerification> {
  const seal = sealKey ? hmacSealer(sealKey) : undefined;
  let expected = 1;
  let prev = GENESIS_HASH;
  let checked = 0;
  const result = (broken?: AuditVerification['broken']): AuditVerification => ({
    ok: !broken, checked, sealsChecked: Boolean(seal), ...(expected > 1 ? { head: { seq: expected - 1, hash: prev } } : {}), ...(broken ? { broken } : {}),
  });
  for await (const r of records) {
    checked += 1;
    if (r.seq !== expected) {
      const missing = r.seq > expected ? `record${r.seq - expected > 1 ? `s ${expected}-${r.seq - 1} are` : ` ${expected} is`} missing` : `record ${r.seq} is out of order`;
      return result({ seq: expected, problem: 'gap', message: `${missing} (the next stored record is ${r.seq})` });
    }
    let hash: string;
    try {
      hash = auditHash(r);
    } catch {
      hash = '';
    }
    if (hash !== r.hash) return result({ seq: r.seq, problem: 'hash_mismatch', message: `record ${r.seq} does not match its hash: it was changed after it was written` });
    if (seal && !safeEqual(seal(r.hash), r.seal)) {
      return result({ seq: r.seq, problem: 'seal_mismatch', message: `record ${r.seq}'s seal does not cover its hash: the record and its hash were rewritten without the key` });
    }
    if (r.prevHash !== prev) {
      return result({ seq: r.seq, problem: 'broken_link', message: `record ${r.seq} does not link to record ${r.seq - 1} (prevHash differs)` });
    }
    prev = r.hash;
    expected += 1;
  }
  return result();
}

function safeEqual(a: string, b: unknown): boolean {
  if (typeof b !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/**
 * The record of a policy change made through the store (the policy lifecycle: publish, rollback),
 * in the same shape as the file reloads idp/server.ts records (`policy.reload`): the versions
 * before and after, the message, whether it went live. For the policy service's `audit` call.
 */
export function policyChange(actor: Actor, action: 'policy.publish' | 'policy.rollback', change: {
  from?: string | undefined; to: string; message?: string | undefined; outcome?: 'success' | 'failure'; detail?: Record<string, unknown>;
}): AuditInput {
  return {
    actor, action, outcome: change.outcome ?? 'success', target: { type: 'policy', id: change.to },
    before: { version: change.from }, after: { version: change.to }, detail: { ...(change.message !== undefined ? { message: change.message } : {}), ...change.detail },
  };
}

export interface AuditTrailOptions {
  storage: Storage;
  /** The key file's data key (adapters/keys.ts): the seal key is derived from it. */
  dataKey: string;
}

export class AuditTrail {
  readonly #storage: Storage;
  readonly #sealKey: Buffer;
  readonly #seal: AuditSealer;

  constructor(opts: AuditTrailOptions) {
    this.#storage = opts.storage;
    this.#sealKey = auditSealKey(opts.dataKey);
    this.#seal = hmacSealer(this.#sealKey);
  }

  /** Appends one record (secrets masked here too); resolves once it is durable. */
  async record(input: AuditInput): Promise<AuditRecord> {
    const parsed = AuditInputSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AuditError('invalid_record', `audit record refused: ${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'}`);
    }
    const e = parsed.data;
    return this.#storage.audit.append({
      actor: { kind: e.actor.kind, id: e.actor.id, ...(e.actor.ip ? { ip: e.actor.ip } : {}) },
      action: e.action,
      outcome: e.outcome,
      ...(e.target ? { target: { type: e.target.type, id: e.target.id } } : {}),
      ...(e.before !== undefined ? { before: bounded(maskSecrets(e.before)) } : {}),
      ...(e.after !== undefined ? { after: bounded(maskSecrets(e.after)) } : {}),
      ...(e.detail !== undefined ? { detail: bounded(maskSecrets(e.detail)) as Record<string, unknown> } : {}),
    }, this.#seal);
  }

  /** `record` as the `audit` function services and steps receive (`(e: AuditInput) => Promise<void>`). */
  readonly audit = async (e: AuditInput): Promise<void> => {
    await this.record(e);
  };

  /** One page of records matching the query (AuditQuerySchema); throws AuditError on a bad query or cursor. */
  async query(q: AuditQuery): Promise<Page<AuditRecord>> {
    const parsed = AuditQuerySchema.safeParse(q);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AuditError('invalid_query', `${issue?.path.join('.') || 'query'}: ${issue?.message ?? 'invalid'}`);
    }
    const p = parsed.data;
    const filter: AuditFilter = {
      actorKind: p.actorKind, actorId: p.actorId, actionPrefix: p.action, targetType: p.targetType, targetId: p.targetId,
      outcome: p.outcome, since: ms(p.since), until: ms(p.until),
    };
    const after = p.after === undefined ? undefined : decodeCursor(p.after, p.order);
    // One more than asked: whether there is a next page, without a second query.
    const items = await this.#storage.audit.query(filter, { after, limit: p.limit + 1, order: p.order });
    const more = items.length > p.limit;
    if (more) items.length = p.limit;
    return { items, ...(more ? { next: encodeCursor(p.order, items[items.length - 1]!.seq) } : {}) };
  }

  /** The walk of the chain under way, and the one that follows it for those who asked meanwhile. */
  #walk: Promise<AuditVerification> | undefined;
  #queued: Promise<AuditVerification> | undefined;

  /**
   * Checks the whole chain, seals included (AuditVerification). A walk costs every record
   * (a hash and an HMAC each) and any admin:read token may ask, so callers share walks: at
   * most one runs in this process. Who asks while one is under way gets the next one, which
   * begins after their request (the running one may have passed a record changed since).
   */
  verify(progress?: (checked: number) => void): Promise<AuditVerification> {
    if (!this.#walk) return this.#begin(progress);
    this.#queued ??= this.#walk.then(() => {}, () => {}).then(() => {
      this.#queued = undefined;
      return this.#walk ?? this.#begin();
    });
    return this.#queued;
  }

  #begin(progress?: (checked: number) => void): Promise<AuditVerification> {
    const scan = this.#storage.audit.scan({});
    const walk = verifyChain(progress ? counted(scan, progress) : scan, this.#sealKey).finally(() => {
      if (this.#walk === walk) this.#walk = undefined;
    });
    this.#walk = walk;
    return walk;
  }

  /** The newest record's sequence number (0: none): how many records a full walk reads. */
  async size(): Promise<number> {
    return (await this.#storage.audit.query({}, { limit: 1, order: 'desc' }))[0]?.seq ?? 0;
  }

  /** Records in sequence order as ECS events, optionally within a time range (AuditExportSchema). */
  async *export(opts: { since?: number | undefined; until?: number | undefined } = {}): AsyncGenerator<EcsAuditEvent> {
    if (opts.since === undefined && opts.until === undefined) {
      for await (const r of this.#storage.audit.scan({})) yield toEcs(r);
      return;
    }
    let after: number | undefined;
    for (;;) {
      const page = await this.#storage.audit.query({ since: opts.since, until: opts.until }, { after, limit: 1000, order: 'asc' });
      for (const r of page) yield toEcs(r);
      if (page.length < 1000) return;
      after = page[page.length - 1]!.seq;
    }
  }
}

/** Passes records through, telling `progress` how many went by (a CLI progress bar). */
async function* counted<T>(src: AsyncIterable<T>, progress: (n: number) => void): AsyncGenerator<T> {
  let n = 0;
  for await (const x of src) {
    yield x;
    progress((n += 1));
  }
}

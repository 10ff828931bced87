/**
 * The audit trail in Elastic Common Schema (ECS 8.x) field names, one JSON object per record:
 * what `idp audit export` writes as JSON lines and a SIEM ingests without a mapping of its own
 * (README "Audit trail" has an example line). ECS fields carry what ECS has a name for; the
 * record itself (actor, target, before/after, detail, chain) is kept whole under `idp.audit`,
 * so the export still verifies: `event.hash` is the record's hash, `idp.audit.prev_hash` the
 * link, and the record can be rebuilt from the line (`recordOfEcs`).
 */
import type { AuditRecord } from '../models/types.ts';

/** ECS event.category values (ECS "event.category" allowed values) by the action's first word. */
const CATEGORY: Record<string, string> = {
  auth: 'authentication',
  factor: 'iam',
  user: 'iam',
  client: 'iam',
  session: 'session',
  keys: 'configuration',
  policy: 'configuration',
  model: 'configuration',
  label: 'configuration',
  audit: 'configuration',
};

/** ECS event.type for the action's verb, within its category's allowed types. */
function typesOf(category: string | undefined, action: string): string[] {
  const verb = action.slice(action.lastIndexOf('.') + 1);
  if (category === 'authentication') return ['info'];
  if (category === 'session') return /revoke|end|delete/.test(verb) ? ['end'] : ['info'];
  const change = /^(create|add)$/.test(verb) ? 'creation' : /^(delete|remove|retire)$/.test(verb) ? 'deletion' : 'change';
  if (category === 'iam') {
    const principal = action.startsWith('user.') || action.startsWith('factor.') ? 'user' : 'admin';
    return [principal, change];
  }
  return [change];
}

export interface EcsAuditEvent {
  '@timestamp': string;
  event: {
    kind: 'event';
    category?: string[];
    type: string[];
    action: string;
    outcome: 'success' | 'failure';
    id: string;
    sequence: number;
    hash: string;
    dataset: 'idp.audit';
    provider: 'adaptive-idp';
  };
  user?: { id?: string; name?: string; target?: { id: string } };
  source?: { ip: string };
  related?: { user?: string[]; ip?: string[] };
  idp: { audit: Omit<AuditRecord, 'id' | 'seq' | 'ts' | 'action' | 'outcome' | 'hash' | 'prevHash'> & { prev_hash: string } };
}

export function toEcs(r: AuditRecord): EcsAuditEvent {
  const category = CATEGORY[r.action.slice(0, r.action.indexOf('.'))];
  const user: NonNullable<EcsAuditEvent['user']> = {};
  // Who acted: a signed-in administrator or user (user.id), the CLI's OS user (user.name).
  if (r.actor.kind === 'user') user.id = r.actor.id;
  if (r.actor.kind === 'cli') user.name = r.actor.id;
  // Whom it was about: for an authentication, the user signing in (ECS user.id); for an
  // administrative change, user.target (ECS "user.target.*": the user an action acted on).
  if (r.target?.type === 'user') {
    if (category === 'authentication' && r.actor.kind === 'system') user.id = r.target.id;
    else if (r.target.id !== user.id) user.target = { id: r.target.id };
  }
  const relatedUsers = [...new Set([user.id, user.name, user.target?.id].filter((x): x is string => typeof x === 'string'))];
  const rest = { actor: r.actor, target: r.target, before: r.before, after: r.after, detail: r.detail, seal: r.seal, prev_hash: r.prevHash };
  return {
    '@timestamp': r.ts,
    event: {
      kind: 'event', ...(category ? { category: [category] } : {}), type: typesOf(category, r.action), action: r.action, outcome: r.outcome,
      id: r.id, sequence: r.seq, hash: r.hash, dataset: 'idp.audit', provider: 'adaptive-idp',
    },
    ...(Object.keys(user).length ? { user } : {}),
    ...(r.actor.ip ? { source: { ip: r.actor.ip } } : {}),
    ...(relatedUsers.length || r.actor.ip ? { related: { ...(relatedUsers.length ? { user: relatedUsers } : {}), ...(r.actor.ip ? { ip: [r.actor.ip] } : {}) } } : {}),
    idp: { audit: rest },
  };
}

/** The record an exported line came from (to verify an export away from the store). */
export function recordOfEcs(e: EcsAuditEvent): AuditRecord {
  const { prev_hash: prevHash, ...rest } = e.idp.audit;
  return {
    id: e.event.id, seq: e.event.sequence, ts: e['@timestamp'], action: e.event.action, outcome: e.event.outcome,
    ...rest, prevHash, hash: e.event.hash,
  };
}

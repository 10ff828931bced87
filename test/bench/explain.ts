/**
 * `explain` for every query the MongoDB store makes (adapters/storage/mongo.ts): what plan
 * the server picks, and which index, if any, serves it.
 *
 * The queries are not listed by hand (a list would drift from the code): a workload calls
 * every method of the storage port, on data of some volume, while the store reports each
 * command it sends (MongoOptions.onCommand). Every distinct query among them (method,
 * command, collection, filter shape) is then explained on the same database: find, count
 * and aggregate as sent; the query part of an update, delete or findAndModify as a find (the
 * same selection; FerretDB v1 explains no writes).
 *
 * What each server reports:
 * - MongoDB: the winning plan's stages and the index (IXSCAN { key }), or COLLSCAN;
 * - FerretDB v1 on PostgreSQL: whether the filter, sort and limit are pushed down into SQL,
 *   and PostgreSQL's plan for that SQL (Seq Scan, or Index Scan and the index);
 * - FerretDB v1 on SQLite: the same flags and SQLite's plan (SCAN, or SEARCH USING INDEX).
 * Writes by unique `_id` (insert, and FerretDB's own update/delete by `_id` after its query)
 * are not queries and are listed only in the counts.
 *
 * Run: `BENCH_ONLY=explain BENCH_MONGO=sqlite,postgresql npm run bench`, or
 * `node dist/test/bench/explain.js` (MONGODB_URI or BENCH_MONGO as for the bench).
 */
import crypto from 'node:crypto';
import os from 'node:os';
import mongoose from 'mongoose';
import { openMongoStorage } from '../../adapters/storage/mongo.ts';
import type { Storage } from '../../adapters/storage/port.ts';
import type { LoginEventRecord } from '../../models/types.ts';
import { mongoUriForTest } from '../helpers/env.ts';
import { mongoTargets } from './mongo.ts';

/** Records per collection the workload seeds first, so plans are those of a non-trivial table. */
const VOLUME = Number(process.env.BENCH_EXPLAIN_VOLUME ?? 500);

interface Query {
  method: string;
  command: string;
  collection: string;
  filter: Record<string, unknown>;
  sort?: Record<string, unknown> | undefined;
  limit?: number | undefined;
  /** What is explained: the command as sent, or a find with its selection. */
  explain: Record<string, unknown>;
}

/** `{ key, kind, _id: { $ne } }`: the fields and operators of a filter, without its values. */
export function shape(v: unknown): string {
  if (v instanceof Map) return shape(Object.fromEntries(v));
  if (Array.isArray(v)) return `[${v.map(shape).join(', ')}]`;
  if (v && typeof v === 'object' && !(v instanceof Date) && Object.getPrototypeOf(v) === Object.prototype) {
    if (Object.keys(v).length === 0) return '{}';
    return `{ ${Object.entries(v as Record<string, unknown>).map(([k, x]) => {
      const inner = x && typeof x === 'object' && !(x instanceof Date) && !Array.isArray(x) && Object.keys(x).some((o) => o.startsWith('$'));
      return inner || k.startsWith('$') ? `${k}: ${shape(x)}` : k;
    }).join(', ')} }`;
  }
  return '·';
}

/** The queries in one command: find/count/aggregate as sent; each update/delete statement's selection as a find. */
function queriesOf(method: string, name: string, cmd: Readonly<Record<string, unknown>>): Query[] {
  const collection = cmd[name];
  if (typeof collection !== 'string') return [];
  const asFind = (filter: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ find: collection, filter, ...extra });
  switch (name) {
    case 'find': {
      const filter = (cmd.filter ?? {}) as Record<string, unknown>;
      const sort = cmd.sort as Record<string, unknown> | undefined;
      const limit = cmd.limit as number | undefined;
      return [{ method, command: name, collection, filter, sort, limit, explain: asFind(filter, { ...(sort ? { sort } : {}), ...(limit ? { limit } : {}) }) }];
    }
    case 'count': {
      const filter = (cmd.query ?? {}) as Record<string, unknown>;
      return [{ method, command: name, collection, filter, explain: { count: collection, query: filter } }];
    }
    case 'aggregate': {
      const pipeline = cmd.pipeline as Record<string, unknown>[];
      const filter = (pipeline[0]?.$match ?? {}) as Record<string, unknown>;
      return [{ method, command: `aggregate ${shape(pipeline.map((s) => Object.keys(s)[0]))}`, collection, filter, explain: { aggregate: collection, pipeline, cursor: {} } }];
    }
    case 'update':
      return (cmd.updates as { q: Record<string, unknown> }[]).map((u) => ({ method, command: name, collection, filter: u.q, explain: asFind(u.q) }));
    case 'delete':
      return (cmd.deletes as { q: Record<string, unknown>; limit: number }[]).map((d) => ({ method, command: name, collection, filter: d.q, explain: asFind(d.q) }));
    case 'findAndModify': {
      const filter = (cmd.query ?? {}) as Record<string, unknown>;
      return [{ method, command: name, collection, filter, explain: asFind(filter) }];
    }
    default:
      return [];
  }
}

/** One line for a plan, whichever server answered. */
export function summarise(res: Record<string, unknown>): string {
  const qp = res.queryPlanner as Record<string, unknown> | undefined;
  if (qp && 'winningPlan' in qp) {
    // MongoDB: the stages from the root down, with the index of an IXSCAN.
    const stages: string[] = [];
    let node = qp.winningPlan as Record<string, unknown> | undefined;
    while (node) {
      stages.push(node.stage === 'IXSCAN' ? `IXSCAN ${JSON.stringify(node.keyPattern)}` : String(node.stage));
      node = (node.inputStage ?? (node.inputStages as Record<string, unknown>[] | undefined)?.[0] ?? node.queryPlan) as Record<string, unknown> | undefined;
    }
    return stages.join(' ← ');
  }
  const flags = ['filter', 'sort', 'limit'].filter((f) => res[`${f}Pushdown`] === true);
  const pushed = `pushdown: ${flags.length ? flags.join('+') : 'none'}`;
  const plan = qp?.Plan;
  if (Array.isArray(plan)) return `${pushed}; ${plan.map((p) => String(p).replace(/^.*detail=/, '')).join(', ')}`; // SQLite
  if (plan && typeof plan === 'object') { // PostgreSQL, EXPLAIN (FORMAT JSON)
    const nodes: string[] = [];
    const walk = (n: Record<string, unknown>) => {
      // The filter without its table name and values: `(key @> ?) AND (kind @> ?)`.
      const filter = typeof n.Filter === 'string' ? n.Filter.replace(/\w+\._jsonb -> '([^']*)'::text/g, '$1').replace(/'(?:[^']|'')*'::jsonb/g, '?') : '';
      nodes.push(`${n['Node Type']}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}${filter ? ` (SQL filter ${filter})` : ''}`);
      for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
    };
    walk(plan as Record<string, unknown>);
    return `${pushed}; ${nodes.join(' ← ')}`;
  }
  return `${pushed}; (no plan: ${JSON.stringify(qp)})`;
}

/** Calls every method of the storage port, under the method's name, after seeding VOLUME records of each kind. */
async function workload(s: Storage, step: (method: string) => void): Promise<void> {
  const now = Date.now();
  const id = () => crypto.randomUUID();
  const hour = 3_600_000;
  const accounts: string[] = [];
  const factors: string[] = [];
  step('(seed)');
  for (let i = 0; i < VOLUME; i += 1) {
    const a = await s.accounts.create({ id: id(), username: `user${i}`, emailVerified: false, passwordHash: '$argon2id$seed' });
    accounts.push(a.id);
    const f = await s.factors.add({ id: id(), accountId: a.id, kind: 'totp', label: 'app', enrolledVia: 'admin', totp: { secretCiphertext: 'v1.iv.ct.tag', algorithm: 'SHA1', digits: 6, period: 30 } });
    factors.push(f.id);
    await s.oidc.upsert({ model: 'Session', id: id(), payload: { seed: i }, uid: id(), expiresAt: now + hour });
    await s.oidc.upsert({ model: 'AccessToken', id: id(), payload: { seed: i }, grantId: id(), expiresAt: now + hour });
    await s.risk.observe({ kind: 'password_ok', ts: now - i * 1000, user: accounts[i % 50]!, ip: `198.51.100.${i % 200}` }, now + hour);
    await s.attempts.reserve(`ip:seed${i % 50}`, { now: now - i, max: 1000, windowMs: hour, waitMs: () => 0 });
    await s.events.append({ id: `seed-${i}`, ts: new Date(now - i * 60_000).toISOString(), user: accounts[i]!, ip: '192.0.2.1', userAgent: 'UA', success: true });
  }
  const user = accounts[0]!;

  step('accounts.create');
  const amy = await s.accounts.create({ id: id(), username: 'amy', emailVerified: false, passwordHash: '$argon2id$x' });
  step('accounts.create (taken)');
  await s.accounts.create({ id: id(), username: 'amy', emailVerified: false, passwordHash: '$argon2id$x' }).catch(() => {});
  step('accounts.findById');
  await s.accounts.findById(amy.id);
  step('accounts.findByUsername');
  await s.accounts.findByUsername('amy');
  step('accounts.list');
  await s.accounts.list();
  step('accounts.setPasswordHash');
  await s.accounts.setPasswordHash(amy.id, '$argon2id$y');
  step('accounts.addTrustedDevice');
  await s.accounts.addTrustedDevice(amy.id, 'device-1', 5);
  step('accounts.syncDirectoryProfile');
  await s.accounts.syncDirectoryProfile(amy.id, { directory: { name: 'corp', id: 'x', dn: 'uid=amy', syncedAt: new Date() }, emailVerified: false, claims: {} });

  step('clients.create');
  await s.clients.create({ clientId: 'web', metadata: { redirect_uris: ['https://rp.example/cb'] } });
  step('clients.find');
  await s.clients.find('web');
  step('clients.list');
  await s.clients.list();
  step('clients.stamp');
  await s.clients.stamp();

  const opts = { now, max: 10, windowMs: hour, waitMs: (n: number) => (n >= 2 ? 1000 : 0) };
  step('attempts.reserve (empty bucket)');
  const r1 = await s.attempts.reserve('acct:amy', opts);
  step('attempts.reserve (counted bucket, progressive delay)');
  await s.attempts.reserve('acct:amy', { ...opts, now: now + 1 });
  await s.attempts.reserve('acct:amy', { ...opts, now: now + 2 });
  step('attempts.reserve (stale bucket)');
  await s.attempts.reserve('acct:amy', { ...opts, now: now + 2 * hour });
  step('attempts.get');
  await s.attempts.get('acct:amy', now + 2 * hour, hour, opts.waitMs);
  step('attempts.refund');
  if (r1.id) await s.attempts.refund('acct:amy', r1.id);
  step('attempts.reset');
  await s.attempts.reset('acct:amy');
  const r2 = await s.attempts.reserve('ip:192.0.2.9', opts);
  step('attempts.settle');
  await s.attempts.settle(['acct:amy', 'factor:amy'], r2.id ? { key: 'ip:192.0.2.9', attemptId: r2.id } : undefined);

  const grantId = id();
  const uid = id();
  step('oidc.upsert');
  await s.oidc.upsert({ model: 'Session', id: 'sess', payload: { a: 1 }, uid, expiresAt: now + hour });
  await s.oidc.upsert({ model: 'AuthorizationCode', id: 'code', payload: { a: 1 }, grantId, expiresAt: now + hour });
  await s.oidc.upsert({ model: 'DeviceCode', id: 'dc', payload: { a: 1 }, userCode: 'ABCD-EFGH', grantId, expiresAt: now + hour });
  step('oidc.upsert (existing)');
  await s.oidc.upsert({ model: 'Session', id: 'sess', payload: { a: 2 }, uid, expiresAt: now + hour });
  step('oidc.replace');
  await s.oidc.replace({ model: 'Session', id: 'sess', payload: { a: 3 }, uid, expiresAt: now + hour }, now);
  step('oidc.find');
  await s.oidc.find('AuthorizationCode', 'code', now);
  step('oidc.findByUid');
  await s.oidc.findByUid('Session', uid, now);
  step('oidc.findByUserCode');
  await s.oidc.findByUserCode('DeviceCode', 'ABCD-EFGH', now);
  step('oidc.consume');
  await s.oidc.consume('AuthorizationCode', 'code', Math.floor(now / 1000));
  step('oidc.claim');
  await s.oidc.claim('DeviceNonce', 'nonce-1', now + hour);
  step('oidc.destroy');
  await s.oidc.destroy('Session', 'sess');
  step('oidc.revokeByGrantId');
  await s.oidc.revokeByGrantId(grantId);
  step('oidc.sweep');
  await s.oidc.sweep(now);

  const event: LoginEventRecord = { id: 'ev', ts: new Date(now - 100 * 24 * hour).toISOString(), user, ip: '192.0.2.1', userAgent: 'UA', success: true, behaviour: { v: 1, unusable: 'paste' } };
  step('events.append');
  await s.events.append(event);
  step('events.findById');
  await s.events.findById('ev');
  step('events.list');
  for await (const e of s.events.list({ since: now - hour })) void e;
  step('events.pruneBehaviour');
  await s.events.pruneBehaviour(now - 90 * 24 * hour);

  step('risk.putUser');
  await s.risk.putUser(user, { places: [] });
  step('risk.getUser');
  await s.risk.getUser(user);
  step('risk.observe');
  await s.risk.observe({ kind: 'password_failed', ts: now, user, ip: '198.51.100.1' }, now + hour);
  step('risk.observations (user)');
  await s.risk.observations({ user }, 'password_ok', now - hour, 50);
  step('risk.observations (ip)');
  await s.risk.observations({ ip: '198.51.100.1' }, 'password_failed', now - hour, 50);
  step('risk.snapshot');
  await s.risk.snapshot(user, [{ by: { user }, kind: 'password_ok', since: now - hour, limit: 50 }, { by: { ip: '198.51.100.1' }, kind: 'password_failed', since: now - hour, limit: 50 }]);

  step('factors.add');
  const passkey = await s.factors.add({
    id: id(), accountId: amy.id, kind: 'webauthn', label: 'key', enrolledVia: 'self', counter: 1,
    webauthn: { credentialId: 'cred-1', publicKey: 'pk', transports: [], deviceType: 'singleDevice', backedUp: false, userVerified: true },
  });
  const codes = await s.factors.add({ id: id(), accountId: amy.id, kind: 'recovery', label: 'codes', enrolledVia: 'self', recovery: { hashes: ['h1', 'h2'], used: [] } });
  step('factors.list');
  await s.factors.list(amy.id);
  step('factors.find');
  await s.factors.find(amy.id, passkey.id);
  step('factors.findByCredentialId');
  await s.factors.findByCredentialId('cred-1');
  step('factors.advance');
  await s.factors.advance(factors[0]!, 5, new Date());
  step('factors.touch');
  await s.factors.touch(passkey.id, new Date());
  step('factors.useRecoveryCode');
  await s.factors.useRecoveryCode(codes.id, 'h1', new Date());
  step('factors.remove');
  await s.factors.remove(amy.id, codes.id);
  step('factors.removeAll');
  await s.factors.removeAll(amy.id);
}

/** Explains every query of the workload on the server at MONGODB_URI; returns method → query → plan. */
async function explainOn(uri: string): Promise<{ queries: Query[]; plans: Map<Query, string>; writes: Map<string, number> }> {
  const seen = new Map<string, Query>();
  const writes = new Map<string, number>();
  let method = '(open)';
  const s = await openMongoStorage(uri, {
    onCommand: (name, cmd) => {
      if (method === '(seed)' || method === '(open)') return;
      const qs = queriesOf(method, name, cmd);
      if (qs.length === 0 && typeof cmd[name] === 'string') writes.set(`${method}: ${name} ${String(cmd[name])}`, (writes.get(`${method}: ${name} ${String(cmd[name])}`) ?? 0) + 1);
      for (const q of qs) {
        const key = `${q.method}|${q.command}|${q.collection}|${shape(q.filter)}|${shape(q.sort ?? {})}`;
        if (!seen.has(key)) seen.set(key, q);
      }
    },
  });
  const conn = await mongoose.createConnection(uri).asPromise();
  try {
    await workload(s, (m) => { method = m; });
    const plans = new Map<Query, string>();
    for (const q of seen.values()) {
      try {
        plans.set(q, summarise(await conn.db!.command({ explain: q.explain, verbosity: 'queryPlanner' })));
      } catch (err) {
        plans.set(q, `explain failed: ${(err as Error).message}`);
      }
    }
    return { queries: [...seen.values()], plans, writes };
  } finally {
    await conn.close();
    await s.close();
  }
}

/** Methods a sign-in, a token request or a refresh calls (the bench's round trips per request show them). */
const HOT = /^(accounts\.(findById|findByUsername|addTrustedDevice)|clients\.(find|stamp)|attempts\.(reserve|refund|reset|settle)|oidc\.(upsert|replace|find|findByUid|claim|consume|destroy)|events\.append|risk\.|factors\.(list|find|findByCredentialId|advance|touch|useRecoveryCode))\b/;

export async function explainReport(): Promise<void> {
  console.log(`# explain of every query of the MongoDB store (adapters/storage/mongo.ts), ${VOLUME} records of each kind seeded; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('(* = called by a sign-in, a token or a refresh request)');
  for await (const target of mongoTargets()) {
    void target;
    const { queries, plans, writes } = await explainOn(mongoUriForTest());
    let last = '';
    const kinds = new Map<string, number>();
    for (const q of queries) {
      if (q.method !== last) console.log(`${HOT.test(q.method) ? '*' : ' '} ${q.method}`);
      last = q.method;
      const sort = q.sort instanceof Map ? Object.fromEntries(q.sort) : q.sort;
      const extra = `${sort ? ` sort ${JSON.stringify(sort)}` : ''}${q.limit ? ` limit ${q.limit}` : ''}`;
      const plan = plans.get(q) ?? '';
      console.log(`    ${q.command} ${q.collection} ${shape(q.filter)}${extra}\n      → ${plan}`);
      const kind = Object.keys(q.filter).length === 0 ? 'scan of the whole collection (no filter)' : /IXSCAN|Index Scan|Index Only Scan|Bitmap|USING INDEX|USING COVERING INDEX|USING PRIMARY KEY/.test(plan) ? 'use an index'
        : /pushdown: none/.test(plan) ? 'scan, filtered in FerretDB (every document decoded)'
          : /pushdown: filter/.test(plan) ? 'scan, filtered in SQL' : /COLLSCAN/.test(plan) ? 'COLLSCAN' : 'other';
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    console.log(`${queries.length} queries: ${[...kinds].map(([k, n]) => `${n} ${k}`).join('; ')}`);
    console.log(`writes by _id or inserts, no query to explain: ${[...writes.keys()].join('; ')}`);
  }
}

if (process.argv[1] && import.meta.filename === (await import('node:fs')).realpathSync(process.argv[1])) {
  await explainReport();
}

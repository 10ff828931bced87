/**
 * One contract for both implementations of the storage port: the embedded store always,
 * MongoDB whenever MONGODB_URI is set. Counters are exercised in parallel and from
 * several processes, since they enforce security limits.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { openStorage, DuplicateError, type Storage } from '../../adapters/storage/index.ts';
import { decodeCursor, encodeCursor, InvalidCursorError, VersionConflictError, type AuditFilter } from '../../adapters/storage/port.ts';
import type { AuditRecord, LoginEventRecord } from '../../models/types.ts';
import { auditHash, hmacSealer, type AuditEntry } from '../../adapters/storage/audit-chain.ts';
import { verifyChain } from '../../idp/audit.ts';
import { mongoUriForTest, STORES, describeOrSkip, tempDir, type StoreKind } from '../helpers/env.ts';
import { RUN_DEADLINE_MS, startNode } from '../helpers/process.ts';

const run = promisify(execFile);
const WORKER = path.join(import.meta.dirname, '..', 'helpers', 'storage-worker.js');

function config(kind: StoreKind) {
  return kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { mongodbUri: undefined, dataDir: tempDir('idp-store-') };
}

const account = (username: string) => ({ id: crypto.randomUUID(), username, emailVerified: false, passwordHash: '$argon2id$v=19$fake' });

for (const store of STORES) {
  describeOrSkip(store.skip, `storage contract (${store.kind})`, () => {
    let s: Storage;
    let cfg: ReturnType<typeof config>;

    before(async () => {
      cfg = config(store.kind);
      s = await openStorage(cfg);
    });
    after(() => s?.close());

    describe('accounts', () => {
      it('creates, finds and lists', async () => {
        const a = await s.accounts.create({ ...account('amy'), email: 'amy@example.com', name: 'Amy' });
        assert.equal((await s.accounts.findById(a.id))?.username, 'amy');
        assert.equal((await s.accounts.findByUsername('amy'))?.email, 'amy@example.com');
        assert.equal(await s.accounts.findByUsername('nobody'), undefined);
        assert.ok((await s.accounts.list()).some((x) => x.id === a.id));
      });

      it('refuses a duplicate username, also when created in parallel, and never overwrites', async () => {
        const first = await s.accounts.create(account('ben'));
        await assert.rejects(s.accounts.create(account('ben')), DuplicateError);
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => s.accounts.create(account('cat'))));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        assert.ok(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof DuplicateError));
        assert.equal((await s.accounts.findByUsername('ben'))?.id, first.id);
      });

      it('updates the password hash and keeps the newest recognised devices', async () => {
        const a = await s.accounts.create(account('dan'));
        await s.accounts.setPasswordHash(a.id, '$argon2id$new');
        assert.equal((await s.accounts.findById(a.id))?.passwordHash, '$argon2id$new');
        for (const d of ['d1', 'd2', 'd3', 'd2']) await s.accounts.addTrustedDevice(a.id, d, 2);
        assert.deepEqual((await s.accounts.findById(a.id))?.trustedDevices, ['d3', 'd2']);
        // The newest again changes nothing.
        await s.accounts.addTrustedDevice(a.id, 'd2', 2);
        assert.deepEqual((await s.accounts.findById(a.id))?.trustedDevices, ['d3', 'd2']);
      });
    });

    describe('clients', () => {
      it('creates, finds, lists and refuses duplicates', async () => {
        await s.clients.create({ clientId: 'c1', secretCiphertext: 'v1.x.y.z', metadata: { redirect_uris: ['https://a.example/cb'], 'a.b': 1 } });
        const c = await s.clients.find('c1');
        assert.deepEqual(c?.metadata, { redirect_uris: ['https://a.example/cb'], 'a.b': 1 });
        assert.equal(c?.secretCiphertext, 'v1.x.y.z');
        await assert.rejects(s.clients.create({ clientId: 'c1', metadata: {} }), DuplicateError);
        assert.equal((await s.clients.find('c1'))?.secretCiphertext, 'v1.x.y.z');
        assert.ok((await s.clients.list()).some((x) => x.clientId === 'c1'));
      });

      it('changes the clients stamp with every client added, as another connection sees it', async () => {
        const other = await openStorage(cfg);
        try {
          const before = await s.clients.stamp();
          assert.equal(await other.clients.stamp(), before);
          await other.clients.create({ clientId: `stamp-${crypto.randomUUID()}`, metadata: {} });
          const after = await s.clients.stamp();
          assert.notEqual(after, before);
          // A refused duplicate changes nothing.
          await assert.rejects(other.clients.create({ clientId: 'c1', metadata: {} }), DuplicateError);
          assert.equal(await s.clients.stamp(), after);
        } finally {
          await other.close();
        }
      });
    });

    describe('client versions and pages', () => {
      it('updates and removes only the version given, and pages in client id order', async () => {
        const id = `ver-${crypto.randomUUID()}`;
        const c = await s.clients.create({ clientId: id, metadata: { a: 1 } });
        assert.equal(c.version, 1);
        const stamp = await s.clients.stamp();
        const u = await s.clients.update(id, { secretCiphertext: 'v1.s', metadata: { a: 2 } }, 1);
        assert.equal(u.version, 2);
        assert.deepEqual(u.metadata, { a: 2 });
        assert.equal(u.secretCiphertext, 'v1.s');
        assert.notEqual(await s.clients.stamp(), stamp, 'a change changes the stamp');
        await assert.rejects(s.clients.update(id, { metadata: { a: 3 } }, 1), (e: VersionConflictError) => e instanceof VersionConflictError && e.current === 2);
        await assert.rejects(s.clients.remove(id, 1), VersionConflictError);
        await s.clients.remove(id, 2);
        assert.equal(await s.clients.find(id), undefined);
        await assert.rejects(s.clients.update(id, { metadata: {} }, 2), (e: VersionConflictError) => e instanceof VersionConflictError && e.current === undefined);
        // A new client of the same id starts again at version 1 and can be changed.
        await s.clients.create({ clientId: id, metadata: {} });
        assert.equal((await s.clients.update(id, { metadata: { b: 1 } }, 1)).version, 2);

        const prefix = `page-${crypto.randomUUID().slice(0, 8)}`;
        for (let i = 0; i < 7; i++) await s.clients.create({ clientId: `${prefix}-${i}`, metadata: {} });
        const seen: string[] = [];
        let after: string | undefined;
        do {
          const page = await s.clients.page({ after, limit: 3 });
          assert.ok(page.items.length <= 3);
          seen.push(...page.items.map((x) => x.clientId));
          after = page.next;
        } while (after);
        const all = (await s.clients.list()).map((x) => x.clientId);
        assert.deepEqual(seen, all, 'every client once, in order');
        assert.throws(() => decodeCursor('not-a-cursor', 1), InvalidCursorError);
        await assert.rejects(s.clients.page({ after: 'bm90IGpzb24', limit: 3 }), InvalidCursorError);
      });

      it('lets exactly one of 100 parallel changes of one version win, across two store objects', async () => {
        const other = await openStorage(cfg);
        try {
          const id = `race-${crypto.randomUUID()}`;
          await s.clients.create({ clientId: id, metadata: { n: -1 } });
          const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) =>
            (i % 2 ? other : s).clients.update(id, { metadata: { n: i } }, 1)));
          const won = results.filter((r) => r.status === 'fulfilled');
          assert.equal(won.length, 1, 'one winner');
          assert.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as Error) instanceof VersionConflictError));
          const final = await s.clients.find(id);
          assert.equal(final?.version, 2);
          assert.deepEqual(final?.metadata, (won[0] as PromiseFulfilledResult<{ metadata: unknown }>).value.metadata, 'the winner\'s change is the one stored');
          // And the next version is open to exactly one again.
          const next = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => (i % 2 ? other : s).clients.remove(id, 2)));
          assert.equal(next.filter((r) => r.status === 'fulfilled').length, 1);
          assert.equal(await other.clients.find(id), undefined);
        } finally {
          await other.close();
        }
      });
    });

    describe('admin roles', () => {
      it('are versioned from 0 (none), and one of 100 parallel changes of a version wins, across two store objects', async () => {
        const other = await openStorage(cfg);
        try {
          const id = crypto.randomUUID();
          assert.deepEqual(await s.roles.get(id), { scopes: [], version: 0 });
          const first = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => (i % 2 ? other : s).roles.set(id, [i % 3 ? 'admin:read' : 'admin:keys'], 0)));
          assert.equal(first.filter((r) => r.status === 'fulfilled').length, 1, 'one creation');
          assert.ok(first.every((r) => r.status === 'fulfilled' || (r.reason as Error) instanceof VersionConflictError));
          const v1 = await other.roles.get(id);
          assert.equal(v1.version, 1);
          const next = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => (i % 2 ? other : s).roles.set(id, ['admin:read', 'admin:write', `admin:${i % 2 ? 'policy' : 'keys'}`], 1)));
          const won = next.filter((r) => r.status === 'fulfilled');
          assert.equal(won.length, 1, 'one change of version 1');
          const v2 = await s.roles.get(id);
          assert.equal(v2.version, 2);
          assert.deepEqual(v2.scopes, (won[0] as PromiseFulfilledResult<{ scopes: string[] }>).value.scopes);
          await assert.rejects(s.roles.set(id, [], 1), (e: VersionConflictError) => e instanceof VersionConflictError && e.current === 2);
          assert.ok((await s.roles.list()).some((r) => r.accountId === id));
          await s.roles.set(id, [], 2);
          assert.ok(!(await other.roles.list()).some((r) => r.accountId === id), 'an account with no roles is not listed');
        } finally {
          await other.close();
        }
      });
    });

    describe('event queries', () => {
      it('pages newest first, by user and time range', async () => {
        const user = `q-${crypto.randomUUID()}`;
        const base = Date.parse('2031-01-01T00:00:00Z');
        const ev = (i: number, u = user): LoginEventRecord => ({ id: `q-${user}-${i}`, ts: new Date(base + Math.floor(i / 2) * 1000).toISOString(), user: u, ip: '192.0.2.1', userAgent: 'ua', success: true });
        for (let i = 0; i < 9; i++) await s.events.append(ev(i));
        await s.events.append(ev(100, `${user}-other`));
        const got: LoginEventRecord[] = [];
        let after: string | undefined;
        do {
          const page = await s.events.query({ user }, { after, limit: 4 });
          got.push(...page.items);
          after = page.next;
        } while (after);
        assert.equal(got.length, 9);
        const keys = got.map((e) => [Date.parse(e.ts), e.id] as const);
        for (let i = 1; i < keys.length; i++) assert.ok(keys[i - 1]![0] > keys[i]![0] || (keys[i - 1]![0] === keys[i]![0] && keys[i - 1]![1] > keys[i]![1]), 'newest first, then id descending');
        const ranged = await s.events.query({ user, from: base + 1000, to: base + 3000 }, { limit: 100 });
        assert.deepEqual(ranged.items.map((e) => e.id).sort(), [2, 3, 4, 5].map((i) => `q-${user}-${i}`).sort());
        assert.equal(ranged.next, undefined);
        // A cursor it did not hand out: refused, whatever the types inside (never a cast error).
        for (const bad of [encodeCursor(['x', 1]), encodeCursor([1, 2]), encodeCursor(['1', 'a'])]) {
          await assert.rejects(s.events.query({ user }, { after: bad, limit: 4 }), InvalidCursorError);
        }
      });
    });

    describe('attempt counters', () => {
      const noWait = () => 0;
      const opts = (max = 100, windowMs = Infinity) => ({ now: Date.now(), max, windowMs, waitMs: noWait });
      /** The throttle's schedule: free attempts, then 1 s, doubling. */
      const progressive = (free: number) => (count: number) => (count < free ? 0 : 1000 * 2 ** (count - free));

      it('settles a finished login in one call: its resets emptied, one attempt of the refunded key uncounted', async () => {
        for (const k of ['st-a', 'st-b', 'st-ip', 'st-other']) for (let i = 0; i < 3; i += 1) await s.attempts.reserve(k, opts());
        const ip = await s.attempts.reserve('st-ip', opts());
        await s.attempts.settle(['st-a', 'st-b'], { key: 'st-ip', attemptId: ip.id! });
        const count = async (k: string) => (await s.attempts.get(k, Date.now(), Infinity)).count;
        assert.deepEqual([await count('st-a'), await count('st-b'), await count('st-ip'), await count('st-other')], [0, 0, 3, 3]);
        // An emptied bucket counts afresh from 1.
        assert.equal((await s.attempts.reserve('st-a', opts())).count, 1);
      });

      it('refuses without counting when the limit is 0, and when the delay has not passed', async () => {
        assert.deepEqual(await s.attempts.reserve('zero', opts(0)), { allowed: false, reason: 'limit', count: 0, blockedUntil: 0 });
        const now = Date.now();
        const wait = (c: number) => (c >= 1 ? 60_000 : 0);
        assert.ok((await s.attempts.reserve('dl', { now, max: 10, windowMs: Infinity, waitMs: wait })).allowed);
        const r = await s.attempts.reserve('dl', { now: now + 1000, max: 10, windowMs: Infinity, waitMs: wait });
        assert.equal(r.allowed, false);
        assert.equal(r.reason, 'delayed');
        assert.equal(r.blockedUntil, now + 60_000);
        assert.equal((await s.attempts.get('dl', now + 1000, Infinity)).count, 1);
      });

      it('sweeps only the buckets that already count as empty, also beside 100 parallel attempts', async () => {
        const now = Date.now();
        const W = 60_000;
        const at = (key: string, t: number, windowMs = W) => s.attempts.reserve(key, { now: t, max: 1000, windowMs, waitMs: noWait });
        // Physically there or not: with no window, get() counts whatever the bucket still holds.
        const held = async (key: string) => (await s.attempts.get(key, now, Infinity)).count;
        await at('sw:old', now - W - 1);
        await at('sw:recent', now - W + 5_000);
        await at('sw:busy', now - W - 1);
        // Keys just outside the prefix's range, and an account-like bucket with no window.
        await at('sw;edge', now - 10 * W);
        await at('sv:before', now - 10 * W);
        await at('swx:acct', now - 10 * W, Infinity);
        assert.deepEqual([await held('sw:old'), await held('sw:busy')], [1, 1]);
        const sweep = () => s.attempts.sweep(now, [{ prefix: 'sw:', windowMs: W }], 1000);
        // The stale bucket is counted again 100 times in parallel while sweeps run: none is lost.
        const r = await Promise.all([sweep(), ...Array.from({ length: 100 }, () => at('sw:busy', now)), sweep()]);
        assert.ok(r.slice(1, -1).every((x) => x !== undefined && x.allowed));
        assert.equal(await held('sw:busy'), 100);
        assert.equal(await held('sw:old'), 0);
        assert.equal(await held('sw:recent'), 1);
        assert.deepEqual([await held('sw;edge'), await held('sv:before'), await held('swx:acct')], [1, 1, 1]);
        // A swept key counts afresh, as the stale one did.
        assert.equal((await at('sw:old', now)).count, 1);
      });

      it('counts 20 parallel attempts as 20, each with its own number', async () => {
        const r = await Promise.all(Array.from({ length: 20 }, () => s.attempts.reserve('k20', opts())));
        assert.ok(r.every((x) => x.allowed));
        assert.equal((await s.attempts.get('k20', Date.now(), Infinity)).count, 20);
      });

      it('never lets parallel attempts past the limit, and counts exactly those admitted', async () => {
        const r = await Promise.all(Array.from({ length: 130 }, () => s.attempts.reserve('kcap', opts(100))));
        const admitted = r.filter((x) => x.allowed).length;
        assert.ok(admitted <= 100, `${admitted} admitted`);
        // Contention near the limit may refuse early (MongoDB), never late; the embedded store is exact.
        if (store.kind === 'embedded') assert.equal(admitted, 100);
        assert.ok(r.filter((x) => !x.allowed).every((x) => x.reason === 'limit'));
        assert.equal((await s.attempts.get('kcap', Date.now(), Infinity)).count, admitted);
        // Sequential attempts then fill it up exactly.
        for (let i = admitted; i < 100; i += 1) assert.ok((await s.attempts.reserve('kcap', opts(100))).allowed);
        assert.equal((await s.attempts.reserve('kcap', opts(100))).reason, 'limit');
        assert.equal((await s.attempts.get('kcap', Date.now(), Infinity)).count, 100);
      });

      it('applies the progressive delay when an attempt is reserved: 100 parallel attempts get only the free ones', async () => {
        const now = Date.now();
        const r = await Promise.all(Array.from({ length: 100 }, () => s.attempts.reserve('kburst', { now, max: 100, windowMs: Infinity, waitMs: progressive(5) })));
        const admitted = r.filter((x) => x.allowed).length;
        // Contention may refuse early on MongoDB (never late); the embedded store is exact.
        assert.ok(admitted <= 5, `${admitted} of 100 parallel attempts admitted; the free allowance is 5`);
        if (store.kind === 'embedded') assert.equal(admitted, 5);
        assert.ok(r.filter((x) => !x.allowed).every((x) => x.reason === 'delayed' && x.blockedUntil > now));
        assert.equal((await s.attempts.get('kburst', now, Infinity)).count, admitted, 'refused attempts are not counted');
      });

      it('never admits a sixth of 100 parallel attempts, burst after burst: a limit of 5, then 5 free with clocks out of order', async () => {
        // Repeated: a race that lets one attempt too many through shows in some bursts only.
        for (let burst = 0; burst < 5; burst += 1) {
          const r = await Promise.all(Array.from({ length: 100 }, () => s.attempts.reserve(`klim${burst}`, opts(5))));
          const admitted = r.filter((x) => x.allowed).length;
          assert.ok(admitted <= 5, `burst ${burst}: ${admitted} of 100 parallel attempts admitted against a limit of 5`);
          if (store.kind === 'embedded') assert.equal(admitted, 5);
          assert.equal((await s.attempts.get(`klim${burst}`, Date.now(), Infinity)).count, admitted, 'refused attempts are not counted');
        }
        for (let burst = 0; burst < 5; burst += 1) {
          // Each caller read its clock at a different moment (up to 300 ms apart, in no
          // particular order), as requests do that reach the store at different speeds: all
          // inside the 1 s the sixth must wait, so five at most.
          const base = Date.now();
          const r = await Promise.all(Array.from({ length: 100 }, () => s.attempts.reserve(`kjit${burst}`, {
            now: base + crypto.randomInt(300), max: 100, windowMs: Infinity, waitMs: progressive(5),
          })));
          const admitted = r.filter((x) => x.allowed).length;
          assert.ok(admitted <= 5, `burst ${burst}: ${admitted} of 100 parallel attempts admitted; the free allowance is 5`);
          if (store.kind === 'embedded') assert.equal(admitted, 5);
          assert.equal((await s.attempts.get(`kjit${burst}`, Date.now(), Infinity)).count, admitted, 'refused attempts are not counted');
        }
      });

      it('runs the delay from the newest counted attempt, whichever was counted last', async () => {
        const now = Date.now();
        const wait = progressive(2);
        // Two free attempts, the one stamped later counted first (its caller read its clock
        // later but reached the store sooner).
        assert.ok((await s.attempts.reserve('korder', { now: now + 900, max: 100, windowMs: Infinity, waitMs: wait })).allowed);
        assert.ok((await s.attempts.reserve('korder', { now: now + 100, max: 100, windowMs: Infinity, waitMs: wait })).allowed);
        // The third waits 1 s from the newest (now + 900), not from the one counted last.
        const early = await s.attempts.reserve('korder', { now: now + 1150, max: 100, windowMs: Infinity, waitMs: wait });
        assert.equal(early.allowed, false, 'admitted 250 ms after an attempt, inside its 1 s delay');
        assert.equal(early.blockedUntil, now + 1900);
        assert.deepEqual(await s.attempts.get('korder', now + 1150, Infinity, wait), { count: 2, blockedUntil: now + 1900 });
        assert.ok((await s.attempts.reserve('korder', { now: now + 1900, max: 100, windowMs: Infinity, waitMs: wait })).allowed);
      });

      it('never refuses a free attempt because a parallel one stamped a later time', async () => {
        const now = Date.now();
        assert.ok((await s.attempts.reserve('kskew', { now: now + 50, max: 100, windowMs: Infinity, waitMs: progressive(5) })).allowed);
        assert.ok((await s.attempts.reserve('kskew', { now, max: 100, windowMs: Infinity, waitMs: progressive(5) })).allowed);
      });

      it('refuses without counting during the delay, and allows after it', async () => {
        const now = Date.now();
        const wait = progressive(2);
        for (let i = 0; i < 2; i += 1) assert.ok((await s.attempts.reserve('kd', { now, max: 100, windowMs: Infinity, waitMs: wait })).allowed);
        const during = await s.attempts.reserve('kd', { now: now + 500, max: 100, windowMs: Infinity, waitMs: wait });
        assert.equal(during.allowed, false);
        assert.equal(during.reason, 'delayed');
        assert.equal(during.blockedUntil, now + 1000);
        assert.deepEqual(await s.attempts.get('kd', now + 500, Infinity, wait), { count: 2, blockedUntil: now + 1000 });
        const later = await s.attempts.reserve('kd', { now: now + 1000, max: 100, windowMs: Infinity, waitMs: wait });
        assert.equal(later.allowed, true);
        assert.equal(later.count, 3);
        // The next one waits twice as long, from the last counted attempt.
        assert.equal((await s.attempts.reserve('kd', { now: now + 2999, max: 100, windowMs: Infinity, waitMs: wait })).reason, 'delayed');
        assert.ok((await s.attempts.reserve('kd', { now: now + 3000, max: 100, windowMs: Infinity, waitMs: wait })).allowed);
      });

      it('starts afresh after the window, and on reset; refund uncounts the attempt it names', async () => {
        const now = Date.now();
        for (let i = 0; i < 3; i += 1) await s.attempts.reserve('kw', { now, max: 100, windowMs: 1000, waitMs: noWait });
        assert.equal((await s.attempts.get('kw', now + 999, 1000)).count, 3);
        assert.equal((await s.attempts.get('kw', now + 1000, 1000)).count, 0);
        const fresh = await s.attempts.reserve('kw', { now: now + 1500, max: 100, windowMs: 1000, waitMs: noWait });
        assert.equal(fresh.count, 1);
        const second = await s.attempts.reserve('kw', { now: now + 1500, max: 100, windowMs: 1000, waitMs: noWait });
        await s.attempts.refund('kw', second.id!);
        assert.equal((await s.attempts.get('kw', now + 1600, 1000)).count, 1);
        await s.attempts.reset('kw');
        assert.equal((await s.attempts.get('kw', now + 1600, 1000)).count, 0);
      });

      it('refunds exactly one per success under 100 parallel refunds', async () => {
        const r = await Promise.all(Array.from({ length: 100 }, () => s.attempts.reserve('kref', opts(200))));
        assert.ok(r.every((x) => x.allowed));
        await Promise.all(r.slice(0, 90).map((x) => s.attempts.refund('kref', x.id!)));
        assert.equal((await s.attempts.get('kref', Date.now(), Infinity)).count, 10);
      });

      it('keeps the progressive delay across processes sharing the store: 3 × 40 parallel attempts, 5 free', async () => {
        const env = { ...process.env, DATA_DIR: cfg.dataDir, MONGODB_URI: cfg.mongodbUri ?? '' };
        const outs = await Promise.all([1, 2, 3].map(() => run(process.execPath, [WORKER, 'reserve', 'kprocdelay', '40', '100', '5'], { env })));
        const allowed = outs.reduce((sum, o) => sum + Number(o.stdout.trim()), 0);
        assert.ok(allowed <= 5, `${allowed} of 120 attempts from 3 processes admitted; 5 are free, the next waits a minute`);
        // MongoDB may refuse early under contention (even all of a burst): the strict side.
        if (store.kind === 'embedded') assert.equal(allowed, 5);
        assert.equal((await s.attempts.get('kprocdelay', Date.now(), Infinity)).count, allowed);
        // Once the burst is over, the free attempts left are there to be had.
        const wait = (count: number) => (count >= 5 ? 60_000 : 0);
        for (let i = allowed; i < 5; i += 1) assert.ok((await s.attempts.reserve('kprocdelay', { now: Date.now(), max: 100, windowMs: Infinity, waitMs: wait })).allowed);
        assert.equal((await s.attempts.reserve('kprocdelay', { now: Date.now(), max: 100, windowMs: Infinity, waitMs: wait })).reason, 'delayed');
      });

      it('keeps the limit across processes sharing the store (several IdP instances)', async () => {
        const env = { ...process.env, DATA_DIR: cfg.dataDir, MONGODB_URI: cfg.mongodbUri ?? '' };
        const outs = await Promise.all([1, 2, 3].map(() => run(process.execPath, [WORKER, 'reserve', 'kproc', '40', '100'], { env, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' })));
        const allowed = outs.reduce((sum, o) => sum + Number(o.stdout.trim()), 0);
        assert.ok(allowed <= 100, `${allowed} of 120 attempts from 3 processes admitted against a limit of 100`);
        if (store.kind === 'embedded') assert.equal(allowed, 100);
        assert.equal((await s.attempts.get('kproc', Date.now(), Infinity)).count, allowed);
      });
    });

    describe('oidc-provider records', () => {
      it('stores, finds by id, uid and user code, and filters expired records on read', async () => {
        const now = Date.now();
        await s.oidc.upsert({ model: 'Session', id: 's1', payload: { a: 1, 'x.y': { $z: 2 } }, uid: 'u1', expiresAt: now + 60_000 });
        await s.oidc.upsert({ model: 'DeviceCode', id: 'dc1', payload: { b: 2 }, userCode: 'ABCD', expiresAt: now + 60_000 });
        assert.deepEqual((await s.oidc.find('Session', 's1', now))?.payload, { a: 1, 'x.y': { $z: 2 } });
        assert.equal((await s.oidc.findByUid('Session', 'u1', now))?.id, 's1');
        assert.equal((await s.oidc.findByUserCode('DeviceCode', 'ABCD', now))?.id, 'dc1');
        assert.equal(await s.oidc.find('Session', 's1', now + 60_000), undefined, 'expired is not found');
        assert.equal(await s.oidc.find('AccessToken', 's1', now), undefined, 'models are separate');
        // upsert replaces
        await s.oidc.upsert({ model: 'Session', id: 's1', payload: { a: 2 }, uid: 'u1', expiresAt: now + 60_000 });
        assert.deepEqual((await s.oidc.find('Session', 's1', now))?.payload, { a: 2 });
      });

      it('lets exactly one of 20 parallel consumers consume a code', async () => {
        await s.oidc.upsert({ model: 'AuthorizationCode', id: 'code1', payload: { grantId: 'g1' }, grantId: 'g1', expiresAt: Date.now() + 60_000 });
        const r = await Promise.all(Array.from({ length: 20 }, () => s.oidc.consume('AuthorizationCode', 'code1', 123)));
        assert.equal(r.filter(Boolean).length, 1);
        assert.equal((await s.oidc.find('AuthorizationCode', 'code1', Date.now()))?.consumed, 123);
        assert.equal(await s.oidc.consume('AuthorizationCode', 'code1', 124), false);
      });

      it('replaces a record only while it is stored: never one destroyed, expired or never made; consumed stays', async () => {
        const now = Date.now();
        const rec = (id: string, payload: Record<string, unknown>, expiresAt = now + 60_000) => ({ model: 'Interaction', id, payload, expiresAt });
        await s.oidc.upsert(rec('rp1', { v: 1 }));
        assert.equal(await s.oidc.replace(rec('rp1', { v: 2 }), now), true);
        assert.deepEqual((await s.oidc.find('Interaction', 'rp1', now))?.payload, { v: 2 });
        await s.oidc.destroy('Interaction', 'rp1');
        assert.equal(await s.oidc.replace(rec('rp1', { v: 3 }), now), false);
        assert.equal(await s.oidc.find('Interaction', 'rp1', now), undefined, 'a destroyed record is not made again');
        assert.equal(await s.oidc.replace(rec('rp-never', { v: 1 }), now), false);
        assert.equal(await s.oidc.find('Interaction', 'rp-never', now), undefined);
        await s.oidc.upsert(rec('rp-old', { v: 1 }, now - 1));
        assert.equal(await s.oidc.replace(rec('rp-old', { v: 2 }), now), false);
        await s.oidc.upsert({ model: 'AuthorizationCode', id: 'rp-code', payload: { v: 1 }, expiresAt: now + 60_000 });
        assert.equal(await s.oidc.consume('AuthorizationCode', 'rp-code', 7), true);
        assert.equal(await s.oidc.replace({ model: 'AuthorizationCode', id: 'rp-code', payload: { v: 2 }, expiresAt: now + 60_000 }, now), true);
        assert.equal((await s.oidc.find('AuthorizationCode', 'rp-code', now))?.consumed, 7);
      });

      it('revokes by grant id, destroys, and sweeps expired records', async () => {
        const now = Date.now();
        await s.oidc.upsert({ model: 'AccessToken', id: 'at1', payload: {}, grantId: 'g2', expiresAt: now + 60_000 });
        await s.oidc.upsert({ model: 'RefreshToken', id: 'rt1', payload: {}, grantId: 'g2', expiresAt: now + 60_000 });
        await s.oidc.upsert({ model: 'AccessToken', id: 'at2', payload: {}, grantId: 'g3', expiresAt: now + 60_000 });
        // An interaction names the grant of the authorization it serves; it is no token of it.
        await s.oidc.upsert({ model: 'Interaction', id: 'i1', payload: {}, grantId: 'g2', expiresAt: now + 60_000 });
        await s.oidc.revokeByGrantId('g2');
        assert.ok(await s.oidc.find('Interaction', 'i1', now), 'the interaction outlives the revocation of its grant');
        assert.equal(await s.oidc.find('AccessToken', 'at1', now), undefined);
        assert.equal(await s.oidc.find('RefreshToken', 'rt1', now), undefined);
        assert.ok(await s.oidc.find('AccessToken', 'at2', now));
        await s.oidc.destroy('AccessToken', 'at2');
        assert.equal(await s.oidc.find('AccessToken', 'at2', now), undefined);
        await s.oidc.upsert({ model: 'AccessToken', id: 'old', payload: {}, expiresAt: now - 1 });
        assert.ok((await s.oidc.sweep(now)) >= 1);
      });
    });

    describe('second factors', () => {
      const totp = (accountId: string, label = 'Authenticator app') => ({
        id: crypto.randomUUID(), accountId, kind: 'totp' as const, label, enrolledVia: 'admin' as const,
        totp: { secretCiphertext: 'v1.iv.ct.tag', algorithm: 'SHA1' as const, digits: 6 as const, period: 30 as const },
      });
      const passkey = (accountId: string, credentialId: string) => ({
        id: crypto.randomUUID(), accountId, kind: 'webauthn' as const, label: 'Security key', enrolledVia: 'self' as const, counter: 7,
        webauthn: { credentialId, publicKey: 'pQECAyYgASFYIA', transports: ['usb', 'nfc'], deviceType: 'singleDevice' as const, backedUp: false, aaguid: '00000000-0000-0000-0000-000000000000', userVerified: true },
      });
      const recovery = (accountId: string, hashes: string[]) => ({
        id: crypto.randomUUID(), accountId, kind: 'recovery' as const, label: 'Recovery codes', enrolledVia: 'self' as const, recovery: { hashes, used: [] },
      });
      const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID()}`;

      it('adds, finds, lists oldest first, and round-trips every field (dates as Date)', async () => {
        const acct = uniq('acct');
        const t = await s.factors.add(totp(acct));
        assert.equal(t.counter, 0);
        assert.ok(t.createdAt instanceof Date && Math.abs(t.createdAt.getTime() - Date.now()) < 60_000);
        assert.equal(t.lastUsedAt, undefined);
        const credentialId = uniq('cred');
        const p = await s.factors.add(passkey(acct, credentialId));
        const r = await s.factors.add(recovery(acct, ['h1', 'h2']));
        const list = await s.factors.list(acct);
        assert.deepEqual(list.map((f) => f.id), [t.id, p.id, r.id]);
        assert.deepEqual(await s.factors.find(acct, t.id), t);
        const foundPasskey = await s.factors.find(acct, p.id);
        assert.equal(foundPasskey?.counter, 7, 'the enrolled counter is kept');
        assert.deepEqual(foundPasskey?.webauthn, passkey(acct, credentialId).webauthn);
        assert.deepEqual((await s.factors.find(acct, r.id))?.recovery, { hashes: ['h1', 'h2'], used: [] });
        assert.equal(await s.factors.find(uniq('other'), t.id), undefined, "another account's factor is not found");
        assert.deepEqual(await s.factors.list(uniq('nobody')), []);
      });

      it('refuses a WebAuthn credential id registered before, by any account (DuplicateError)', async () => {
        const credentialId = uniq('dup');
        const first = await s.factors.add(passkey(uniq('a'), credentialId));
        await assert.rejects(s.factors.add(passkey(uniq('b'), credentialId)), (err: unknown) => err instanceof DuplicateError && err.kind === 'factor');
        assert.equal((await s.factors.findByCredentialId(credentialId))?.id, first.id);
        assert.equal(await s.factors.findByCredentialId(uniq('none')), undefined);
        // Factors without a credential id never collide with each other.
        const acct = uniq('many');
        await Promise.all([1, 2, 3].map(() => s.factors.add(totp(acct))));
        assert.equal((await s.factors.list(acct)).length, 3);
      });

      it('removes one, and all or all of one kind', async () => {
        const acct = uniq('rm');
        const t1 = await s.factors.add(totp(acct));
        await s.factors.add(totp(acct, 'second phone'));
        await s.factors.add(recovery(acct, ['x']));
        await s.factors.add(passkey(acct, uniq('c')));
        assert.equal(await s.factors.remove(uniq('other'), t1.id), false, "not through another account");
        assert.equal(await s.factors.remove(acct, t1.id), true);
        assert.equal(await s.factors.remove(acct, t1.id), false);
        assert.equal(await s.factors.removeAll(acct, 'recovery'), 1);
        assert.deepEqual((await s.factors.list(acct)).map((f) => f.kind).sort(), ['totp', 'webauthn']);
        assert.equal(await s.factors.removeAll(acct), 2);
        assert.deepEqual(await s.factors.list(acct), []);
        assert.equal(await s.factors.removeAll(acct), 0);
      });

      it('advances a counter only upwards, stamping lastUsedAt', async () => {
        const acct = uniq('adv');
        const f = await s.factors.add(totp(acct));
        const at = new Date('2030-01-02T03:04:05.678Z');
        assert.equal(await s.factors.advance(f.id, 100, at), true);
        let now = await s.factors.find(acct, f.id);
        assert.equal(now?.counter, 100);
        assert.deepEqual(now?.lastUsedAt, at);
        assert.equal(await s.factors.advance(f.id, 100, new Date()), false, 'the same value again');
        assert.equal(await s.factors.advance(f.id, 99, new Date()), false, 'a lower value');
        assert.equal(await s.factors.advance(f.id, 101, new Date()), true);
        assert.equal(await s.factors.advance(f.id, 100, new Date()), false, 'a lower value after a higher one');
        now = await s.factors.find(acct, f.id);
        assert.equal(now?.counter, 101);
        assert.equal(await s.factors.advance(uniq('missing'), 1, new Date()), false, 'an unknown factor');
        // A passkey enrolled with counter 7 refuses 7 and below.
        const p = await s.factors.add(passkey(acct, uniq('c')));
        assert.equal(await s.factors.advance(p.id, 7, new Date()), false);
        assert.equal(await s.factors.advance(p.id, 8, new Date()), true);
        const touchedAt = new Date('2031-05-06T07:08:09.000Z');
        await s.factors.touch(p.id, touchedAt);
        assert.deepEqual((await s.factors.find(acct, p.id))?.lastUsedAt, touchedAt);
      });

      it('keeps refusing every value up to the highest accepted over many uses, and after the factor is removed', async () => {
        // Many sign-ins in a row: the stores may tidy what they keep of earlier values (MongoDB
        // clears its lower marks in batches), never what a replay is refused by.
        const acct = uniq('many');
        const f = await s.factors.add(totp(acct));
        for (let v = 1; v <= 25; v += 1) assert.equal(await s.factors.advance(f.id, v * 10, new Date()), true, `use ${v}`);
        for (const v of [10, 90, 160, 245, 250]) assert.equal(await s.factors.advance(f.id, v, new Date()), false, `replay of ${v}`);
        assert.equal((await s.factors.find(acct, f.id))?.counter, 250);
        assert.equal(await s.factors.advance(f.id, 251, new Date()), true);
        assert.equal(await s.factors.remove(acct, f.id), true);
        assert.equal(await s.factors.advance(f.id, 260, new Date()), false, 'a removed factor');
        assert.equal(await s.factors.find(acct, f.id), undefined);
        assert.equal(await s.factors.find(uniq('other'), (await s.factors.add(totp(acct))).id), undefined, "another account's factor");
      });

      it('lets exactly one of 100 parallel advances to one value win', async () => {
        const acct = uniq('race');
        const f = await s.factors.add(totp(acct));
        for (const value of [58_000_001, 58_000_002]) {
          const r = await Promise.all(Array.from({ length: 100 }, () => s.factors.advance(f.id, value, new Date())));
          assert.equal(r.filter(Boolean).length, 1, `${r.filter(Boolean).length} of 100 parallel advances to ${value} succeeded`);
        }
        assert.equal((await s.factors.find(acct, f.id))?.counter, 58_000_002);
      });

      it('never lets a lower value win after a higher one among 100 parallel advances to mixed values', async () => {
        const acct = uniq('mixed');
        const f = await s.factors.add(totp(acct));
        const values = Array.from({ length: 100 }, (_, i) => 1000 + (i % 10));
        const done: number[] = [];
        await Promise.all(values.map(async (v) => {
          if (await s.factors.advance(f.id, v, new Date())) done.push(v);
        }));
        // Each value is accepted at most once, the highest always (nothing above it can refuse
        // it), and the counter ends there: a lower value racing in late cannot pull it down.
        assert.equal(new Set(done).size, done.length, `a value accepted twice: ${done.join(' ')}`);
        assert.ok(done.includes(1009), `the highest value was refused: ${done.join(' ')}`);
        assert.equal((await s.factors.find(acct, f.id))?.counter, 1009);
        for (const v of [1000, 1009]) assert.equal(await s.factors.advance(f.id, v, new Date()), false);
      });

      it('uses a recovery code once: 100 parallel uses of one code give exactly one success', async () => {
        const acct = uniq('rec');
        const f = await s.factors.add(recovery(acct, ['hash-a', 'hash-b', 'hash-c']));
        const r = await Promise.all(Array.from({ length: 100 }, () => s.factors.useRecoveryCode(f.id, 'hash-b', new Date())));
        assert.equal(r.filter(Boolean).length, 1, `${r.filter(Boolean).length} of 100 parallel uses succeeded`);
        assert.equal(await s.factors.useRecoveryCode(f.id, 'hash-b', new Date()), false, 'used before');
        assert.equal(await s.factors.useRecoveryCode(f.id, 'hash-z', new Date()), false, 'not one of its codes');
        assert.equal(await s.factors.useRecoveryCode(uniq('missing'), 'hash-a', new Date()), false, 'an unknown factor');
        const at = new Date('2030-03-03T03:03:03.003Z');
        assert.equal(await s.factors.useRecoveryCode(f.id, 'hash-c', at), true);
        const now = await s.factors.find(acct, f.id);
        assert.deepEqual(now?.recovery?.used.map((u) => u.hash), ['hash-b', 'hash-c']);
        assert.ok(now?.recovery?.used.every((u) => u.at instanceof Date));
        assert.deepEqual(now?.recovery?.used[1]?.at, at);
        assert.deepEqual(now?.lastUsedAt, at);
        // A TOTP factor is not a set of codes, whatever hash is asked for.
        const t = await s.factors.add(totp(acct));
        assert.equal(await s.factors.useRecoveryCode(t.id, 'hash-a', new Date()), false);
      });

      it('forgets used codes with their record: new codes with equal hashes are unused', async () => {
        const acct = uniq('replace');
        const old = await s.factors.add(recovery(acct, ['same']));
        assert.equal(await s.factors.useRecoveryCode(old.id, 'same', new Date()), true);
        assert.equal(await s.factors.removeAll(acct, 'recovery'), 1);
        assert.equal(await s.factors.useRecoveryCode(old.id, 'same', new Date()), false, 'the removed set');
        const fresh = await s.factors.add(recovery(acct, ['same']));
        assert.deepEqual((await s.factors.find(acct, fresh.id))?.recovery?.used, []);
        assert.equal(await s.factors.useRecoveryCode(fresh.id, 'same', new Date()), true);
      });

      it('lets one advance win across processes sharing the store: 3 × 40 parallel advances to one value', async () => {
        const acct = uniq('proc');
        const f = await s.factors.add(totp(acct));
        const env = { ...process.env, DATA_DIR: cfg.dataDir, MONGODB_URI: cfg.mongodbUri ?? '' };
        const outs = await Promise.all([1, 2, 3].map(() => run(process.execPath, [WORKER, 'advance', f.id, '40', '59000000'], { env, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' })));
        const won = outs.reduce((sum, o) => sum + Number(o.stdout.trim()), 0);
        assert.equal(won, 1, `${won} of 120 advances from 3 processes succeeded`);
        assert.equal((await s.factors.find(acct, f.id))?.counter, 59_000_000);
      });
    });

    describe('risk snapshot', () => {
      it('answers the user document and each query, as getUser and observations do', async () => {
        const now = Date.now();
        await s.risk.putUser('snap', { v: 1, marker: 'doc' });
        for (let i = 0; i < 4; i += 1) await s.risk.observe({ kind: 'password_failed', ts: now - i * 1000, user: 'snap', ip: '198.51.100.20' }, now + 60_000);
        await s.risk.observe({ kind: 'password_ok', ts: now, user: 'snap', ip: '198.51.100.21', country: 'DE' }, now + 60_000);
        await s.risk.observe({ kind: 'password_failed', ts: now, user: 'other', ip: '198.51.100.20' }, now + 60_000);
        const queries = [
          { by: { user: 'snap' }, kind: 'password_failed' as const, since: now - 10_000, limit: 3 },
          { by: { ip: '198.51.100.20' }, kind: 'password_failed' as const, since: now - 10_000, limit: 10 },
          { by: { user: 'snap' }, kind: 'password_ok' as const, since: now - 10_000, limit: 10 },
          { by: { user: 'nobody' }, kind: 'password_ok' as const, since: 0, limit: 10 },
        ];
        const snap = await s.risk.snapshot('snap', queries);
        assert.deepEqual(snap.doc, await s.risk.getUser('snap'));
        assert.deepEqual(snap.observations, await Promise.all(queries.map((q) => s.risk.observations(q.by, q.kind, q.since, q.limit))));
        assert.equal(snap.observations[0]!.length, 3);
        assert.equal(snap.observations[1]!.length, 5);
        assert.equal(snap.observations[2]![0]!.country, 'DE');
        assert.deepEqual(snap.observations[3], []);
        assert.equal((await s.risk.snapshot('no-doc', [])).doc, undefined);
      });
    });

    describe('risk observations', () => {
      it('keeps 100 parallel failures from one IP as 100 (no read-modify-write to lose them)', async () => {
        const now = Date.now();
        await Promise.all(Array.from({ length: 100 }, (_, i) =>
          s.risk.observe({ kind: 'password_failed', ts: now - i, user: `u${i % 7}`, ip: '198.51.100.9' }, now + 60_000)));
        const byIp = await s.risk.observations({ ip: '198.51.100.9' }, 'password_failed', now - 3_600_000, 1000);
        assert.equal(byIp.length, 100);
        assert.deepEqual(byIp.map((o) => o.ts), [...byIp.map((o) => o.ts)].sort((a, b) => a - b), 'oldest first');
        assert.equal(new Set(byIp.map((o) => o.user)).size, 7);
        assert.equal((await s.risk.observations({ user: 'u0' }, 'password_failed', now - 3_600_000, 1000)).length, 15);
      });

      it('returns the newest within the limit and the window, by kind, and drops expired ones', async () => {
        const now = Date.now();
        for (let i = 0; i < 5; i += 1) await s.risk.observe({ kind: 'password_ok', ts: now - i * 1000, user: 'obs', ip: '198.51.100.10', country: 'FR' }, now + 60_000);
        await s.risk.observe({ kind: 'password_failed', ts: now, user: 'obs', ip: '198.51.100.10' }, now + 60_000);
        await s.risk.observe({ kind: 'password_ok', ts: now, user: 'obs', ip: '198.51.100.10' }, now - 1);
        const newest = await s.risk.observations({ user: 'obs' }, 'password_ok', now - 3500, 2);
        assert.deepEqual(newest.map((o) => o.ts), [now - 1000, now]);
        assert.equal(newest[0]!.country, 'FR');
        assert.equal((await s.risk.observations({ user: 'obs' }, 'password_ok', now - 3500, 10)).length, 4, 'window is exclusive; expired dropped');
        assert.equal((await s.risk.observations({ ip: '198.51.100.10' }, 'password_failed', 0, 10)).length, 1);
      });
    });

    describe('login events', () => {
      const DAY = 86_400_000;
      const behaviour = { v: 1 as const, keystroke: { hold: [90, 80, 100, 85], dd: [150, 140, 170], ud: [60, 60, 70] } };
      const event = (id: string, ts: number, extra: Partial<LoginEventRecord> = {}): LoginEventRecord => ({
        id, ts: new Date(ts).toISOString(), user: 'ev-user', ip: '192.0.2.7', userAgent: 'UA', success: true, ...extra,
      });

      it('prunes behavioural samples older than the cut-off, keeping the rest of each event and every newer sample', async () => {
        const now = Date.now();
        const old = event('ev-old', now - 100 * DAY, { behaviour, clientId: 'web', assessment: {
          score: 0.1, level: 'low', decision: 'allow', reasons: [], confidence: 0.8, policyVersion: 'p', modelVersion: 'm', errors: [],
          behaviour: { keystroke: { score: 0.2, confidence: 0.5 } },
        } });
        const oldUnusable = event('ev-old-unusable', now - 95 * DAY, { behaviour: { v: 1, unusable: 'paste' } });
        const oldPlain = event('ev-old-plain', now - 99 * DAY);
        const recent = event('ev-recent', now - 10 * DAY, { behaviour });
        for (const e of [old, oldUnusable, oldPlain, recent]) await s.events.append(e);

        assert.equal(await s.events.pruneBehaviour(now - 90 * DAY), 2);
        const { behaviour: _gone, ...rest } = old;
        assert.deepEqual(await s.events.findById('ev-old'), rest, 'everything but the sample is kept, the assessment\'s scores too');
        assert.equal((await s.events.findById('ev-old-unusable'))?.behaviour, undefined);
        assert.deepEqual(await s.events.findById('ev-old-plain'), oldPlain);
        assert.deepEqual(await s.events.findById('ev-recent'), recent);
        // Listing agrees with lookups; a second prune finds nothing left to do.
        const listed = new Map<string, LoginEventRecord>();
        for await (const e of s.events.list({ since: now - 101 * DAY })) listed.set(e.id, e);
        assert.deepEqual(listed.get('ev-old'), rest);
        assert.deepEqual(listed.get('ev-recent'), recent);
        assert.equal(await s.events.pruneBehaviour(now - 90 * DAY), 0);
        // A retention of 0 days: every sample up to now goes.
        assert.equal(await s.events.pruneBehaviour(now), 1);
        assert.equal((await s.events.findById('ev-recent'))?.behaviour, undefined);
      });

      it('leaves every event whole under 20 parallel prunes (several instances on one store)', async () => {
        const now = Date.now();
        const events = Array.from({ length: 10 }, (_, i) => event(`ev-par-${i}`, now - (200 + i) * DAY, { behaviour, clientId: `c${i}` }));
        for (const e of events) await s.events.append(e);
        const counts = await Promise.all(Array.from({ length: 20 }, () => s.events.pruneBehaviour(now - 150 * DAY)));
        // Each sample is removed by at least one of them; MongoDB servers without atomic
        // conditional updates (FerretDB) may let two count the same event.
        assert.ok(counts.reduce((a, b) => a + b, 0) >= 10);
        for (const e of events) {
          const { behaviour: _gone, ...rest } = e;
          assert.deepEqual(await s.events.findById(e.id), rest);
        }
        assert.equal(await s.events.pruneBehaviour(now - 150 * DAY), 0);
      });
    });

    describe('audit trail', () => {
      const seal = hmacSealer(Buffer.alloc(32, 7));
      const entry = (action: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
        actor: { kind: 'cli', id: 'ops' }, action, outcome: 'success', ...extra,
      });
      const all = async (st: Storage) => {
        const out: AuditRecord[] = [];
        for await (const r of st.audit.scan({ batch: 7 })) out.push(r);
        return out;
      };

      it('appends records linked in one chain, each read back exactly as it was returned', async () => {
        const before = (await all(s)).length;
        const a = await s.audit.append(entry('user.create', {
          actor: { kind: 'user', id: 'admin-1', ip: '192.0.2.1' }, target: { type: 'user', id: 'u-1' },
          after: { username: 'amy', claims: { 'a.b': 1, $where: 'x', n: [1, 2.5, null, 'é'] } }, detail: { note: 'first' },
        }), seal);
        const b = await s.audit.append(entry('user.unlock', { target: { type: 'user', id: 'u-1' }, outcome: 'failure' }), seal);
        assert.equal(a.seq, before + 1);
        assert.equal(b.seq, a.seq + 1);
        assert.equal(b.prevHash, a.hash);
        assert.equal(a.hash, auditHash(a));
        assert.equal(a.seal, seal(a.hash));
        const stored = await all(s);
        assert.deepEqual(stored.slice(-2), [a, b]);
        assert.equal((await verifyChain(stored, Buffer.alloc(32, 7))).ok, true);
        // scan from a sequence number.
        assert.deepEqual((await (async () => { const o: AuditRecord[] = []; for await (const r of s.audit.scan({ from: b.seq })) o.push(r); return o; })()), [b]);
      });

      it('queries by actor, action prefix, target, outcome and time, in either order, after a cursor', async () => {
        const t0 = Date.now();
        const mine = [
          await s.audit.append(entry('keys.rotate', { actor: { kind: 'cli', id: 'qa-root' } }), seal),
          await s.audit.append(entry('factor.enrol', { actor: { kind: 'user', id: 'qa-u' }, target: { type: 'user', id: 'qa-u' } }), seal),
          await s.audit.append(entry('factor.remove', { actor: { kind: 'user', id: 'qa-u' }, target: { type: 'user', id: 'qa-u' }, outcome: 'failure' }), seal),
          await s.audit.append(entry('factorx.other', { actor: { kind: 'user', id: 'qa-u' } }), seal),
        ];
        const seqs = (rs: AuditRecord[]) => rs.map((r) => r.seq);
        const q = (f: AuditFilter, order: 'asc' | 'desc' = 'asc', after?: number, limit = 50) => s.audit.query(f, { after, limit, order });
        assert.deepEqual(seqs(await q({ actorId: 'qa-u' })), seqs(mine.slice(1)));
        assert.deepEqual(seqs(await q({ actorKind: 'cli', actorId: 'qa-root' })), [mine[0]!.seq]);
        assert.deepEqual(seqs(await q({ actionPrefix: 'factor.' })), seqs(mine.slice(1, 3)));
        assert.deepEqual(seqs(await q({ actionPrefix: 'factor', actorId: 'qa-u' })), seqs(mine.slice(1)));
        assert.deepEqual(seqs(await q({ targetType: 'user', targetId: 'qa-u', outcome: 'failure' })), [mine[2]!.seq]);
        assert.deepEqual(seqs(await q({ actorId: 'qa-u' }, 'desc')), seqs(mine.slice(1)).reverse());
        assert.deepEqual(seqs(await q({ actorId: 'qa-u' }, 'desc', mine[3]!.seq, 1)), [mine[2]!.seq]);
        assert.deepEqual(seqs(await q({ actorId: 'qa-u' }, 'asc', mine[1]!.seq)), seqs(mine.slice(2)));
        assert.ok((await q({ since: t0 - 1000, until: Date.now() + 1000 })).length >= 4);
        assert.deepEqual(await q({ since: Date.now() + 60_000 }), []);
        assert.deepEqual(await q({ until: t0 - 60_000, actorId: 'qa-u' }), []);
      });

      it('numbers 100 parallel appends through two store objects on one database without a gap, in one chain that verifies', async () => {
        const other = await openStorage(cfg);
        try {
          const before = (await all(s)).length;
          const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? other : s).audit.append(entry('test.parallel', { detail: { i } }), seal)));
          const stored = await all(s);
          assert.equal(stored.length, before + 100);
          assert.deepEqual(stored.map((r) => r.seq), stored.map((_, i) => i + 1), 'contiguous from 1');
          assert.deepEqual(new Set(results.map((r) => r.seq)).size, 100, 'each caller got its own record');
          // What each caller was told is what is stored.
          const bySeq = new Map(stored.map((r) => [r.seq, r]));
          for (const r of results) assert.deepEqual(bySeq.get(r.seq), r);
          assert.deepEqual([...new Set(stored.slice(before).map((r) => (r.detail as { i: number }).i))].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
          const v = await verifyChain(stored, Buffer.alloc(32, 7));
          assert.equal(v.ok, true, v.broken?.message ?? '');
          assert.equal(v.checked, before + 100);
        } finally {
          await other.close();
        }
      });
    });

    it('takes 20 parallel first writes of one record without an error', async () => {
      // Each round writes a record that does not exist yet, from 20 writers at once.
      for (let round = 0; round < 3; round += 1) {
        const n = Array.from({ length: 20 }, (_, i) => i);
        await Promise.all(n.map((i) => s.risk.putUser(`racer${round}`, { v: 1, writer: i })));
        await Promise.all(n.map((i) => s.oidc.upsert({ model: 'Session', id: `race${round}`, payload: { writer: i }, expiresAt: Date.now() + 60_000 })));
        assert.equal(typeof ((await s.risk.getUser(`racer${round}`)) as { writer: number }).writer, 'number');
        assert.equal(typeof (await s.oidc.find('Session', `race${round}`, Date.now()))?.payload.writer, 'number');
      }
    });

    it('fails only the write that failed among parallel writes: 20 appends, one with an id already taken', async () => {
      const ev = (id: string) => ({ id, ts: new Date().toISOString(), user: 'batch-user', ip: '192.0.2.9', userAgent: 'ua', success: false });
      await s.events.append(ev('batch-taken'));
      const ids = Array.from({ length: 20 }, (_, i) => (i === 7 ? 'batch-taken' : `batch-${i}`));
      const results = await Promise.allSettled(ids.map((id) => s.events.append(ev(id))));
      assert.deepEqual(results.map((r) => r.status), ids.map((id) => (id === 'batch-taken' ? 'rejected' : 'fulfilled')));
      for (const id of ids) assert.equal((await s.events.findById(id))?.id, id);
    });

    it('keeps everything across a close and reopen', async () => {
      const a = await s.accounts.create(account('persist'));
      await s.close();
      s = await openStorage(cfg);
      assert.equal((await s.accounts.findById(a.id))?.username, 'persist');
    });
  });
}

describe('embedded store durability', () => {
  it('commits writes still queued when the store is closed, and answers each of them', async () => {
    const dataDir = tempDir('idp-close-');
    let s = await openStorage({ mongodbUri: undefined, dataDir });
    const writes = Array.from({ length: 10 }, (_, i) => s.oidc.upsert({ model: 'Session', id: `queued${i}`, payload: { i }, expiresAt: Date.now() + 60_000 }));
    await s.close();
    await Promise.all(writes);
    // Nothing is taken once closed: the caller is told, not left waiting.
    await assert.rejects(s.oidc.upsert({ model: 'Session', id: 'after', payload: {}, expiresAt: Date.now() + 60_000 }), /closed/);
    s = await openStorage({ mongodbUri: undefined, dataDir });
    try {
      for (let i = 0; i < 10; i += 1) assert.deepEqual((await s.oidc.find('Session', `queued${i}`, Date.now()))?.payload, { i });
    } finally {
      await s.close();
    }
  });

  it('keeps every write it answered, written 10 at a time in shared commits, when its process is killed with SIGKILL', async () => {
    const dataDir = tempDir('idp-kill-batch-');
    const worker = startNode([WORKER, 'records', '1000000'], { env: { ...process.env, DATA_DIR: dataDir, MONGODB_URI: '' } });
    const answered = () => worker.stdout.split('\n').slice(0, -1).filter(Boolean);
    try {
      await worker.waitFor(() => answered().length >= 500, '500 answered writes');
    } finally {
      await worker.stop('SIGKILL');
    }
    const ids = answered();
    const s = await openStorage({ mongodbUri: undefined, dataDir });
    try {
      const missing: string[] = [];
      for (const id of ids) if (!(await s.oidc.find('Session', id, Date.now()))) missing.push(id);
      assert.deepEqual(missing, [], `${missing.length} of ${ids.length} answered writes lost`);
    } finally {
      await s.close();
    }
  });


  it('keeps every committed account when its process is killed with SIGKILL', async () => {
    const dataDir = tempDir('idp-kill-');
    const worker = startNode([WORKER, 'accounts', '100000'], { env: { ...process.env, DATA_DIR: dataDir, MONGODB_URI: '' } });
    // Complete lines only: the kill may cut the last one short.
    const committedIds = () => worker.stdout.split('\n').slice(0, -1).filter(Boolean);
    try {
      await worker.waitFor(() => committedIds().length >= 200, '200 committed accounts');
    } finally {
      await worker.stop('SIGKILL');
    }
    const committed = committedIds();
    const s = await openStorage({ mongodbUri: undefined, dataDir });
    try {
      const ids = new Set((await s.accounts.list()).map((x) => x.id));
      const missing = committed.filter((id) => !ids.has(id));
      assert.deepEqual(missing, [], `${missing.length} of ${committed.length} committed accounts lost`);
      // The store is usable after the crash.
      await s.accounts.create(account('after-crash'));
    } finally {
      await s.close();
    }
  });
});

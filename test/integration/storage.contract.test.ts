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
    });

    describe('attempt counters', () => {
      const noWait = () => 0;
      const opts = (max = 100, windowMs = Infinity) => ({ now: Date.now(), max, windowMs, waitMs: noWait });
      /** The throttle's schedule: free attempts, then 1 s, doubling. */
      const progressive = (free: number) => (count: number) => (count < free ? 0 : 1000 * 2 ** (count - free));

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

      it('revokes by grant id, destroys, and sweeps expired records', async () => {
        const now = Date.now();
        await s.oidc.upsert({ model: 'AccessToken', id: 'at1', payload: {}, grantId: 'g2', expiresAt: now + 60_000 });
        await s.oidc.upsert({ model: 'RefreshToken', id: 'rt1', payload: {}, grantId: 'g2', expiresAt: now + 60_000 });
        await s.oidc.upsert({ model: 'AccessToken', id: 'at2', payload: {}, grantId: 'g3', expiresAt: now + 60_000 });
        await s.oidc.revokeByGrantId('g2');
        assert.equal(await s.oidc.find('AccessToken', 'at1', now), undefined);
        assert.equal(await s.oidc.find('RefreshToken', 'rt1', now), undefined);
        assert.ok(await s.oidc.find('AccessToken', 'at2', now));
        await s.oidc.destroy('AccessToken', 'at2');
        assert.equal(await s.oidc.find('AccessToken', 'at2', now), undefined);
        await s.oidc.upsert({ model: 'AccessToken', id: 'old', payload: {}, expiresAt: now - 1 });
        assert.ok((await s.oidc.sweep(now)) >= 1);
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

    it('keeps everything across a close and reopen', async () => {
      const a = await s.accounts.create(account('persist'));
      await s.close();
      s = await openStorage(cfg);
      assert.equal((await s.accounts.findById(a.id))?.username, 'persist');
    });
  });
}

describe('embedded store durability', () => {
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

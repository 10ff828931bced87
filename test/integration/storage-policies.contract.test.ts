/**
 * The storage contract of the policy lifecycle and the feedback loop (port.ts PolicyStore,
 * LabelStore, ModelStore), for both stores: the embedded store always, MongoDB whenever
 * MONGODB_URI is set. The compare-and-sets are exercised with 100 parallel callers through
 * two store objects on one database, and from several processes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import { InvalidCursorError, VersionConflictError } from '../../adapters/storage/port.ts';
import type { Actor, NewPolicyVersion } from '../../models/types.ts';
import { mongoUriForTest, STORES, describeOrSkip, tempDir, type StoreKind } from '../helpers/env.ts';
import { RUN_DEADLINE_MS } from '../helpers/process.ts';

const run = promisify(execFile);
const WORKER = path.join(import.meta.dirname, '..', 'helpers', 'storage-worker.js');
const actor: Actor = { kind: 'cli', id: 'tester', ip: '192.0.2.1' };

function config(kind: StoreKind) {
  return kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { mongodbUri: undefined, dataDir: tempDir('idp-store-') };
}

const version = (n: number | string, extra: Partial<NewPolicyVersion> = {}): NewPolicyVersion => ({
  hash: `hash${n}`, modelVersion: 'model1', message: `version ${n}`, actor, source: 'publish',
  files: { 'risk.yml': `weight: ${n}\n`, 'lists.yml': 'tor: []\n', 'assurance.yml': 'a: 1\n', 'model.json': '{"trees":[]}\n' },
  ...extra,
});

/** Every page of a listing, following the cursors. */
async function allPages<T>(list: (page: { after?: string; limit: number }) => Promise<{ items: T[]; next?: string | undefined }>, limit: number): Promise<T[][]> {
  const pages: T[][] = [];
  let after: string | undefined;
  do {
    const p = await list({ ...(after ? { after } : {}), limit });
    pages.push(p.items);
    after = p.next;
  } while (after);
  return pages;
}

for (const store of STORES) {
  describeOrSkip(store.skip, `storage contract: policies, labels, models (${store.kind})`, () => {
    let s: Storage;
    let cfg: ReturnType<typeof config>;

    before(async () => {
      cfg = config(store.kind);
      s = await openStorage(cfg);
    });
    after(() => s?.close());

    describe('policy versions', () => {
      it('publishes on the live version only, numbers versions 1, 2, 3, and keeps each one\'s files', async () => {
        assert.equal(await s.policies.live(), undefined);
        assert.equal(await s.policies.stamp(), '');
        await assert.rejects(s.policies.publish(version(1), 1), (e: unknown) => e instanceof VersionConflictError && e.current === 0);
        const v1 = await s.policies.publish(version(1), 0);
        assert.equal(v1.version, 1);
        assert.deepEqual(v1.actor, actor);
        const stamp1 = await s.policies.stamp();
        assert.notEqual(stamp1, '');
        await assert.rejects(s.policies.publish(version(2), 0), (e: unknown) => e instanceof VersionConflictError && e.current === 1);
        const v2 = await s.policies.publish(version(2), 1);
        assert.equal(v2.version, 2);
        assert.notEqual(await s.policies.stamp(), stamp1);
        // A rollback: version 1's files again, as version 3.
        const old = await s.policies.get(1);
        assert.ok(old);
        assert.deepEqual(old.files, version(1).files);
        const v3 = await s.policies.publish({ ...version(1), message: 'back', source: 'rollback', rollbackOf: 1, files: old.files }, 2);
        const live = await s.policies.live();
        assert.equal(live?.version, 3);
        assert.equal(live?.rollbackOf, 1);
        assert.equal(live?.source, 'rollback');
        assert.equal('files' in live!, false, 'live() is the header only');
        assert.deepEqual((await s.policies.get(3))?.files, version(1).files);
        assert.equal(v3.publishedAt instanceof Date, true);
        assert.equal(await s.policies.get(4), undefined);
        // findByHash: the newest version with that content.
        assert.equal((await s.policies.findByHash('hash1'))?.version, 3);
        assert.equal((await s.policies.findByHash('hash2'))?.version, 2);
        assert.equal(await s.policies.findByHash('nope'), undefined);
      });

      it('lists the history newest first, in pages whose cursors neither repeat nor skip', async () => {
        const live = (await s.policies.live())?.version ?? 0;
        for (let i = 1; i <= 4; i += 1) await s.policies.publish(version(`h${i}`), live + i - 1);
        const pages = await allPages((p) => s.policies.history(p), 2);
        const versions = pages.flat().map((v) => v.version);
        assert.deepEqual(versions, Array.from({ length: live + 4 }, (_, i) => live + 4 - i));
        assert.ok(pages.every((p) => p.length <= 2));
        assert.equal(pages.flat().some((v) => 'files' in v), false);
        await assert.rejects(s.policies.history({ after: 'not-a-cursor', limit: 2 }), InvalidCursorError);
      });

      it('lets exactly one of 100 parallel publishes on the same version in, through two store objects', async () => {
        const other = await openStorage(cfg);
        try {
          const live = (await s.policies.live())!.version;
          const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => (i % 2 ? other : s).policies.publish(version(`p${i}`), live)));
          const won = results.filter((r) => r.status === 'fulfilled');
          assert.equal(won.length, 1, `${won.length} of 100 publishes on version ${live} succeeded`);
          assert.ok(results.every((r) => r.status === 'fulfilled' || (r.reason instanceof VersionConflictError && r.reason.current === live + 1)));
          const now = await other.policies.live();
          assert.equal(now?.version, live + 1);
          assert.equal(now?.hash, (won[0] as PromiseFulfilledResult<{ hash: string }>).value.hash);
          // What the winner published is what everyone reads.
          assert.equal((await s.policies.get(live + 1))?.message, now?.message);
        } finally {
          await other.close();
        }
      });

      it('lets exactly one publish in from 3 processes × 40 parallel publishes on the same version', async () => {
        const live = (await s.policies.live())!.version;
        const env = { ...process.env, DATA_DIR: cfg.dataDir, MONGODB_URI: cfg.mongodbUri ?? '' };
        const outs = await Promise.all([1, 2, 3].map(() => run(process.execPath, [WORKER, 'publish', String(live), '40'], { env, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' })));
        const won = outs.reduce((sum, o) => sum + Number(o.stdout.trim()), 0);
        assert.equal(won, 1, `${won} of 120 publishes from 3 processes succeeded`);
        assert.equal((await s.policies.live())?.version, live + 1);
        // No number skipped, none twice.
        const versions = (await allPages((p) => s.policies.history(p), 1000)).flat().map((v) => v.version);
        assert.deepEqual(versions, Array.from({ length: live + 1 }, (_, i) => live + 1 - i));
      });
    });

    describe('labels', () => {
      it('creates a label at version 1, changes it on its version only, and keeps every version', async () => {
        const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
        assert.equal(await s.labels.get('ev-1'), undefined);
        await assert.rejects(s.labels.set({ eventId: 'ev-1', label: 'attack', actor, at }, 1), VersionConflictError);
        const l1 = await s.labels.set({ eventId: 'ev-1', label: 'attack', note: 'from a VPN', actor, at }, 0);
        assert.deepEqual(l1, { eventId: 'ev-1', version: 1, label: 'attack', note: 'from a VPN', actor, at });
        assert.deepEqual(await s.labels.get('ev-1'), l1);
        await assert.rejects(s.labels.set({ eventId: 'ev-1', label: 'legit', actor, at }, 0), (e: unknown) => e instanceof VersionConflictError && e.current === 1);
        const l2 = await s.labels.set({ eventId: 'ev-1', label: 'legit', actor: { kind: 'user', id: 'admin-1' }, at }, 1);
        assert.equal(l2.version, 2);
        const got = await s.labels.get('ev-1');
        assert.equal(got?.label, 'legit');
        assert.equal(got?.note, undefined);
        assert.deepEqual(got?.actor, { kind: 'user', id: 'admin-1' });
        assert.deepEqual((await s.labels.history('ev-1')).map((l) => [l.version, l.label]), [[1, 'attack'], [2, 'legit']]);
      });

      it('lists each event\'s label now, by event id, in pages', async () => {
        const at = new Date();
        for (let i = 0; i < 7; i += 1) {
          const id = `list-${String(i).padStart(2, '0')}`;
          await s.labels.set({ eventId: id, label: 'legit', actor, at }, 0);
          // Some events have several versions: only the newest is listed.
          if (i % 3 === 0) await s.labels.set({ eventId: id, label: 'attack', actor, at }, 1);
        }
        for (const limit of [1, 2, 3, 50]) {
          const pages = await allPages((p) => s.labels.list(p), limit);
          const mine = pages.flat().filter((l) => l.eventId.startsWith('list-'));
          assert.deepEqual(mine.map((l) => l.eventId), Array.from({ length: 7 }, (_, i) => `list-${String(i).padStart(2, '0')}`), `limit ${limit}`);
          assert.deepEqual(mine.map((l) => l.label), ['attack', 'legit', 'legit', 'attack', 'legit', 'legit', 'attack']);
          const ids = pages.flat().map((l) => l.eventId);
          assert.equal(new Set(ids).size, ids.length, 'no event twice');
        }
        await assert.rejects(s.labels.list({ after: '!!', limit: 2 }), InvalidCursorError);
      });

      it('lets exactly one of 100 parallel changes on the same version in, through two store objects', async () => {
        const other = await openStorage(cfg);
        try {
          await s.labels.set({ eventId: 'race', label: 'legit', actor, at: new Date() }, 0);
          const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => (i % 2 ? other : s).labels.set({ eventId: 'race', label: 'attack', note: `n${i}`, actor, at: new Date() }, 1)));
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
          assert.ok(results.every((r) => r.status === 'fulfilled' || r.reason instanceof VersionConflictError));
          assert.deepEqual((await other.labels.history('race')).map((l) => l.version), [1, 2]);
        } finally {
          await other.close();
        }
      });

      it('lets exactly one label in from 3 processes × 40 parallel creations', async () => {
        const env = { ...process.env, DATA_DIR: cfg.dataDir, MONGODB_URI: cfg.mongodbUri ?? '' };
        const outs = await Promise.all([1, 2, 3].map(() => run(process.execPath, [WORKER, 'label', 'proc-race', '0', '40'], { env, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' })));
        const won = outs.reduce((sum, o) => sum + Number(o.stdout.trim()), 0);
        assert.equal(won, 1, `${won} of 120 creations from 3 processes succeeded`);
        assert.equal((await s.labels.history('proc-race')).length, 1);
      });
    });

    describe('model candidates', () => {
      it('keeps each model once by its sha256, and lists them newest first in pages', async () => {
        const t0 = Date.now();
        for (let i = 0; i < 5; i += 1) {
          await s.models.save({ sha256: `sha-${i}`, text: `{"i":${i}}`, report: { heldOut: { n: i } }, actor, createdAt: new Date(t0 + i * 1000) });
        }
        // The same bytes again: the first one stays.
        await s.models.save({ sha256: 'sha-2', text: 'other', report: {}, actor, createdAt: new Date(t0 + 10_000) });
        const got = await s.models.get('sha-2');
        assert.equal(got?.text, '{"i":2}');
        assert.deepEqual(got?.report, { heldOut: { n: 2 } });
        assert.deepEqual(got?.actor, actor);
        assert.equal(await s.models.get('nope'), undefined);
        for (const limit of [1, 2, 5]) {
          const pages = await allPages((p) => s.models.list(p), limit);
          assert.deepEqual(pages.flat().map((m) => m.sha256), ['sha-4', 'sha-3', 'sha-2', 'sha-1', 'sha-0'], `limit ${limit}`);
          assert.equal(pages.flat().some((m) => 'text' in m), false);
        }
      });
    });
  });
}

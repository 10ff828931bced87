/**
 * The storage contract, continued for the administration of users (issue 11); kept in its own
 * file beside storage.contract.test.ts, on the same stores (the embedded one always, MongoDB
 * whenever MONGODB_URI is set, FerretDB in CI). What the admin API and `idp user` rely on:
 * versioned changes that hold under 100 parallel writers on two store objects sharing one
 * database, cursor pages in a stable order with filters, deletion, a user's oidc-provider
 * records found and removed by account, and the migration of data stored before all this.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import mongoose from 'mongoose';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import { InvalidCursorError, VersionConflictError, type AccountFilter } from '../../adapters/storage/port.ts';
import type { AccountProfile } from '../../models/types.ts';
import { mongoUriForTest, STORES, describeOrSkip, tempDir, type StoreKind } from '../helpers/env.ts';

function config(kind: StoreKind) {
  return kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { mongodbUri: undefined, dataDir: tempDir('idp-store-admin-') };
}

const account = (username: string, extra: Record<string, unknown> = {}) => ({
  id: crypto.randomUUID(), username, emailVerified: false, passwordHash: '$argon2id$v=19$fake', ...extra,
});

const profile = (given: string): AccountProfile => ({
  email: `${given}@example.com`, emailVerified: true, name: `${given} Example`,
  claims: { given_name: given, phone_number: '+1 425 555 1212', address: { locality: 'Redmond', country: 'US' } },
});

for (const store of STORES) {
  describeOrSkip(store.skip, `storage contract: administration (${store.kind})`, () => {
    let s: Storage;
    let other: Storage;
    let cfg: ReturnType<typeof config>;

    before(async () => {
      cfg = config(store.kind);
      s = await openStorage(cfg);
      // A second store object on the same database: another process or instance.
      other = await openStorage(cfg);
    });
    after(async () => {
      await other?.close();
      await s?.close();
    });

    describe('versioned changes', () => {
      it('a new account is at version 1 with updated_at at its creation; updateProfile makes version 2 and sets what it was given', async () => {
        const a = await s.accounts.create(account('vera'));
        assert.equal(a.version, 1);
        assert.equal(a.disabled, undefined);
        assert.ok(Math.abs(a.profileUpdatedAt.getTime() - a.createdAt.getTime()) < 1000);
        const at = new Date(Date.now() + 5000);
        const b = await s.accounts.updateProfile(a.id, profile('Vera'), at, 1);
        assert.equal(b.version, 2);
        assert.equal(b.email, 'Vera@example.com');
        assert.equal(b.emailVerified, true);
        assert.equal(b.name, 'Vera Example');
        assert.deepEqual(b.claims, profile('Vera').claims);
        assert.equal(b.profileUpdatedAt.getTime(), at.getTime());
        const read = (await other.accounts.findById(a.id))!;
        assert.equal(read.version, 2);
        assert.deepEqual(read.claims, profile('Vera').claims);
        // Bookkeeping leaves the version and updated_at alone.
        await s.accounts.addTrustedDevice(a.id, 'dev-1', 5);
        await s.accounts.setPasswordHash(a.id, '$argon2id$other');
        const kept = (await s.accounts.findById(a.id))!;
        assert.equal(kept.version, 2);
        assert.equal(kept.profileUpdatedAt.getTime(), at.getTime());
        // Removing claims: what is not given is gone.
        const c = await s.accounts.updateProfile(a.id, { emailVerified: false, claims: {} }, new Date(), 2);
        assert.equal(c.email, undefined);
        assert.equal(c.name, undefined);
        assert.deepEqual(c.claims ?? {}, {});
      });

      it('refuses a stale version, naming the current one, and a missing account with no version', async () => {
        const a = await s.accounts.create(account('walt'));
        await s.accounts.updateProfile(a.id, profile('Walt'), new Date(), 1);
        await assert.rejects(s.accounts.updateProfile(a.id, profile('Other'), new Date(), 1), (e: unknown) => e instanceof VersionConflictError && e.current === 2);
        await assert.rejects(s.accounts.setDisabled(a.id, { at: new Date(), reason: 'x' }, 5), (e: unknown) => e instanceof VersionConflictError && e.current === 2);
        await assert.rejects(s.accounts.updateProfile(crypto.randomUUID(), profile('Nobody'), new Date(), 1), (e: unknown) => e instanceof VersionConflictError && e.current === undefined);
        assert.equal((await s.accounts.findById(a.id))?.claims?.given_name, 'Walt', 'the refused change left nothing');
      });

      it('disables (with when, why and who) and enables, each a new version', async () => {
        const a = await s.accounts.create(account('xena'));
        const at = new Date('2026-01-02T03:04:05.678Z');
        const d = await s.accounts.setDisabled(a.id, { at, reason: 'left the company', by: 'cli:root' }, 1);
        assert.equal(d.version, 2);
        assert.deepEqual(d.disabled, { at, reason: 'left the company', by: 'cli:root' });
        assert.deepEqual((await other.accounts.findById(a.id))?.disabled, { at, reason: 'left the company', by: 'cli:root' });
        const e = await s.accounts.setDisabled(a.id, undefined, 2);
        assert.equal(e.version, 3);
        assert.equal(e.disabled, undefined);
        assert.equal((await other.accounts.findById(a.id))?.disabled, undefined);
        assert.equal(e.profileUpdatedAt.getTime(), a.profileUpdatedAt.getTime(), 'disabling is not a change of the user\'s information');
      });

      it('100 parallel changes of one version on two store objects: exactly one wins, the rest are told the new version', async () => {
        for (let round = 0; round < 2; round += 1) {
          const a = await s.accounts.create(account(`racer-${round}`));
          const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => {
            const st = i % 2 === 0 ? s : other;
            // Profile changes and disablings race for the same version.
            return i % 3 === 0
              ? st.accounts.setDisabled(a.id, { at: new Date(), reason: `writer ${i}` }, 1).then((x) => ({ i, x }))
              : st.accounts.updateProfile(a.id, profile(`w${i}`), new Date(), 1).then((x) => ({ i, x }));
          }));
          const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
          assert.equal(won.length, 1, `round ${round}: ${won.length} winners`);
          const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
          assert.ok(lost.every((r) => r.reason instanceof VersionConflictError && r.reason.current === 2), String(lost.find((r) => !(r.reason instanceof VersionConflictError))?.reason));
          const now = (await s.accounts.findById(a.id))!;
          assert.equal(now.version, 2);
          // What is stored is the winner's change, whole.
          const w = won[0]!.i;
          if (w % 3 === 0) assert.equal(now.disabled?.reason, `writer ${w}`);
          else assert.equal(now.claims?.given_name, `w${w}`);
          // And the next version is open to the next change.
          assert.equal((await other.accounts.updateProfile(a.id, profile('next'), new Date(), 2)).version, 3);
        }
      });
    });

    describe('pages and filters', () => {
      const prefix = 'pg-';
      let ids: string[];

      before(async () => {
        ids = [];
        for (let i = 0; i < 25; i += 1) {
          const a = await s.accounts.create(account(`${prefix}${String(i).padStart(2, '0')}`, {
            email: i % 5 === 0 ? 'shared@example.com' : `${prefix}${i}@example.com`,
            ...(i % 4 === 0 ? { directory: { name: i % 8 === 0 ? 'corp' : 'lab', id: crypto.randomUUID(), dn: `uid=${i}`, syncedAt: new Date() }, passwordHash: '!none' } : {}),
          }));
          ids.push(a.id);
          if (i % 6 === 0) await s.accounts.setDisabled(a.id, { at: new Date(), reason: 'test' }, 1);
          // Distinct creation times, for the time filters.
          await new Promise((r) => setTimeout(r, 3));
        }
      });

      async function all(filter: AccountFilter, limit: number, st = s) {
        const seen: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const p = await st.accounts.page(filter, { after, limit });
          assert.ok(p.items.length <= limit);
          seen.push(...p.items.map((a) => a.username));
          after = p.next;
          pages += 1;
        } while (after);
        return { seen, pages };
      }

      it('walks every account once, in username order, whatever the page size, on either store object', async () => {
        const expected = Array.from({ length: 25 }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);
        for (const limit of [1, 7, 25, 100]) {
          const { seen, pages } = await all({ usernamePrefix: prefix }, limit, limit === 7 ? other : s);
          assert.deepEqual(seen, expected, `limit ${limit}`);
          assert.equal(pages, Math.max(1, Math.ceil(25 / limit)), `limit ${limit}: no empty last page`);
        }
      });

      it('a record added or removed between pages neither repeats nor skips another', async () => {
        const first = await s.accounts.page({ usernamePrefix: prefix }, { limit: 10 });
        const added = await s.accounts.create(account(`${prefix}00a`));
        assert.ok(await s.accounts.delete(ids[15]!));
        const rest: string[] = [];
        for (let after = first.next; after;) {
          const p = await s.accounts.page({ usernamePrefix: prefix }, { after, limit: 10 });
          rest.push(...p.items.map((a) => a.username));
          after = p.next;
        }
        const seen = [...first.items.map((a) => a.username), ...rest];
        assert.equal(new Set(seen).size, seen.length, 'no repeats');
        assert.ok(!seen.includes(`${prefix}15`), 'the deleted one is gone');
        assert.ok(!seen.includes(`${prefix}00a`), 'one added before the cursor is not shown on a later page');
        assert.equal(seen.length, 24);
        await s.accounts.delete(added.id);
      });

      it('filters by email, disabled, directory and creation time; combined, every condition holds', async () => {
        assert.deepEqual((await all({ usernamePrefix: prefix, email: 'shared@example.com' }, 50)).seen, ['pg-00', 'pg-05', 'pg-10', 'pg-20']);
        assert.deepEqual((await all({ usernamePrefix: prefix, disabled: true }, 50)).seen, ['pg-00', 'pg-06', 'pg-12', 'pg-18', 'pg-24']);
        assert.equal((await all({ usernamePrefix: prefix, disabled: false }, 50)).seen.length, 24 - 5);
        assert.deepEqual((await all({ usernamePrefix: prefix, directory: 'corp' }, 50)).seen, ['pg-00', 'pg-08', 'pg-16', 'pg-24']);
        assert.deepEqual((await all({ usernamePrefix: prefix, directory: 'lab' }, 50)).seen, ['pg-04', 'pg-12', 'pg-20']);
        assert.deepEqual((await all({ usernamePrefix: prefix, directory: 'corp', disabled: true, email: 'shared@example.com' }, 50)).seen, ['pg-00']);
        // The accounts were made a few milliseconds apart: pg-04 … pg-08 lie strictly between.
        const created = await Promise.all(['pg-03', 'pg-09'].map(async (u) => (await s.accounts.findByUsername(u))!.createdAt));
        assert.deepEqual((await all({ usernamePrefix: prefix, createdAfter: created[0], createdBefore: created[1] }, 50)).seen, ['pg-04', 'pg-05', 'pg-06', 'pg-07', 'pg-08']);
        assert.deepEqual((await all({ usernamePrefix: prefix, createdAfter: created[1] }, 50)).seen.slice(0, 2), ['pg-10', 'pg-11'], 'exclusive: pg-09 is not after itself');
        assert.deepEqual((await s.accounts.page({ usernamePrefix: 'no-such-prefix' }, { limit: 10 })), { items: [] });
      });

      it('refuses a cursor it did not hand out', async () => {
        for (const after of ['garbage', Buffer.from('[1]').toString('base64url'), Buffer.from('["a","b"]').toString('base64url')]) {
          await assert.rejects(s.accounts.page({}, { after, limit: 10 }), InvalidCursorError, after);
        }
      });
    });

    describe('deletion and a user\'s records', () => {
      it('delete removes the account once', async () => {
        const a = await s.accounts.create(account('yuri'));
        const [x, y] = await Promise.all([s.accounts.delete(a.id), other.accounts.delete(a.id)]);
        assert.equal(Number(x) + Number(y), 1);
        assert.equal(await s.accounts.findById(a.id), undefined);
        // The name is free again, and the new account starts at version 1.
        const again = await s.accounts.create(account('yuri'));
        assert.equal(again.version, 1);
        assert.equal((await s.accounts.updateProfile(again.id, profile('Yuri'), new Date(), 1)).version, 2);
      });

      it('keeps the account id of oidc records, lists a user\'s by model, and removes all of them (and only theirs)', async () => {
        const mine = crypto.randomUUID();
        const theirs = crypto.randomUUID();
        const exp = Date.now() + 60_000;
        await s.oidc.upsert({ model: 'Session', id: 's1', uid: 'u1', payload: { accountId: mine }, accountId: mine, expiresAt: exp });
        await s.oidc.upsert({ model: 'Session', id: 's2', uid: 'u2', payload: { accountId: mine }, accountId: mine, expiresAt: Date.now() - 1 });
        await s.oidc.upsert({ model: 'Session', id: 's3', uid: 'u3', payload: { accountId: theirs }, accountId: theirs, expiresAt: exp });
        await s.oidc.upsert({ model: 'Grant', id: 'g1', payload: { accountId: mine }, accountId: mine, expiresAt: exp });
        await s.oidc.upsert({ model: 'AccessToken', id: 'at1', grantId: 'g1', payload: { accountId: mine }, accountId: mine, expiresAt: exp });
        await s.oidc.upsert({ model: 'RefreshToken', id: 'rt1', grantId: 'g1', payload: { accountId: mine }, accountId: mine, expiresAt: exp });
        await s.oidc.upsert({ model: 'LoginRecord', id: `${mine}:1`, payload: {}, accountId: mine, expiresAt: exp });
        await s.oidc.upsert({ model: 'ClientCredentials', id: 'cc1', payload: { clientId: 'svc' }, expiresAt: exp });
        assert.deepEqual((await other.oidc.listByAccount('Session', mine, Date.now())).map((r) => r.id), ['s1'], 'the expired one is not live');
        assert.equal((await s.oidc.find('Session', 's1', Date.now()))?.accountId, mine);
        assert.deepEqual((await s.oidc.listByAccount('Grant', mine, Date.now())).map((r) => r.id), ['g1']);
        // replace() keeps it in step with the payload.
        assert.ok(await s.oidc.replace({ model: 'Session', id: 's1', uid: 'u1', payload: { accountId: mine, x: 1 }, accountId: mine, expiresAt: exp }, Date.now()));
        assert.equal((await s.oidc.listByAccount('Session', mine, Date.now()))[0]?.payload.x, 1);
        const removed = await other.oidc.removeByAccount(mine);
        assert.ok(removed >= 6, `removed ${removed}`);
        for (const [model, id] of [['Session', 's1'], ['Grant', 'g1'], ['AccessToken', 'at1'], ['RefreshToken', 'rt1'], ['LoginRecord', `${mine}:1`]] as const) {
          assert.equal(await s.oidc.find(model, id, Date.now()), undefined, `${model} ${id}`);
        }
        assert.ok(await s.oidc.find('Session', 's3', Date.now()), 'another user\'s session stays');
        assert.ok(await s.oidc.find('ClientCredentials', 'cc1', Date.now()), 'records of no account stay');
      });

      it('forgets a user\'s risk history and observations, and only theirs', async () => {
        await s.risk.putUser('forget-me', { places: ['x'] });
        await s.risk.putUser('keep-me', { places: ['y'] });
        for (const user of ['forget-me', 'keep-me']) await s.risk.observe({ kind: 'password_failed', ts: Date.now(), user, ip: '192.0.2.1' }, Date.now() + 60_000);
        await other.risk.forget('forget-me');
        assert.equal(await s.risk.getUser('forget-me'), undefined);
        assert.deepEqual(await s.risk.observations({ user: 'forget-me' }, 'password_failed', 0, 10), []);
        assert.deepEqual(await s.risk.getUser('keep-me'), { places: ['y'] });
        assert.equal((await s.risk.observations({ ip: '192.0.2.1' }, 'password_failed', 0, 10)).length, 1);
      });
    });
  });
}

describe('migration of an embedded store made before issue 11', () => {
  it('gives accounts version 1 and their updated_at, and oidc records the account id their payload names', async () => {
    const dataDir = tempDir('idp-migrate-');
    // The schema of the file as issue 10 left it (the columns this work added are missing).
    const db = new DatabaseSync(path.join(dataDir, 'idp.sqlite'));
    db.exec(`CREATE TABLE accounts (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, skeleton TEXT, email TEXT, email_verified INTEGER NOT NULL DEFAULT 0,
               name TEXT, password_hash TEXT NOT NULL, trusted_devices TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
               directory TEXT, claims TEXT) STRICT;
             CREATE TABLE oidc (model TEXT NOT NULL, id TEXT NOT NULL, payload TEXT NOT NULL, grant_id TEXT, uid TEXT, user_code TEXT, expires_at INTEGER,
               consumed INTEGER, PRIMARY KEY (model, id)) STRICT;`);
    db.prepare('INSERT INTO accounts (id, username, skeleton, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run('old-1', 'olduser', 'olduser', 'x', 1000, 2000);
    const exp = Date.now() + 60_000;
    db.prepare('INSERT INTO oidc (model, id, payload, uid, expires_at) VALUES (?, ?, ?, ?, ?)').run('Session', 'old-s', JSON.stringify({ accountId: 'old-1' }), 'old-u', exp);
    db.prepare('INSERT INTO oidc (model, id, payload, expires_at) VALUES (?, ?, ?, ?)').run('Interaction', 'old-i', JSON.stringify({ session: { accountId: 'old-1' } }), exp);
    db.prepare('INSERT INTO oidc (model, id, payload, expires_at) VALUES (?, ?, ?, ?)').run('ReplayDetection', 'odd', 'not json', exp);
    db.close();
    // Two processes opening it at once migrate it once.
    const [s, t] = await Promise.all([openStorage({ mongodbUri: undefined, dataDir }), openStorage({ mongodbUri: undefined, dataDir })]);
    try {
      const a = (await s.accounts.findById('old-1'))!;
      assert.equal(a.version, 1);
      assert.equal(a.profileUpdatedAt.getTime(), 2000, 'updated_at: the last change there is');
      assert.equal((await t.accounts.updateProfile('old-1', profile('Old'), new Date(), 1)).version, 2);
      assert.deepEqual((await s.oidc.listByAccount('Session', 'old-1', Date.now())).map((r) => r.id), ['old-s']);
      assert.equal((await s.oidc.find('Interaction', 'old-i', Date.now()))?.accountId, undefined, 'only a top-level accountId names the owner');
      assert.equal(await s.oidc.removeByAccount('old-1'), 1);
    } finally {
      await t.close();
      await s.close();
    }
  });
});

describeOrSkip(STORES.find((x) => x.kind === 'mongodb')?.skip ?? 'MongoDB is not among TEST_STORES', 'MongoDB store: migration and a writer that died', () => {
  it('fills the account id of oidc records stored before it was kept, once per database', async () => {
    const uri = mongoUriForTest();
    const first = await openStorage({ mongodbUri: uri, dataDir: '' });
    await first.close();
    const conn = await mongoose.createConnection(uri).asPromise();
    try {
      const exp = new Date(Date.now() + 60_000);
      // As issue 10 stored them: no accountId field, and no marker that the migration ran.
      await conn.collection('oidc_session').insertOne({ _id: 'old-s', payload: JSON.stringify({ accountId: 'old-1' }), uid: 'old-u', expiresAt: exp } as never);
      await conn.collection('oidc_grant').insertOne({ _id: 'old-g', payload: JSON.stringify({ accountId: 'old-1' }), expiresAt: exp } as never);
      await conn.collection('oidc_interaction').insertOne({ _id: 'old-i', payload: 'not json', expiresAt: exp } as never);
      await conn.collection('migrations').deleteMany({});
      await conn.collection('accounts').insertOne({
        _id: 'old-1', username: 'olduser', skeleton: 'olduser', emailVerified: false, passwordHash: 'x', trustedDevices: [], createdAt: new Date(1000), updatedAt: new Date(2000),
      } as never);
      const s = await openStorage({ mongodbUri: uri, dataDir: '' });
      try {
        assert.deepEqual((await s.oidc.listByAccount('Session', 'old-1', Date.now())).map((r) => r.id), ['old-s']);
        assert.deepEqual((await s.oidc.listByAccount('Grant', 'old-1', Date.now())).map((r) => r.id), ['old-g']);
        const a = (await s.accounts.findById('old-1'))!;
        assert.equal(a.version, 1, 'an account without a version is at version 1');
        assert.equal(a.profileUpdatedAt.getTime(), 2000);
        assert.equal((await s.accounts.updateProfile('old-1', profile('Old'), new Date(), 1)).version, 2);
        assert.ok(await conn.collection('migrations').findOne({ _id: 'oidc-account-id' } as never), 'the migration is marked done');
      } finally {
        await s.close();
      }
    } finally {
      await conn.close();
    }
  });

  it('a change whose writer died between its version marker and its write is completed by the next writer after a while', async () => {
    const uri = mongoUriForTest();
    const s = await openStorage({ mongodbUri: uri, dataDir: '' });
    const conn = await mongoose.createConnection(uri).asPromise();
    try {
      const a = await s.accounts.create(account('zeno'));
      const marker = { _id: `${a.id}:${a.createdAt.getTime()}:2`, accountId: a.id, version: 2, change: { set: { name: 'From the dead writer', updatedAt: new Date() }, unset: [] } };
      // A fresh marker: its writer may still be at work, so the change is refused and nothing is applied.
      await conn.collection('account_versions').insertOne({ ...marker, at: new Date() } as never);
      await assert.rejects(s.accounts.updateProfile(a.id, profile('Zeno'), new Date(), 1), (e: unknown) => e instanceof VersionConflictError && e.current === 2);
      assert.equal((await s.accounts.findById(a.id))?.version, 1);
      // An old one: its writer is taken for dead and its change applied.
      await conn.collection('account_versions').updateOne({ _id: marker._id } as never, { $set: { at: new Date(Date.now() - 60_000) } });
      await assert.rejects(s.accounts.updateProfile(a.id, profile('Zeno'), new Date(), 1), (e: unknown) => e instanceof VersionConflictError && e.current === 2);
      const now = (await s.accounts.findById(a.id))!;
      assert.equal(now.version, 2);
      assert.equal(now.name, 'From the dead writer');
      assert.equal((await s.accounts.updateProfile(a.id, profile('Zeno'), new Date(), 2)).version, 3);
    } finally {
      await conn.close();
      await s.close();
    }
  });
});

/**
 * The account cache (adapters/account-cache.ts): an entry is served for at most its life from
 * when its read began, a change made through the store drops it (also one racing a read under
 * way), no password hash or recognised browser is kept, unknown ids are not cached, and the
 * number of entries is bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccountCache, evictingAccountStore } from '../../adapters/account-cache.ts';
import type { AccountStore } from '../../adapters/storage/port.ts';
import type { Account } from '../../models/types.ts';

const account = (id: string, name = 'Ada'): Account => ({
  id, username: id, emailVerified: false, name, passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', createdAt: new Date(0), updatedAt: new Date(0),
  trustedDevices: ['device-1'], version: 1, profileUpdatedAt: new Date(0),
});

describe('AccountCache', () => {
  it('serves an entry within its life and reads again after it', async () => {
    const cache = new AccountCache(1000);
    let reads = 0;
    const load = async (id: string) => { reads += 1; return account(id); };
    const t = Math.floor(performance.now()); // a whole number: (t + 1000) - t is exactly 1000
    await cache.get('a', load, t);
    await cache.get('a', load, t + 500);
    assert.equal(reads, 1);
    await cache.get('a', load, t + 1000);
    assert.equal(reads, 2, 'an entry as old as its life is read again');
    assert.deepEqual(cache.stats, { hits: 1, misses: 2 });
  });

  it('keeps neither the password hash nor the recognised browsers', async () => {
    const cache = new AccountCache(1000);
    cache.prime(account('a'), performance.now());
    const got = await cache.get('a', async () => assert.fail('served from the primed entry'));
    assert.ok(got);
    assert.equal('passwordHash' in got, false);
    assert.equal('trustedDevices' in got, false);
    assert.equal(got.name, 'Ada');
  });

  it('does not cache an unknown id', async () => {
    const cache = new AccountCache(1000);
    let reads = 0;
    for (let i = 0; i < 3; i += 1) assert.equal(await cache.get('nobody', async () => { reads += 1; return undefined; }), undefined);
    assert.equal(reads, 3);
  });

  it('does not keep a read that began before an eviction of the same account', async () => {
    const cache = new AccountCache(60_000);
    let release!: () => void;
    const slow = cache.get('a', () => new Promise<Account>((resolve) => { release = () => resolve(account('a', 'old')); }));
    cache.evict('a');
    release();
    assert.equal((await slow)?.name, 'old', 'the caller gets what it read');
    assert.equal((await cache.get('a', async () => account('a', 'new')))?.name, 'new', 'but the cache did not keep it');
  });

  it('does not keep a sign-in\'s read when the account was changed here between the read and the priming', async () => {
    const cache = new AccountCache(60_000);
    const readAt = performance.now() - 30;
    cache.evict('a');
    cache.prime(account('a', 'old'), readAt);
    assert.equal((await cache.get('a', async () => account('a', 'new')))?.name, 'new');
    // A read that began after the change is kept.
    await new Promise((r) => setTimeout(r, 2));
    cache.prime(account('b', 'fresh'), performance.now());
    assert.equal((await cache.get('b', async () => assert.fail('primed')))?.name, 'fresh');
  });

  it('does not keep a primed read older than its life', async () => {
    const cache = new AccountCache(1000);
    cache.prime(account('a', 'old'), performance.now() - 1000);
    assert.equal((await cache.get('a', async () => account('a', 'new')))?.name, 'new');
  });

  it('does not let an older read that finished later replace a newer one', async () => {
    // Two findAccount calls at once; the account is disabled elsewhere between their reads. The
    // newer read saw it disabled; the older one, finishing last, must not bring it back.
    const cache = new AccountCache(60_000);
    let release!: () => void;
    const older = cache.get('a', () => new Promise<Account>((resolve) => { release = () => resolve(account('a', 'enabled')); }));
    await new Promise((r) => setTimeout(r, 2));
    await cache.get('a', async () => ({ ...account('a', 'disabled'), disabled: { at: new Date(), reason: 'left' } }));
    release();
    assert.equal((await older)?.name, 'enabled', 'the older caller gets what it read');
    const got = await cache.get('a', async () => assert.fail('served from the cache'));
    assert.equal(got?.name, 'disabled', 'once seen disabled, it is not served enabled again from an older read');
  });

  it('counts its life on a clock that the wall clock\'s steps (NTP, a resumed VM) do not move', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const cache = new AccountCache(50);
    // A read under way when the wall clock steps back an hour, and the account is then changed here.
    let release!: () => void;
    const slow = cache.get('a', () => new Promise<Account>((resolve) => { release = () => resolve(account('a', 'before the change')); }));
    t.mock.timers.setTime(Date.now() - 3_600_000);
    cache.evict('a');
    release();
    await slow;
    assert.equal((await cache.get('a', async () => account('a', 'changed')))?.name, 'changed', 'a change made here is seen at once');
    // An entry primed just before a step back is served no longer than its life (50 ms, waited 150).
    cache.prime(account('b', 'old'), performance.now());
    t.mock.timers.setTime(Date.now() - 3_600_000);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal((await cache.get('b', async () => account('b', 'new')))?.name, 'new', 'read again after its life');
  });

  it('is off with a life of 0', async () => {
    const cache = new AccountCache(0);
    let reads = 0;
    cache.prime(account('a'), performance.now());
    for (let i = 0; i < 3; i += 1) await cache.get('a', async (id) => { reads += 1; return account(id); });
    assert.equal(reads, 3);
  });

  it('holds at most maxEntries accounts, dropping the oldest', async () => {
    const cache = new AccountCache(60_000, 3);
    for (const id of ['a', 'b', 'c', 'd']) cache.prime(account(id), performance.now());
    let reads = 0;
    const load = async (id: string) => { reads += 1; return account(id); };
    await cache.get('a', load);
    assert.equal(reads, 1, 'the oldest entry was dropped');
    await cache.get('d', load);
    assert.equal(reads, 1, 'the newest is kept');
  });
});

describe('evictingAccountStore', () => {
  it('drops the account at each change that can alter findAccount, not at bookkeeping', async () => {
    const cache = new AccountCache(60_000);
    const calls: string[] = [];
    const base = {
      findById: async (id: string) => account(id),
      updateProfile: async (id: string) => { calls.push(`updateProfile ${id}`); return account(id); },
      setDisabled: async (id: string) => { calls.push(`setDisabled ${id}`); return account(id); },
      delete: async (id: string) => { calls.push(`delete ${id}`); return true; },
      syncDirectoryProfile: async (id: string) => { calls.push(`sync ${id}`); },
      addTrustedDevice: async (id: string) => { calls.push(`device ${id}`); },
      setPasswordHash: async (id: string) => { calls.push(`hash ${id}`); },
    } as unknown as AccountStore;
    const store = evictingAccountStore(base, cache);
    let reads = 0;
    const load = async (id: string) => { reads += 1; return account(id); };
    const changes: [string, () => Promise<unknown>][] = [
      ['updateProfile', () => store.updateProfile('a', { emailVerified: false, claims: {} }, new Date(), 1)],
      ['setDisabled', () => store.setDisabled('a', { at: new Date(), reason: 'left' }, 1)],
      ['delete', () => store.delete('a')],
      ['syncDirectoryProfile', () => store.syncDirectoryProfile('a', {} as never)],
    ];
    // A read kept must begin after the last eviction.
    const tick = () => new Promise((r) => setTimeout(r, 2));
    for (const [name, change] of changes) {
      await tick();
      cache.prime(account('a'), performance.now());
      await change();
      const before = reads;
      await cache.get('a', load);
      assert.equal(reads, before + 1, `${name} dropped the entry`);
    }
    await tick();
    cache.prime(account('a'), performance.now());
    await store.addTrustedDevice('a', 'd', 5);
    await store.setPasswordHash('a', 'x');
    const before = reads;
    await cache.get('a', load);
    assert.equal(reads, before, 'bookkeeping keeps the entry');
    assert.deepEqual(calls, ['updateProfile a', 'setDisabled a', 'delete a', 'sync a', 'device a', 'hash a'], 'every call reached the store');
    assert.equal((await store.findById('b'))?.id, 'b', 'reads pass through');
  });
});

/**
 * The verified client cache (adapters/client-cache.ts), against a stamp source the test
 * controls: it serves only what a recent check verified, empties on a new stamp, stops serving
 * when checks fail, and never stores a result loaded across an emptying.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientCache } from '../../adapters/client-cache.ts';

function source() {
  const s = { stamp: 'a', fail: false, reads: 0 };
  return {
    s,
    store: { stamp: async () => { s.reads += 1; if (s.fail) throw new Error('store down'); return s.stamp; } },
  };
}

describe('client cache', () => {
  it('serves a verified entry without loading it again, and reloads after the stamp changed', async () => {
    const { s, store } = source();
    const cache = new ClientCache<{ v: number }>(store, 60_000);
    await cache.check();
    let loads = 0;
    const load = async () => ({ v: ++loads });
    assert.deepEqual(await cache.get('c', load), { v: 1 });
    assert.deepEqual(await cache.get('c', load), { v: 1 });
    assert.deepEqual(cache.stats, { hits: 1, misses: 1 });
    s.stamp = 'b';
    await cache.check();
    assert.deepEqual(await cache.get('c', load), { v: 2 });
  });

  it('does not cache unknown ids', async () => {
    const { store } = source();
    const cache = new ClientCache<string>(store, 60_000);
    await cache.check();
    let loads = 0;
    for (let i = 0; i < 3; i += 1) assert.equal(await cache.get('nobody', async () => { loads += 1; return undefined; }), undefined);
    assert.equal(loads, 3);
  });

  it('serves nothing it could not verify: before the first check, after the interval, while the store fails', async () => {
    const { s, store } = source();
    const cache = new ClientCache<number>(store, 50);
    let loads = 0;
    const load = async () => ++loads;
    await cache.get('c', load);
    await cache.get('c', load);
    assert.equal(loads, 2, 'never checked: not served from the cache');
    await cache.check();
    await cache.get('c', load);
    await cache.get('c', load);
    assert.equal(loads, 3);
    await new Promise((r) => setTimeout(r, 80));
    await cache.get('c', load);
    assert.equal(loads, 4, 'the check is older than the interval');
    s.fail = true;
    await cache.check();
    await cache.get('c', load);
    assert.equal(loads, 5, 'a failed check verifies nothing');
  });

  it('reloads an entry older than the interval though the stamp never changed (a record edited in the database writes none)', async () => {
    const { store } = source();
    const cache = new ClientCache<number>(store, 80);
    let loads = 0;
    const load = async () => ++loads;
    cache.start();
    try {
      await cache.check();
      assert.equal(await cache.get('c', load), 1);
      assert.equal(await cache.get('c', load), 1);
      // Checks keep succeeding with the same stamp meanwhile (every 40 ms).
      await new Promise((r) => setTimeout(r, 120));
      assert.equal(await cache.get('c', load), 2, 'an entry lives at most the interval');
      assert.equal(await cache.get('c', load), 2);
    } finally {
      cache.stop();
    }
  });

  it('does not keep a value loaded while the cache was emptied', async () => {
    const { s, store } = source();
    const cache = new ClientCache<string>(store, 60_000);
    await cache.check();
    let release!: () => void;
    const slow = cache.get('c', () => new Promise<string>((r) => { release = () => r('old'); }));
    s.stamp = 'b';
    await cache.check();
    release();
    assert.equal(await slow, 'old');
    assert.equal(await cache.get('c', async () => 'new'), 'new');
  });

  it('is off at 0: every lookup loads', async () => {
    const { store } = source();
    const cache = new ClientCache<number>(store, 0);
    cache.start();
    await cache.check();
    let loads = 0;
    await cache.get('c', async () => ++loads);
    await cache.get('c', async () => ++loads);
    assert.equal(loads, 2);
    cache.stop();
  });
});

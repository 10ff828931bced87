/**
 * Review h10 (2518a28): the sweep's cutoff is the sweeping instance's `now - window`, so an
 * instance whose clock runs ahead (or a sweep whose `now` was read after a request's) deletes
 * an address bucket that another instance still counts: a locked address is let in early.
 * Fails on 2518a28; a margin on the cutoff (the sweep only reclaims space) would fix it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isTicket, LoginThrottle } from '../../interactions/throttle.ts';
import { openEmbeddedStorage } from '../../adapters/storage/embedded.ts';
import type { Storage } from '../../adapters/storage/port.ts';
import { tempDir } from '../helpers/env.ts';

const settings = { accountFreeFailures: 5, accountMaxFailures: 100, ipFreeFailures: 20, ipMaxFailures: 30, ipWindow: 3600, maxDelay: 900 };

describe('attempt sweep beside instances whose clocks differ by 2 s', () => {
  let storage: Storage;
  before(() => { storage = openEmbeddedStorage(tempDir()); });
  after(() => storage.close());

  it('does not unlock an address that another instance still counts', async () => {
    const a = new LoginThrottle(storage.attempts, settings);
    const b = new LoginThrottle(storage.attempts, settings);
    const ip = '198.51.100.7';
    let now = 1_800_000_000_000;
    for (let i = 0; i < settings.ipMaxFailures; i++, now += 1_000_000) assert.ok(isTicket(await a.begin(`u${i}`, ip, undefined, now)));
    const last = now - 1_000_000;
    const w = settings.ipWindow * 1000;
    // Without a sweep, instance B (1 s before the window ends by its clock) refuses.
    assert.ok(!isTicket(await b.begin('x', ip, undefined, last + w - 1000)));
    // Instance A, 2 s ahead, sweeps 1 s after the window by its clock.
    await a.sweep(last + w + 1000);
    assert.ok(!isTicket(await b.begin('victim', ip, undefined, last + w - 999)), 'B still counts the address as locked');
  });
});

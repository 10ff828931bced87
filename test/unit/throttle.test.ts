import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accountKey, delayAfter, isTicket, LoginThrottle, SWEEP_MARGIN_MS, type Ticket } from '../../interactions/throttle.ts';
import { openEmbeddedStorage } from '../../adapters/storage/embedded.ts';
import type { Storage } from '../../adapters/storage/port.ts';
import { tempDir } from '../helpers/env.ts';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

const settings = { accountFreeFailures: 5, accountMaxFailures: 100, ipFreeFailures: 20, ipMaxFailures: 500, ipWindow: 3600, maxDelay: 900 };

function ticket(t: Awaited<ReturnType<LoginThrottle['begin']>>): Ticket {
  assert.ok(isTicket(t), 'attempt allowed');
  return t;
}

describe('progressive delay', () => {
  it('is free for the first attempts, then doubles, capped', () => {
    assert.deepEqual([1, 4, 5, 6, 7, 8].map((n) => delayAfter(n, 5, 900)), [0, 0, 1, 2, 4, 8]);
    assert.equal(delayAfter(20, 5, 900), 900);
    assert.equal(delayAfter(99, 5, 900), 900);
  });
});

describe('LoginThrottle over the embedded store', () => {
  let storage: Storage;
  let dir: string;
  before(() => { storage = openEmbeddedStorage((dir = tempDir())); });
  /** The store's rows themselves (another connection to its file): what a sweep reclaims. */
  const rows = (key: string) => {
    const db = new DatabaseSync(path.join(dir, 'idp.sqlite'), { readOnly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM attempts WHERE key = ?').get(key) as { n: number }).n;
    } finally {
      db.close();
    }
  };
  after(() => storage.close());

  it('never allows more than 100 consecutive failures, however long the attacker waits', async () => {
    const t = new LoginThrottle(storage.attempts, settings);
    let now = Date.now();
    let allowed = 0;
    for (let i = 0; i < 150; i += 1) {
      if (isTicket(await t.begin('victim', `10.0.${i % 250}.1`, undefined, now))) allowed += 1;
      now += 901_000; // always past the longest delay
    }
    assert.equal(allowed, 100);
    assert.equal((await t.failures('victim', now)).count, 100);
    // A recognised browser has its own counter and is still let in.
    assert.ok(isTicket(await t.begin('victim', '192.0.2.1', 'device-1', now)));
    await t.unlock('victim');
    assert.equal((await t.failures('victim', now)).count, 0);
  });

  it('sweeps address buckets after ipWindow and emptied ones after the longest delay, never a locked account', async () => {
    const t = new LoginThrottle(storage.attempts, settings);
    const start = Date.now();
    // A locked account (100 failures, spread past every delay) from 100 addresses, long ago.
    let now = start;
    for (let i = 0; i < 100; i += 1) { ticket(await t.begin('locked', `10.9.${i}.1`, undefined, now)); now += 901_000; }
    // A login that then succeeded from one more address (its account bucket emptied).
    const ok = ticket(await t.begin('fine', '10.8.0.1', undefined, now));
    await t.succeeded(ok, 'fine');
    const held = (key: string, at: number) => storage.attempts.get(key, at, Infinity).then((b) => b.count);
    const later = now + 3_600_000 + SWEEP_MARGIN_MS + 1;
    // The newest address bucket (its failure at `now - 901 s`) stays until the window and the
    // margin have both passed since then.
    const newest = now - 901_000;
    assert.equal(await held('ip:10.9.0.1', later), 1);
    assert.deepEqual([rows(accountKey('fine')), rows(accountKey('locked'))], [1, 1]);
    await t.sweep(newest + 3_600_000 + SWEEP_MARGIN_MS - 1);
    assert.equal(await held('ip:10.9.99.1', later), 1);
    assert.equal(await held('ip:10.9.0.1', later), 0);
    await t.sweep(later);
    // Past the IP window: every address bucket is gone; the locked account is not.
    for (let i = 0; i < 100; i += 1) assert.equal(await held(`ip:10.9.${i}.1`, later), 0, `ip:10.9.${i}.1`);
    assert.equal((await t.failures('locked', later)).count, 100);
    assert.ok(!isTicket(await t.begin('locked', '10.7.0.1', undefined, later)));
    // The emptied account bucket went too; the locked one's row is still there.
    assert.deepEqual([rows(accountKey('fine')), rows(accountKey('locked')), rows('ip:10.9.0.1')], [0, 1, 0]);
    await t.unlock('locked');
  });

  it('sweeps more stale address buckets than one chunk (5,000 rows a statement)', async () => {
    const t = new LoginThrottle(storage.attempts, settings);
    const then = Date.now() - 10 * 3_600_000;
    for (let i = 0; i < 12_001; i += 1) {
      await storage.attempts.reserve(`ip:2001:db8:${i.toString(16)}::/64`, { now: then, max: 500, windowMs: 3_600_000, waitMs: () => 0 });
    }
    const count = () => {
      const db = new DatabaseSync(path.join(dir, 'idp.sqlite'), { readOnly: true });
      try {
        return (db.prepare("SELECT count(*) AS n FROM attempts WHERE key LIKE 'ip:2001:db8:%'").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    assert.equal(count(), 12_001);
    await t.sweep();
    assert.equal(count(), 0);
  });

  it('refuses attempts during the delay without counting them, and says until when', async () => {
    const t = new LoginThrottle(storage.attempts, settings);
    const now = Date.now();
    for (let i = 0; i < 5; i += 1) ticket(await t.begin('u2', '10.1.1.1', undefined, now));
    const refused = await t.begin('u2', '10.1.1.1', undefined, now + 10);
    assert.ok(!isTicket(refused));
    assert.equal(refused.until, now + 1000);
    assert.equal((await t.failures('u2', now + 10)).count, 5);
    assert.ok(isTicket(await t.begin('u2', '10.1.1.1', undefined, now + 1000)));
  });

  it('a refused account attempt is not counted against the IP either', async () => {
    const t = new LoginThrottle(storage.attempts, settings);
    const now = Date.now();
    for (let i = 0; i < 5; i += 1) ticket(await t.begin('u4', '10.4.4.4', undefined, now));
    for (let i = 0; i < 10; i += 1) assert.ok(!isTicket(await t.begin('u4', '10.4.4.4', undefined, now + 1)));
    assert.equal((await storage.attempts.get('ip:10.4.4.4', now, 3_600_000)).count, 5);
  });

  it('only `succeeded` clears the account counters and refunds the IP; a right password alone does not', async () => {
    const t = new LoginThrottle(storage.attempts, settings);
    const now = Date.now();
    ticket(await t.begin('u3', '10.2.2.2', undefined, now)); // a failure
    const ok = ticket(await t.begin('u3', '10.2.2.2', 'dev', now));
    assert.equal(ok.accountKey, accountKey('u3', 'dev'));
    assert.equal((await t.failures('u3', now)).count, 1, 'still counted until the login finishes');
    await t.succeeded(ok, 'u3');
    assert.equal((await t.failures('u3', now)).count, 0);
    assert.equal((await storage.attempts.get('ip:10.2.2.2', now, 3_600_000)).count, 1, 'the failure still counts against the IP');
  });
});

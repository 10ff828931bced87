/**
 * The directory part of the password step (interactions/authenticate.ts) with a fake LDAP
 * connection standing in for a directory that is too slow to answer a bind in time but
 * still receives it and counts the failure (as OpenLDAP's ppolicy and AD do). The real
 * client against a real slapd is covered by test/integration/directory*.test.ts; a slow
 * server that processes a bind after our deadline cannot be produced reliably there.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, it } from 'node:test';
import { directoryAccountId, Directories } from '../../adapters/directory/index.ts';
import { DirectoryUnavailableError, type DirectoryConfig, type DirectoryConnection } from '../../adapters/directory/types.ts';
import { openStorage } from '../../adapters/storage/index.ts';
import type { Storage } from '../../adapters/storage/port.ts';
import { PasswordAuthenticator } from '../../interactions/authenticate.ts';
import { PasswordHasher } from '../../interactions/methods/password.ts';
import { LoginThrottle } from '../../interactions/throttle.ts';
import { describeOrSkip, mongoUriForTest, STORES, tempDir } from '../helpers/env.ts';

const CONFIG: DirectoryConfig = {
  name: 'corp', preset: 'openldap', urls: ['ldaps://directory.example'], startTls: false, allowPlain: false,
  bindDn: 'cn=idp,dc=example,dc=org', bindPassword: 'service-secret', baseDn: 'dc=example,dc=org', scope: 'sub', emailVerified: false,
  timeouts: { connectMs: 1000, operationMs: 1000 }, poolSize: 2, source: 'test',
  userFilter: '(uid={username})', idAttribute: 'entryUUID',
  attributes: { email: 'mail', name: 'cn', given_name: 'givenName', family_name: 'sn', preferred_username: 'uid' },
  groups: { source: 'member_of', attribute: 'memberOf', base: 'dc=example,dc=org', filter: '(member={dn})', nested: false, nameAttribute: 'cn' },
  lockout: { threshold: 5, windowSeconds: 300, maxFailures: 3 },
};

/** A directory that receives every bind, counts it as a failure, and answers after our deadline. */
function slowDirectory(): DirectoryConnection & { binds: number } {
  const uuid = crypto.randomUUID();
  return {
    binds: 0,
    async search() {
      return [{ dn: 'uid=alice,dc=example,dc=org', attributes: { entryUUID: [uuid], uid: ['alice'] } }];
    },
    async bind() {
      this.binds += 1;
      throw new DirectoryUnavailableError('corp', 'timeout', 'ldaps://directory.example: bind: no answer within 1000 ms');
    },
    async checkServiceBind() {
      return { url: CONFIG.urls[0]!, tls: 'ldaps' as const };
    },
    async close() {},
  };
}

describeOrSkip(false, 'a directory bind that times out', () => {
  let storage: Storage;
  before(async () => {
    storage = await openStorage({ dataDir: tempDir('idp-dir-auth-') });
  });
  after(() => storage?.close());

  it('stays counted: a slow directory cannot be made to count more failed binds than the provider allows', async () => {
    const conn = slowDirectory();
    const throttle = new LoginThrottle(storage.attempts, {
      accountFreeFailures: 100, accountMaxFailures: 100, ipFreeFailures: 10_000, ipMaxFailures: 100_000, ipWindow: 900, maxDelay: 900,
    });
    const auth = new PasswordAuthenticator(storage, new PasswordHasher({ memoryKib: 1024, iterations: 1 }, 8), throttle,
      crypto.randomBytes(32), new Directories([CONFIG], () => conn));
    const outcomes = [];
    for (let i = 0; i < 10; i += 1) {
      const o = await auth.attempt({ username: 'alice', password: `guess number ${i}`, ip: '192.0.2.1', deviceId: undefined });
      outcomes.push(o.ok ? 'signed in' : o.reason);
    }
    assert.equal(outcomes.filter((r) => r === 'unavailable').length, CONFIG.lockout.maxFailures, 'each bind that left says "unavailable"');
    assert.equal(outcomes.filter((r) => r === 'throttled').length, 10 - CONFIG.lockout.maxFailures, 'then the provider pauses');
    assert.equal(conn.binds, CONFIG.lockout.maxFailures, `the directory received ${conn.binds} binds; at most ${CONFIG.lockout.maxFailures} (below its lockout at ${CONFIG.lockout.threshold})`);
  });
});

/**
 * The just-in-time link is a check-then-act (find the account, create it if absent): 100
 * first sign-ins of one directory user at once, on each real store, must make one account
 * and sign every one of them into it. The LDAP side stands in (a directory whose binds all
 * succeed); the throttle is opened wide so all 100 reach the link.
 */
for (const store of STORES) {
  describeOrSkip(store.skip, `100 parallel first sign-ins of one directory user (${store.kind} store)`, () => {
    let storage: Storage;
    before(async () => {
      storage = await openStorage({ dataDir: tempDir('idp-dir-link-'), ...(store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest() } : {}) });
    });
    after(() => storage?.close());

    it('link exactly one account, and every sign-in gets it', async () => {
      const uuid = crypto.randomUUID();
      const conn: DirectoryConnection = {
        async search() { return [{ dn: 'uid=newbie,dc=example,dc=org', attributes: { entryUUID: [uuid], uid: ['newbie'], mail: ['newbie@example.org'] } }]; },
        async bind() { return { ok: true }; },
        async checkServiceBind() { return { url: CONFIG.urls[0]!, tls: 'ldaps' as const }; },
        async close() {},
      };
      const wide = { ...CONFIG, lockout: { threshold: 1000, windowSeconds: 300, maxFailures: 500 } };
      const throttle = new LoginThrottle(storage.attempts, {
        accountFreeFailures: 500, accountMaxFailures: 500, ipFreeFailures: 10_000, ipMaxFailures: 100_000, ipWindow: 900, maxDelay: 900,
      });
      const auth = new PasswordAuthenticator(storage, new PasswordHasher({ memoryKib: 1024, iterations: 1 }, 8), throttle,
        crypto.randomBytes(32), new Directories([wide], () => conn));
      const outcomes = await Promise.all(Array.from({ length: 100 }, () =>
        auth.attempt({ username: 'newbie', password: 'the right password', ip: '192.0.2.1', deviceId: undefined })));
      const ids = new Set(outcomes.map((o) => (o.ok ? o.account.id : `refused: ${o.reason}`)));
      assert.deepEqual([...ids], [directoryAccountId('corp', uuid)], 'all 100 signed in, into one account');
      assert.equal(outcomes.filter((o) => o.ok && o.linked).length, 1, 'one of them made the link');
      const linked = (await storage.accounts.list()).filter((a) => a.directory?.id === uuid);
      assert.equal(linked.length, 1);
      assert.equal(linked[0]!.email, 'newbie@example.org');
    });
  });
}

/**
 * An attempt the directory could not decide (the bind's connection failed before it was
 * sent) is uncounted (LoginThrottle.cancel): 100 of them at once, on each real store, leave
 * the account's bucket empty, so an outage never adds up to a lockout.
 */
for (const store of STORES) {
  describeOrSkip(store.skip, `100 parallel sign-ins while binds cannot reach the directory (${store.kind} store)`, () => {
    let storage: Storage;
    before(async () => {
      storage = await openStorage({ dataDir: tempDir('idp-dir-cancel-'), ...(store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest() } : {}) });
    });
    after(() => storage?.close());

    it('leave nothing counted: the right password works once the directory is back', async () => {
      const uuid = crypto.randomUUID();
      let up = false;
      const conn: DirectoryConnection = {
        async search() { return [{ dn: 'uid=olga,dc=example,dc=org', attributes: { entryUUID: [uuid], uid: ['olga'] } }]; },
        async bind() {
          if (!up) throw new DirectoryUnavailableError('corp', 'connect', 'ldaps://directory.example: connection refused');
          return { ok: true };
        },
        async checkServiceBind() { return { url: CONFIG.urls[0]!, tls: 'ldaps' as const }; },
        async close() {},
      };
      const throttle = new LoginThrottle(storage.attempts, {
        accountFreeFailures: 100, accountMaxFailures: 100, ipFreeFailures: 10_000, ipMaxFailures: 100_000, ipWindow: 900, maxDelay: 900,
      });
      // A lockout the burst cannot pass: with CONFIG's 3, MongoDB's insert-then-count refuses
      // parallel attempts on the strict side, and on a fast server (FerretDB over PostgreSQL)
      // all 100 were refused that way before any reached the bind, leaving nothing to test.
      const directory = { ...CONFIG, lockout: { ...CONFIG.lockout, maxFailures: 100 } };
      const auth = new PasswordAuthenticator(storage, new PasswordHasher({ memoryKib: 1024, iterations: 1 }, 8), throttle,
        crypto.randomBytes(32), new Directories([directory], () => conn));
      const attempt = () => auth.attempt({ username: 'olga', password: 'the right password', ip: '192.0.2.7', deviceId: undefined });
      const outcomes = await Promise.all(Array.from({ length: 100 }, attempt));
      assert.ok(outcomes.every((o) => !o.ok && (o.reason === 'unavailable' || o.reason === 'throttled')));
      assert.ok(outcomes.some((o) => !o.ok && o.reason === 'unavailable'), 'some reached the bind');
      assert.equal((await throttle.failures(directoryAccountId('corp', uuid))).count, 0, 'nothing stays counted');
      up = true;
      const back = await attempt();
      assert.equal(back.ok, true, 'not paused after the outage');
    });
  });
}

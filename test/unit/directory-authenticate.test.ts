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
import { Directories } from '../../adapters/directory/index.ts';
import { DirectoryUnavailableError, type DirectoryConfig, type DirectoryConnection } from '../../adapters/directory/types.ts';
import { openStorage } from '../../adapters/storage/index.ts';
import type { Storage } from '../../adapters/storage/port.ts';
import { PasswordAuthenticator } from '../../interactions/authenticate.ts';
import { PasswordHasher } from '../../interactions/methods/password.ts';
import { LoginThrottle } from '../../interactions/throttle.ts';
import { describeOrSkip, tempDir } from '../helpers/env.ts';

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

/**
 * The LDAP client (adapters/directory/client.ts) against a real OpenLDAP (test/helpers/slapd.ts):
 * StartTLS and LDAPS with the test CA, a wrong CA and a wrong host name refused, plain LDAP
 * refused, failover, deadlines against a server that never answers, a restart survived,
 * the pool bound under 100 parallel searches (counted by slapd's cn=monitor), 100 parallel
 * binds kept apart, and the latency of a search and a bind on loopback.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createDirectoryConnection, type ConnectionPurpose } from '../../adapters/directory/client.ts';
import { DirectoryUnavailableError, type DirectoryConfig, type DirectoryConnection } from '../../adapters/directory/types.ts';
import { describeOrSkip } from '../helpers/env.ts';
import { hangingLdapServer, refusedPort, slapdMissing, startSlapd, type Slapd } from '../helpers/slapd.ts';

const USER_ATTRS = ['uid', 'cn', 'mail', 'entryUUID', 'memberOf', 'pwdAccountLockedTime', 'pwdReset', 'pwdFailureTime'];

async function unavailable(p: Promise<unknown>): Promise<DirectoryUnavailableError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DirectoryUnavailableError, `expected DirectoryUnavailableError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the directory to be unavailable');
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

describeOrSkip(slapdMissing, 'directory client against OpenLDAP', () => {
  let slapd: Slapd;
  const opened: { url: string; purpose: ConnectionPurpose }[] = [];
  const conns: DirectoryConnection[] = [];
  const connect = (overrides: Partial<DirectoryConfig> = {}) => {
    const c = createDirectoryConnection(slapd.directoryConfig(overrides), { hooks: { onConnect: (e) => opened.push(e) } });
    conns.push(c);
    return c;
  };
  const findUser = (c: DirectoryConnection, uidFilterValue: string) =>
    c.search(slapd.peopleDn, 'sub', `(&(objectClass=inetOrgPerson)(uid=${uidFilterValue}))`, USER_ATTRS, 2);

  before(async () => { slapd = await startSlapd(); });
  after(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await slapd.close();
  });

  it('searches and binds over StartTLS, with attributes named as asked and operational ones read', async () => {
    const c = connect();
    const [alice] = await findUser(c, 'alice');
    assert.ok(alice);
    assert.equal(alice.dn, slapd.users.alice.dn);
    assert.deepEqual(alice.attributes.mail, ['alice@example.test']);
    assert.match(String(alice.attributes.entryUUID?.[0]), /^[0-9a-f]{8}-[0-9a-f]{4}-/);
    assert.deepEqual(alice.attributes.memberOf, [slapd.groupDn('engineering')]);
    assert.deepEqual(await c.bind(slapd.users.alice.dn, slapd.users.alice.password), { ok: true });
    const wrong = await c.bind(slapd.users.alice.dn, 'not her password');
    assert.equal(wrong.ok, false);
    assert.equal(!wrong.ok && wrong.code, 49);
    // The ppolicy state the mapping reads.
    const [dave] = await findUser(c, 'dave');
    assert.deepEqual(dave?.attributes.pwdAccountLockedTime, ['000001010000Z']);
    const [erin] = await findUser(c, 'erin');
    assert.deepEqual(erin?.attributes.pwdReset, ['TRUE']);
    // Non-ASCII values come back as UTF-8 strings; a filter with escaped metacharacters finds its user.
    const [zoe] = await findUser(c, 'zo\\c3\\ab');
    assert.equal(zoe?.attributes.cn?.[0], 'Zoë Ångström');
    const [meta] = await findUser(c, 'a\\2ab\\28c\\29');
    assert.equal(meta?.dn, slapd.users.meta.dn);
    assert.deepEqual(await c.bind(slapd.users.zoe.dn, slapd.users.zoe.password), { ok: true });
    assert.deepEqual(await c.checkServiceBind(), { url: slapd.ldapUrl, tls: 'starttls' });
  });

  it('searches and binds over LDAPS; a binary attribute comes back as bytes', async () => {
    const c = connect({ urls: [slapd.ldapsUrl] });
    const [bob] = await findUser(c, 'bob');
    assert.equal(bob?.dn, slapd.users.bob.dn);
    assert.deepEqual(await c.bind(slapd.users.bob.dn, slapd.users.bob.password), { ok: true });
    assert.deepEqual(await c.checkServiceBind(), { url: slapd.ldapsUrl, tls: 'ldaps' });
    const bin = createDirectoryConnection(slapd.directoryConfig({ urls: [slapd.ldapsUrl] }), { binaryAttributes: ['entryUUID'] });
    conns.push(bin);
    const [again] = await bin.search(slapd.peopleDn, 'sub', '(uid=bob)', ['entryUUID', 'uid'], 1);
    assert.ok(Buffer.isBuffer(again?.attributes.entryUUID?.[0]));
    assert.equal(again?.attributes.entryUUID?.[0]?.toString(), bob?.attributes.entryUUID?.[0]);
    assert.equal(typeof again?.attributes.uid?.[0], 'string');
  });

  it('refuses a server whose certificate does not chain to the configured CA, or names another host', async () => {
    for (const url of [slapd.ldapUrl, slapd.ldapsUrl]) {
      const err = await unavailable(connect({ urls: [url], ca: slapd.wrongCaPem }).search(slapd.peopleDn, 'sub', '(uid=bob)', ['uid'], 1));
      assert.equal(err.kind, 'tls', err.message);
    }
    const err = await unavailable(connect({ urls: [slapd.ldapsUrlWrongName] }).search(slapd.peopleDn, 'sub', '(uid=bob)', ['uid'], 1));
    assert.equal(err.kind, 'tls');
    assert.match(err.message, /127\.0\.0\.2/);
    // No CA configured: the system CAs do not know the test CA either.
    const sys = await unavailable(connect({ ca: undefined }).checkServiceBind());
    assert.equal(sys.kind, 'tls');
  });

  it('refuses plain ldap:// unless allowPlain, without sending anything', async () => {
    const before = await slapd.connectionsAccepted();
    const plain = connect({ startTls: false });
    assert.equal((await unavailable(plain.search(slapd.peopleDn, 'sub', '(uid=bob)', ['uid'], 1))).kind, 'tls');
    assert.equal((await unavailable(plain.bind(slapd.users.bob.dn, slapd.users.bob.password))).kind, 'tls');
    // The monitor's own ldapsearch is the only connection since.
    assert.equal(await slapd.connectionsAccepted(), before + 1);
    const allowed = connect({ startTls: false, allowPlain: true });
    assert.equal((await allowed.checkServiceBind()).tls, 'none');
  });

  it('fails over from a refused port or a silent server to a live URL, and then skips the silent one', async () => {
    const dead = await refusedPort();
    opened.length = 0;
    const c = connect({ urls: [dead.url, slapd.ldapUrl] });
    const [bob] = await findUser(c, 'bob');
    assert.equal(bob?.dn, slapd.users.bob.dn);
    assert.deepEqual(await c.bind(slapd.users.bob.dn, slapd.users.bob.password), { ok: true });
    assert.ok(opened.every((o) => o.url === slapd.ldapUrl));
    // A URL that timed out is skipped for a while: the second connection (the bind pool's) does not try it again.
    const hang = await hangingLdapServer();
    try {
      const f = connect({ urls: [hang.url, slapd.ldapsUrl], timeouts: { connectMs: 300, operationMs: 1000 } });
      assert.equal((await findUser(f, 'bob')).length, 1);
      assert.deepEqual(await f.bind(slapd.users.bob.dn, slapd.users.bob.password), { ok: true });
      assert.equal(hang.connections, 1);
    } finally {
      await hang.close();
    }
    // Every URL down: 'connect', naming each.
    const err = await unavailable(connect({ urls: [dead.url, (await refusedPort()).url] }).checkServiceBind());
    assert.equal(err.kind, 'connect');
    assert.match(err.message, /no URL answered/);
  });

  it('gives up on a server that accepts the connection and never answers, within the bound, leaving no socket open', async () => {
    const hang = await hangingLdapServer();
    try {
      const timeouts = { connectMs: 300, operationMs: 300 };
      for (const [url, op] of [[hang.url, 'search'], [hang.ldapsUrl, 'search'], [hang.url, 'bind']] as const) {
        const c = connect({ urls: [url], timeouts });
        const t0 = performance.now();
        const err = await unavailable(op === 'search' ? c.search(slapd.peopleDn, 'sub', '(uid=bob)', ['uid'], 1) : c.bind(slapd.users.bob.dn, 'x'));
        const elapsed = performance.now() - t0;
        assert.equal(err.kind, 'timeout', err.message);
        assert.ok(elapsed >= timeouts.connectMs * 0.9, `gave up after ${elapsed} ms, before the deadline`);
        assert.ok(elapsed < 3 * (timeouts.connectMs + timeouts.operationMs), `took ${elapsed} ms`);
      }
      assert.equal(hang.connections, 3);
      for (let i = 0; i < 100 && hang.open > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(hang.open, 0, 'the client destroyed its sockets at the deadline');
    } finally {
      await hang.close();
    }
  });

  it('reports a wrong service password as service_bind, never echoing it', async () => {
    const secret = 'wrong-service-secret-123';
    const err = await unavailable(connect({ bindPassword: secret }).search(slapd.peopleDn, 'sub', '(uid=bob)', ['uid'], 1));
    assert.equal(err.kind, 'service_bind');
    assert.ok(!err.message.includes(secret));
    assert.ok(!(err.stack ?? '').includes(secret));
  });

  it('refuses an empty password without contacting the server', async () => {
    const c = connect();
    const before = await slapd.connectionsAccepted();
    const r = await c.bind(slapd.users.bob.dn, '');
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, 49);
    assert.equal(await slapd.connectionsAccepted(), before + 1, 'only the monitor query connected');
    assert.equal(await slapd.failureCount('bob'), 0);
  });

  it('keeps the service identity for searches whatever users bind', async () => {
    const c = connect({ poolSize: 1 });
    assert.equal((await c.search(slapd.peopleDn, 'one', '(objectClass=inetOrgPerson)', ['uid'], 50)).length, 7);
    for (const u of [slapd.users.alice, slapd.users.zoe]) assert.deepEqual(await c.bind(u.dn, u.password), { ok: true });
    // Alice may read only herself: seven entries means the search still ran as the service account.
    assert.equal((await c.search(slapd.peopleDn, 'one', '(objectClass=inetOrgPerson)', ['uid'], 50)).length, 7);
    const [alice] = await findUser(c, 'alice');
    assert.ok(alice?.attributes.entryUUID?.length, 'entryUUID is readable by the service account only');
  });

  it('reports connect while slapd is down, and works again after its restart with the same object', async () => {
    const c = connect({ timeouts: { connectMs: 1000, operationMs: 1000 } });
    assert.equal((await findUser(c, 'bob')).length, 1);
    assert.deepEqual(await c.bind(slapd.users.bob.dn, slapd.users.bob.password), { ok: true });
    await slapd.stop();
    try {
      assert.equal((await unavailable(findUser(c, 'bob'))).kind, 'connect');
      assert.equal((await unavailable(c.bind(slapd.users.bob.dn, slapd.users.bob.password))).kind, 'connect');
    } finally {
      await slapd.restart();
    }
    // The URL is marked down for 30 s, but it is the only one: it is tried anyway.
    assert.equal((await findUser(c, 'bob')).length, 1);
    assert.deepEqual(await c.bind(slapd.users.bob.dn, slapd.users.bob.password), { ok: true });
    // After a crash too (SIGKILL: no goodbye on the pooled sockets).
    await slapd.kill();
    await slapd.restart();
    assert.equal((await findUser(c, 'alice')).length, 1);
  });

  it('runs 100 parallel searches on at most poolSize service connections', async () => {
    opened.length = 0;
    const c = connect({ poolSize: 4 });
    const accepted = await slapd.connectionsAccepted();
    const uids = ['alice', 'bob', 'carol', 'dave', 'erin'];
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => findUser(c, uids[i % uids.length] ?? '')));
    results.forEach((r, i) => assert.equal(r[0]?.attributes.uid?.[0], uids[i % uids.length]));
    assert.ok(opened.filter((o) => o.purpose === 'service').length <= 4, `${opened.length} service connections`);
    // slapd's own count: at most 4 new connections, plus the monitor query's.
    const newConnections = (await slapd.connectionsAccepted()) - accepted - 1;
    assert.ok(newConnections <= 4 && newConnections >= 1, `slapd accepted ${newConnections} connections`);
  });

  it('runs 100 parallel binds, right and wrong, without mixing them up', async () => {
    const c = connect({ poolSize: 4 });
    const users = [slapd.users.alice, slapd.users.bob, slapd.users.zoe, slapd.users.meta];
    const cases = Array.from({ length: 100 }, (_, i) => ({ user: users[i % users.length]!, right: i % 3 !== 0 }));
    const results = await Promise.all(cases.map(({ user, right }) => c.bind(user.dn, right ? user.password : `${user.password}-wrong`)));
    results.forEach((r, i) => {
      if (cases[i]!.right) assert.deepEqual(r, { ok: true }, `bind ${i}`);
      else assert.equal(!r.ok && r.code, 49, `bind ${i}`);
    });
    // ppolicy saw them (a right bind clears a user's failures, and no user had 5 wrong in a row):
    // everyone can still sign in.
    for (const u of users) assert.deepEqual(await c.bind(u.dn, u.password), { ok: true }, u.uid);
  });

  it('measures a search and a bind on loopback (p50)', async () => {
    const c = connect({ poolSize: 2 });
    await findUser(c, 'bob');
    await c.bind(slapd.users.bob.dn, slapd.users.bob.password);
    const search: number[] = [];
    const bind: number[] = [];
    const fresh: number[] = [];
    for (let i = 0; i < 60; i++) {
      let t = performance.now();
      await findUser(c, 'bob');
      search.push(performance.now() - t);
      t = performance.now();
      assert.deepEqual(await c.bind(slapd.users.bob.dn, slapd.users.bob.password), { ok: true });
      bind.push(performance.now() - t);
      if (i < 20) {
        t = performance.now();
        await c.checkServiceBind();
        fresh.push(performance.now() - t);
      }
    }
    const p50 = (xs: number[]) => percentile(xs, 50).toFixed(2);
    console.log(`directory client on loopback (StartTLS): search p50 ${p50(search)} ms, pooled bind p50 ${p50(bind)} ms, `
      + `fresh connection + StartTLS + bind p50 ${p50(fresh)} ms`);
    assert.ok(percentile(search, 50) < 1000);
  });
});

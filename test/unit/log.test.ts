import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { adoptLoginId, createLogger, currentLoginId, enterLogin, loginIdOf, runInScope, scrub } from '../../idp/log.ts';
import { loggedPath, requestIdOf } from '../../idp/request-log.ts';

function capture(level: Parameters<typeof createLogger>[0] = 'debug') {
  const lines: string[] = [];
  const log = createLogger(level, (l) => lines.push(l));
  const last = () => JSON.parse(lines.at(-1)!) as Record<string, unknown>;
  return { lines, log, last };
}

describe('logger', () => {
  it('redacts secret-looking fields at any depth and honours the level', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    log.debug('hidden', {});
    log.info('x', { user: 'amy', password: 'hunter2', nested: { client_secret: 's', refresh_token: 'r', ok: 1 }, code: 'c', error: new Error('boom') });
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]!);
    assert.equal(entry.user, 'amy');
    assert.equal(entry.password, '[redacted]');
    assert.equal(entry.nested.client_secret, '[redacted]');
    assert.equal(entry.nested.refresh_token, '[redacted]');
    assert.equal(entry.nested.ok, 1);
    assert.equal(entry.code, '[redacted]');
    assert.deepEqual(entry.error, { name: 'Error', message: 'boom' });
    assert.ok(!lines[0]!.includes('hunter2'));
    log.warn('y', { level: 'low', msg: 'spoofed', time: 'never', req_id: 'forged', login_id: 'forged' });
    const second = JSON.parse(lines[1]!);
    assert.deepEqual([second.level, second.msg], ['warn', 'y'], 'an event cannot overwrite the line\'s own fields');
    assert.match(second.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO 8601, as before');
    assert.equal(second.req_id, undefined, 'nor set the request\'s ids');
    assert.equal(second.login_id, undefined);
  });

  it('writes one JSON object per line, with the level by name', () => {
    const { lines, log } = capture('debug');
    for (const lvl of ['debug', 'info', 'warn', 'error'] as const) log[lvl](`a ${lvl}\nwith a newline`, { text: 'x\ny' });
    assert.equal(lines.length, 4);
    for (const [i, l] of lines.entries()) {
      assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'));
      assert.equal(JSON.parse(l).level, ['debug', 'info', 'warn', 'error'][i]);
    }
    const silent: string[] = [];
    createLogger('silent', (l) => silent.push(l)).error('nothing');
    assert.deepEqual(silent, []);
  });

  it('censors every secret-looking name at several depths, in arrays, maps and header objects', () => {
    const { lines, log, last } = capture();
    const SECRETS = ['S0', 'S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7', 'S8', 'S9', 'S10', 'S11', 'S12', 'S13', 'S14', 'S15', 'S16', 'S17'].map((s) => `secret-value-${s}`);
    const [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17] = SECRETS as [string, ...string[]];
    log.info('deep', {
      new_password: s0, otp: s1, code_verifier: s2, access_token: s3, id_token: s4,
      a: { clientSecret: s5, b: { c: { recoveryCodes: [s6], privateKey: s7, jwk: { kty: 'EC', d: s8 } } } },
      list: [{ totpSeed: s9 }, [{ refreshToken: s10 }]],
      headers: { authorization: `Bearer ${s11}`, cookie: `_session=${s12}`, 'set-cookie': [s13], 'Proxy-Authorization': s14, 'x-api-key': s15 },
      req: { headers: { Authorization: `Basic ${s16}` } },
      map: new Map([['client_secret', s17]]),
      kept: { username: 'amy', count: 3 },
    });
    const text = lines.at(-1)!;
    for (const s of SECRETS) assert.ok(!text.includes(s), `${s} is censored`);
    const e = last() as { kept: unknown; headers: Record<string, unknown> };
    assert.deepEqual(e.kept, { username: 'amy', count: 3 }, 'the rest is kept');
    assert.equal(e.headers.authorization, '[redacted]');
  });

  it('censors the known fields by path too (pino redact), and a JWK\'s private members wherever it sits', () => {
    const c = capture();
    c.log.info('jwk parts', { d: 'private-d', qi: 'private-qi', signing: [{ kty: 'RSA', n: 'public-n', e: 'AQAB', d: 'private-d2', dp: 'private-dp' }], sym: { kty: 'oct', k: 'private-k' }, other: { d: 4 } });
    const e = c.last() as Record<string, unknown>;
    assert.equal(e.d, '[redacted]', 'by path: the name alone says nothing');
    assert.equal(e.qi, '[redacted]');
    assert.deepEqual(e.signing, [{ kty: 'RSA', n: 'public-n', e: 'AQAB', d: '[redacted]', dp: '[redacted]' }]);
    assert.deepEqual(e.sym, { kty: 'oct', k: '[redacted]' });
    assert.deepEqual(e.other, { d: 4 }, 'a `d` that is no JWK member is kept');
  });

  it('writes an Error as its name and message only, cuts cycles and depth, and copes with odd values', () => {
    const { lines, log, last } = capture();
    const err = Object.assign(new TypeError('bad input'), { query: { password: 'in-a-driver-error' } });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { password: 'at-the-bottom' };
    for (let i = 0; i < 20; i += 1) deep = { next: deep };
    log.error('odd', { error: err, cyclic, deep, when: new Date(0), big: 12n, bytes: Buffer.from('raw-secret-bytes'), link: new URL('https://rp.example/cb?code=query-code-value#x'), set: new Set([1, 2]) });
    const e = last() as Record<string, unknown>;
    assert.deepEqual(e.error, { name: 'TypeError', message: 'bad input' });
    assert.deepEqual(e.cyclic, { name: 'loop', self: '[circular]' });
    assert.equal(e.when, '1970-01-01T00:00:00.000Z');
    assert.equal(e.big, '12');
    assert.equal(e.bytes, '[16 bytes]');
    assert.equal(e.link, 'https://rp.example/cb', 'a URL without its query');
    assert.deepEqual(e.set, [1, 2]);
    for (const s of ['in-a-driver-error', 'at-the-bottom', 'raw-secret-bytes', 'query-code-value', 'stack']) assert.ok(!lines.at(-1)!.includes(s), s);
    // A shared (not cyclic) object is written twice, not called a cycle.
    const shared = { a: 1 };
    assert.deepEqual(scrub({ x: shared, y: shared }), { x: { a: 1 }, y: { a: 1 } });
  });

  it('tags lines written in a request scope with req_id and login_id, without mixing parallel scopes', async () => {
    const { lines, log } = capture();
    log.info('outside');
    const serve = (reqId: string, uid: string | undefined) => runInScope({ reqId }, async () => {
      log.info('start');
      await new Promise((r) => setTimeout(r, Math.random() * 10));
      if (uid) enterLogin(uid);
      await new Promise((r) => setImmediate(r));
      log.info('end');
    });
    await Promise.all(Array.from({ length: 50 }, (_, i) => serve(`r${i}`, i % 2 ? `uid-${i}` : undefined)));
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(entries[0]!.req_id, undefined, 'no scope, no id');
    for (let i = 0; i < 50; i += 1) {
      const mine = entries.filter((e) => e.req_id === `r${i}`);
      assert.deepEqual(mine.map((e) => e.msg), ['start', 'end']);
      assert.equal(mine[0]!.login_id, undefined, 'not known yet at the start');
      assert.equal(mine[1]!.login_id, i % 2 ? loginIdOf(`uid-${i}`) : undefined);
    }
    // The first login id set wins; the id is a digest, not the uid (an `_interaction` cookie's value).
    runInScope({ reqId: 'x' }, () => {
      enterLogin('first');
      adoptLoginId('second');
      assert.equal(currentLoginId(), loginIdOf('first'));
    });
    assert.notEqual(loginIdOf('abc'), 'abc');
    assert.match(loginIdOf('abc'), /^[A-Za-z0-9_-]{16}$/);
  });

  it('writes to stdout synchronously: a line logged just before exit is not lost', () => {
    const logJs = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'idp', 'log.js');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      const { createLogger } = await import(${JSON.stringify(logJs)});
      const log = createLogger('info');
      for (let i = 0; i < 200; i += 1) log.info('line', { i, pad: 'x'.repeat(200) });
      process.exit(0);
    `], { encoding: 'utf8' });
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 200);
    assert.equal(JSON.parse(lines[199]!).i, 199);
  });
});

describe('request ids and logged paths', () => {
  it('keeps a short safe X-Request-Id and replaces anything else', () => {
    assert.equal(requestIdOf('abc-123_x.y'), 'abc-123_x.y');
    assert.equal(requestIdOf('a'.repeat(64)), 'a'.repeat(64));
    for (const bad of [undefined, '', 'a'.repeat(65), 'a b', 'x\ny', '"quoted"', 'é', ['a', 'b']]) {
      assert.match(requestIdOf(bad), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, JSON.stringify(bad));
    }
  });

  it('logs a path without its query and without an interaction uid', () => {
    assert.equal(loggedPath('/token?code=abc'), '/token');
    assert.equal(loggedPath('/interaction/Xy_-12345678901234567/login?x=1'), '/interaction/:uid/login');
    assert.equal(loggedPath('/interaction/Xy_-12345678901234567'), '/interaction/:uid');
    assert.equal(loggedPath('/auth/Xy_-12345678901234567'), '/auth/:uid');
    assert.equal(loggedPath('/auth?client_id=a&code_challenge=b'), '/auth');
    assert.equal(loggedPath(undefined), '/');
    assert.ok(loggedPath(`/${'a'.repeat(1000)}`).length <= 201);
  });
});

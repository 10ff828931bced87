import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  activateKeys, describeKeys, KeyFileError, keyTimings, loadOrCreateKeys, providerCookieKeys, providerJwks, readKeyFile, retireKeys, rotateKeys, watchKeyFile,
} from '../../adapters/keys.ts';
import { SecretBox } from '../../adapters/crypto.ts';
import { tempDir } from '../helpers/env.ts';

describe('key file', () => {
  it('is created owner-only on first use and reused afterwards', () => {
    const file = path.join(tempDir(), 'certs', 'keys.json');
    const first = loadOrCreateKeys(file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const again = loadOrCreateKeys(file);
    assert.deepEqual(again, first);
    const algs = providerJwks(first).keys.map((k) => k.alg).sort();
    assert.deepEqual(algs, ['ES256', 'RS256']);
    assert.ok(providerJwks(first).keys.every((k) => 'd' in k), 'private keys for signing');
  });

  it('refuses a key file readable by others, and a foreign file', () => {
    const file = path.join(tempDir(), 'keys.json');
    loadOrCreateKeys(file);
    fs.chmodSync(file, 0o644);
    assert.throws(() => loadOrCreateKeys(file), (e: Error) => e instanceof KeyFileError && /too open/.test(e.message));
    fs.writeFileSync(file, '{"hello":1}', { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    assert.throws(() => loadOrCreateKeys(file), KeyFileError);
  });

  it('refuses a key file without a usable cookie key (cookies and forms would be signed with nothing)', () => {
    const file = path.join(tempDir(), 'keys.json');
    const good = loadOrCreateKeys(file);
    for (const cookieKeys of [[], [''], ['c2hvcnQ']]) {
      fs.writeFileSync(file, JSON.stringify({ ...good, cookieKeys }), { mode: 0o600 });
      assert.throws(() => loadOrCreateKeys(file), (e: Error) => e instanceof KeyFileError && /cookieKeys/.test(e.message), JSON.stringify(cookieKeys));
    }
  });

  it('rotates in three steps: staged keys are published before they sign; previous keys stay until no instance can use them', () => {
    const file = path.join(tempDir(), 'keys.json');
    const timings = keyTimings(10, 600); // activate after 20 s; retire 620 s after demotion
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const first = loadOrCreateKeys(file);
    const before = describeKeys(first).map((k) => k.kid);
    const cookieBefore = first.cookieKeys[0]!;

    // 1. rotate: staged keys are published after the current ones, so they do not sign yet.
    const { staged, activateAfter } = rotateKeys(file, timings, t0);
    assert.equal(activateAfter, new Date(t0 + 20_000).toISOString());
    let keys = loadOrCreateKeys(file);
    assert.deepEqual(providerJwks(keys).keys.map((k) => k.kid), [...before, ...staged], 'current first: they still sign');
    assert.deepEqual(providerCookieKeys(keys), [cookieBefore, keys.nextCookieKey], 'the staged cookie key verifies, the old one signs');
    assert.throws(() => rotateKeys(file, timings, t0 + 1000), /already staged/);
    assert.throws(() => retireKeys(file, timings, { kid: staged[0], now: t0 }), /staged/);

    // 2. activate: refused until every instance has had two intervals to publish them.
    assert.throws(() => activateKeys(file, timings, t0 + 19_999), /staged too recently.*activate after/);
    const { activated, previous, retireAfter } = activateKeys(file, timings, t0 + 20_000);
    assert.deepEqual(activated.sort(), [...staged].sort());
    assert.deepEqual(previous.sort(), [...before].sort());
    assert.equal(retireAfter, new Date(t0 + 20_000 + 620_000).toISOString());
    keys = loadOrCreateKeys(file);
    assert.deepEqual(providerJwks(keys).keys.map((k) => k.kid), [...staged, ...before], 'new keys sign, old ones still published');
    assert.equal(providerCookieKeys(keys)[0], keys.cookieKeys[0]);
    assert.notEqual(keys.cookieKeys[0], cookieBefore);
    assert.ok(keys.cookieKeys.includes(cookieBefore), 'old cookies still verify');
    assert.throws(() => activateKeys(file, timings, t0 + 30_000), /no staged keys/);

    // 3. retire: never a current key; a previous one only once no instance can still sign with it.
    assert.throws(() => retireKeys(file, timings, { kid: staged[0], now: t0 + 10 ** 9 }), /current signing key/);
    assert.throws(() => retireKeys(file, timings, { kid: before[0], now: t0 + 20_000 + 619_999 }), /may still be signing.*retire after/);
    const early = retireKeys(file, timings, { now: t0 + 20_000 + 619_999 });
    assert.deepEqual(early.retired, []);
    assert.deepEqual(early.kept.map((k) => k.kid).sort(), [...before].sort());
    assert.deepEqual(retireKeys(file, timings, { now: t0 + 20_000 + 620_000 }).retired.sort(), [...before].sort());
    assert.deepEqual(providerJwks(loadOrCreateKeys(file)).keys.map((k) => k.kid).sort(), [...staged].sort());
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it('retires previous keys of older key files (no demotion time) at once', () => {
    const file = path.join(tempDir(), 'keys.json');
    const keys = loadOrCreateKeys(file);
    const old = keys.signing.map((k) => ({ ...k, state: 'previous' as const }));
    const fresh = loadOrCreateKeys(path.join(tempDir(), 'other.json')).signing;
    fs.writeFileSync(file, JSON.stringify({ ...keys, signing: [...fresh, ...old] }), { mode: 0o600 });
    assert.deepEqual(retireKeys(file, keyTimings(10, 600)).retired.sort(), old.map((k) => k.jwk.kid).sort());
  });

  it('reports a changed key file to a watcher, and refuses a changed data key', async () => {
    const file = path.join(tempDir(), 'keys.json');
    const keys = loadOrCreateKeys(file);
    const changes: string[][] = [];
    const errors: string[] = [];
    const watch = watchKeyFile(file, keys, 20, (k) => changes.push(k.signing.map((x) => x.jwk.kid)), (e) => errors.push(e.message));
    try {
      const { staged } = rotateKeys(file, keyTimings(1, 30));
      for (let i = 0; i < 100 && changes.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
      assert.ok(changes.at(-1)?.includes(staged[0]!), 'the staged key reached the watcher');
      fs.writeFileSync(`${file}.tmp`, JSON.stringify({ ...loadOrCreateKeys(file), dataKey: Buffer.alloc(32, 1).toString('base64url') }), { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
      for (let i = 0; i < 100 && errors.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
      assert.match(errors[0] ?? '', /data key changed/);
      assert.equal(changes.length, 1);
    } finally {
      watch.close();
    }
  });

  it('is never created by a rotation step: a running instance (the admin API) must not make a new data key', () => {
    const file = path.join(tempDir(), 'keys.json');
    const timings = keyTimings(10, 600);
    assert.throws(() => rotateKeys(file, timings), /ENOENT/);
    assert.throws(() => activateKeys(file, timings), /ENOENT/);
    assert.throws(() => retireKeys(file, timings), /ENOENT/);
    assert.equal(fs.existsSync(file), false);
  });

  it('is never created by a reader that only reads it (reload, config check), nor by a watcher when it vanishes', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'keys.json');
    assert.throws(() => readKeyFile(file), /ENOENT/);
    assert.equal(fs.existsSync(file), false);
    const keys = loadOrCreateKeys(file);
    const errors: string[] = [];
    const watch = watchKeyFile(file, keys, 20, () => assert.fail('no change'), (e) => errors.push(e.message));
    try {
      fs.rmSync(file);
      for (let i = 0; i < 100 && errors.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
      assert.match(errors[0] ?? '', /keeping the keys in use/);
      assert.equal(fs.existsSync(file), false, 'no new key file (with a new data key) was made');
    } finally {
      watch.close();
    }
  });
});

describe('secret box', () => {
  it('round-trips, and refuses tampering or another record', () => {
    const box = new SecretBox(Buffer.alloc(32, 7).toString('base64url'));
    const sealed = box.seal('s3cret', 'client_secret:a');
    assert.ok(!sealed.includes('s3cret'));
    assert.equal(box.open(sealed, 'client_secret:a'), 's3cret');
    assert.throws(() => box.open(sealed, 'client_secret:b'));
    const parts = sealed.split('.');
    parts[2] = Buffer.from('x').toString('base64url');
    assert.throws(() => box.open(parts.join('.'), 'client_secret:a'));
  });

  it('refuses a truncated authentication tag (a prefix of the right one)', () => {
    const box = new SecretBox(Buffer.alloc(32, 7).toString('base64url'));
    const parts = box.seal('s3cret', 'client_secret:a').split('.');
    const tag = Buffer.from(parts[3]!, 'base64url');
    assert.equal(tag.length, 16);
    for (const len of [4, 8, 12, 15]) {
      const short = [...parts.slice(0, 3), tag.subarray(0, len).toString('base64url')].join('.');
      assert.throws(() => box.open(short, 'client_secret:a'), /unrecognised ciphertext format/, `${len}-byte tag`);
    }
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { describeKeys, KeyFileError, loadOrCreateKeys, providerJwks, retireKeys, rotateKeys } from '../../adapters/keys.ts';
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

  it('rotates: new keys sign first, previous stay published until retired', () => {
    const file = path.join(tempDir(), 'keys.json');
    const before = describeKeys(loadOrCreateKeys(file)).map((k) => k.kid);
    const { added, previous } = rotateKeys(file);
    assert.deepEqual(previous.sort(), before.sort());
    const jwks = providerJwks(loadOrCreateKeys(file)).keys.map((k) => k.kid);
    assert.deepEqual(jwks.slice(0, 2).sort(), added.sort(), 'new keys come first');
    assert.ok(before.every((kid) => jwks.includes(kid)), 'old keys still published');
    assert.throws(() => retireKeys(file, added[0]), /current signing key/);
    assert.deepEqual(retireKeys(file).sort(), before.sort());
    assert.deepEqual(providerJwks(loadOrCreateKeys(file)).keys.map((k) => k.kid).sort(), added.sort());
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
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

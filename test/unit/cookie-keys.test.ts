/**
 * The cookie signer (adapters/cookie-keys.ts) makes the signatures keygrip makes, so cookies
 * issued before it still verify, accepts any of the keys (rotation) and nothing else.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { CookieKeys } from '../../adapters/cookie-keys.ts';

const Keygrip = createRequire(import.meta.url)('keygrip') as new (keys: string[]) => { sign(d: string): string; index(d: string, s: string): number };

describe('CookieKeys', () => {
  const keys = ['first-key-0123456789abcdefghijklmnopqrstuv', 'second-key-0123456789abcdefghijklmnopqrstu'];
  it('signs as keygrip does, and verifies what keygrip signed with any key', () => {
    const ours = new CookieKeys(keys);
    for (const data of ['_session=abc', '_interaction=ünïcode/+=', '', 'x'.repeat(500)]) {
      assert.equal(ours.sign(data), new Keygrip(keys).sign(data));
      assert.equal(ours.index(data, new Keygrip([keys[1]!]).sign(data)), 1, 'signed with the second key');
      assert.equal(new Keygrip(keys).index(data, ours.sign(data)), 0);
    }
  });

  it('refuses another key\'s signature, a changed value, a truncated or missing digest', () => {
    const ours = new CookieKeys(keys);
    const sig = ours.sign('_session=abc');
    assert.equal(ours.index('_session=abd', sig), -1);
    assert.equal(ours.index('_session=abc', new Keygrip(['another-key-0123456789abcdefghijklmnopq']).sign('_session=abc')), -1);
    assert.equal(ours.index('_session=abc', sig.slice(0, -1)), -1);
    assert.equal(ours.index('_session=abc', `${sig}A`), -1);
    assert.equal(ours.index('_session=abc', undefined as unknown as string), -1);
    assert.equal(ours.verify('_session=abc', sig), true);
  });

  it('needs a key', () => {
    assert.throws(() => new CookieKeys([]), /at least one key/);
  });
});

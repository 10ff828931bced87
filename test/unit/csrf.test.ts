import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Csrf } from '../../interactions/csrf.ts';
import { deriveKey } from '../../adapters/keys.ts';

describe('CSRF key', () => {
  it('refuses an empty or short key instead of signing with it', () => {
    // The old server fell back to `keys.cookieKeys[0] ?? ''`: an HMAC key anyone knows.
    assert.throws(() => new Csrf('' as unknown as Buffer, false), /at least 32 bytes/);
    assert.throws(() => new Csrf(Buffer.alloc(0), false), /at least 32 bytes/);
    assert.throws(() => new Csrf(Buffer.alloc(31, 1), false), /at least 32 bytes/);
    assert.ok(new Csrf(Buffer.alloc(32, 1), false));
  });

  it('derives a 32-byte key per purpose from the data key', () => {
    const dataKey = Buffer.alloc(32, 9).toString('base64url');
    const csrf = deriveKey(dataKey, 'csrf');
    assert.equal(csrf.length, 32);
    assert.notDeepEqual(csrf, deriveKey(dataKey, 'other'));
    assert.notDeepEqual(csrf, Buffer.from(dataKey, 'base64url'));
    assert.deepEqual(csrf, deriveKey(dataKey, 'csrf'), 'stable: every instance derives the same key');
  });
});

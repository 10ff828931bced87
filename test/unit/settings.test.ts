import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadSettings, SETTINGS } from '../../idp/settings.ts';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');

describe('settings', () => {
  it('has documented defaults that respect NIST reauthentication limits', () => {
    const s = loadSettings({});
    assert.equal(s.port, 3000);
    assert.equal(s.issuer, 'http://localhost:3000');
    assert.equal(s.dataDir, path.resolve('./data'));
    assert.equal(s.mongodbUri, undefined);
    assert.ok(s.sessionMaxAge <= 24 * 3600, 'AAL2: reauthenticate within 24 h');
    assert.ok(s.sessionIdleTtl <= 3600, 'AAL2: 1 h inactivity');
    assert.ok(s.refreshTokenTtl < 14 * 24 * 3600);
    assert.ok(s.accountMaxFailures <= 100, 'NIST: at most 100 consecutive failures');
    assert.ok(s.argon2MemoryKib >= 19456 && s.argon2Iterations >= 2, 'OWASP argon2id minimum');
    assert.equal(s.trustProxy, false);
    assert.equal(s.trustProxyHops, 1, 'one proxy unless told otherwise');
  });

  it('derives the issuer from PORT and strips a trailing slash', () => {
    assert.equal(loadSettings({ PORT: '8080' }).issuer, 'http://localhost:8080');
    assert.equal(loadSettings({ ISSUER: 'https://id.example.com/' }).issuer, 'https://id.example.com');
  });

  it('names the variable in every configuration error', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: 'eighty' }, /^PORT: expected an integer/],
      [{ PORT: '70000' }, /^PORT: must be between/],
      [{ ISSUER: 'ftp://x' }, /^ISSUER: must be http\(s\)/],
      [{ ISSUER: 'https://x.example/?a=1' }, /^ISSUER: must not contain a query/],
      [{ ISSUER: 'not a url' }, /^ISSUER: not a valid URL/],
      [{ TRUST_PROXY: 'maybe' }, /^TRUST_PROXY: expected true or false/],
      [{ TRUST_PROXY_HOPS: '0' }, /^TRUST_PROXY_HOPS: must be between 1 and 10/],
      [{ KEYS_RELOAD_INTERVAL: '0' }, /^KEYS_RELOAD_INTERVAL: must be between 1 and 3600/],
      [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: one of/],
      [{ ARGON2_MEMORY_KIB: '1024' }, /^ARGON2_MEMORY_KIB: must be between 19456/],
      [{ THROTTLE_ACCOUNT_MAX: '500' }, /^THROTTLE_ACCOUNT_MAX: must be between 1 and 100/],
      [{ SESSION_IDLE_TTL: '7200', SESSION_MAX_AGE: '3600' }, /SESSION_MAX_AGE must not be shorter/],
    ];
    for (const [env, re] of cases) assert.throws(() => loadSettings(env), (e: Error) => e instanceof ConfigError && re.test(e.message), JSON.stringify(env));
  });

  it('README documents every variable with its default and the text `idp config docs` generates', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const s of Object.values(SETTINGS)) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${s.env}\` |`));
      assert.ok(row, `README lacks ${s.env}`);
      if (s.default !== undefined) assert.ok(row.includes(`\`${s.default}\``), `README shows another default for ${s.env}`);
      assert.ok(row.includes(` | ${s.doc} |`), `README describes ${s.env} otherwise than idp/settings.ts (the table is generated from it: idp config docs)`);
    }
  });
});

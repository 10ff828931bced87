/**
 * Key rotation across instances sharing one key file (and one store): every instance
 * publishes every key any of them may sign with, without a restart, and no step of the
 * `idp keys` command can remove a key still signing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as client from 'openid-client';
import * as jose from 'jose';
import { tempDir } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';

const CLI = path.join(import.meta.dirname, '..', '..', 'idp', 'cli.js');
const PASSWORD = 'rotation test password, long enough';

interface Result { code: number; stdout: string; stderr: string }

function idp(env: Record<string, string>, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function published(srv: TestServer): Promise<string[]> {
  const jwks = (await (await fetch(`${srv.url}/jwks`)).json()) as { keys: { kid: string; d?: string }[] };
  assert.ok(jwks.keys.every((k) => k.d === undefined), 'no private parts');
  return jwks.keys.map((k) => k.kid);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function idToken(srv: TestServer, clientId: string): Promise<string> {
  const config = await discover(srv.issuer, clientId);
  const login = await loginThroughForm(config, 'rita', PASSWORD, { scope: 'openid' });
  const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
  return tokens.id_token!;
}

describe('key rotation across two instances on one key file', () => {
  const servers: TestServer[] = [];
  after(async () => { for (const s of servers) await s.close(); });

  it('publishes on every instance the keys any instance signs with, and never retires one still signing', async () => {
    const dir = tempDir('idp-rotate-');
    const shared = {
      KEYS_FILE: path.join(dir, 'keys.json'), DATA_DIR: path.join(dir, 'data'), KEYS_RELOAD_INTERVAL: '1', ID_TOKEN_TTL: '30',
    };
    const first = await startTestServer('embedded', shared);
    servers.push(first);
    await first.addUser('rita', PASSWORD);
    await first.addClient('rotating-app', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    const original = await published(first);
    const signedBefore = await idToken(first, 'rotating-app');
    const originalRs = jose.decodeProtectedHeader(signedBefore).kid!;
    assert.ok(original.includes(originalRs));

    // 1. Stage: the running instance publishes the new keys without a restart, still signing with the old.
    const rotated = await idp(first.env, ['keys', 'rotate']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const { staged } = JSON.parse(rotated.stdout) as { staged: string[] };
    await until('the first instance to publish the staged keys', async () => ((await published(first)).includes(staged[0]!) ? true : undefined));
    assert.deepEqual((await published(first)).sort(), [...original, ...staged].sort());
    assert.equal(jose.decodeProtectedHeader(await idToken(first, 'rotating-app')).kid, originalRs, 'staged keys do not sign');

    // 2. Activate, once every instance has had the time to publish them.
    const activated = await until('activation to be allowed', async () => {
      const r = await idp(first.env, ['keys', 'activate']);
      if (r.code === 0) return r;
      assert.match(r.stderr, /staged too recently/);
      return undefined;
    });
    assert.deepEqual((JSON.parse(activated.stdout) as { activated: string[] }).activated.sort(), [...staged].sort());

    // A second instance started now signs with the new key...
    const second = await startTestServer('embedded', shared);
    servers.push(second);
    const token = await idToken(second, 'rotating-app');
    const kid = jose.decodeProtectedHeader(token).kid!;
    assert.ok(staged.includes(kid), 'the second instance signs with an activated key');
    // ...which the FIRST instance, never restarted, publishes: a relying party verifies it there.
    const firstJwks = jose.createRemoteJWKSet(new URL(`${first.url}/jwks`));
    const { payload } = await jose.jwtVerify(token, firstJwks);
    assert.equal(payload.aud, 'rotating-app');
    // And the first instance switched to the new key too, within one interval.
    await until('the first instance to sign with the activated key', async () => (staged.includes(jose.decodeProtectedHeader(await idToken(first, 'rotating-app')).kid!) ? true : undefined));
    assert.deepEqual((await published(first)).sort(), (await published(second)).sort(), 'both publish the same set');

    // 3. Retire: never a current key; the previous ones only after they can no longer sign anywhere.
    const refused = await idp(first.env, ['keys', 'retire', `--kid=${kid}`]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /current signing key/);
    const tooEarly = await idp(first.env, ['keys', 'retire', `--kid=${originalRs}`]);
    assert.equal(tooEarly.code, 1);
    assert.match(tooEarly.stderr, /may still be signing.*retire after/);
    const plain = await idp(first.env, ['keys', 'retire']);
    assert.equal(plain.code, 0, plain.stderr);
    const result = JSON.parse(plain.stdout) as { retired: string[]; kept: { kid: string }[] };
    assert.deepEqual(result.retired, []);
    assert.deepEqual(result.kept.map((k) => k.kid).sort(), [...original].sort());
    assert.ok((await published(first)).includes(originalRs), 'the previous key is still published');
    // A token the old key signed before the switch still verifies at either instance.
    for (const srv of [first, second]) await jose.jwtVerify(signedBefore, jose.createRemoteJWKSet(new URL(`${srv.url}/jwks`)));
  });
});

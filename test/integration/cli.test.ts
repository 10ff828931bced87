/**
 * The `idp` command, run as a separate process against the store of a running server:
 * what it adds is usable at once, duplicates are refused, bad arguments give one line and
 * a non-zero exit. Also `npm start`'s entry point: keys created once, owner-only, reused.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, freePort, tempDir, testEnv } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';

const DIST = path.join(import.meta.dirname, '..', '..');
const CLI = path.join(DIST, 'idp', 'cli.js');
const MAIN = path.join(DIST, 'idp', 'main.js');
const PASSWORD = 'a long enough password for the cli';

interface Result { code: number; stdout: string; stderr: string }

function idp(env: Record<string, string>, args: string[], stdin?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}

function oneLineError(r: Result, code: number, re: RegExp) {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

for (const store of STORES) {
  describe(`idp CLI beside a running server (${store.kind} store)`, { skip: store.skip }, () => {
    let srv: TestServer;
    before(async () => { srv = await startTestServer(store.kind); });
    after(() => srv?.close());

    it('adds a user and a client that can log in at once, without a restart', async () => {
      const user = await idp(srv.env, ['user', 'add', 'Zoe', '--password-stdin', '--email', 'zoe@example.com', '--name', 'Zoe Z'], `${PASSWORD}\n`);
      assert.equal(user.code, 0, user.stderr);
      const created = JSON.parse(user.stdout) as { id: string; username: string };
      assert.equal(created.username, 'zoe', 'usernames are normalised');
      assert.ok(!user.stdout.includes(PASSWORD) && !user.stderr.includes(PASSWORD));

      const added = await idp(srv.env, ['client', 'add', '--id', 'cli-app', '--redirect-uri', REDIRECT_URI, '--name', 'CLI App', '--scope', 'openid email profile offline_access']);
      assert.equal(added.code, 0, added.stderr);
      const c = JSON.parse(added.stdout) as { client_id: string; client_secret: string; redirect_uris: string[] };
      assert.equal(c.client_id, 'cli-app');
      assert.ok(c.client_secret.length >= 32);
      assert.deepEqual(c.redirect_uris, [REDIRECT_URI]);
      // Stored encrypted, not in clear.
      const stored = await srv.storage.clients.find('cli-app');
      assert.ok(stored?.secretCiphertext && !stored.secretCiphertext.includes(c.client_secret));

      const config = await discover(srv.issuer, 'cli-app', c.client_secret);
      const login = await loginThroughForm(config, 'zoe', PASSWORD);
      const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
      assert.equal(tokens.claims()!.sub, created.id);
      assert.equal(tokens.claims()!.email, undefined, 'email is a userinfo claim');
      assert.equal((await client.fetchUserInfo(config, tokens.access_token, created.id)).email, 'zoe@example.com');
    });

    it('refuses a duplicate username or client id and keeps the original', async () => {
      oneLineError(await idp(srv.env, ['user', 'add', 'zoe', '--password-stdin'], 'another long password here\n'), 1, /already exists/);
      oneLineError(await idp(srv.env, ['client', 'add', '--id', 'cli-app', '--redirect-uri', 'https://other.example/cb']), 1, /already exists/);
      assert.deepEqual((await srv.storage.clients.find('cli-app'))?.metadata.redirect_uris, [REDIRECT_URI]);
      const config = await discover(srv.issuer, 'cli-app', 'irrelevant-secret-irrelevant-secret-00');
      // The original password still works (the duplicate did not overwrite it).
      const login = await loginThroughForm(config, 'zoe', PASSWORD, { scope: 'openid' });
      assert.ok(login.callback.searchParams.get('code'));
    });

    it('lists users and clients', async () => {
      const users = await idp(srv.env, ['user', 'list', '--json']);
      assert.equal(users.code, 0);
      assert.ok((JSON.parse(users.stdout) as { username: string }[]).some((u) => u.username === 'zoe'));
      assert.doesNotMatch(users.stdout, /argon2/, 'no password hashes in listings');
      const table = await idp(srv.env, ['user', 'list']);
      assert.match(table.stdout, /^username\s+id\s+email/m);
      const clients = await idp(srv.env, ['client', 'list']);
      assert.match(clients.stdout, /cli-app\s+confidential\s+CLI App/);
      assert.doesNotMatch(clients.stdout, /client_secret|v1\./);
    });

    it('gives one line and a non-zero exit for bad arguments', async () => {
      oneLineError(await idp(srv.env, ['user', 'add', 'yan']), 2, /--password-stdin is required/);
      oneLineError(await idp(srv.env, ['user', 'add', 'yan', '--password-stdin'], 'short\n'), 1, /at least 15 characters/);
      oneLineError(await idp(srv.env, ['user', 'add', 'bad name!', '--password-stdin'], `${PASSWORD}\n`), 1, /username may contain/);
      oneLineError(await idp(srv.env, ['user', 'add', 'yan', '--password-stdin', '--bogus'], `${PASSWORD}\n`), 2, /Unknown option '--bogus'/);
      oneLineError(await idp(srv.env, ['client', 'add', '--redirect-uri', REDIRECT_URI]), 2, /--id is required/);
      oneLineError(await idp(srv.env, ['client', 'add', '--id', 'x1']), 2, /--redirect-uri is required/);
      oneLineError(await idp(srv.env, ['client', 'add', '--id', 'x2', '--redirect-uri', 'not a uri']), 2, /invalid client: redirect_uris/);
      oneLineError(await idp(srv.env, ['client', 'add', '--id', 'x3', '--redirect-uri', REDIRECT_URI, '--public', '--secret', 'x'.repeat(40)]), 2, /exclude each other/);
      oneLineError(await idp(srv.env, ['client', 'add', '--id', 'x4', '--redirect-uri', REDIRECT_URI, '--scope', 'openid admin']), 2, /unsupported scope/);
      oneLineError(await idp(srv.env, ['frobnicate']), 2, /unknown command "frobnicate"/);
      oneLineError(await idp({ ...srv.env, PORT: 'eighty' }, ['user', 'list']), 1, /PORT: expected an integer/);
      assert.equal((await srv.storage.clients.list()).filter((c) => /^x\d$/.test(c.clientId)).length, 0, 'nothing half-created');
    });

    it('adds a public client that must use PKCE', async () => {
      const r = await idp(srv.env, ['client', 'add', '--id', 'spa-cli', '--public', '--redirect-uri', REDIRECT_URI]);
      assert.equal(r.code, 0, r.stderr);
      const c = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(c.token_endpoint_auth_method, 'none');
      assert.equal(c.client_secret, undefined);
      const config = await discover(srv.issuer, 'spa-cli');
      const login = await loginThroughForm(config, 'zoe', PASSWORD, { scope: 'openid' });
      assert.ok(await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state }));
    });

    it('unlocks an account', async () => {
      const id = (await srv.storage.accounts.findByUsername('zoe'))!.id;
      for (let i = 0; i < 3; i += 1) await srv.storage.attempts.reserve(`acct:${id}`, { now: Date.now(), max: 100, windowMs: Infinity });
      const r = await idp(srv.env, ['user', 'unlock', 'zoe']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await srv.storage.attempts.get(`acct:${id}`, Date.now(), Infinity)).count, 0);
      oneLineError(await idp(srv.env, ['user', 'unlock', 'nobody']), 1, /no user "nobody"/);
    });
  });
}

describe('npm start entry point and key management', () => {
  it('creates keys owner-only on first start, reuses them, and publishes rotated keys after restart', async () => {
    const dir = tempDir();
    const port = await freePort();
    const env = { PATH: process.env.PATH ?? '', ...testEnv('embedded', dir, port, { LOG_LEVEL: 'info', KEYS_RELOAD_INTERVAL: '1' }) };
    const start = async () => {
      const child = spawn(process.execPath, [MAIN], { env });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      for (let i = 0; i < 100 && !out.includes('"listening"'); i += 1) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /"msg":"listening"/, out);
      const jwks = (await (await fetch(`http://127.0.0.1:${port}/jwks`)).json()) as { keys: { kid: string; d?: string }[] };
      assert.ok(jwks.keys.every((k) => k.d === undefined), 'no private parts published');
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      assert.doesNotMatch(out, /"d":|PRIVATE KEY/, 'no key material in logs');
      return jwks.keys.map((k) => k.kid).sort();
    };
    const first = await start();
    const keysFile = path.join(dir, 'keys.json');
    assert.equal(fs.statSync(keysFile).mode & 0o777, 0o600);
    assert.equal(first.length, 2);
    assert.deepEqual(await start(), first, 'same keys after a restart');

    const rotated = await idp(env, ['keys', 'rotate']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const { staged } = JSON.parse(rotated.stdout) as { staged: string[] };
    assert.deepEqual(await start(), [...first, ...staged].sort(), 'old and staged keys published');
    await new Promise((r) => setTimeout(r, 2100)); // two KEYS_RELOAD_INTERVALs
    const activated = await idp(env, ['keys', 'activate']);
    assert.equal(activated.code, 0, activated.stderr);
    assert.deepEqual(await start(), [...first, ...staged].sort(), 'new and previous keys published');
    const retired = await idp(env, ['keys', 'retire']);
    assert.deepEqual((JSON.parse(retired.stdout) as { retired: string[] }).retired, [], 'previous keys are kept while they may still be in use');
  });

  it('exits with a one-line configuration error', async () => {
    const r = await new Promise<Result>((resolve) => {
      execFile(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', PORT: 'x' } }, (err, stdout, stderr) => resolve({ code: Number((err as { code?: number } | null)?.code ?? 0), stdout, stderr }));
    });
    assert.equal(r.code, 78);
    assert.equal(r.stderr.trim(), 'configuration error: PORT: expected an integer, got "x"');
  });
});

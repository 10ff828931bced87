/**
 * The `idp` command, run as a separate process against the store of a running server:
 * what it adds is usable at once, duplicates are refused, bad arguments give one line and
 * a non-zero exit. `idp config check` validates what a start validates and creates nothing.
 * Also `npm start`'s entry point: keys created once, owner-only, reused; one line for a port
 * in use; and both entry points on a Node.js older than package.json "engines".
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip, freePort, tempDir, testEnv } from '../helpers/env.ts';
import { runNode, startNode, type RunResult } from '../helpers/process.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { minimumOf } from '../../idp/node-version.ts';
import { generateSync } from 'otplib';
import { SecretBox } from '../../adapters/crypto.ts';
import { deriveKey, loadOrCreateKeys } from '../../adapters/keys.ts';
import { verifyTotp } from '../../interactions/methods/totp.ts';
import { useRecoveryCode } from '../../interactions/methods/recovery.ts';

const DIST = path.join(import.meta.dirname, '..', '..');
const ROOT = path.join(DIST, '..');
/** The `idp` command as package.json "bin" installs it. */
const BIN = path.join(DIST, 'idp', 'bin.js');
const MAIN = path.join(DIST, 'idp', 'main.js');
const PASSWORD = 'a long enough password for the cli';

function idp(env: Record<string, string>, args: string[], stdin?: string, cwd?: string): Promise<RunResult> {
  return runNode([BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdin, cwd });
}

function oneLineError(r: RunResult, code: number, re: RegExp) {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

/** Every path under `dir`, to show that a command created nothing. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

for (const store of STORES) {
  describeOrSkip(store.skip, `idp CLI beside a running server (${store.kind} store)`, () => {
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

    it('lists users and clients; --json keeps redirect_uris an array', async () => {
      const users = await idp(srv.env, ['user', 'list', '--json']);
      assert.equal(users.code, 0);
      assert.ok((JSON.parse(users.stdout) as { username: string }[]).some((u) => u.username === 'zoe'));
      assert.doesNotMatch(users.stdout, /argon2/, 'no password hashes in listings');
      const table = await idp(srv.env, ['user', 'list']);
      assert.match(table.stdout, /^username\s+id\s+email/m);

      const second = 'http://127.0.0.1:9/other';
      const two = await idp(srv.env, ['client', 'add', '--id', 'two-uris', '--public', '--redirect-uri', REDIRECT_URI, '--redirect-uri', second]);
      assert.equal(two.code, 0, two.stderr);
      const clients = await idp(srv.env, ['client', 'list']);
      assert.match(clients.stdout, /cli-app\s+confidential\s+CLI App/);
      assert.match(clients.stdout, new RegExp(`two-uris\\s+public\\s+${REDIRECT_URI} ${second}`));
      assert.doesNotMatch(clients.stdout, /client_secret|v1\./);
      const json = await idp(srv.env, ['client', 'list', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const rows = JSON.parse(json.stdout) as { client_id: string; redirect_uris: unknown }[];
      // The same shape as the client's metadata and `client add` output (RFC 7591 §2).
      assert.deepEqual(rows.find((r) => r.client_id === 'two-uris')?.redirect_uris, [REDIRECT_URI, second]);
      assert.deepEqual(rows.find((r) => r.client_id === 'cli-app')?.redirect_uris, [REDIRECT_URI]);
      assert.doesNotMatch(json.stdout, /client_secret|v1\./);
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
      for (let i = 0; i < 3; i += 1) await srv.storage.attempts.reserve(`acct:${id}`, { now: Date.now(), max: 100, windowMs: Infinity, waitMs: () => 0 });
      const r = await idp(srv.env, ['user', 'unlock', 'zoe']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await srv.storage.attempts.get(`acct:${id}`, Date.now(), Infinity)).count, 0);
      oneLineError(await idp(srv.env, ['user', 'unlock', 'nobody']), 1, /no user "nobody"/);
    });

    it('adds a TOTP factor, printing only its otpauth:// URI, whose codes then verify', async () => {
      const r = await idp(srv.env, ['user', 'mfa', 'add', 'Zoe', '--totp', '--label', 'Pixel 8']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^otpauth:\/\/totp\/[^\n]+\n$/, 'one line on stdout, nothing else');
      const uri = new URL(r.stdout.trim());
      assert.equal(decodeURIComponent(uri.pathname), '/127.0.0.1:zoe');
      assert.equal(uri.searchParams.get('issuer'), '127.0.0.1');
      const secret = uri.searchParams.get('secret')!;
      assert.match(secret, /^[A-Z2-7]{32}$/);
      assert.ok(!r.stderr.includes(secret), 'the secret only on stdout');

      const list = await idp(srv.env, ['user', 'mfa', 'list', 'zoe', '--json']);
      assert.equal(list.code, 0, list.stderr);
      const rows = JSON.parse(list.stdout) as Record<string, unknown>[];
      assert.equal(rows.length, 1);
      assert.deepEqual({ ...rows[0], id: undefined, created: undefined }, { id: undefined, created: undefined, kind: 'totp', label: 'Pixel 8', last_used: null, enrolled_via: 'admin' });
      assert.ok(!list.stdout.includes(secret) && !/v1\./.test(list.stdout), 'no secret in the listing');

      // The stored factor checks a code computed from the URI's secret, as the app would.
      const accountId = (await srv.storage.accounts.findByUsername('zoe'))!.id;
      const factor = (await srv.storage.factors.find(accountId, rows[0]!.id as string))!;
      assert.ok(!JSON.stringify(factor).includes(secret), 'stored encrypted');
      const box = new SecretBox(loadOrCreateKeys(srv.settings.keysFile).dataKey);
      const now = Date.now();
      assert.equal(await verifyTotp(srv.storage.factors, box, factor, generateSync({ secret, epoch: Math.floor(now / 1000) }), now), 'ok');
      const table = await idp(srv.env, ['user', 'mfa', 'list', 'zoe']);
      assert.match(table.stdout, /^id\s+kind\s+label\s+created\s+last_used\s+enrolled_via/m);
      assert.match(table.stdout, /totp\s+Pixel 8\s+\S+Z\s+\d{4}-\S+Z\s+admin/, 'last used is shown');
    });

    it('replaces recovery codes, printing the 10 new ones; the old ones stop working', async () => {
      const key = deriveKey(loadOrCreateKeys(srv.settings.keysFile).dataKey, 'recovery');
      const accountId = (await srv.storage.accounts.findByUsername('zoe'))!.id;
      const first = await idp(srv.env, ['user', 'mfa', 'add', 'zoe', '--recovery-codes']);
      assert.equal(first.code, 0, first.stderr);
      const codes = first.stdout.trim().split('\n');
      assert.equal(codes.length, 10);
      for (const c of codes) assert.match(c, /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){5}$/);
      assert.ok(await useRecoveryCode(srv.storage.factors, key, accountId, codes[0]!, new Date()));
      const listed = JSON.parse((await idp(srv.env, ['user', 'mfa', 'list', 'zoe', '--json'])).stdout) as { kind: string; codes_left?: number }[];
      assert.equal(listed.find((f) => f.kind === 'recovery')?.codes_left, 9);

      const second = await idp(srv.env, ['user', 'mfa', 'add', 'zoe', '--recovery-codes']);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /earlier codes no longer work/);
      assert.equal(await useRecoveryCode(srv.storage.factors, key, accountId, codes[1]!, new Date()), undefined);
      assert.ok(await useRecoveryCode(srv.storage.factors, key, accountId, second.stdout.trim().split('\n')[9]!, new Date()));
      assert.equal((await srv.storage.factors.list(accountId)).filter((f) => f.kind === 'recovery').length, 1);
    });

    it('resets all second factors of an account and says how many', async () => {
      const r = await idp(srv.env, ['user', 'mfa', 'reset', 'zoe']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'removed 2 second factors of zoe\n');
      assert.deepEqual(JSON.parse((await idp(srv.env, ['user', 'mfa', 'list', 'zoe', '--json'])).stdout), []);
      assert.equal((await idp(srv.env, ['user', 'mfa', 'reset', 'zoe'])).stdout, 'removed 0 second factors of zoe\n');
    });

    it('refuses an unknown user or bad mfa arguments in one line', async () => {
      oneLineError(await idp(srv.env, ['user', 'mfa', 'add', 'nobody', '--totp']), 1, /no user "nobody"/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'list', 'nobody']), 1, /no user "nobody"/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'reset', 'nobody']), 1, /no user "nobody"/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'add', 'zoe']), 2, /one of --totp or --recovery-codes/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'add', 'zoe', '--totp', '--recovery-codes']), 2, /one of --totp or --recovery-codes/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'add', 'zoe', '--totp', '--label', 'x'.repeat(65)]), 2, /--label: 1-64 characters/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'add', 'zoe', '--totp', '--label', 'a\u001b[31mred']), 2, /no control characters/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'add', 'zoe', '--totp', '--secret', 'ABC']), 2, /Unknown option '--secret'/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'list']), 2, /expected 1 argument/);
      oneLineError(await idp(srv.env, ['user', 'mfa', 'enable', 'zoe']), 2, /unknown command "user mfa enable"/);
      assert.deepEqual(JSON.parse((await idp(srv.env, ['user', 'mfa', 'list', 'zoe', '--json'])).stdout), [], 'nothing added');
    });

    it('config check passes on the running server\'s configuration and names its store', async () => {
      const r = await idp(srv.env, ['config', 'check']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^configuration OK\n/);
      assert.match(r.stdout, new RegExp(`issuer: ${srv.issuer}`));
      if (store.kind === 'mongodb') assert.match(r.stdout, /store: mongodb at mongodb:\/\/\S+ \(reachable, database "idp_test_/);
      else assert.match(r.stdout, /store: embedded at \S+ \(database idp\.sqlite \(\d+ KiB\)\)/);
      assert.match(r.stdout, /keys: \S+keys\.json \(2 current signing keys\)/);
      assert.match(r.stdout, /policy: \S+ \(version [0-9a-f]{12}, model /);
    });
  });
}

describe('idp without a command, and idp --help', () => {
  it('exits 2 with the usage on stderr when no command is given, 0 with it on stdout for --help', async () => {
    const none = await idp({}, []);
    assert.equal(none.code, 2, 'no command is bad usage (README: exit 2)');
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^Usage: idp <command>/);
    const help = await idp({}, ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: idp <command>/);
    assert.match(help.stdout, /idp config docs \| check/);
  });
});

describe('idp config check', () => {
  it('passes on the defaults in a fresh directory and creates nothing there', async () => {
    const cwd = tempDir('idp-check-');
    // No DATA_DIR / KEYS_FILE: the defaults ./data and ./certs/keys.json, relative to cwd.
    const r = await idp({}, ['config', 'check'], undefined, cwd);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^configuration OK\n/);
    assert.match(r.stdout, new RegExp(`store: embedded at \\S*${path.basename(cwd)}/data \\(will be created at first start\\)`));
    assert.match(r.stdout, /keys: \S+certs\/keys\.json \(will be created at first start, mode 0600\)/);
    assert.match(r.stdout, /geolocation: city: DB-IP City Lite/);
    assert.deepEqual(tree(cwd), [], 'no data directory, database or key file was created');
  });

  it('reports every problem a start would refuse, one line each, exits 1, and changes nothing', async () => {
    const dir = tempDir('idp-check-');
    const keysFile = path.join(dir, 'keys.json');
    // A valid key file that others may read: the server refuses it (mode 0644).
    const made = await idp({ KEYS_FILE: keysFile }, ['keys', 'list']);
    assert.equal(made.code, 0, made.stderr);
    fs.chmodSync(keysFile, 0o644);
    const dataFile = path.join(dir, 'not-a-dir');
    fs.writeFileSync(dataFile, 'x');
    const env = {
      PORT: 'eighty',
      SESSION_IDLE_TTL: '5',
      POLICY_DIR: path.join(dir, 'no-such-policy'),
      KEYS_FILE: keysFile,
      DATA_DIR: dataFile,
      GEOIP_ASN_DB: path.join(dir, 'missing.mmdb'),
    };
    const before = tree(dir);
    const r = await idp(env, ['config', 'check']);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    const expected = [
      /^idp: PORT: expected an integer, got "eighty"$/,
      /^idp: SESSION_IDLE_TTL: must be between 60 and \d+, got 5$/,
      /^idp: POLICY_DIR: \S+no-such-policy does not exist$/,
      /^idp: GEOIP_ASN_DB: cannot read \S+missing\.mmdb \(ENOENT\)$/,
      /^idp: DATA_DIR: \S+not-a-dir is not a directory$/,
      /^idp: KEYS_FILE: \S+keys\.json: permissions 644 are too open; run: chmod 600 \S+keys\.json$/,
    ];
    assert.equal(lines.length, expected.length, r.stderr);
    expected.forEach((re, i) => assert.match(lines[i]!, re));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(tree(dir), before, 'nothing created');
    assert.equal(fs.statSync(keysFile).mode & 0o777, 0o644, 'the key file is left as it was');
  });

  it('agrees with the server: what it refuses, npm start refuses too', async () => {
    const dir = tempDir('idp-check-');
    const base = { ...testEnv('embedded', dir, await freePort()), LOG_LEVEL: 'silent' };
    const keysFile = path.join(dir, 'keys.json');
    assert.equal((await idp(base, ['keys', 'list'])).code, 0);
    fs.chmodSync(keysFile, 0o644);
    const refuses = async (what: string, env: Record<string, string>, re: RegExp) => {
      const check = await idp(env, ['config', 'check']);
      assert.equal(check.code, 1, `config check must refuse ${what}: ${check.stdout}`);
      assert.match(check.stderr, re);
      const start = await runNode([MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, timeoutMs: 60_000 });
      assert.equal(start.code, 78, `npm start refuses ${what} (stderr: ${start.stderr})`);
    };
    await refuses('a key file readable by others', base, /^idp: KEYS_FILE: .*permissions 644 are too open/m);
    fs.chmodSync(keysFile, 0o600);
    await refuses('a missing policy directory', { ...base, POLICY_DIR: path.join(dir, 'nope') }, /^idp: POLICY_DIR: \S+nope does not exist$/m);
    // And with both fixed, both accept it.
    const ok = await idp(base, ['config', 'check']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('says which MongoDB it cannot reach, without its password', async () => {
    const r = await idp({ MONGODB_URI: 'mongodb://admin:hunter2-secret@127.0.0.1:1/idp' }, ['config', 'check']);
    assert.equal(r.code, 1);
    const line = r.stderr.trim().split('\n').find((l) => l.includes('MONGODB_URI'));
    assert.match(line ?? '', /^idp: MONGODB_URI: cannot reach MongoDB at mongodb:\/\/admin:\*\*\*@127\.0\.0\.1:1\/idp within 5 s: /);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  });
});

describe('npm start entry point and key management', () => {
  it('creates keys owner-only on first start, reuses them, and publishes rotated keys after restart', async () => {
    const dir = tempDir();
    const port = await freePort();
    const env = { PATH: process.env.PATH ?? '', ...testEnv('embedded', dir, port, { LOG_LEVEL: 'info', KEYS_RELOAD_INTERVAL: '1' }) };
    const start = async () => {
      const server = startNode([MAIN], { env });
      try {
        await server.waitFor(/"msg":"listening"/, 'the "listening" log line');
        const jwks = (await (await fetch(`http://127.0.0.1:${port}/jwks`)).json()) as { keys: { kid: string; d?: string }[] };
        assert.ok(jwks.keys.every((k) => k.d === undefined), 'no private parts published');
        return jwks.keys.map((k) => k.kid).sort();
      } finally {
        await server.stop();
        assert.doesNotMatch(server.output, /"d":|PRIVATE KEY/, 'no key material in logs');
      }
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
    const r = await runNode([MAIN], { env: { PATH: process.env.PATH ?? '', PORT: 'x' } });
    assert.equal(r.code, 78);
    assert.equal(r.stderr.trim(), 'configuration error: PORT: expected an integer, got "x"');
  });

  it('exits with one line when the port is already in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const env = { PATH: process.env.PATH ?? '', ...testEnv('embedded', tempDir(), port) };
      const r = await runNode([MAIN], { env, timeoutMs: 60_000 });
      oneLineError(r, 1, new RegExp(`^cannot listen on 127\\.0\\.0\\.1 port ${port}: it is already in use .*set PORT to a free port$`, 'm'));
      assert.doesNotMatch(r.stderr, /EADDRINUSE|Error:/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

/** Node.js executables on this machine older than package.json "engines" (e.g. Debian's Node 20). */
function oldNodes(): { node: string; version: string }[] {
  const min = minimumOf((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node)!;
  const [maj, mnr] = min.split('.').map(Number) as [number, number];
  const candidates = new Set(['/usr/bin/node', '/usr/local/bin/node', ...(process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'node'))]);
  const found = new Map<string, { node: string; version: string }>();
  for (const c of candidates) {
    let real: string;
    try {
      real = fs.realpathSync(c);
    } catch {
      continue;
    }
    if (found.has(real) || real === fs.realpathSync(process.execPath)) continue;
    let version: string;
    try {
      version = execFileSync(c, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim().replace(/^v/, '');
    } catch {
      continue;
    }
    const [a = 0, b = 0] = version.split('.').map(Number);
    if (a < maj || (a === maj && b < mnr)) found.set(real, { node: c, version });
  }
  return [...found.values()];
}

describe('entry points on a Node.js older than package.json "engines"', () => {
  const old = oldNodes()[0];
  it(`say what to install, in one line, instead of a node:sqlite stack trace${old ? ` (${old.node}, v${old.version})` : ''}`,
    { skip: old ? false : 'no Node.js older than "engines" on this machine (looked in /usr/bin, /usr/local/bin and PATH)' }, async () => {
      const env = { PATH: `${path.dirname(old!.node)}${path.delimiter}${process.env.PATH ?? ''}`, ...testEnv('embedded', tempDir(), await freePort()) };
      for (const args of [[MAIN], [BIN, 'user', 'list'], [BIN, 'config', 'check'], [BIN, 'start']]) {
        const r = await runNode(args, { env, node: old!.node });
        oneLineError(r, 1, new RegExp(`^adaptive-idp needs Node\\.js >=\\d+\\.\\d+\\.\\d+ .*this is Node\\.js ${old!.version.replace(/\./g, '\\.')} .*install Node\\.js 24 LTS`));
        assert.doesNotMatch(r.stderr, /ERR_UNKNOWN_BUILTIN_MODULE/, args.join(' '));
        assert.equal(r.stdout, '');
      }
    });
});

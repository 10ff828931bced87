/**
 * Accounts through the `idp` command, as an operator creates them, on both stores:
 * look-alike usernames (UTS #39 skeletons) are refused by the store itself, also when two
 * `user add` run at once; common passwords are refused by every way of setting one; a
 * login finds the account under the same normalisation `user add` applied.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, it } from 'node:test';
import crypto from 'node:crypto';
import mongoose from 'mongoose';
import { STORES, mongoUriForTest, tempDir, type StoreKind, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { openStorage, DuplicateError } from '../../adapters/storage/index.ts';

const CLI = path.join(import.meta.dirname, '..', '..', 'idp', 'cli.js');
const PASSWORD = 'a password nobody has breached yet';

interface Result { code: number; stdout: string; stderr: string }

function idp(env: Record<string, string>, args: string[], stdin = ''): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin);
  });
}

function oneLine(r: Result, re: RegExp) {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, re);
}

for (const store of STORES) {
  describeOrSkip(store.skip, `accounts through idp (${store.kind} store)`, () => {
    let srv: TestServer;
    before(async () => { srv = await startTestServer(store.kind); });
    after(() => srv?.close());

    it('refuses a look-alike of an existing username', async () => {
      assert.equal((await idp(srv.env, ['user', 'add', 'alice', '--password-stdin'], PASSWORD)).code, 0);
      for (const lookalike of ['аlice' /* Cyrillic а */, 'a1ice', 'ALІCE' /* Ukrainian І */]) {
        oneLine(await idp(srv.env, ['user', 'add', lookalike, '--password-stdin'], PASSWORD), /looks like an existing username/);
      }
      oneLine(await idp(srv.env, ['user', 'add', 'Alice', '--password-stdin'], PASSWORD), /already exists/);
      assert.deepEqual((await srv.storage.accounts.list()).map((a) => a.username).filter((u) => u !== 'alice' && /ali|1ice/i.test(u)), []);
    });

    it('creates exactly one account when two look-alikes are added at the same time', async () => {
      for (const [a, b] of [['bob', 'bоb'], ['carl', 'cаrl'], ['dora1', 'doral'], ['emil', 'еmil']] as const) {
        const results = await Promise.all([idp(srv.env, ['user', 'add', a, '--password-stdin'], PASSWORD), idp(srv.env, ['user', 'add', b, '--password-stdin'], PASSWORD)]);
        assert.equal(results.filter((r) => r.code === 0).length, 1, `${a} / ${b}: ${results.map((r) => r.stderr).join(' | ')}`);
        const loser = results.find((r) => r.code !== 0)!;
        assert.match(loser.stderr, /looks like an existing username/);
        const kept = (await srv.storage.accounts.list()).filter((x) => x.username === a || x.username === b);
        assert.equal(kept.length, 1);
      }
    });

    it('refuses look-alikes created in parallel through the store, without a check-then-insert race', async () => {
      // Latin, Cyrillic а, Greek α, Cyrillic г, Latin ɑ, Armenian ռ, Armenian ո with Greek α: one skeleton.
      const variants = ['frank', 'frаnk', 'frαnk', 'fгank', 'frɑnk', 'fraռk', 'frαոk'];
      // 100 parallel creates, each look-alike several times over.
      const names = Array.from({ length: 100 }, (_, i) => variants[i % variants.length]!);
      const results = await Promise.allSettled(names.map((username) => srv.storage.accounts.create({ id: crypto.randomUUID(), username, emailVerified: false, passwordHash: '$argon2id$fake' })));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as Error) instanceof DuplicateError));
    });

    it('refuses a common password at user add and user passwd, in one line', async () => {
      oneLine(await idp(srv.env, ['user', 'add', 'gina', '--password-stdin'], 'passwordpassword\n'), /too easy to guess/);
      assert.equal(await srv.storage.accounts.findByUsername('gina'), undefined);
      assert.equal((await idp(srv.env, ['user', 'add', 'gina', '--password-stdin'], PASSWORD)).code, 0);
      const before = (await srv.storage.accounts.findByUsername('gina'))!.passwordHash;
      oneLine(await idp(srv.env, ['user', 'passwd', 'gina', '--password-stdin'], '1qaz2wsx3edc4rfv\n'), /too easy to guess/);
      assert.equal((await srv.storage.accounts.findByUsername('gina'))!.passwordHash, before, 'unchanged');
      // Context-specific words (NIST 800-63B-4 §3.1.1.2): the username, the email, the name.
      oneLine(await idp(srv.env, ['user', 'passwd', 'gina', '--password-stdin'], 'gina has a long password\n'), /contains your username/);
      oneLine(await idp(srv.env, ['user', 'add', 'hank', '--password-stdin', '--email', 'hank.hill@example.com'], 'propane and hankhill forever\n'), /contains your username/);
      assert.equal((await srv.storage.accounts.findByUsername('gina'))!.passwordHash, before, 'unchanged');
    });

    it('starts the keystroke template afresh at user passwd, keeping the rest of the history', async () => {
      assert.equal((await idp(srv.env, ['user', 'add', 'ivo', '--password-stdin'], PASSWORD)).code, 0);
      const id = (await srv.storage.accounts.findByUsername('ivo'))!.id;
      // The typing of the old password: a new one of the same length is another rhythm, which
      // the old template would score as someone else's until it was replaced.
      const template = { positions: 12, samples: [Array.from({ length: 34 }, () => 0.1)] };
      await srv.storage.risk.putUser(id, { v: 1, trusted: 3, hours: [], keystroke: template, pointer: { samples: [[1, 2, 3]] } });
      const changed = await idp(srv.env, ['user', 'passwd', 'ivo', '--password-stdin'], 'another password nobody has\n');
      assert.equal(changed.code, 0, changed.stderr);
      const h = (await srv.storage.risk.getUser(id)) as { trusted: number; keystroke?: unknown; pointer?: unknown };
      assert.equal(h.keystroke, undefined, 'the old password\'s typing is forgotten');
      assert.equal(h.trusted, 3);
      assert.deepEqual(h.pointer, { samples: [[1, 2, 3]] }, 'the pointer is not the password\'s');
    });

    it('logs in under the same normalisation user add applied', async () => {
      const added = await idp(srv.env, ['user', 'add', 'Ｈｅｌｇａ', '--password-stdin'], PASSWORD);
      assert.equal(added.code, 0, added.stderr);
      assert.equal((JSON.parse(added.stdout) as { username: string }).username, 'helga');
      await srv.addClient(`users-${store.kind}`, { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      const config = await discover(srv.issuer, `users-${store.kind}`);
      const login = await loginThroughForm(config, ' HELGA ', PASSWORD, { scope: 'openid' });
      assert.ok(login.callback.searchParams.get('code'));
    });
  });
}

/** Accounts written by the previous version: no skeleton column / field, look-alikes possible. */
async function seedOldStore(kind: StoreKind): Promise<{ mongodbUri: string | undefined; dataDir: string }> {
  const rows = [['id-old-1', 'hank', 1], ['id-old-2', 'hаnk' /* Cyrillic а */, 2], ['id-old-3', 'ivy', 3]] as const;
  if (kind === 'embedded') {
    const dataDir = tempDir('idp-old-');
    const db = new DatabaseSync(path.join(dataDir, 'idp.sqlite'));
    db.exec(`CREATE TABLE accounts (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT, email_verified INTEGER NOT NULL DEFAULT 0,
      name TEXT, password_hash TEXT NOT NULL, trusted_devices TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT`);
    for (const [id, username, t] of rows) db.prepare('INSERT INTO accounts (id, username, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(id, username, '$argon2id$fake', t, t);
    db.close();
    return { mongodbUri: undefined, dataDir };
  }
  const mongodbUri = mongoUriForTest();
  const conn = await mongoose.createConnection(mongodbUri).asPromise();
  await conn.collection('accounts').createIndex({ username: 1 }, { unique: true });
  for (const [id, username, t] of rows) {
    await conn.collection<Record<string, unknown> & { _id: string }>('accounts').insertOne({ _id: id, username, emailVerified: false, passwordHash: '$argon2id$fake', trustedDevices: [], createdAt: new Date(t), updatedAt: new Date(t) });
  }
  await conn.close();
  return { mongodbUri, dataDir: '' };
}

for (const store of STORES) {
  describeOrSkip(store.skip, `skeleton migration of existing accounts (${store.kind} store)`, () => {
    it('keeps every account, even look-alikes from before, and refuses new look-alikes of them', async () => {
      const cfg = await seedOldStore(store.kind);
      let s = await openStorage(cfg);
      try {
        assert.deepEqual((await s.accounts.list()).map((a) => a.id).sort(), ['id-old-1', 'id-old-2', 'id-old-3']);
        for (const username of ['hαnk' /* Greek α */, 'іvy' /* Ukrainian і */]) {
          await assert.rejects(s.accounts.create({ id: crypto.randomUUID(), username, emailVerified: false, passwordHash: 'x' }), (e: Error) => e instanceof DuplicateError && e.reason === 'similar', username);
        }
        await s.accounts.create({ id: crypto.randomUUID(), username: 'jade', emailVerified: false, passwordHash: 'x' });
        // Opening again (a second instance, a restart) changes nothing.
        await s.close();
        s = await openStorage(cfg);
        assert.equal((await s.accounts.list()).length, 4);
        await assert.rejects(s.accounts.create({ id: crypto.randomUUID(), username: 'јade' /* Cyrillic ј */, emailVerified: false, passwordHash: 'x' }), DuplicateError);
      } finally {
        await s.close();
      }
    });
  });
}

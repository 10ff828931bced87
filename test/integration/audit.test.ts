/**
 * The audit trail against a running provider, on both stores: a login's decision and a failed
 * password are on the trail when the response comes (read by another process, the `idp`
 * command); what the `idp` command changes is recorded with the OS user as actor, never with a
 * secret (the whole store is searched for each one); `idp audit verify` passes on the trail as
 * written and names the first broken record after a record is changed in the database, after
 * the chain is rewritten without the key, and after a record is deleted; the ECS export and
 * the listing's filters and cursors.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, it } from 'node:test';
import mongoose from 'mongoose';
import * as client from 'openid-client';
import { auditHash } from '../../adapters/storage/audit-chain.ts';
import type { AuditRecord } from '../../models/types.ts';
import { AuditError } from '../../idp/audit.ts';
import type { EcsAuditEvent } from '../../idp/audit-ecs.ts';
import { STORES, describeOrSkip, tempDir } from '../helpers/env.ts';
import { runNode, type RunResult } from '../helpers/process.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser } from '../helpers/browser.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'idp', 'bin.js');
const PASSWORD = 'a password for the audit trail test';
const NEW_PASSWORD = 'another password nobody may read';
const CLIENT_SECRET = 'client-secret-that-must-never-be-stored-in-the-clear';

function idp(srv: TestServer, args: string[], stdin?: string): Promise<RunResult> {
  return runNode([BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...srv.env }, stdin });
}

async function ok(r: Promise<RunResult>): Promise<RunResult> {
  const res = await r;
  assert.equal(res.code, 0, `exit ${res.code}: ${res.stderr}`);
  return res;
}

/** Direct access to the stored records, as someone with write access to the database would have. */
interface Raw {
  update(seq: number, fields: Partial<Pick<AuditRecord, 'outcome' | 'prevHash' | 'hash'>> & { detail?: unknown }): Promise<void>;
  remove(seq: number): Promise<void>;
  /** Every stored byte of the store, as text: what a secret must never appear in. */
  dump(): Promise<string>;
  close(): Promise<void>;
}

async function rawAccess(srv: TestServer): Promise<Raw> {
  if (srv.settings.mongodbUri) {
    const conn = await mongoose.createConnection(srv.settings.mongodbUri).asPromise();
    const col = conn.collection('audit');
    return {
      async update(seq, f) {
        await col.updateOne({ _id: seq as never }, { $set: { ...f, ...(f.detail !== undefined ? { detail: JSON.stringify(f.detail) } : {}) } });
      },
      async remove(seq) {
        await col.deleteOne({ _id: seq as never });
      },
      async dump() {
        const parts: string[] = [];
        for (const c of await conn.listCollections()) parts.push(JSON.stringify(await conn.collection(c.name).find().toArray()));
        return parts.join('\n');
      },
      close: () => conn.close(),
    };
  }
  const file = path.join(srv.settings.dataDir, 'idp.sqlite');
  const db = new DatabaseSync(file);
  // What an attacker with the file does first: the triggers only stop mistakes (and every
  // opening of the store, such as an `idp` command's, puts them back).
  const untrigger = () => db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete');
  const cols = { outcome: 'outcome', prevHash: 'prev_hash', hash: 'hash', detail: 'detail' } as const;
  return {
    async update(seq, f) {
      untrigger();
      for (const [k, v] of Object.entries(f)) db.prepare(`UPDATE audit SET ${cols[k as keyof typeof cols]} = ? WHERE seq = ?`).run(k === 'detail' ? JSON.stringify(v) : (v as string), seq);
    },
    async remove(seq) {
      untrigger();
      db.prepare('DELETE FROM audit WHERE seq = ?').run(seq);
    },
    async dump() {
      return [file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f).toString('latin1')).join('\n');
    },
    async close() {
      db.close();
    },
  };
}

async function allRecords(srv: TestServer): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of srv.storage.audit.scan({})) out.push(r);
  return out;
}

for (const store of STORES) {
  describeOrSkip(store.skip, `audit trail (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let ada: string;
    const secrets: string[] = [PASSWORD, NEW_PASSWORD, CLIENT_SECRET];

    before(async () => {
      srv = await startTestServer(store.kind);
      ada = await srv.addUser('ada', PASSWORD);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    it('has each login decision and failed password on the trail when the response comes, as another process reads it', async () => {
      const login = await loginThroughForm(config, 'ada', PASSWORD, { scope: 'openid' });
      assert.ok(login.callback.searchParams.get('code'));
      // A wrong password: answered with the form again.
      const b = new Browser();
      const page = await b.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }));
      const refused = await b.submit(page, '/login', { username: 'ada', password: 'not the password at all' });
      assert.match(refused.body, /incorrect/);

      // Read by the `idp` command: its own connection, after both responses.
      const listed = JSON.parse((await ok(idp(srv, ['audit', 'list', '--action', 'auth.', '--target', ada, '--order', 'asc', '--json']))).stdout) as { items: AuditRecord[] };
      const [decision, failed] = listed.items;
      assert.equal(listed.items.length, 2, JSON.stringify(listed.items));
      assert.equal(decision?.action, 'auth.decision');
      assert.equal(decision.outcome, 'success');
      assert.deepEqual(decision.actor, { kind: 'system', id: 'login', ip: '127.0.0.1' });
      assert.deepEqual(decision.target, { type: 'user', id: ada });
      const d = decision.detail as Record<string, unknown>;
      assert.equal(d.decision, 'allow');
      assert.equal(d.client, 'web');
      assert.equal(typeof d.score, 'number');
      assert.equal(typeof d.level, 'string');
      assert.equal(typeof d.requiredAcr, 'string');
      assert.deepEqual(d.amr, ['pwd']);
      const event = await srv.storage.events.findById(d.event as string);
      assert.equal(event?.assessment?.decision, 'allow', 'the decision names its login event');
      assert.equal(event.assessment.requiredAcr, d.requiredAcr);

      assert.equal(failed?.action, 'auth.first_factor');
      assert.equal(failed.outcome, 'failure');
      assert.deepEqual(failed.target, { type: 'user', id: ada });
      assert.equal((await srv.storage.events.findById((failed.detail as { event: string }).event))?.success, false);
      assert.ok(!JSON.stringify(listed).includes('not the password at all'), 'the wrong password is not recorded');
    });

    it('records what the idp command changes, by the OS user running it, and no secret reaches any stored record or the export', async () => {
      await ok(idp(srv, ['user', 'add', 'bob', '--password-stdin', '--email', 'bob@example.com'], `${PASSWORD}\n`));
      await ok(idp(srv, ['user', 'passwd', 'bob', '--password-stdin'], `${NEW_PASSWORD}\n`));
      await ok(idp(srv, ['user', 'unlock', 'bob']));
      const totp = await ok(idp(srv, ['user', 'mfa', 'add', 'bob', '--totp']));
      const seed = new URL(totp.stdout.trim()).searchParams.get('secret')!;
      assert.ok(seed);
      const codes = (await ok(idp(srv, ['user', 'mfa', 'add', 'bob', '--recovery-codes']))).stdout.trim().split('\n');
      assert.equal(codes.length, 10);
      secrets.push(seed, ...codes);
      await ok(idp(srv, ['user', 'mfa', 'reset', 'bob']));
      await ok(idp(srv, ['client', 'add', '--id', 'svc', '--secret', CLIENT_SECRET, '--redirect-uri', 'https://svc.example/cb']));
      await ok(idp(srv, ['keys', 'rotate']));

      const bob = (await srv.storage.accounts.findByUsername('bob'))!.id;
      const mine = (await srv.audit.query({ actorKind: 'cli', order: 'asc', limit: 100 })).items;
      assert.deepEqual(mine.map((r) => r.action), ['user.create', 'user.password', 'user.unlock', 'factor.enrol', 'factor.enrol', 'factor.reset', 'client.create', 'keys.rotate']);
      const me = os.userInfo().username;
      assert.ok(mine.every((r) => r.actor.kind === 'cli' && r.actor.id === me && r.outcome === 'success'));
      assert.ok(mine.slice(0, 6).every((r) => r.target?.type === 'user' && r.target.id === bob));
      assert.deepEqual((mine[0]!.after as Record<string, unknown>).username, 'bob');
      const reset = mine[5]!;
      assert.deepEqual((reset.before as { factors: { kind: string }[] }).factors.map((f) => f.kind).sort(), ['recovery', 'totp'], 'what the reset removed');
      assert.deepEqual(reset.after, { factors: [] });
      assert.deepEqual(mine[6]!.target, { type: 'client', id: 'svc' });
      assert.equal((mine[6]!.after as Record<string, unknown>).client_type, 'confidential', 'whether there is a secret, never the secret');
      assert.ok(((mine[7]!.detail as { staged: string[] }).staged).length > 0);

      // The export: ECS JSON lines, the CLI actions under the OS user's name.
      const out = path.join(tempDir('idp-audit-export-'), 'audit.jsonl');
      const exported = await ok(idp(srv, ['audit', 'export', '--out', out]));
      const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EcsAuditEvent);
      assert.match(exported.stderr, new RegExp(`^${lines.length} audit records written to `));
      const created = lines.find((l) => l.event.action === 'user.create')!;
      assert.equal(created.user?.name, me);
      assert.deepEqual(created.user?.target, { id: bob });
      assert.deepEqual(created.event.category, ['iam']);
      assert.equal(created.event.outcome, 'success');
      assert.ok(lines.every((l, i) => l.event.sequence === i + 1 && typeof l['@timestamp'] === 'string'));
      const decision = lines.find((l) => l.event.action === 'auth.decision')!;
      assert.equal(decision.user?.id, ada);
      assert.equal(decision.source?.ip, '127.0.0.1');
      // --since after everything: nothing.
      const none = await ok(idp(srv, ['audit', 'export', '--since', new Date(Date.now() + 60_000).toISOString()]));
      assert.equal(none.stdout, '');

      // No secret anywhere: not in the store (every table or collection), not in the export.
      const raw = await rawAccess(srv);
      try {
        const everything = `${await raw.dump()}\n${fs.readFileSync(out, 'utf8')}`;
        assert.ok(everything.includes('bob@example.com') && everything.includes(mine[3]!.hash), 'the search sees what is stored');
        for (const s of secrets) assert.ok(!everything.includes(s), `a secret (${s.slice(0, 4)}…) is stored in the clear`);
      } finally {
        await raw.close();
      }
    });

    it('lists with filters and cursors, and refuses a bad query or cursor with a stable code', async () => {
      const first = await srv.audit.query({ limit: 2 });
      assert.equal(first.items.length, 2);
      assert.ok(first.items[0]!.seq > first.items[1]!.seq, 'newest first by default');
      const second = await srv.audit.query({ limit: 2, after: first.next });
      assert.equal(second.items[0]!.seq, first.items[1]!.seq - 1, 'the next page starts where the first ended');
      const everything: AuditRecord[] = [];
      let next: string | undefined;
      do {
        const page = await srv.audit.query({ limit: 3, order: 'asc', after: next });
        everything.push(...page.items);
        next = page.next;
      } while (next);
      assert.deepEqual(everything.map((r) => r.seq), (await allRecords(srv)).map((r) => r.seq), 'every record once, in order');
      await assert.rejects(srv.audit.query({ after: 'bm90IGEgY3Vyc29y' }), (e: unknown) => e instanceof AuditError && e.code === 'invalid_cursor');
      await assert.rejects(srv.audit.query({ limit: 2, order: 'asc', after: first.next }), (e: unknown) => e instanceof AuditError && e.code === 'invalid_cursor');
      await assert.rejects(srv.audit.query({ since: 'yesterday' }), (e: unknown) => e instanceof AuditError && e.code === 'invalid_query' && /since/.test(e.message));
      await assert.rejects(srv.audit.query({ limit: 5000 }), (e: unknown) => e instanceof AuditError && e.code === 'invalid_query');
      const noKeys = await runNode([BIN, 'audit', 'verify'], { env: { PATH: process.env.PATH ?? '', ...srv.env, KEYS_FILE: path.join(tempDir('idp-nokeys-'), 'keys.json') } });
      assert.equal(noKeys.code, 1);
      assert.match(noKeys.stderr, /^idp: no key file at .*keys\.json \(KEYS_FILE\)/);
      const bad = await idp(srv, ['audit', 'list', '--outcome', 'maybe']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^idp: outcome: /);
      assert.doesNotMatch(bad.stderr, /\n\s+at /);
    });

    it('idp audit verify passes on the trail as written, and names a changed record, a chain rewritten without the key, and a gap', async () => {
      const intact = await idp(srv, ['audit', 'verify']);
      const records = await allRecords(srv);
      assert.equal(intact.code, 0, intact.stdout + intact.stderr);
      assert.match(intact.stdout, new RegExp(`^audit trail intact: ${records.length} records checked, seals included; head #${records.length} ${records[records.length - 1]!.hash}\\n$`));
      assert.ok(records.length >= 10);
      // A record in the middle that has a detail (restored below as it was).
      const k = records.find((r) => r.seq > records.length / 2 && r.detail !== undefined)!.seq;
      const original = records[k - 1]!;
      const raw = await rawAccess(srv);
      try {
        // One field changed in the database.
        await raw.update(k, { outcome: original.outcome === 'success' ? 'failure' : 'success' });
        let r = await idp(srv, ['audit', 'verify']);
        assert.equal(r.code, 1);
        assert.match(r.stdout, new RegExp(`^audit trail BROKEN at record ${k} \\(hash_mismatch\\): record ${k} does not match its hash`));
        await raw.update(k, { outcome: original.outcome });
        assert.equal((await idp(srv, ['audit', 'verify'])).code, 0, 'restored');

        // The record changed and every hash from there on recomputed, as someone without the key can.
        let prev = records[k - 2]!.hash;
        for (const rec of records.slice(k - 1)) {
          const body = { ...rec, prevHash: prev, ...(rec.seq === k ? { detail: { forged: true } } : {}) };
          const hash = auditHash(body);
          await raw.update(rec.seq, { prevHash: prev, hash, ...(rec.seq === k ? { detail: { forged: true } } : {}) });
          prev = hash;
        }
        r = await idp(srv, ['audit', 'verify', '--json']);
        assert.equal(r.code, 1);
        const v = JSON.parse(r.stdout) as { ok: boolean; checked: number; broken: { seq: number; problem: string } };
        assert.deepEqual({ ok: v.ok, checked: v.checked, seq: v.broken.seq, problem: v.broken.problem }, { ok: false, checked: k, seq: k, problem: 'seal_mismatch' });
        for (const rec of records.slice(k - 1)) await raw.update(rec.seq, { prevHash: rec.prevHash, hash: rec.hash, ...(rec.seq === k ? { detail: rec.detail } : {}) });
        assert.deepEqual(await allRecords(srv), records, 'restored exactly');
        assert.equal((await idp(srv, ['audit', 'verify'])).code, 0);

        // One record deleted.
        await raw.remove(k);
        r = await idp(srv, ['audit', 'verify']);
        assert.equal(r.code, 1);
        assert.match(r.stdout, new RegExp(`^audit trail BROKEN at record ${k} \\(gap\\): record ${k} is missing \\(the next stored record is ${k + 1}\\)`));
        assert.match(r.stdout, new RegExp(`; ${k} records checked\\n$`));
      } finally {
        await raw.close();
      }
    });
  });
}

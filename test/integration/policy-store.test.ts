/**
 * A policy published through the store is live on every instance: two real providers share
 * one store (this process, and `npm start`'s entry point in a process of its own), on the
 * embedded store (one DATA_DIR) and on MongoDB. Publishes, rollbacks and file edits reach the
 * other instance within 2 s, as its /metrics and the decision of a login there show; a
 * version that does not load is rejected everywhere and the last good policy keeps serving;
 * a broken candidate is refused with the messages a file edit gets.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { AuditInput, LoginEventRecord } from '../../models/types.ts';
import { getLivePolicy, publishPolicy, rollbackPolicy, validatePolicy } from '../../idp/admin/policies.ts';
import { InvalidError } from '../../idp/admin/errors.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { STORES, describeOrSkip, freePort, tempDir, testEnv } from '../helpers/env.ts';
import { runNode, startNode, type Started } from '../helpers/process.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';

const DIST = path.join(import.meta.dirname, '..', '..');
const MAIN = path.join(DIST, 'idp', 'main.js');
const BIN = path.join(DIST, 'idp', 'bin.js');
const PASSWORD = 'correct horse battery staple';
const actor = { kind: 'user' as const, id: 'admin-1', ip: '192.0.2.10' };

/** The policy info /metrics reports: the content hash in force and its version number in the store. */
async function policyInfo(url: string): Promise<{ version: string; published: string; reloads: number; rejected: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const info = /^idp_policy_info\{version="([0-9a-f]+)",published="(\d*)"\} 1$/m.exec(text);
  assert.ok(info, `no idp_policy_info in\n${text}`);
  // Summed over both sources (file, store).
  const n = (result: string) => [...text.matchAll(new RegExp(`^idp_policy_reloads_total\\{result="${result}",source="\\w+"\\} (\\d+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  return { version: info[1]!, published: info[2]!, reloads: n('ok'), rejected: n('rejected') };
}

/** Polls until `cond` holds; returns how long it took. */
async function within(ms: number, what: string, cond: () => Promise<boolean> | boolean): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
}

/** risk.yml with one factor's weight changed (a change every reader can check). */
function withWeight(riskYml: string, weight: number): string {
  const risk = parse(riskYml) as { factors: { new_country: { weight: number } } };
  risk.factors.new_country.weight = weight;
  return stringify(risk);
}

for (const store of STORES) {
  describeOrSkip(store.skip, `policies published through the store reach every instance (${store.kind})`, () => {
    let a: TestServer;
    let b: Started;
    let bUrl: string;
    let dir: string;
    const audit: AuditInput[] = [];
    const deps = () => ({ storage: a.storage, audit: async (e: AuditInput) => { audit.push(e); } });

    before(async () => {
      // Password only below critical, no enrolment: the logins here are about the policy version.
      dir = makePolicyDir((f) => {
        f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
        f.assurance.enrolment = { prompt: 'off' };
      });
      a = await startTestServer(store.kind, { POLICY_DIR: dir });
      const port = await freePort();
      bUrl = `http://127.0.0.1:${port}`;
      // Another instance: the same store, key file and policy checkout; a process of its own.
      const env = {
        ...testEnv(store.kind, tempDir(), port), DATA_DIR: a.env.DATA_DIR!, KEYS_FILE: a.env.KEYS_FILE!, POLICY_DIR: dir, LOG_LEVEL: 'info',
        ...(a.env.MONGODB_URI ? { MONGODB_URI: a.env.MONGODB_URI } : {}),
      };
      b = startNode([MAIN], { env: { PATH: process.env.PATH ?? '', ...env } });
      await b.waitFor(/"msg":"listening"/, 'the second instance listening');
    });
    after(async () => {
      await b?.stop();
      await a?.close();
    });

    it('publishes POLICY_DIR once at the first start; the second instance finds it published', async () => {
      const live = await getLivePolicy({ storage: a.storage });
      assert.equal(live.version.version, 1);
      assert.equal(live.version.source, 'file');
      assert.equal(live.version.hash, a.policies.current().version);
      assert.deepEqual(Object.keys(live.files).sort(), ['assurance.yml', 'lists.yml', 'model.json', 'risk.yml']);
      assert.deepEqual(await policyInfo(bUrl), { version: live.version.hash, published: '1', reloads: 0, rejected: 0 });
      assert.equal((await a.storage.policies.history({ limit: 10 })).items.length, 1);
    });

    it('serves a version published on one instance on the other within 2 s, and scores its logins with it', async (t) => {
      const live = await getLivePolicy({ storage: a.storage });
      const t0 = performance.now();
      const v = await publishPolicy(deps(), { files: { 'risk.yml': withWeight(live.files['risk.yml']!, 0.41) }, message: 'new_country weighs more', ifVersion: 1 }, actor);
      const took = await within(5000, 'the other instance serves it', async () => (await policyInfo(bUrl)).version === v.hash);
      const total = performance.now() - t0;
      t.diagnostic(`live on the other instance ${total.toFixed(0)} ms after the publish began (${took.toFixed(0)} ms after it returned)`);
      assert.ok(total < 2000, `live on the other instance ${total.toFixed(0)} ms after the publish began (${took.toFixed(0)} ms after it returned)`);
      assert.equal(v.version, 2);
      assert.deepEqual(await policyInfo(bUrl), { version: v.hash, published: '2', reloads: 1, rejected: 0 });
      await within(2000, 'this instance serves it', () => a.policies.current().version === v.hash);
      assert.equal(a.policies.current().risk.factors.new_country.weight, 0.41);
      // The audit trail got the publish, with what changed.
      const rec = audit.find((e) => e.action === 'policy.publish' && e.outcome === 'success');
      assert.deepEqual(rec?.actor, actor);
      assert.deepEqual(rec?.target, { type: 'policy', id: '2' });
      const [before, after] = [rec?.before as { version: number; files: Record<string, string> }, rec?.after as { version: number; hash: string; files: Record<string, string> }];
      assert.equal(before.version, 1);
      assert.equal(after.hash, v.hash);
      assert.notEqual(after.files['risk.yml'], before.files['risk.yml']);
      assert.equal(after.files['model.json'], before.files['model.json']);

      // A login on the other instance is scored by the new version, and records it.
      const user = await a.addUser('pia', PASSWORD);
      await a.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      // The other instance's client cache sees the new client within CLIENT_CACHE_MS.
      await new Promise((r) => setTimeout(r, 1100));
      const login = await loginThroughForm(await discover(bUrl, 'web'), 'pia', PASSWORD, { scope: 'openid' });
      assert.ok(login.callback.searchParams.get('code'), 'let in');
      const events: LoginEventRecord[] = [];
      for await (const e of a.storage.events.list({})) if (e.user === user) events.push(e);
      assert.equal(events.length, 1);
      assert.equal(events[0]!.assessment?.policyVersion, v.hash);
    });

    it('rolls back on every instance within 2 s', async (t) => {
      const first = (await a.storage.policies.get(1))!;
      const t0 = performance.now();
      const v = await rollbackPolicy(deps(), { version: 1, message: 'back to the checkout', ifVersion: 2 }, actor);
      await within(5000, 'the other instance serves the rollback', async () => (await policyInfo(bUrl)).version === first.hash);
      const took = performance.now() - t0;
      t.diagnostic(`rollback live on the other instance after ${took.toFixed(0)} ms`);
      assert.ok(took < 2000, `${took.toFixed(0)} ms`);
      assert.equal(v.version, 3);
      assert.equal(v.rollbackOf, 1);
      assert.equal((await policyInfo(bUrl)).published, '3');
      await within(2000, 'this instance serves the rollback', () => a.policies.current().version === first.hash);
      // Refused: the same once more (nothing would change), and a stale If-Match.
      await assert.rejects(rollbackPolicy(deps(), { version: 1, message: 'again', ifVersion: 3 }, actor), /live policy \(version 3\)/);
      await assert.rejects(rollbackPolicy(deps(), { version: 2, message: 'stale', ifVersion: 2 }, actor), { name: 'VersionConflictError' });
      assert.ok(audit.some((e) => e.action === 'policy.rollback' && e.outcome === 'failure' && (e.detail as { reason: string }).reason === 'version_conflict'));
    });

    it('publishes a file edit seen by both instances (one checkout) once, and both serve it', async () => {
      const before = (await a.storage.policies.live())!.version;
      const riskFile = path.join(dir, 'risk.yml');
      fs.writeFileSync(riskFile, withWeight(fs.readFileSync(riskFile, 'utf8'), 0.33));
      await within(5000, 'the edit published', async () => (await a.storage.policies.live())!.version > before);
      const live = (await a.storage.policies.live())!;
      assert.equal(live.source, 'file');
      await within(2000, 'the other instance serves the edit', async () => (await policyInfo(bUrl)).version === live.hash);
      await within(2000, 'this instance serves the edit', () => a.policies.current().version === live.hash);
      assert.equal(a.policies.current().risk.factors.new_country.weight, 0.33);
      // Both watchers saw the edit; the content went in once.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await a.storage.policies.live())!.version, before + 1);
      const published = [...a.logs.filter((l) => l.msg === 'policy.published'), ...b.stdout.split('\n').filter((l) => l.includes('"msg":"policy.published"'))];
      // (Instance A also published the first version at its start.)
      assert.equal(published.length, 2, published.map(String).join('\n'));
    });

    it('keeps the last good policy on every instance when the live version does not load there, then takes the next good one', async () => {
      const good = a.policies.current();
      const live = (await a.storage.policies.get((await a.storage.policies.live())!.version))!;
      const rejectedBefore = (await policyInfo(bUrl)).rejected;
      // Written past the service (as a tampered store, or a publisher running other code would):
      // the model's pinned sha256 does not match the model.
      const risk = live.files['risk.yml']!.replace(/sha256: "?[0-9a-f]{64}"?/, `sha256: "${'0'.repeat(64)}"`);
      const bad = await a.storage.policies.publish({ hash: 'badbadbadbad', modelVersion: 'x', message: 'tampered', actor, source: 'publish', files: { ...live.files, 'risk.yml': risk } }, live.version);
      await within(5000, 'the other instance rejects it', async () => (await policyInfo(bUrl)).rejected === rejectedBefore + 1);
      await within(5000, 'this instance rejects it', () => a.policies.stats.rejected >= 1);
      assert.equal(a.policies.current(), good, 'the same compiled policy keeps serving');
      assert.equal((await policyInfo(bUrl)).version, good.version);
      // Logged as a file edit's rejection is: an error naming the file, line and key, and the version.
      const line = a.logs.find((l) => l.msg === 'policy.rejected' && l.published === bad.version);
      assert.equal(line?.level, 'error');
      assert.match(String(line?.errors), /^risk\.yml:\d+:\d+: model\.sha256: model file sha256 is [0-9a-f]{64}, the policy pins 0{64}/);
      assert.match(b.stdout, new RegExp(`"level":"error","time":"[^"]+","published":${bad.version},"errors":"risk\\.yml:\\d+:\\d+: model\\.sha256: [^"]*","msg":"policy.rejected"`));
      // Not retried every second.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await policyInfo(bUrl)).rejected, rejectedBefore + 1);
      // The next good version is taken.
      const v = await publishPolicy(deps(), { files: { 'risk.yml': withWeight(live.files['risk.yml']!, 0.37) }, message: 'fixed', ifVersion: bad.version }, actor);
      await within(2000, 'the other instance serves the fix', async () => (await policyInfo(bUrl)).version === v.hash);
      await within(2000, 'this instance serves the fix', () => a.policies.current().version === v.hash);
    });

    it('refuses a broken candidate with the file, line and key messages a file edit gets', async () => {
      const live = await getLivePolicy({ storage: a.storage });
      const broken = live.files['assurance.yml']!.replace(/medium: aal1/, 'medium: aal7');
      assert.notEqual(broken, live.files['assurance.yml']);
      const result = await validatePolicy({ storage: a.storage }, { files: { 'assurance.yml': broken } });
      assert.equal(result.valid, false);
      assert.match(result.messages[0]!, /^assurance\.yml:\d+:\d+: default\.medium: "aal7" is not an assurance level \(one of aal1, aal2, aal3, block\)$/);
      const refused = await publishPolicy(deps(), { files: { 'assurance.yml': broken }, message: 'broken', ifVersion: live.version.version }, actor).catch((e: unknown) => e);
      assert.ok(refused instanceof InvalidError);
      assert.equal(refused.code, 'invalid_request');
      assert.equal(refused.reason, 'policy_invalid');
      assert.deepEqual(refused.errors?.[0]?.path, 'files.assurance.yml.default.medium');
      assert.deepEqual((refused.detail as { messages: string[] }).messages, result.messages);
      assert.ok(audit.some((e) => e.action === 'policy.publish' && e.outcome === 'failure' && (e.detail as { reason: string }).reason === 'policy_invalid'));
      assert.equal((await a.storage.policies.live())!.version, live.version.version, 'nothing published');

      // The same content as a file edit: rejected with the same messages.
      const file = path.join(dir, 'assurance.yml');
      const text = fs.readFileSync(file, 'utf8');
      const rejected = a.policies.stats.rejected;
      fs.writeFileSync(file, broken);
      try {
        await within(5000, 'the edit rejected', () => a.policies.stats.rejected > rejected);
        assert.equal(a.policies.stats.lastError, result.messages.join('; '));
        // And as `idp policy check` prints them for the directory.
        const check = await runNode([BIN, 'policy', 'check', dir], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent' } });
        assert.equal(check.code, 1);
        assert.deepEqual(check.stderr.trim().split('\n'), result.messages.map((m) => path.join(dir, m)));
      } finally {
        fs.writeFileSync(file, text);
      }
    });
  });
}

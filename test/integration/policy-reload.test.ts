/**
 * Hot reload: a saved policy change is live within a second; a broken one is rejected with
 * a clear log line and counted, and the last good policy keeps serving.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import type { AuditRecord } from '../../models/types.ts';

async function metrics(srv: TestServer): Promise<string> {
  const res = await fetch(`${srv.url}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The policy records on the audit trail, oldest first (written just after the swap: polled). */
async function policyTrail(srv: TestServer, count: number): Promise<AuditRecord[]> {
  let items: AuditRecord[] = [];
  // Loads, reloads and rejections; a valid file edit is also published to the store first
  // (policy.publish, idp/policy-sync.ts), which this file does not look at.
  await waitForAsync(async () => (items = (await srv.audit.query({ action: 'policy.', order: 'asc', limit: 1000 })).items.filter((r) => r.action !== 'policy.publish')).length >= count, 5000);
  return items;
}

async function waitForAsync(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** idp_policy_reloads_total of one result, summed over its sources (file, store). */
const reloads = (text: string, result: 'ok' | 'rejected') =>
  [...text.matchAll(new RegExp(`^idp_policy_reloads_total\\{result="${result}",source="\\w+"\\} (\\d+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);

async function waitFor(cond: () => boolean, ms: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - t0;
}

describe('policy hot reload', () => {
  let srv: TestServer;
  let dir: string;

  before(async () => {
    dir = makePolicyDir();
    srv = await startTestServer('embedded', { POLICY_DIR: dir });
  });
  after(() => srv?.close());

  it('serves a saved change within a second', async () => {
    const before = srv.policies.current();
    const riskFile = path.join(dir, 'risk.yml');
    const risk = parse(fs.readFileSync(riskFile, 'utf8')) as { factors: { new_country: { weight: number } } };
    risk.factors.new_country.weight = 0.42;
    fs.writeFileSync(riskFile, stringify(risk));
    const took = await waitFor(() => srv.policies.current().version !== before.version, 5000);
    assert.ok(took < 1000, `live after ${took.toFixed(0)} ms`);
    assert.equal(srv.policies.current().risk.factors.new_country.weight, 0.42);
    assert.ok(srv.logs.some((l) => l.msg === 'policy.reloaded' && l.version === srv.policies.current().version));
    const m = await metrics(srv);
    assert.equal(reloads(m, 'ok'), 1);
    assert.match(m, new RegExp(`idp_policy_info\\{version="${srv.policies.current().version}"`));
    // The audit trail: the policy the server started with, then the reload, from one version to the next.
    const [load, reload] = await policyTrail(srv, 2);
    assert.deepEqual([load?.action, load?.actor, load?.target], ['policy.load', { kind: 'system', id: 'policy-files' }, { type: 'policy', id: before.version }]);
    assert.deepEqual([reload?.action, reload?.outcome, reload?.before, (reload?.after as { version: string }).version],
      ['policy.reload', 'success', { version: before.version }, srv.policies.current().version]);
  });

  it('rejects a broken change, says why, counts it, and keeps the last good policy', async () => {
    const good = srv.policies.current();
    const assuranceFile = path.join(dir, 'assurance.yml');
    const text = fs.readFileSync(assuranceFile, 'utf8');
    fs.writeFileSync(assuranceFile, text.replace(/medium: aal2/, 'medium: aal7'));
    await waitFor(() => srv.policies.stats.rejected === 1, 5000);
    assert.equal(srv.policies.current(), good, 'the same compiled policy object keeps serving');
    const line = srv.logs.find((l) => l.msg === 'policy.rejected');
    assert.ok(line);
    assert.equal(line.level, 'error');
    assert.match(String(line.errors), /assurance\.yml:\d+:\d+: default\.medium: "aal7" is not an assurance level/);
    const m = await metrics(srv);
    assert.equal(reloads(m, 'rejected'), 1);
    assert.match(m, new RegExp(`idp_policy_info\\{version="${good.version}"`));
    const rejected = (await policyTrail(srv, 3))[2]!;
    assert.deepEqual([rejected.action, rejected.outcome, rejected.target], ['policy.reject', 'failure', { type: 'policy', id: good.version }]);
    assert.match(String((rejected.detail as { errors: string }).errors), /"aal7" is not an assurance level/);

    // Fixing the file brings reloads back.
    fs.writeFileSync(assuranceFile, text.replace(/medium: aal2/, 'medium: aal3'));
    await waitFor(() => srv.policies.current().assurance.default.medium === 'aal3', 5000);
  });

  it('refuses a change of ACR values, which discovery has already published', async () => {
    const good = srv.policies.current();
    const assuranceFile = path.join(dir, 'assurance.yml');
    fs.writeFileSync(assuranceFile, fs.readFileSync(assuranceFile, 'utf8').replace('urn:adaptive-idp:aal3', 'urn:other:aal3'));
    await waitFor(() => srv.policies.stats.rejected === 2, 5000);
    assert.equal(srv.policies.current(), good);
    assert.match(srv.policies.stats.lastError ?? '', /ACR values changed/);
  });

  it('answers /metrics only to loopback callers without a token', async () => {
    assert.equal((await fetch(`${srv.url}/metrics`)).status, 200, 'a direct loopback caller');
    // A header never grants access; a forwarding header on a loopback connection means a
    // proxy relayed it, so it is refused (test/integration/edge.test.ts).
    const res = await fetch(`${srv.url}/metrics`, { headers: { 'x-forwarded-for': '8.8.8.8' } });
    assert.equal(res.status, 403, 'a relayed request is not a loopback caller');
    const tokenSrv = await startTestServer('embedded', { METRICS_TOKEN: 'metrics-secret-token' });
    try {
      assert.equal((await fetch(`${tokenSrv.url}/metrics`)).status, 403);
      assert.equal((await fetch(`${tokenSrv.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 403);
      const ok = await fetch(`${tokenSrv.url}/metrics`, { headers: { authorization: 'Bearer metrics-secret-token' } });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /idp_events_total\{event="login.succeeded"\} 0/);
    } finally {
      await tokenSrv.close();
    }
  });
});

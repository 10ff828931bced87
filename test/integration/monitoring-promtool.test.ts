/**
 * The monitoring files checked by real tools: Prometheus's promtool (PROMTOOL, built by
 * .ci/run from the Go module proxy) parses every dashboard query as PromQL, checks and
 * unit-tests the alert rules, and lints the live /metrics exposition of a provider that has
 * just served logins; TypeScript checks the dashboard against Grafana's published dashboard
 * type (@grafana/schema), the closest to an import that runs offline (no Grafana server can
 * be installed here from the registries the project uses).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { describeOrSkip, tempDir } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser } from '../helpers/browser.ts';
import {
  DASHBOARD_FILE, PROM_CLIENT_DEFAULTS, REPO, RULES_FILE, RULES_TEST_FILE, dashboardTargets, grafanaToPromQL, parsePromQL,
  readCatalogue, readDashboard, readRules,
} from '../helpers/monitoring.ts';

const PROMTOOL = process.env.PROMTOOL;
const missing = !PROMTOOL ? 'PROMTOOL is not set (.ci/promtool.sh builds it and prints its path)'
  : !fs.existsSync(PROMTOOL) ? `PROMTOOL=${PROMTOOL} does not exist` : false;

function promtool(args: string[], input?: string) {
  const r = spawnSync(PROMTOOL!, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

describeOrSkip(missing, 'promtool: dashboard queries and alert rules', () => {
  it('parses every dashboard query as PromQL (as recording rules: one per panel query)', () => {
    const targets = dashboardTargets(readDashboard());
    const rules = targets.map((t) => ({ record: `dashboard:panel_${t.panelId}_${t.refId}`, expr: grafanaToPromQL(t.expr) }));
    const file = path.join(tempDir('idp-dash-rules-'), 'dashboard.rules.yml');
    fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = promtool(['check', 'rules', file]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${rules.length} rules found`), r.out);
  });

  it('refuses a broken query (the check above can fail)', () => {
    const file = path.join(tempDir('idp-dash-rules-'), 'broken.rules.yml');
    fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: [{ record: 'x:y', expr: grafanaToPromQL('sum by (route (rate(idp_http_request_duration_seconds_count{job=~"$job"}[$__rate_interval]))') }] }] }));
    const r = promtool(['check', 'rules', file]);
    assert.notEqual(r.status, 0, r.out);
  });

  it('checks the alert rules and passes their unit tests', () => {
    const check = promtool(['check', 'rules', RULES_FILE]);
    assert.equal(check.status, 0, check.out);
    assert.match(check.out, /SUCCESS: \d+ rules found/);
    const test = promtool(['test', 'rules', RULES_TEST_FILE]);
    assert.equal(test.status, 0, test.out);
    assert.match(test.out, /SUCCESS/);
  });
});

const PROM_CLIENT_TOTAL_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

describeOrSkip(missing, 'promtool check metrics on a live provider after logins', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer('embedded');
    await srv.addUser('alice', 'correct horse battery staple');
    await srv.addClient('rp', {
      redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic', scope: 'openid profile email offline_access',
    }, 'a-client-secret-that-is-long-enough-0123456789');
    const config = await discover(srv.issuer, 'rp', 'a-client-secret-that-is-long-enough-0123456789');
    await loginThroughForm(config, 'alice', 'correct horse battery staple');
    // A refused first factor too, so that the failure counters have samples.
    await assert.rejects(loginThroughForm(config, 'alice', 'not the password at all', {}, new Browser()));
  });
  after(async () => {
    await srv?.close();
  });

  it('serves an exposition promtool accepts', async (t) => {
    const res = await fetch(new URL('/metrics', srv.issuer));
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^# TYPE /m);
    const r = promtool(['check', 'metrics'], text);
    // Shown in the run's output (lint findings are printed even when promtool exits 0).
    t.diagnostic(`promtool check metrics on ${text.split('\n').filter((l) => l && !l.startsWith('#')).length} samples: ${r.out.trim() || 'no findings'}`);
    // prom-client's default gauges nodejs_active_{handles,requests,resources}_total end in
    // _total, which promtool's lint reserves for counters; the names are prom-client's (and
    // what its dashboards query), so they are the only findings tolerated, by name.
    const findings = r.out.split('\n').map((l) => l.trim()).filter(Boolean);
    const foreign = findings.filter((l) => !PROM_CLIENT_TOTAL_GAUGES.some((name) => l.startsWith(`${name} `)));
    assert.deepEqual(foreign, [], `promtool check metrics:\n${r.out}`);
    // Our own families alone pass with no finding at all.
    const ours = text.split('\n').filter((l) => /^(# (HELP|TYPE) )?idp_/.test(l)).join('\n');
    assert.match(ours, /idp_logins_total/);
    const own = promtool(['check', 'metrics'], `${ours}\n`);
    assert.equal(own.status, 0, `promtool check metrics on the idp_ families:\n${own.out}`);
  });

  it('serves every metric of docs/metrics.md and every default metric the dashboard and rules query', async () => {
    const text = await (await fetch(new URL('/metrics', srv.issuer))).text();
    const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const missingFamilies = [...readCatalogue().keys()].filter((name) => !served.has(name));
    assert.deepEqual(missingFamilies, [], 'catalogue metrics /metrics does not serve');
    const queried = [...dashboardTargets(readDashboard()).map((t) => grafanaToPromQL(t.expr)), ...readRules().map((r) => r.expr)]
      .flatMap((e) => parsePromQL(e).metrics).filter((m) => PROM_CLIENT_DEFAULTS.has(m));
    assert.deepEqual(queried.filter((m) => !served.has(m.replace(/_(bucket|sum|count)$/, ''))), [], 'default metrics queried but not served');
  });
});

describe('Grafana dashboard against @grafana/schema', () => {
  it('typechecks as the Dashboard type (unknown keys and wrong types are errors)', () => {
    const dash = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as Record<string, unknown>;
    // The export format's import-time keys are not part of the stored dashboard model.
    const { __inputs: _i, __requires: _r, __elements: _e, ...model } = dash;
    const dir = tempDir('idp-dash-schema-');
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    const check = (literal: unknown) => {
      fs.writeFileSync(path.join(dir, 'check.ts'),
        `import type { Dashboard } from '@grafana/schema';\nexport const dashboard = ${JSON.stringify(literal, null, 2)} satisfies Dashboard;\n`);
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: true, types: [] },
        files: ['check.ts'],
      }));
      const r = spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', timeout: 120_000 });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    const ok = check(model);
    assert.equal(ok.status, 0, ok.out);
    // The same check refuses a panel with a misspelt key, so it is not vacuous.
    const broken = structuredClone(model) as { panels: Record<string, unknown>[] };
    broken.panels[1] = { ...broken.panels[1], gridpos: { x: 0, y: 0, w: 1, h: 1 } };
    const bad = check(broken);
    assert.notEqual(bad.status, 0);
    assert.match(bad.out, /gridpos/);
  });
});

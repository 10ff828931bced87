/**
 * The dashboard (deploy/grafana), the alert rules (deploy/prometheus) and the runbook
 * (docs/runbook.md) are written against the metric catalogue docs/metrics.md: a metric or
 * label renamed there, a panel placed over another, an alert without a runbook section or
 * without a near-miss test would otherwise only show in production, as an empty graph or a
 * silent pager. promtool's own checks of the same files: test/integration/monitoring-promtool.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import {
  IMPLICIT_LABELS, PROMETHEUS_SERIES, PROM_CLIENT_DEFAULTS, RUNBOOK_FILE, allPanels, catalogueEntryFor, dashboardTargets,
  headingAnchors, parsePromQL, readCatalogue, readDashboard, readRuleTests, readRules, type CatalogueEntry,
} from '../helpers/monitoring.ts';

const catalogue = readCatalogue();
const rules = readRules();
const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));

/**
 * What is wrong with an expression against the catalogue: unknown metrics, labels no metric
 * of the expression has, and enumerated label values the catalogue does not list.
 */
function problems(expr: string): string[] {
  const parsed = parsePromQL(expr);
  const out: string[] = [];
  const entries: CatalogueEntry[] = [];
  for (const name of parsed.metrics) {
    if (recorded.has(name) || PROMETHEUS_SERIES.has(name)) continue;
    if (/^(process|nodejs)_/.test(name)) {
      if (!PROM_CLIENT_DEFAULTS.has(name)) out.push(`${name} is not one of prom-client's default metrics`);
      continue;
    }
    const entry = catalogueEntryFor(name, catalogue);
    if (entry) entries.push(entry);
    else out.push(`metric ${name} is not in docs/metrics.md`);
  }
  // Recording rules keep only the labels they aggregate by; their sources were checked where they are defined.
  const onlyCatalogue = parsed.metrics.every((m) => !recorded.has(m) && !PROMETHEUS_SERIES.has(m));
  const known = new Map<string, Set<string> | null>();
  for (const e of entries) {
    for (const [label, values] of e.labels) {
      const had = known.get(label);
      known.set(label, had === null || values === null ? null : new Set([...(had ?? []), ...values]));
    }
  }
  const labels = [...parsed.groupingLabels, ...parsed.matchers.map((m) => m.label)];
  for (const label of labels) {
    if (IMPLICIT_LABELS.has(label)) continue;
    if (!known.has(label) && onlyCatalogue && entries.length > 0) out.push(`label ${label} is on none of ${entries.map((e) => e.name).join(', ')}`);
  }
  for (const m of parsed.matchers) {
    const values = known.get(m.label);
    if (!values || (m.op !== '=' && m.op !== '=~')) continue;
    // A regex is checked when it is a plain alternation of names (`a|b`), the only kind used here.
    const wanted = m.op === '=' ? [m.value] : /^[\w|]+$/.test(m.value) ? m.value.split('|') : [];
    for (const v of wanted) if (!values.has(v)) out.push(`${m.label}="${v}" is not a value docs/metrics.md lists (${[...values].join(', ')})`);
  }
  return out;
}

describe('the metric catalogue as the tests read it', () => {
  it('has the metrics and the enumerated labels the rules depend on', () => {
    assert.ok(catalogue.size >= 20, `only ${catalogue.size} metrics parsed from docs/metrics.md`);
    assert.deepEqual([...catalogue.get('idp_logins_total')!.labels.get('outcome')!].sort(), ['blocked', 'failure', 'success', 'throttled', 'unavailable']);
    // The policy schema fixes the four level names (policies/schema.ts), so the catalogue lists them.
    assert.deepEqual([...catalogue.get('idp_risk_assessments_total')!.labels.get('level')!].sort(), ['critical', 'high', 'low', 'medium']);
    assert.equal(catalogue.get('idp_http_request_duration_seconds')!.type, 'histogram');
    assert.ok(catalogue.get('idp_http_request_duration_seconds')!.labels.has('route'));
  });

  it('catches what it is there to catch', () => {
    assert.deepEqual(problems('sum(rate(idp_logins_total{outcome="blocked"}[5m]))'), []);
    assert.match(problems('rate(idp_login_total[5m])').join(), /idp_login_total is not in docs\/metrics\.md/);
    assert.match(problems('sum by (outcome) (rate(idp_logins_total{outcome="block"}[5m]))').join(), /outcome="block" is not a value/);
    assert.match(problems('sum by (reason) (rate(idp_logins_total[5m]))').join(), /label reason is on none of idp_logins_total/);
    assert.match(problems('idp_risk_assessments_bucket').join(), /not in docs/, 'a counter has no _bucket');
    assert.deepEqual(problems('histogram_quantile(0.99, sum by (route, le) (rate(idp_http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))'), []);
    assert.match(problems('nodejs_eventloop_lag_p98_seconds').join(), /prom-client/);
  });
});

describe('Grafana dashboard', () => {
  const dash = readDashboard();
  const panels = allPanels(dash);
  const data = panels.filter((p) => p.type !== 'row');

  it('is importable: a DS_PROMETHEUS input, its requirements and a schema version', () => {
    assert.ok(typeof dash.schemaVersion === 'number' && dash.schemaVersion >= 39, `schemaVersion ${dash.schemaVersion}`);
    assert.ok(dash.uid && dash.title);
    assert.deepEqual(dash.__inputs?.map((i) => [i.name, i.type, i.pluginId]), [['DS_PROMETHEUS', 'datasource', 'prometheus']]);
    const required = new Set(dash.__requires?.map((r) => `${r.type}:${r.id}`));
    assert.ok(required.has('grafana:grafana') && required.has('datasource:prometheus'));
    for (const t of new Set(data.map((p) => p.type))) assert.ok(required.has(`panel:${t}`), `__requires lacks panel ${t}`);
  });

  it('has job and instance variables on the Prometheus input', () => {
    const vars = dash.templating?.list ?? [];
    for (const name of ['job', 'instance']) {
      const v = vars.find((x) => x.name === name);
      assert.ok(v, `no $${name} variable`);
      assert.equal(v.type, 'query');
      assert.equal(v.datasource?.uid, '${DS_PROMETHEUS}');
    }
    for (const v of vars) {
      const query = (v.query as { query?: string } | undefined)?.query ?? '';
      const selector = /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1];
      assert.ok(selector, `$${v.name}: ${query}`);
      assert.deepEqual(problems(selector), [], v.name);
    }
  });

  it('has unique panel ids', () => {
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids ${ids.filter((id, i) => ids.indexOf(id) !== i).join(', ')}`);
  });

  it('lays panels out inside 24 columns without overlaps', () => {
    for (const p of panels) {
      const g = p.gridPos;
      assert.ok(Number.isInteger(g.x) && Number.isInteger(g.y) && g.w >= 1 && g.h >= 1 && g.x >= 0 && g.y >= 0, `panel ${p.id} gridPos ${JSON.stringify(g)}`);
      assert.ok(g.x + g.w <= 24, `panel ${p.id} "${p.title}" ends at column ${g.x + g.w}`);
    }
    for (const [i, a] of panels.entries()) {
      for (const b of panels.slice(i + 1)) {
        const overlap = a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w
          && a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
        assert.ok(!overlap, `panels ${a.id} "${a.title}" and ${b.id} "${b.title}" overlap`);
      }
    }
  });

  it('gives every panel a title, a description, the Prometheus input and queries with expr and refId', () => {
    assert.ok(data.length >= 30, `${data.length} panels`);
    for (const p of data) {
      assert.ok(p.title && p.description && p.description.length > 20, `panel ${p.id} "${p.title}" has no description`);
      assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `panel ${p.id} datasource`);
      assert.ok(p.targets && p.targets.length > 0, `panel ${p.id} has no query`);
      const refIds = p.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `panel ${p.id} repeats a refId`);
      for (const t of p.targets) {
        assert.ok(t.refId && t.expr && t.expr.trim().length > 0, `panel ${p.id} has a target without refId or expr`);
        assert.equal(t.datasource?.uid, '${DS_PROMETHEUS}', `panel ${p.id} target ${t.refId} datasource`);
      }
    }
  });

  it('covers the rows the issue asks for', () => {
    const rows = panels.filter((p) => p.type === 'row').map((p) => p.title);
    assert.deepEqual(rows, ['Traffic', 'Risk decisions', 'Risk distribution', 'Step-up', 'Latency', 'Errors', 'Versions', 'Process']);
    assert.ok(data.some((p) => p.type === 'heatmap'), 'the risk score histogram as a heatmap');
  });

  it('queries only catalogue metrics, labels and values, filtered by $job and $instance', () => {
    const targets = dashboardTargets(dash);
    for (const t of targets) {
      assert.deepEqual(problems(t.expr), [], `panel ${t.panelId} "${t.panelTitle}" ${t.refId}: ${t.expr}`);
      const parsed = parsePromQL(t.expr);
      // Every selector filters by the variables; a bare metric name would sum every job.
      assert.equal(parsed.selectors.length, parsed.metrics.length, `panel ${t.panelId}: a metric without a selector in ${t.expr}`);
      for (const s of parsed.selectors) assert.ok(s.includes('job=~"$job"') && s.includes('instance=~"$instance"'), `panel ${t.panelId}: {${s}}`);
    }
  });
});

describe('Prometheus rules', () => {
  const alerts = rules.filter((r) => r.alert);
  const runbook = fs.readFileSync(RUNBOOK_FILE, 'utf8');
  const anchors = headingAnchors(runbook);

  it('has the alerts the issue asks for', () => {
    for (const name of ['IdpDown', 'IdpNotScraped', 'IdpLoginBlockSpike', 'IdpStepUpFailureSpike', 'IdpLoginErrorRate', 'IdpHighRequestLatency',
      'IdpPolicyReloadRejected', 'IdpCredentialStuffing', 'IdpStoreErrors', 'IdpStoreSlow', 'IdpDirectoryErrors']) {
      assert.ok(alerts.some((a) => a.alert === name), `no alert ${name}`);
    }
  });

  it('uses only catalogue metrics, labels and values (and its own recording rules)', () => {
    for (const r of rules) assert.deepEqual(problems(r.expr), [], `${r.alert ?? r.record}: ${r.expr}`);
  });

  it('gives every alert a severity, a summary, a description with its value, and a runbook section that exists', () => {
    for (const a of alerts) {
      assert.ok(['critical', 'warning'].includes(a.labels?.severity ?? ''), `${a.alert} severity`);
      assert.ok(a.annotations?.summary && a.annotations.description, `${a.alert} annotations`);
      if (a.alert !== 'IdpNotScraped') assert.match(`${a.annotations.summary} ${a.annotations.description}`, /\$value|\$labels/, `${a.alert} says which and how much`);
      const url = a.annotations.runbook_url ?? '';
      const m = /^docs\/runbook\.md#(.+)$/.exec(url);
      assert.ok(m, `${a.alert} runbook_url ${url}`);
      assert.ok(anchors.has(m[1]!), `${a.alert}: docs/runbook.md has no section #${m[1]}`);
    }
  });

  it('waits before paging, except on a rejected policy (an event, not a state)', () => {
    for (const a of alerts) if (a.alert !== 'IdpPolicyReloadRejected') assert.match(a.for ?? '', /^\d+[smh]$/, `${a.alert} has no for:`);
  });

  it('has, for every alert, a promtool test where it fires and one where it stays quiet', () => {
    const cases = readRuleTests().tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert} never fires in idp-alerts.test.yml`);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a.alert} has no near miss in idp-alerts.test.yml`);
    }
  });
});

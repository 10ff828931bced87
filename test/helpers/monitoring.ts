/**
 * Reads what the monitoring tests check: the metric catalogue (docs/metrics.md), the
 * Grafana dashboard (deploy/grafana) and the Prometheus rules (deploy/prometheus), and
 * parses PromQL loosely enough to name the metrics, labels and label values an expression
 * uses. Loose on purpose: it is not a PromQL parser (promtool is, where PROMTOOL is set), it
 * only has to find identifiers that a renamed metric or label would leave dangling.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export const REPO = path.join(import.meta.dirname, '..', '..', '..');
export const DASHBOARD_FILE = path.join(REPO, 'deploy', 'grafana', 'idp-dashboard.json');
export const RULES_FILE = path.join(REPO, 'deploy', 'prometheus', 'idp-alerts.yml');
export const RULES_TEST_FILE = path.join(REPO, 'deploy', 'prometheus', 'idp-alerts.test.yml');
export const RUNBOOK_FILE = path.join(REPO, 'docs', 'runbook.md');
export const CATALOGUE_FILE = path.join(REPO, 'docs', 'metrics.md');

export interface CatalogueEntry {
  name: string;
  type: string;
  /** Label name → its enumerated values, or null when the catalogue leaves them open (configured names). */
  labels: Map<string, Set<string> | null>;
}

/** The rows of docs/metrics.md's table: `| \`name\` | type | labels | what |`. */
export function readCatalogue(text = fs.readFileSync(CATALOGUE_FILE, 'utf8')): Map<string, CatalogueEntry> {
  const out = new Map<string, CatalogueEntry>();
  for (const line of text.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    // ['', name, type, labels, what, '']
    const name = /^`([a-z_:][a-z0-9_:]*)`$/.exec(cells[1] ?? '')?.[1];
    if (!name || cells.length < 5) continue;
    const labels = new Map<string, Set<string> | null>();
    // Parenthesised remarks list examples, not labels: "`route` (a fixed set: `authorization`, …)".
    const labelCell = (cells[3] ?? '').replace(/\([^)]*\)/g, '');
    for (const segment of labelCell.split(/[;,]/)) {
      const tokens = [...segment.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      const [label, ...values] = tokens;
      if (!label) continue;
      labels.set(label, segment.includes('=') && values.length > 0 ? new Set(values) : null);
    }
    out.set(name, { name, type: (cells[2] ?? '').split(' ')[0]!, labels });
  }
  return out;
}

/**
 * prom-client's default metrics (collectDefaultMetrics) that the dashboard and rules may
 * use: the catalogue names them only as `process_*`, `nodejs_*`. Spelt out so that a typo in
 * a panel is caught here and not on an empty graph.
 */
export const PROM_CLIENT_DEFAULTS = new Set([
  'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total',
  'process_start_time_seconds', 'process_resident_memory_bytes', 'process_virtual_memory_bytes',
  'process_heap_bytes', 'process_open_fds', 'process_max_fds',
  'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_min_seconds', 'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds', 'nodejs_eventloop_lag_stddev_seconds', 'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p90_seconds', 'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources', 'nodejs_active_resources_total', 'nodejs_active_handles', 'nodejs_active_handles_total',
  'nodejs_active_requests', 'nodejs_active_requests_total',
  'nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes',
  'nodejs_heap_space_size_total_bytes', 'nodejs_heap_space_size_used_bytes', 'nodejs_heap_space_size_available_bytes',
  'nodejs_version_info', 'nodejs_gc_duration_seconds',
]);

/** Series Prometheus makes itself for every target. */
export const PROMETHEUS_SERIES = new Set(['up']);
/** Labels Prometheus or the histogram format adds: not in the catalogue's label columns. */
export const IMPLICIT_LABELS = new Set(['job', 'instance', 'le', '__name__']);

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan',
]);

export interface Matcher {
  label: string;
  op: string;
  value: string;
}

export interface ParsedExpr {
  metrics: string[];
  /** Labels named in by/without/on/ignoring/group_left/group_right clauses. */
  groupingLabels: string[];
  matchers: Matcher[];
  /** Each `{…}` selector's text, to check the dashboard's job/instance filter. */
  selectors: string[];
}

/** Metric names, labels and matchers of a PromQL expression (Grafana variables allowed). */
export function parsePromQL(expr: string): ParsedExpr {
  const matchers: Matcher[] = [];
  const selectors: string[] = [];
  const groupingLabels: string[] = [];
  let rest = expr.replace(/\{([^}]*)\}/g, (_all, body: string) => {
    selectors.push(body);
    for (const m of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      matchers.push({ label: m[1]!, op: m[2]!, value: m[3]! });
    }
    return ' ';
  });
  rest = rest
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ') // string arguments (label_replace, printf)
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery durations, $__rate_interval
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ');
  rest = rest.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_all, _kw: string, list: string) => {
    for (const l of list.split(',').map((s) => s.trim()).filter(Boolean)) groupingLabels.push(l);
    return ' ';
  });
  const metrics: string[] = [];
  for (const m of rest.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const id = m[1]!;
    if (m[2] || KEYWORDS.has(id.toLowerCase())) continue; // a function call or an operator
    metrics.push(id);
  }
  return { metrics, groupingLabels, matchers, selectors };
}

/** The catalogue entry a series name belongs to (a histogram's _bucket/_sum/_count too). */
export function catalogueEntryFor(name: string, catalogue: Map<string, CatalogueEntry>): CatalogueEntry | undefined {
  const direct = catalogue.get(name);
  if (direct) return direct;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  const h = base ? catalogue.get(base) : undefined;
  return h?.type === 'histogram' ? h : undefined;
}

export interface DashboardTarget {
  panelId: number;
  panelTitle: string;
  refId: string;
  expr: string;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title?: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: { refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: DashboardPanel[];
}

export interface Dashboard {
  schemaVersion?: number;
  uid?: string;
  title?: string;
  __inputs?: { name: string; type: string; pluginId: string }[];
  __requires?: { type: string; id: string }[];
  templating?: { list: { name: string; type: string; datasource?: { uid?: string }; query?: unknown }[] };
  panels: DashboardPanel[];
}

export function readDashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(d: Dashboard): DashboardPanel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export function dashboardTargets(d: Dashboard): DashboardTarget[] {
  return allPanels(d).flatMap((p) => (p.targets ?? []).map((t) => ({ panelId: p.id, panelTitle: p.title ?? '', refId: t.refId ?? '', expr: t.expr ?? '' })));
}

/**
 * A dashboard expression as plain PromQL: Grafana's variables replaced by what they stand
 * for at query time (the `All` value of job/instance is `.+`).
 */
export function grafanaToPromQL(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replaceAll('$job', '.+')
    .replaceAll('$instance', '.+');
}

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function readRules(): Rule[] {
  const doc = YAML.parse(fs.readFileSync(RULES_FILE, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

export interface RuleTests {
  tests: { alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: unknown[] }[] }[];
}

export function readRuleTests(): RuleTests {
  return YAML.parse(fs.readFileSync(RULES_TEST_FILE, 'utf8')) as RuleTests;
}

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    anchors.add(m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-'));
  }
  for (const m of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

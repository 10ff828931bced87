/**
 * The HTML reports as one self-contained file each: the page, its styles, Chart.js (read from
 * node_modules at report time and inlined) and the figures, with no network access at all.
 * A Content-Security-Policy in a meta element allows exactly the inline script and style
 * blocks by their SHA-256 (CSP Level 3 §8.4 hash-source) and nothing else: no fetch, no
 * fonts, no images but data: URLs. Everything from the input (client ids, countries,
 * event ids, factor names) is escaped in HTML and, in the figures' JSON, kept out of
 * `</script>` reach by escaping `<`, `>` and `&`, so an event with markup in a field is
 * shown as text and never runs.
 *
 * Every chart has its numbers in a table beside it (details/summary), readable without
 * script and by screen readers (WCAG 2.2 SC 1.1.1: the canvas is an image whose text
 * alternative is the table).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { EfficacyData, EfficacyGroup, GroupRow, Rate, SimulationReportData } from '../policies/report.ts';
import { DIMENSIONS } from '../policies/report.ts';
import { escapeHtml } from '../interactions/html.ts';

let chartJs: string | undefined;
/**
 * Chart.js's UMD build, as installed (package.json pins the major version). Its exports map
 * names no UMD file, so it is found next to the CommonJS entry point. Commands call this
 * before a long replay, so a broken install fails at once.
 */
export function chartSource(): string {
  chartJs ??= fs.readFileSync(path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  return chartJs;
}

/** Text from the input into the page: the pages' own escaping (interactions/html.ts). */
export function esc(s: unknown): string {
  return escapeHtml(String(s));
}

/** JSON safe inside a script data block: no `</script>`, no `<!--`, no line separators. */
export function scriptJson(x: unknown): string {
  return JSON.stringify(x).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const hash = (s: string) => `'sha256-${crypto.createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** A chart the page script draws into `<canvas id>`; the table next to it is the same data. */
export interface ChartSpec {
  id: string;
  type: 'bar' | 'line';
  labels: string[];
  /** `null`: nothing to draw (a rate of an empty group), which Chart.js leaves as a gap, unlike 0. */
  datasets: { label: string; data: (number | null)[]; color: string }[];
  stacked?: boolean;
  horizontal?: boolean;
  /** Values are fractions shown as percentages. */
  percent?: boolean;
  yTitle?: string;
  xTitle?: string;
}

/** Colours readable on both the light and the dark background (and apart for most colour vision). */
export const COLOURS = {
  allow: '#2e8b57', step_up: '#d4a017', block: '#c0392b',
  low: '#2e8b57', medium: '#d4a017', high: '#e67e22', critical: '#c0392b',
  legit: '#3b82f6', attack: '#e74c3c', unlabelled: '#8e8e8e', neutral: '#7c6fd6',
};

const STYLE = `
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1b1f; --muted: #4a4a55; --grid: rgba(0,0,0,.12); --card: #f4f4f7; --accent: #1f5fbf; --warn-bg: #fdecea; --warn-fg: #8a1c12; }
@media (prefers-color-scheme: dark) { :root { --bg: #15161a; --fg: #ececf1; --muted: #b5b5c0; --grid: rgba(255,255,255,.15); --card: #22242b; --accent: #8ab4ff; --warn-bg: #3b1d1a; --warn-fg: #ffb4a9; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--grid); padding-bottom: .25rem; }
p.note, .muted { color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; padding: .75rem 1rem; background: var(--card); border-radius: 8px; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .75rem; margin: 1rem 0; }
.card { background: var(--card); border-radius: 8px; padding: .6rem .9rem; }
.card .v { font-size: 1.4rem; font-weight: 700; } .card .k { color: var(--muted); font-size: .85rem; }
.chart { position: relative; height: 320px; margin: .5rem 0; }
.chart.tall { height: 460px; }
.chart.xtall { height: 780px; }
details { margin: .25rem 0 1rem; } summary { cursor: pointer; color: var(--accent); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; font-size: .9rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid var(--grid); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; overflow-wrap: anywhere; min-width: 9rem; max-width: 22rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
.small { font-style: italic; color: var(--muted); }
.flag { background: var(--warn-bg); color: var(--warn-fg); font-weight: 600; }
.alert { background: var(--warn-bg); color: var(--warn-fg); padding: .5rem .9rem; border-radius: 8px; }
code { overflow-wrap: anywhere; }
`;

const SCRIPT = `(() => {
  const spec = JSON.parse(document.getElementById('report-data').textContent);
  // Text and grid colours from the page's light or dark palette, read again when it changes:
  // scriptable options, because Chart.js keeps resolved colours until told otherwise.
  let fg = '', grid = '';
  const theme = () => { const css = getComputedStyle(document.documentElement); fg = css.getPropertyValue('--fg').trim(); grid = css.getPropertyValue('--grid').trim(); };
  theme();
  const text = () => fg;
  const lines = () => grid;
  Chart.defaults.animation = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  const pct = (v) => (v * 100).toFixed(v < 0.1 ? 1 : 0) + '%';
  const charts = [];
  for (const c of spec.charts) {
    const canvas = document.getElementById(c.id);
    const value = c.horizontal ? 'x' : 'y';
    const axis = (title, stacked, isValue) => ({
      stacked, beginAtZero: true,
      grid: { color: lines }, border: { color: lines },
      title: title ? { display: true, text: title, color: text } : undefined,
      ticks: isValue && c.percent ? { color: text, callback: (v) => pct(v) } : { color: text, autoSkip: isValue || !c.horizontal, maxRotation: 60 },
    });
    charts.push(new Chart(canvas, {
      type: c.type,
      data: { labels: c.labels, datasets: c.datasets.map((d) => ({ label: d.label, data: d.data, backgroundColor: d.color, borderColor: d.color, pointRadius: 0, borderWidth: c.type === 'line' ? 2 : 0 })) },
      options: {
        indexAxis: c.horizontal ? 'y' : 'x', responsive: true, maintainAspectRatio: false,
        scales: { x: axis(c.xTitle, !!c.stacked, value === 'x'), y: axis(c.yTitle, !!c.stacked, value === 'y') },
        plugins: {
          legend: { display: c.datasets.length > 1, labels: { color: text } },
          tooltip: c.percent ? { callbacks: { label: (ctx) => ctx.dataset.label + ': ' + pct(ctx.parsed[value]) } } : {},
        },
      },
    }));
  }
  window.reportCharts = charts;
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { theme(); for (const ch of charts) ch.update(); });
})();`;

/** The whole page: header, body, the figures as a JSON data block, Chart.js and the page script. */
export function page(title: string, body: string, charts: ChartSpec[]): string {
  const chart = chartSource();
  const csp = [
    'default-src \'none\'', `script-src ${hash(chart)} ${hash(SCRIPT)}`, `style-src ${hash(STYLE)}`, 'img-src data:',
    'base-uri \'none\'', 'form-action \'none\'',
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
<script type="application/json" id="report-data">${scriptJson({ charts })}</script>
<script>${chart}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en');
export const fmtPct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');
const fmtRate = (r: Rate) => (r.n ? fmtPct(r.rate) : 'n/a');
const fmtCi = (r: Rate) => (r.n ? `${fmtPct(r.lo)} – ${fmtPct(r.hi)}` : 'n/a');

/** A table; cells are escaped unless given as `{ html }`. */
export function table(caption: string, head: string[], body: (string | number | { html: string; cls?: string })[][], cls = ''): string {
  const cell = (c: string | number | { html: string; cls?: string }, i: number) => {
    const tag = i === 0 ? 'th scope="row"' : 'td';
    const end = i === 0 ? 'th' : 'td';
    if (typeof c === 'object') return `<${tag}${c.cls ? ` class="${c.cls}"` : ''}>${c.html}</${end}>`;
    return `<${tag}>${esc(typeof c === 'number' ? fmtInt(c) : c)}</${end}>`;
  };
  return `<div class="scroll" tabindex="0" role="region" aria-label="${esc(caption)}"><table${cls ? ` class="${cls}"` : ''}><caption>${esc(caption)}</caption><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead>`
    + `<tbody>${body.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table></div>`;
}

/** A chart with its data table in a details element below it. */
function figure(spec: ChartSpec, alt: string, dataTable: string): string {
  // Horizontal bars get room for every group's name (no style attribute: the CSP allows none).
  const rows = spec.horizontal ? spec.labels.length : 0;
  return `<div class="chart${rows > 15 ? ' xtall' : rows > 8 ? ' tall' : ''}"><canvas id="${esc(spec.id)}" role="img" aria-label="${esc(alt)}"></canvas></div>
<details><summary>${esc(alt)}: the numbers</summary>${dataTable}</details>`;
}

function metaList(items: [string, string][]): string {
  return `<dl class="meta">${items.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
}

function cards(items: [string, string][]): string {
  return `<div class="cards">${items.map(([k, v]) => `<div class="card"><div class="v">${esc(v)}</div><div class="k">${esc(k)}</div></div>`).join('')}</div>`;
}

export interface SimulationMeta {
  policyVersion: string; modelVersion: string; input: string; generated: string;
  baseline?: { policyVersion: string; modelVersion: string } | undefined;
  /** changes.jsonl lists every changed login (simulate --out). */
  changesFile?: boolean;
}

/** A bucket by its start: the date, and the time for hours. */
const bucketLabel = (iso: string, bucket: string) => (bucket === 'hour' ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10));

function groupTable(caption: string, name: string, g: { rows: GroupRow[]; others: number }, small: number): string {
  const body = g.rows.map((r) => [
    { html: `${esc(r.group)}${r.small ? ' <span class="small">(small group)</span>' : ''}` }, r.n, r.step_up, r.block,
    { html: esc(fmtPct(r.challenge.rate)), ...(r.small ? { cls: 'small' } : {}) }, fmtCi(r.challenge),
  ]);
  if (g.others) body.push([{ html: '<span class="muted">all others</span>' }, g.others, '', '', '', '']);
  return `${table(caption, [name, 'scored logins', 'step-up', 'block', 'challenge rate', '95% interval'], body)}
<p class="note">Challenge rate: step-up and block among the group's scored logins, with its Wilson 95% interval. Groups under ${fmtInt(small)} logins are marked small: their rate says little.</p>`;
}

/** `idp simulate --report`. */
export function simulationReportHtml(d: SimulationReportData, m: SimulationMeta): string {
  const charts: ChartSpec[] = [];
  const parts: string[] = [];
  const span = d.span ? `${d.span.from} – ${d.span.to}` : 'no events';
  parts.push(`<h1>Simulation report</h1>`);
  parts.push(metaList([
    ['Policy', m.policyVersion], ['Model', m.modelVersion],
    ...(m.baseline ? [['Baseline policy', `${m.baseline.policyVersion} (model ${m.baseline.modelVersion})`] as [string, string]] : []),
    ['Input', m.input], ['Events', `${fmtInt(d.events)} (${fmtInt(d.scored)} with a correct password, scored)`],
    ['Time span', span], ['Generated', m.generated],
  ]));
  const dec = d.timeline.reduce((s, b) => ({ allow: s.allow + b.allow, step_up: s.step_up + b.step_up, block: s.block + b.block }), { allow: 0, step_up: 0, block: 0 });
  const of = (k: number) => (d.scored ? fmtPct(k / d.scored) : 'n/a');
  parts.push(cards([['scored logins', fmtInt(d.scored)], ['allowed', of(dec.allow)], ['step-up', of(dec.step_up)], ['blocked', of(dec.block)],
    ...(d.labelled.legit.n ? [['legitimate challenged', fmtPct((d.labelled.legit.step_up + d.labelled.legit.block) / d.labelled.legit.n)] as [string, string]] : []),
    ...(d.labelled.attack.n ? [['attacks challenged', fmtPct((d.labelled.attack.step_up + d.labelled.attack.block) / d.labelled.attack.n)] as [string, string]] : [])]));

  const labels = d.timeline.map((b) => bucketLabel(b.start, d.bucket));
  const bucketHead = d.bucket === 'hour' || d.bucket === 'day' ? d.bucket : `${d.bucket} from`;
  parts.push(`<h2>Decisions over time</h2><p class="note">Scored logins per ${d.bucket} (UTC), by the policy's decision.</p>`);
  const decSpec: ChartSpec = {
    id: 'chart-decisions', type: 'bar', stacked: true, labels, yTitle: 'logins',
    datasets: (['allow', 'step_up', 'block'] as const).map((k) => ({ label: k, data: d.timeline.map((b) => b[k]), color: COLOURS[k] })),
  };
  charts.push(decSpec);
  parts.push(figure(decSpec, `Decisions per ${d.bucket}`, table(`Decisions per ${d.bucket}`, [bucketHead, 'allow', 'step_up', 'block'], d.timeline.map((b, i) => [labels[i]!, b.allow, b.step_up, b.block]))));

  const levelNames = Object.keys(d.timeline[0]?.levels ?? { low: 0, medium: 0, high: 0, critical: 0 });
  parts.push(`<h2>Risk levels over time</h2>`);
  const lvlSpec: ChartSpec = {
    id: 'chart-levels', type: 'bar', stacked: true, labels, yTitle: 'logins',
    datasets: levelNames.map((l) => ({ label: l, data: d.timeline.map((b) => b.levels[l] ?? 0), color: (COLOURS as Record<string, string>)[l] ?? COLOURS.neutral })),
  };
  charts.push(lvlSpec);
  parts.push(figure(lvlSpec, `Risk levels per ${d.bucket}`, table(`Risk levels per ${d.bucket}`, [bucketHead, ...levelNames], d.timeline.map((b, i) => [labels[i]!, ...levelNames.map((l) => b.levels[l] ?? 0)]))));

  // Scores: shares within each group where labels exist (attacks are few), counts otherwise.
  const bins = Array.from({ length: d.scores.bins }, (_, i) => `${(i / d.scores.bins).toFixed(2)}–${((i + 1) / d.scores.bins).toFixed(2)}`);
  const groups = (['legit', 'attack', 'unlabelled'] as const).filter((k) => d.scores[k].some((x) => x > 0));
  const labelled = d.labelled.legit.n > 0 && d.labelled.attack.n > 0;
  const total = (k: 'legit' | 'attack' | 'unlabelled') => d.scores[k].reduce((a, b) => a + b, 0);
  parts.push(`<h2>Score distribution</h2><p class="note">${labelled
    ? 'Risk scores of legitimate logins and of attacks (labels in the events), each as a share of its own group, so the few attacks are visible next to the many legitimate logins.'
    : 'Risk scores of the scored logins (the events carry no labels of both kinds).'}</p>`);
  const scoreSpec: ChartSpec = {
    id: 'chart-scores', type: 'bar', labels: bins, percent: labelled, xTitle: 'risk score', yTitle: labelled ? 'share of the group' : 'logins',
    datasets: groups.map((k) => ({ label: k, data: labelled ? d.scores[k].map((x) => x / (total(k) || 1)) : d.scores[k], color: COLOURS[k] })),
  };
  charts.push(scoreSpec);
  parts.push(figure(scoreSpec, 'Risk score distribution', table('Logins by risk score', ['score', ...groups.flatMap((k) => labelled ? [k, `${k} share`] : [k])],
    bins.map((b, i) => [b, ...groups.flatMap((k) => labelled ? [d.scores[k][i]!, fmtPct(d.scores[k][i]! / (total(k) || 1))] : [d.scores[k][i]!])]))));

  parts.push(`<h2>Factors</h2><p class="note">How often each factor fired among the scored logins, and its average contribution to the score when it did. Monitor-mode firings are counted and marked; they add nothing to the enforced score.</p>`);
  const facSpec: ChartSpec = {
    id: 'chart-factors', type: 'bar', horizontal: true, labels: d.factors.map((f) => f.factor), xTitle: 'logins where it fired',
    datasets: [{ label: 'fired', data: d.factors.map((f) => f.fired), color: COLOURS.neutral }],
  };
  charts.push(facSpec);
  parts.push(figure(facSpec, 'Factors by how often they fired', table('Factors', ['factor', 'fired', 'share of scored', 'average contribution', 'in monitor mode'],
    d.factors.map((f) => [f.factor, f.fired, fmtPct(f.share), f.averageContribution.toFixed(3), f.monitor]))));

  for (const [key, title, name] of [['clients', 'Challenge rate by client', 'client'], ['countries', 'Challenge rate by country', 'country']] as const) {
    const g = d[key];
    parts.push(`<h2>${esc(title)}</h2><p class="note">${g.others ? `The ${fmtInt(g.rows.length)} ${key} with the most scored logins; the rest together in the table's last row.` : `Every ${name} in the input, by scored logins.`}</p>`);
    const spec: ChartSpec = {
      id: `chart-${key}`, type: 'bar', horizontal: true, stacked: true, percent: true, labels: g.rows.map((r) => `${r.group}${r.small ? ' (small)' : ''}`), xTitle: 'share of the group\'s logins',
      datasets: (['step_up', 'block'] as const).map((k) => ({ label: k, data: g.rows.map((r) => (r.n ? r[k] / r.n : 0)), color: COLOURS[k] })),
    };
    charts.push(spec);
    parts.push(figure(spec, title, groupTable(title, name, g, d.smallGroup)));
  }

  if (d.baseline) {
    const b = d.baseline;
    const ds = ['allow', 'step_up', 'block'] as const;
    parts.push(`<h2>What changed against the baseline</h2><p>${fmtInt(b.changed)} of ${fmtInt(d.scored)} scored logins (${of(b.changed)}) get a different decision from the candidate policy than from the baseline.</p>`);
    parts.push(table('Decisions: baseline (rows) against candidate (columns)', ['baseline \\ candidate', ...ds], ds.map((from) => [from, ...ds.map((to) => ({ html: fmtInt(b.matrix[from][to]), ...(from !== to && b.matrix[from][to] ? { cls: 'flag' } : {}) }))])));
    const trSpec: ChartSpec = {
      id: 'chart-transitions', type: 'bar', stacked: true, horizontal: true, labels: ds.map((x) => `baseline ${x}`), xTitle: 'logins',
      datasets: ds.map((to) => ({ label: `candidate ${to}`, data: ds.map((from) => b.matrix[from][to]), color: COLOURS[to] })),
    };
    charts.push(trSpec);
    parts.push(figure(trSpec, 'Candidate decisions for each baseline decision', table('Transitions', ['baseline', ...ds.map((x) => `candidate ${x}`)], ds.map((from) => [from, ...ds.map((to) => b.matrix[from][to])]))));
    parts.push(table('Most affected clients', ['client', 'changed decisions'], b.clients.map((r) => [r.group, r.changed])));
    parts.push(table('Most affected countries', ['country', 'changed decisions'], b.countries.map((r) => [r.group, r.changed])));
    parts.push(table(`Changed logins (the first ${fmtInt(b.sample.length)}${m.changesFile ? '; all of them are in changes.jsonl' : '; --out lists all of them in changes.jsonl'})`, ['event id', 'time', 'client', 'country', 'baseline', 'candidate', 'baseline score', 'candidate score'],
      b.sample.map((s) => [s.id, s.ts, s.client, s.country, s.baseline, s.candidate, s.baselineScore.toFixed(3), s.candidateScore.toFixed(3)])));
  }
  return page(`Simulation report: policy ${m.policyVersion}`, parts.join('\n'), charts);
}

export interface EfficacyMeta {
  input: string; generated: string;
  /** Where the decisions come from. */
  decisions: { kind: 'recorded' } | { kind: 'replayed'; policyVersion: string; modelVersion: string; policyDir: string };
  labels: { fromEvents: number; fromFile: number; file?: string | undefined };
  events: number; decided: number; span: { from: string; to: string } | null;
  /** Decided logins without a recorded decision (only when reading recorded decisions). */
  undecided: number;
}

const DIMENSION_TITLES: Record<(typeof DIMENSIONS)[number], string> = {
  country: 'Country', network: 'Network type', device: 'Device type', platform: 'Platform (operating system)',
};

/** `idp report efficacy`. */
export function efficacyReportHtml(d: EfficacyData, m: EfficacyMeta): string {
  const charts: ChartSpec[] = [];
  const parts: string[] = [];
  const o = d.overall;
  parts.push('<h1>Risk check efficacy and fairness</h1>');
  parts.push(metaList([
    ['Decisions', m.decisions.kind === 'recorded' ? 'as recorded by the provider (each event\'s assessment)' : `replayed through policy ${m.decisions.policyVersion} (model ${m.decisions.modelVersion}) from ${m.decisions.policyDir}`],
    ['Input', m.input], ['Events', `${fmtInt(m.events)} (${fmtInt(m.decided)} decided: password correct)`],
    ['Labels', `${fmtInt(m.labels.fromEvents)} from the events${m.labels.file ? `, ${fmtInt(m.labels.fromFile)} from ${m.labels.file} (these win)` : ''}; ${fmtInt(d.unlabelled)} decided logins unlabelled and left out`],
    ['Time span', m.span ? `${m.span.from} – ${m.span.to}` : 'no events'], ['Generated', m.generated],
  ]));
  if (m.undecided) parts.push(`<p class="alert">${fmtInt(m.undecided)} logins with a correct password carry no recorded decision and are left out; replay them with --policy to include them.</p>`);
  parts.push(cards([
    ['detection rate (attacks challenged or blocked)', fmtRate(o.detection)], ['attacks', fmtInt(o.detection.n)],
    ['false-challenge rate (legitimate logins challenged or blocked)', fmtRate(o.falseChallenge)], ['legitimate logins', fmtInt(o.falseChallenge.n)],
  ]));
  parts.push(table('Overall', ['logins of', 'logins', 'challenged or blocked', 'of which blocked', 'rate', '95% interval'], [
    ['attacks (detection)', o.detection.n, o.detection.k, o.attackBlocked, fmtRate(o.detection), fmtCi(o.detection)],
    ['legitimate (false challenge)', o.falseChallenge.n, o.falseChallenge.k, o.legitBlocked, fmtRate(o.falseChallenge), fmtCi(o.falseChallenge)],
  ]));
  parts.push('<h2>Groups challenged far more often</h2>');
  parts.push(d.farAbove.length
    ? `<p class="alert">${fmtInt(d.farAbove.length)} group(s) have a false-challenge rate far above the overall ${fmtRate(o.falseChallenge)}:</p>${table('Groups far above the overall false-challenge rate', ['group', 'breakdown', 'legitimate logins', 'rate', '95% interval'],
      d.farAbove.map((g) => [g.group, DIMENSION_TITLES[g.dimension], g.falseChallenge.n, fmtRate(g.falseChallenge), fmtCi(g.falseChallenge)]))}`
    : `<p>None: no group of at least ${fmtInt(d.rule.minN)} legitimate logins is challenged far more often than the overall ${fmtRate(o.falseChallenge)}.</p>`);
  parts.push(`<p class="note">"Far above": at least ${d.rule.ratio}× the overall false-challenge rate, with the lower bound of the group's 95% interval above the overall rate, in a group of at least ${fmtInt(d.rule.minN)} legitimate logins.${o.falseChallenge.n > 0 && o.falseChallenge.rate * d.rule.ratio > 1 ? ` With the overall rate at ${fmtRate(o.falseChallenge)}, no group can be ${d.rule.ratio}× it: this rule cannot name any group here; read the table instead.` : ''}</p>`);

  for (const dim of DIMENSIONS) {
    const groups = d.dimensions[dim];
    const shown = groups.slice(0, 25);
    parts.push(`<h2>By ${esc(DIMENSION_TITLES[dim].toLowerCase())}</h2>`);
    const spec: ChartSpec = {
      id: `chart-${dim}`, type: 'bar', horizontal: true, percent: true, labels: shown.map((g) => `${g.group}${g.small ? ' (small)' : ''}`), xTitle: 'rate',
      datasets: [
        // A group without legitimate logins has no false-challenge rate, one without attacks
        // no detection rate: no bar, as its table row says n/a, rather than a 0% bar.
        { label: 'false-challenge rate', data: shown.map((g) => (g.falseChallenge.n ? g.falseChallenge.rate : null)), color: COLOURS.legit },
        { label: 'detection rate', data: shown.map((g) => (g.detection.n ? g.detection.rate : null)), color: COLOURS.attack },
      ],
    };
    charts.push(spec);
    const row = (g: EfficacyGroup) => [
      { html: `${esc(g.group)}${g.farAbove ? ' <strong>(far above)</strong>' : ''}${g.small ? ' <span class="small">(small group)</span>' : ''}`, ...(g.farAbove ? { cls: 'flag' } : {}) },
      g.falseChallenge.n, g.falseChallenge.k, fmtRate(g.falseChallenge), fmtCi(g.falseChallenge),
      g.detection.n, g.detection.k, fmtRate(g.detection), fmtCi(g.detection),
    ];
    parts.push(figure(spec, `False-challenge and detection rates by ${DIMENSION_TITLES[dim].toLowerCase()}${groups.length > shown.length ? ` (the ${shown.length} largest groups)` : ''}`,
      table(`By ${DIMENSION_TITLES[dim].toLowerCase()}`, [DIMENSION_TITLES[dim], 'legitimate', 'challenged', 'false-challenge rate', '95% interval', 'attacks', 'detected', 'detection rate', '95% interval'], groups.map(row))));
  }

  parts.push(`<h2>Method</h2>
<p>NIST SP 800-63-4 asks that the performance of the controls chosen in digital identity risk management be evaluated continuously, including their effect on the people using the service, not only on attackers (SP 800-63-4 §3, Digital Identity Risk Management, its "continuously evaluate and improve" step), and SP 800-63B-4 lets a verifier use risk signals to ask for more authentication. A risk check fails people in two ways: it lets an attack through (detection rate below 100%) and it challenges or blocks the account's owner (false-challenge rate above 0%). The second cost falls unevenly when a signal correlates with where people live, which network they use or which device they can afford, so both rates are shown for each group.</p>
<ul>
<li>Only logins with a correct password are decided by the risk check; failed passwords are not counted. "Challenged" means step-up or block.</li>
<li>Labels: "attack" (not the account's owner) or "legit". A labels file (the format of <code>idp label list --json</code> and the admin API's label listing) overrides the events' own labels.</li>
<li>Intervals: Wilson score 95% intervals. A small group's rate is uncertain: read the interval, not the rate.</li>
<li>Network type: the policy's Tor and VPN/proxy lists, its hosting networks (ASNs), a mobile carrier by the name of its network, otherwise residential or business; private addresses and addresses without a network apart. Device type and platform come from the User-Agent.</li>
<li>Groups are not demographic categories; a group far above the average is a lead to investigate (which factor fires for it, and whether it is avoidable), not a finding of bias on its own.</li>
</ul>`);
  return page('Risk check efficacy and fairness', parts.join('\n'), charts);
}

/**
 * The figures of the HTML reports on inputs small enough to check by hand: Wilson intervals
 * (values from Newcombe 1998, table I), the "far above" rule, the efficacy breakdowns, the
 * simulation report's buckets and baseline matrix, the labels file formats, escaping, and
 * the progress bar on a fake terminal.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Efficacy, isFarAbove, MAX_BUCKETS, networkKind, SimulationReport, wilson, type Dimension } from '../../policies/report.ts';
import type { CompiledLists } from '../../policies/signals.ts';
import type { ScoredEvent } from '../../policies/simulate.ts';
import type { LoginEvent } from '../../policies/event.ts';
import { efficacyReportHtml, esc, scriptJson } from '../../idp/report-html.ts';
import { progressBar, progressCount, formatDuration } from '../../idp/progress.ts';
import { readLabels } from '../../idp/cli-report.ts';
import { tempDir } from '../helpers/env.ts';

const near = (a: number, b: number, eps = 5e-4) => assert.ok(Math.abs(a - b) < eps, `${a} ≉ ${b}`);

describe('Wilson score interval', () => {
  it('matches the published values', () => {
    // Newcombe (1998) Table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605; 0/20 → 0–0.1611; 1/29 → 0.0061–0.1718.
    for (const [k, n, lo, hi] of [[81, 263, 0.2553, 0.3662], [15, 148, 0.0624, 0.1605], [0, 20, 0, 0.1611], [1, 29, 0.0061, 0.1718]] as const) {
      const r = wilson(k, n);
      near(r.lo, lo);
      near(r.hi, hi);
      near(r.rate, k / n, 1e-12);
    }
  });

  it('stays within [0, 1] at the ends and says nothing for an empty group', () => {
    assert.equal(wilson(0, 5).lo, 0);
    assert.equal(wilson(5, 5).hi, 1);
    assert.ok(wilson(5, 5).lo > 0.5);
    assert.deepEqual(wilson(0, 0), { k: 0, n: 0, rate: 0, lo: 0, hi: 1 });
  });
});

describe('"far above" the overall false-challenge rate', () => {
  const overall = wilson(50, 1000); // 5%
  it('needs twice the rate, a lower bound above the overall rate and a large enough group', () => {
    assert.equal(isFarAbove(wilson(30, 100), overall), true); // 30%, lower bound ≈ 21.9%
    assert.equal(isFarAbove(wilson(8, 100), overall), false); // 8%: under 2×
    assert.equal(isFarAbove(wilson(3, 20), overall), false); // 15% but 20 logins: too small
    // Twice the rate, yet the interval reaches down below 5%: could be chance.
    const wide = wilson(3, 30);
    assert.ok(wide.rate >= 0.1 && wide.lo < 0.05);
    assert.equal(isFarAbove(wide, overall), false);
    assert.equal(isFarAbove(wilson(10, 30), overall, { ratio: 2, minN: 30 }), true);
    assert.equal(isFarAbove(wilson(10, 30), overall, { ratio: 2, minN: 31 }), false);
  });
});

describe('efficacy breakdowns', () => {
  const g = (country: string, device = 'desktop'): Record<Dimension, string> => ({ country, network: 'residential_or_business', device, platform: 'Windows' });
  it('counts detections and false challenges per group and names the group far above', () => {
    const e = new Efficacy();
    // DE: 100 legitimate, 40 challenged (1 blocked); FR: 200 legitimate, 4 challenged; 10 attacks, 9 caught.
    for (let i = 0; i < 100; i += 1) e.add(g('DE'), 'legit', i < 39 ? 'step_up' : i === 39 ? 'block' : 'allow');
    for (let i = 0; i < 200; i += 1) e.add(g('FR', 'mobile'), 'legit', i < 4 ? 'step_up' : 'allow');
    for (let i = 0; i < 10; i += 1) e.add(g('FR'), 'attack', i < 9 ? 'block' : 'allow');
    e.add(g('FR'), undefined, 'allow');
    const d = e.toJSON();
    assert.deepEqual([d.overall.falseChallenge.k, d.overall.falseChallenge.n, d.overall.legitBlocked], [44, 300, 1]);
    assert.deepEqual([d.overall.detection.k, d.overall.detection.n, d.overall.attackBlocked], [9, 10, 9]);
    assert.equal(d.unlabelled, 1);
    const de = d.dimensions.country.find((x) => x.group === 'DE')!;
    assert.deepEqual([de.falseChallenge.k, de.falseChallenge.n, de.detection.n], [40, 100, 0]);
    assert.equal(de.farAbove, true); // 40% ≥ 2 × 14.7%, lower bound ≈ 30.9% > 14.7%
    assert.equal(d.dimensions.country.find((x) => x.group === 'FR')!.farAbove, false);
    // Every DE login came from a desktop: that group is far above too.
    assert.deepEqual(d.farAbove.map((x) => [x.dimension, x.group]), [['country', 'DE'], ['device', 'desktop']]);
    assert.deepEqual(d.dimensions.device.map((x) => [x.group, x.falseChallenge.n, x.falseChallenge.k]), [['mobile', 200, 4], ['desktop', 100, 40]]);
  });
});

describe('network type', () => {
  const lists = { tor: { check: () => false }, vpn: { check: () => false }, hostingAsns: new Set([16509]) } as unknown as CompiledLists;
  const kind = (asOrg: string, asn = 64500) => networkKind('198.51.100.7', { scope: 'public', country: 'US', asn, asOrg }, lists);
  it('names a carrier by a word of its network\'s name, not by letters inside another word', () => {
    for (const org of ['T-Mobile USA, Inc.', 'Sudanese Mobile Telephone (ZAIN) Co Ltd', 'Vodafone Libertel B.V.', 'Cellco Partnership DBA Verizon Wireless', 'AT&T Mobility LLC', 'TIM S/A', 'Reliance Jio Infocomm Limited']) {
      assert.equal(kind(org), 'mobile', org);
    }
    // ASN organisations seen in replayed events, named "mobile" by a substring before.
    for (const org of ['State Farm Mutual  Automobile Insurance Company', 'PSA AUTOMOBILES SA', 'Optimum Systems Ltd', 'Treethree Networks', 'Vivodrom GmbH']) {
      assert.equal(kind(org), 'residential_or_business', org);
    }
    assert.equal(kind('Amazon.com, Inc.', 16509), 'hosting');
  });
});

describe('the efficacy page', () => {
  it('draws no bar for a rate with nothing to measure (no legitimate logins, or no attacks, in the group)', () => {
    const e = new Efficacy();
    const g = (country: string): Record<Dimension, string> => ({ country, network: 'hosting', device: 'desktop', platform: 'Linux' });
    for (let i = 0; i < 5; i += 1) e.add(g('KZ'), 'attack', 'block');
    for (let i = 0; i < 40; i += 1) e.add(g('ID'), 'legit', 'allow');
    const html = efficacyReportHtml(e.toJSON(), {
      input: 'x.jsonl', generated: '2026-03-01T00:00:00Z', decisions: { kind: 'recorded' }, labels: { fromEvents: 45, fromFile: 0 },
      events: 45, decided: 45, undecided: 0, span: null,
    });
    const spec = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!) as { charts: { id: string; labels: string[]; datasets: { label: string; data: (number | null)[] }[] }[] };
    const country = spec.charts.find((c) => c.id === 'chart-country')!;
    const of = (group: string, dataset: string) => country.datasets.find((d) => d.label === dataset)!.data[country.labels.findIndex((l) => l.startsWith(group))];
    assert.equal(of('ID', 'detection rate'), null, 'no attacks: no detection rate, not 0%');
    assert.equal(of('ID', 'false-challenge rate'), 0);
    assert.equal(of('KZ', 'false-challenge rate'), null, 'no legitimate logins: no false-challenge rate, not 0%');
    assert.equal(of('KZ', 'detection rate'), 1);
  });
  it('says when the overall false-challenge rate is too high for any group to be far above it', () => {
    const page = (challenged: number) => {
      const e = new Efficacy();
      for (let i = 0; i < 100; i += 1) e.add({ country: 'SE', network: 'hosting', device: 'desktop', platform: 'Linux' }, 'legit', i < challenged ? 'step_up' : 'allow');
      return efficacyReportHtml(e.toJSON(), {
        input: 'x.jsonl', generated: '2026-03-01T00:00:00Z', decisions: { kind: 'recorded' }, labels: { fromEvents: 100, fromFile: 0 },
        events: 100, decided: 100, undecided: 0, span: null,
      });
    };
    assert.match(page(60), /this rule cannot name any group here/);
    assert.doesNotMatch(page(10), /this rule cannot name any group here/);
  });
});

describe('the simulation report figures', () => {
  const ev = (id: string, ts: string, clientId: string, extra: Partial<LoginEvent> = {}): LoginEvent => ({ id, ts, user: 'u', ip: '192.0.2.1', userAgent: '', success: true, clientId, ...extra });
  const scored = (id: string, decision: 'allow' | 'step_up' | 'block', score: number, label?: 'legit' | 'attack'): ScoredEvent => ({
    id, label, decision: { decision } as ScoredEvent['decision'],
    assessment: { score, level: score >= 0.6 ? 'high' : 'low', reasons: [{ factor: 'new_device', contribution: 0.1 }, ...(score >= 0.6 ? [{ factor: 'new_country', contribution: 0.5 }] : [])] } as unknown as ScoredEvent['assessment'],
  });

  it('buckets by hour over a short span, counts clients, countries, factors, scores and the baseline', () => {
    const r = new SimulationReport({ smallGroup: 2 });
    const place = { scope: 'public' as const, country: 'SE' };
    r.add(ev('a', '2026-03-01T10:05:00Z', 'web'), place, scored('a', 'allow', 0.05, 'legit'), scored('a', 'allow', 0.05));
    r.add(ev('b', '2026-03-01T10:55:00Z', 'web'), place, scored('b', 'step_up', 0.65, 'attack'), scored('b', 'allow', 0.3));
    r.add(ev('c', '2026-03-01T13:00:00Z', 'app'), { scope: 'public' }, scored('c', 'block', 0.99), scored('c', 'block', 0.99));
    r.add(ev('d', '2026-03-01T13:10:00Z', 'app', { success: false }), undefined, undefined, undefined);
    const d = r.toJSON();
    assert.equal(d.bucket, 'hour');
    assert.deepEqual(d.timeline.map((b) => [b.start.slice(11, 13), b.allow, b.step_up, b.block]), [['10', 1, 1, 0], ['11', 0, 0, 0], ['12', 0, 0, 0], ['13', 0, 0, 1]]);
    assert.deepEqual([d.events, d.scored], [4, 3]);
    assert.deepEqual(d.clients.rows.map((x) => [x.group, x.n, x.step_up, x.block, x.small]), [['web', 2, 1, 0, false], ['app', 1, 0, 1, true]]);
    assert.deepEqual(d.countries.rows.map((x) => x.group), ['SE', '(unknown)']);
    assert.deepEqual(d.factors.map((f) => [f.factor, f.fired]), [['new_device', 3], ['new_country', 2]]);
    near(d.factors[1]!.averageContribution, 0.5, 1e-9);
    assert.equal(d.scores.legit[1], 1); // 0.05 → bin 0.05–0.10
    assert.equal(d.scores.attack[13], 1); // 0.65 → bin 0.65–0.70
    assert.equal(d.scores.unlabelled[19], 1);
    assert.equal(d.baseline!.matrix.allow.step_up, 1);
    assert.equal(d.baseline!.changed, 1);
    assert.deepEqual(d.baseline!.sample.map((s) => [s.id, s.baseline, s.candidate]), [['b', 'allow', 'step_up']]);
  });

  it('buckets by day over more than three days, empty days included', () => {
    const r = new SimulationReport();
    r.add(ev('a', '2026-03-01T10:00:00Z', 'web'), undefined, scored('a', 'allow', 0.1));
    r.add(ev('b', '2026-03-05T23:00:00Z', 'web'), undefined, scored('b', 'allow', 0.1));
    const d = r.toJSON();
    assert.equal(d.bucket, 'day');
    assert.deepEqual(d.timeline.map((b) => [b.start.slice(0, 10), b.allow]), [['2026-03-01', 1], ['2026-03-02', 0], ['2026-03-03', 0], ['2026-03-04', 0], ['2026-03-05', 1]]);
    assert.equal(d.baseline, null);
  });

  it('keeps the timeline to a bounded number of buckets whatever the span (a stray timestamp years away)', () => {
    const r = new SimulationReport();
    r.add(ev('a', '0001-01-01T00:00:00Z', 'web'), undefined, scored('a', 'allow', 0.1));
    r.add(ev('b', '2026-03-05T23:00:00Z', 'web'), undefined, scored('b', 'step_up', 0.7));
    r.add(ev('c', '9999-12-31T23:00:00Z', 'web'), undefined, scored('c', 'block', 0.9));
    const d = r.toJSON();
    assert.ok(d.timeline.length <= MAX_BUCKETS, `${d.timeline.length} buckets`);
    assert.match(d.bucket, /^\d+ days$/);
    assert.deepEqual(['allow', 'step_up', 'block'].map((k) => d.timeline.reduce((s, b) => s + b[k as 'allow'], 0)), [1, 1, 1]);
    assert.equal(d.timeline[0]!.allow, 1);
    assert.equal(d.timeline.at(-1)!.block, 1);
  });
});

describe('escaping what comes from the data', () => {
  it('leaves no markup in HTML text and no way out of a script data block', () => {
    assert.equal(esc('<script>"x" & \'y\'</script>'), '&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;');
    const json = scriptJson({ a: '</script><!-- \u2028' });
    assert.doesNotMatch(json, /[<>\u2028]/);
    assert.deepEqual(JSON.parse(json), { a: '</script><!-- \u2028' });
  });
});

describe('labels files', () => {
  const write = (text: string) => {
    const f = path.join(tempDir(), 'labels');
    fs.writeFileSync(f, text);
    return f;
  };
  it('reads the admin API page, a JSON array and JSON lines', () => {
    const rec = (eventId: string, label: string) => ({ eventId, label, version: 1, actor: { kind: 'admin', id: 'x' }, at: '2026-03-01T00:00:00Z' });
    assert.deepEqual([...readLabels(write(JSON.stringify({ items: [rec('a', 'attack'), rec('b', 'legit')], next: null })))], [['a', 'attack'], ['b', 'legit']]);
    assert.deepEqual([...readLabels(write(JSON.stringify([rec('a', 'legit')])))], [['a', 'legit']]);
    assert.deepEqual([...readLabels(write(`${JSON.stringify(rec('a', 'attack'))}\n\n${JSON.stringify(rec('c', 'legit'))}\n`))], [['a', 'attack'], ['c', 'legit']]);
  });
  it('names the bad record', () => {
    assert.throws(() => readLabels(write('{"eventId":"a","label":"attack"}\nnot json\n')), /:2: not valid JSON/);
    assert.throws(() => readLabels(write(JSON.stringify({ items: [{ eventId: 'a', label: 'maybe' }] }))), /item 1: a label needs "eventId"/);
    assert.throws(() => readLabels(write('42')), /expected a JSON array/);
    assert.throws(() => readLabels('/nonexistent/labels.json'), /cannot read/);
    // One page of a longer listing: measuring on it would silently leave the rest out.
    assert.throws(() => readLabels(write(JSON.stringify({ items: [{ eventId: 'a', label: 'attack' }], next: 'a' }))), /one page of a longer listing.*idp label list --all --json/);
  });
});

describe('the progress bar', () => {
  const fake = (isTTY: boolean) => {
    const out: string[] = [];
    return { out, stream: { isTTY, write: (s: string) => { out.push(s); return true; } } };
  };
  it('draws the share, the count, the time and an estimate of what is left on a terminal', () => {
    const t = fake(true);
    let now = 0;
    const bar = progressBar('replay', 1000, { stream: t.stream, env: {}, now: () => now, unit: 'events' });
    now = 10_000;
    bar.update(250);
    now = 10_050; // within 200 ms of the last draw: skipped
    bar.update(300);
    now = 20_000;
    bar.update(500);
    bar.done();
    assert.equal(t.out.length, 3);
    assert.equal(t.out[0], `\r\x1b[2Kreplay [${'='.repeat(8)}${' '.repeat(22)}]  25%  250 events of 1,000 events  10 s, 30 s left`);
    assert.ok(t.out[1]!.endsWith(' 50%  500 events of 1,000 events  20 s, 20 s left'), t.out[1]!);
    assert.equal(t.out[2], '\r\x1b[2K');
  });
  it('shows bytes in MiB', () => {
    const t = fake(true);
    let now = 0;
    const bar = progressBar('read', 4 * 2 ** 20, { stream: t.stream, env: {}, now: () => now, unit: 'bytes' });
    now = 500;
    bar.update(2 ** 20);
    assert.ok(t.out[0]!.endsWith('1.0 MiB of 4.0 MiB  1 s'), t.out[0]!);
  });
  it('writes nothing on a pipe, under CI or with nothing to count', () => {
    for (const [isTTY, env, total] of [[false, {}, 10], [true, { CI: 'true' }, 10], [true, {}, 0]] as const) {
      const t = fake(isTTY);
      const bar = progressBar('x', total, { stream: t.stream, env, now: () => 1e6 });
      bar.update(5);
      bar.done();
      assert.deepEqual(t.out, []);
    }
  });
  it('fits the terminal\'s width, so a redraw never wraps onto a new line (an 80-column terminal filled with bars)', () => {
    const out: string[] = [];
    const stream = { isTTY: true, columns: 80, write: (s: string) => { out.push(s); return true; } };
    let now = 0;
    const bar = progressBar('synth', 720, { stream, env: {}, now: () => now, unit: 'hours of logins' });
    const count = progressCount('policy dry-run', { stream, env: {}, now: () => now, unit: 'events scored against the candidate' });
    now = 5_000;
    bar.update(239);
    count.update(123_456_789);
    assert.equal(out.length, 2);
    for (const line of out) {
      assert.ok(line.startsWith('\r\x1b[2K'));
      assert.ok(line.length - '\r\x1b[2K'.length <= 79, `${line.length - 5} columns: ${line}`);
    }
    assert.ok(out[0]!.includes('synth [') && out[0]!.includes(' 33%'), out[0]!);
  });
  it('counts work of unknown size with its pace, and not on a pipe', () => {
    const t = fake(true);
    let now = 0;
    const c = progressCount('events export', { stream: t.stream, env: {}, now: () => now, unit: 'events' });
    now = 2000;
    c.update(5000);
    c.done();
    assert.deepEqual(t.out, ['\r\x1b[2Kevents export  5,000 events  2 s, 2,500 events/s', '\r\x1b[2K']);
    const p = fake(false);
    progressCount('x', { stream: p.stream, env: {} }).update(1);
    assert.deepEqual(p.out, []);
  });
  it('formats durations', () => {
    assert.deepEqual([formatDuration(4.4), formatDuration(65), formatDuration(7380)], ['4 s', '1m 05s', '2h 03m']);
  });
});

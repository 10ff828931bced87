/**
 * The HTML reports (`idp simulate --report`, `idp report efficacy --out`) as a reader opens
 * them: from file:// in Chromium with every other request refused and counted (the files
 * must need no network at all), the charts drawn (Chart.js instances, pixels on every
 * canvas), the tables holding the numbers this test works out itself from the input and
 * the simulator's decisions.jsonl, no console or CSP error, an event with markup in its
 * fields shown as text and never run, axe clean in light and dark mode at phone and desktop
 * width, with screenshots in test/e2e/artifacts/.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { describeOrSkip, tempDir } from '../helpers/env.ts';
import { rulesOnlyPolicy } from '../helpers/policy.ts';
import { RUN_DEADLINE_MS } from '../helpers/process.ts';
import { chromiumMissing, launchChromium, openTab } from '../helpers/chromium.ts';
import { checkPage, PHONE, violationsOf } from '../helpers/axe.ts';
import { parseAgent } from '../../policies/ua.ts';
import type { LoginEvent } from '../../policies/event.ts';

const CLI = path.join(import.meta.dirname, '..', '..', 'idp', 'cli.js');
const DESKTOP = { width: 1280, height: 900 };

function idp(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent' }, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
];
const HOMES = ['81.2.69.142', '8.8.8.8', '1.1.1.1', '89.160.20.112', '175.16.199.1'];
const ATTACKERS = ['52.95.110.1', '185.220.101.1', '45.33.32.156'];
/** Markup in fields that come from data: it must be shown, never run. */
const EVIL_CLIENT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
const EVIL_ID = 'ev-</script><script>window.__pwned = 3</script>';

/** 30 users logging in daily from home for four days, attacks on ten of them, failed passwords. */
function history(): LoginEvent[] {
  const out: LoginEvent[] = [];
  let n = 0;
  const id = () => `ev${String((n += 1)).padStart(4, '0')}`;
  for (let d = 1; d <= 4; d += 1) {
    for (let u = 0; u < 30; u += 1) {
      const ts = `2026-03-0${d}T${String(7 + (u % 10)).padStart(2, '0')}:${String((u * 7) % 60).padStart(2, '0')}:00.000Z`;
      out.push({
        id: d === 4 && u === 3 ? EVIL_ID : id(), ts, user: `u${u}`, ip: HOMES[u % HOMES.length]!, userAgent: AGENTS[u % AGENTS.length]!, deviceId: `dev-${u}`,
        success: true, mfa: 'pass', label: 'legit', clientId: d === 3 && u < 5 ? EVIL_CLIENT : u % 3 === 0 ? 'mobile-app' : 'web', scope: 'openid',
      });
    }
  }
  for (let a = 0; a < 10; a += 1) {
    const ts = `2026-03-04T${String(18 + (a % 5)).padStart(2, '0')}:${String(a * 5).padStart(2, '0')}:00.000Z`;
    const ip = ATTACKERS[a % ATTACKERS.length]!;
    out.push({ id: id(), ts, user: `u${a * 3}`, ip, userAgent: AGENTS[(a + 1) % AGENTS.length]!, success: false, label: 'attack', attackType: 'naive', clientId: 'web' });
    out.push({ id: id(), ts: ts.replace(':00.000Z', ':30.000Z'), user: `u${a * 3}`, ip, userAgent: AGENTS[(a + 1) % AGENTS.length]!, success: true, mfa: 'fail', label: 'attack', attackType: 'naive', clientId: 'web' });
  }
  return out.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

/** A table's body rows (header cell first) by its caption. */
async function tableRows(page: Page, caption: string): Promise<string[][]> {
  return page.evaluate<string[][]>(`(() => {
    const t = [...document.querySelectorAll('table')].find((x) => x.caption && x.caption.textContent === ${JSON.stringify(caption)});
    if (!t) throw new Error('no table ' + ${JSON.stringify(caption)});
    return [...t.tBodies[0].rows].map((r) => [...r.cells].map((x) => x.textContent || ''));
  })()`);
}

const num = (s: string) => Number(s.replace(/,/g, ''));

/** Opens a report offline; returns the requests it tried to make besides its own file. */
async function openReport(browser: Browser, file: string, viewport: { width: number; height: number }) {
  const tab = await openTab(browser, { context: { viewport } });
  const url = pathToFileURL(file).href;
  const refused: string[] = [];
  await tab.context.route('**/*', (route) => {
    if (route.request().url() === url) return route.continue();
    refused.push(route.request().url());
    return route.abort();
  });
  await tab.page.goto(url);
  await tab.page.waitForFunction('Array.isArray(window.reportCharts)');
  return { ...tab, refused };
}

/** Every canvas has a Chart.js instance and drawn (non-transparent) pixels. */
async function chartsDrawn(page: Page): Promise<{ canvases: number; charts: number; blank: string[] }> {
  return page.evaluate<{ canvases: number; charts: number; blank: string[] }>(`(() => {
    const canvases = [...document.querySelectorAll('canvas')];
    const blank = canvases.filter((c) => {
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) return false;
      return true;
    }).map((c) => c.id);
    return { canvases: canvases.length, charts: window.reportCharts.length, blank };
  })()`);
}

describeOrSkip(chromiumMissing, 'the HTML reports, offline in Chromium', () => {
  let browser: Browser;
  let dir: string;
  let events: LoginEvent[];
  let decisions: Map<string, string>;
  let changes: { id: string; baseline: string; candidate: string }[];

  before(async () => {
    dir = tempDir();
    events = history();
    const file = path.join(dir, 'events.jsonl');
    fs.writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
    // Candidate: a medium-risk login steps up; baseline: it is allowed. Rules only, so quick.
    const candidate = rulesOnlyPolicy((f) => { f.assurance.default = { low: 'aal1', medium: 'aal2', high: 'aal2', critical: 'block' }; });
    const baseline = rulesOnlyPolicy((f) => { f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal2', critical: 'block' }; });
    const sim = await idp(['simulate', '--events', file, '--policy', candidate, '--baseline-policy', baseline, '--out', path.join(dir, 'out'), '--report', path.join(dir, 'simulation.html')]);
    assert.equal(sim.code, 0, sim.stderr);
    const eff = await idp(['report', 'efficacy', '--events', file, '--policy', candidate, '--out', path.join(dir, 'efficacy.html'), '--json', path.join(dir, 'efficacy.json')]);
    assert.equal(eff.code, 0, eff.stderr);
    decisions = new Map(fs.readFileSync(path.join(dir, 'out', 'decisions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; decision: string }).map((l) => [l.id, l.decision]));
    changes = fs.readFileSync(path.join(dir, 'out', 'changes.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
  });

  it('the simulation report: offline, charts drawn, the numbers of the input, markup shown as text', async () => {
    // The test's own sums: per client from the input and decisions.jsonl.
    const byClient = new Map<string, { n: number; step_up: number; block: number }>();
    for (const e of events) {
      const d = decisions.get(e.id);
      if (!d) continue;
      const c = byClient.get(e.clientId ?? '(none)') ?? { n: 0, step_up: 0, block: 0 };
      c.n += 1;
      if (d === 'step_up' || d === 'block') c[d] += 1;
      byClient.set(e.clientId ?? '(none)', c);
    }
    assert.ok(changes.length > 0 && [...decisions.values()].includes('step_up'), 'the input gives step-ups and changes to look at');
    for (const viewport of [PHONE, DESKTOP]) {
      const tab = await openReport(browser, path.join(dir, 'simulation.html'), viewport);
      try {
        const { page } = tab;
        assert.deepEqual(tab.refused, []);
        const drawn = await chartsDrawn(page);
        assert.ok(drawn.canvases >= 6, `${drawn.canvases} charts`);
        assert.equal(drawn.charts, drawn.canvases);
        assert.deepEqual(drawn.blank, []);
        const clients = await tableRows(page, 'Challenge rate by client');
        assert.equal(clients.length, byClient.size);
        for (const [name, c] of byClient) {
          const row = clients.find((r) => r[0]!.replace(/ \(small group\)$/, '') === name);
          assert.ok(row, `a row for ${name}`);
          assert.deepEqual([num(row[1]!), num(row[2]!), num(row[3]!)], [c.n, c.step_up, c.block], name);
        }
        const matrix = await tableRows(page, 'Decisions: baseline (rows) against candidate (columns)');
        const allowToStepUp = changes.filter((c) => c.baseline === 'allow' && c.candidate === 'step_up').length;
        assert.equal(num(matrix[0]![2]!), allowToStepUp);
        const total = matrix.reduce((s, r) => s + r.slice(1).reduce((t, x) => t + num(x), 0), 0);
        assert.equal(total, decisions.size);
        const sample = await tableRows(page, `Changed logins (the first ${Math.min(25, changes.length)}; all of them are in changes.jsonl)`);
        assert.deepEqual(sample.map((r) => r[0]), changes.slice(0, 25).map((c) => c.id));
        // Markup from the data is text on the page, never a script or an element.
        assert.equal(await page.evaluate('window.__pwned'), undefined);
        assert.equal(await page.locator('img[src="x"]').count(), 0);
        assert.ok(clients.some((r) => r[0]!.startsWith(EVIL_CLIENT)), 'the client id shown as written');
        assert.ok((await page.textContent('body'))!.includes('policy'));
        const name = `report-simulate-${viewport.width}`;
        const checked = await checkPage(page, name);
        assert.deepEqual(violationsOf(checked), []);
        assert.deepEqual(tab.problems, []);
        assert.deepEqual(tab.refused, []);
      } finally {
        await tab.context.close();
      }
    }
  });

  it('the efficacy report: offline, charts drawn, detection and false challenges as the test counts them', async () => {
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'efficacy.json'), 'utf8'));
    const flagged = (e: LoginEvent) => decisions.get(e.id) !== 'allow';
    const decided = events.filter((e) => decisions.has(e.id));
    const legit = decided.filter((e) => e.label === 'legit');
    const attacks = decided.filter((e) => e.label === 'attack');
    assert.deepEqual([json.overall.falseChallenge.n, json.overall.falseChallenge.k], [legit.length, legit.filter(flagged).length]);
    assert.deepEqual([json.overall.detection.n, json.overall.detection.k], [attacks.length, attacks.filter(flagged).length]);
    assert.equal(json.decisions.kind, 'replayed');
    const byDevice = new Map<string, { legit: number; fc: number; attacks: number; detected: number }>();
    for (const e of decided) {
      const k = parseAgent(e.userAgent).device;
      const c = byDevice.get(k) ?? { legit: 0, fc: 0, attacks: 0, detected: 0 };
      if (e.label === 'legit') { c.legit += 1; c.fc += flagged(e) ? 1 : 0; } else { c.attacks += 1; c.detected += flagged(e) ? 1 : 0; }
      byDevice.set(k, c);
    }
    for (const viewport of [PHONE, DESKTOP]) {
      const tab = await openReport(browser, path.join(dir, 'efficacy.html'), viewport);
      try {
        const { page } = tab;
        assert.deepEqual(tab.refused, []);
        const drawn = await chartsDrawn(page);
        assert.equal(drawn.canvases, 4);
        assert.equal(drawn.charts, 4);
        assert.deepEqual(drawn.blank, []);
        const overall = await tableRows(page, 'Overall');
        assert.deepEqual([num(overall[0]![1]!), num(overall[0]![2]!)], [attacks.length, attacks.filter(flagged).length]);
        assert.deepEqual([num(overall[1]![1]!), num(overall[1]![2]!)], [legit.length, legit.filter(flagged).length]);
        const devices = await tableRows(page, 'By device type');
        assert.equal(devices.length, byDevice.size);
        for (const [k, c] of byDevice) {
          const row = devices.find((r) => r[0]!.split(' (')[0] === k);
          assert.ok(row, `a row for ${k}`);
          assert.deepEqual([num(row[1]!), num(row[2]!), num(row[5]!), num(row[6]!)], [c.legit, c.fc, c.attacks, c.detected], k);
        }
        assert.match((await page.textContent('body'))!, /replayed through policy [0-9a-f]{12}/);
        assert.match((await page.textContent('body'))!, /SP 800-63-4/);
        const checked = await checkPage(page, `report-efficacy-${viewport.width}`);
        assert.deepEqual(violationsOf(checked), []);
        assert.deepEqual(tab.problems, []);
        assert.deepEqual(tab.refused, []);
      } finally {
        await tab.context.close();
      }
    }
  });
});

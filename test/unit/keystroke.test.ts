/**
 * Keystroke and pointer detectors (policies/keystroke.ts), their evaluation on the CMU
 * keystroke benchmark's procedure (policies/keystroke-eval.ts) and `idp keystroke eval`.
 * Small synthetic templates show what each detector must do; the real CMU data (beside the
 * repository, ../shared/data/cmu-keystroke, as in CI) shows the published figures and ours.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { calibrated, DETECTOR_NAMES, DETECTORS, keystrokeVector, POINTER_DETECTOR, pointerVector, templateScore, type Detector, type Vector } from '../../policies/keystroke.ts';
import { equalErrorRate, evaluateDetector, farAtFrr, fireRates, fitCalibration, roc, SPLITS } from '../../policies/keystroke-eval.ts';
import { Rng } from '../../policies/synth.ts';
import { readCmuCsv } from '../../idp/cli-keystroke.ts';
import { emptyIpHistory, emptyUserHistory, observe } from '../../policies/history.ts';
import { loadPolicy } from '../../policies/policy.ts';
import { scoreLogin } from '../../policies/score.ts';
import { computeSignals } from '../../policies/signals.ts';
import type { Keystroke } from '../../policies/behaviour.ts';
import type { LoginContext } from '../../policies/types.ts';
import { parseAgent } from '../../policies/ua.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { describeOrSkip, tempDir } from '../helpers/env.ts';
import { runNode, type RunResult } from '../helpers/process.ts';

const DIST = path.join(import.meta.dirname, '..', '..');
const ROOT = path.join(DIST, '..');
const BIN = path.join(DIST, 'idp', 'bin.js');
/** The benchmark data lives beside the repository (CI clones it there). */
const CMU = path.join(ROOT, '..', 'shared', 'data', 'cmu-keystroke', 'DSL-StrongPasswordData.csv');
const CMU_MISSING = fs.existsSync(CMU) ? false : `the CMU keystroke data is not at ${CMU}`;

/** A typist: per-feature means (seconds) and multiplicative noise, like real timings. */
function typist(rng: Rng, d: number, spread = 0.15) {
  const means = Array.from({ length: d }, (_, i) => (i % 3 === 2 ? 0.03 : 0.08) + rng.next() * 0.2);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  return { means, sample: (shift = 0): number[] => means.map((m) => m * Math.exp(spread * gauss() + shift)) };
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

describe('detectors on synthetic templates', () => {
  const rng = new Rng(8);
  const user = typist(rng, 31);
  const template = Array.from({ length: 30 }, () => user.sample());
  const genuine = Array.from({ length: 200 }, () => user.sample());
  // Impostors: other typists (their own means), and the user's rhythm played 40% slower.
  const impostors = [...Array.from({ length: 100 }, () => typist(rng, 31).sample()), ...Array.from({ length: 100 }, () => user.sample(Math.log(1.4)))];

  for (const name of DETECTOR_NAMES) {
    it(`${name}: tells the user's samples from other typists' and from a slowed copy`, () => {
      const f = DETECTORS[name].fit(template);
      const g = genuine.map((x) => f.anomaly(x));
      const i = impostors.map((x) => f.anomaly(x));
      assert.ok(g.every((a) => a >= 0 && Number.isFinite(a)));
      assert.ok(mean(i) > 1.3 * mean(g), `impostors ${mean(i)} vs genuine ${mean(g)}`);
      assert.ok(equalErrorRate(g, i) < 0.05, `EER ${equalErrorRate(g, i)}`);
    });
  }

  it('scaled_manhattan is the paper\'s: Σ |x − mean| / mean absolute deviation', () => {
    const t = [[1, 10], [3, 10], [2, 16]]; // means 2, 12; mean absolute deviations 2/3, 8/3
    const f = DETECTORS.scaled_manhattan.fit(t);
    assert.ok(Math.abs(f.anomaly([4, 4]) - (2 / (2 / 3) + 8 / (8 / 3))) < 1e-12);
    // Left out: the first sample against the mean of the other two (2.5, 13).
    assert.ok(Math.abs(f.ownAnomalies()[0]! - (1.5 / (2 / 3) + 3 / (8 / 3))) < 1e-12);
  });

  it('nearest_neighbour: one wild feature (a pause) counts as little as a clipped deviation; scaled_manhattan lets it dominate', () => {
    const paused = user.sample();
    paused[4] = paused[4]! * 30; // a 30-times-longer keydown→keydown at one position
    const slowed = user.sample(Math.log(1.4));
    const nn = DETECTORS.nearest_neighbour.fit(template);
    const sm = DETECTORS.scaled_manhattan.fit(template);
    assert.ok(nn.anomaly(paused) < nn.anomaly(slowed), 'a pause is less unlike the user than another rhythm');
    assert.ok(sm.anomaly(paused) > sm.anomaly(slowed), 'the baseline is dominated by the one feature');
  });

  it('nearest_neighbour: ownAnomalies leave each sample out of its own neighbours', () => {
    const f = DETECTORS.nearest_neighbour.fit(template);
    const own = f.ownAnomalies();
    assert.equal(own.length, template.length);
    for (let j = 0; j < template.length; j += 1) {
      // Against the whole template the sample is its own nearest neighbour (distance 0).
      assert.ok(own[j]! > f.anomaly(template[j]!), `sample ${j}`);
    }
    const outlier = [...template.slice(0, 29), user.sample(Math.log(2))];
    const o = DETECTORS.nearest_neighbour.fit(outlier).ownAnomalies();
    assert.equal(o.indexOf(Math.max(...o)), 29, 'the odd sample out is the least like the rest');
  });

  it('nearest_neighbour: small and degenerate templates give finite anomalies', () => {
    const same = Array.from({ length: 5 }, () => [0.1, 0.2, -0.01, 0.1]);
    const f = DETECTORS.nearest_neighbour.fit(same);
    assert.equal(f.anomaly([0.1, 0.2, -0.01, 0.1]), 0);
    assert.ok(Number.isFinite(f.anomaly([0.5, 0, 0.3, 2])) && f.anomaly([0.5, 0, 0.3, 2]) > 0);
    assert.deepEqual(DETECTORS.nearest_neighbour.fit([[0.1, 0.2, 0.1, 0.1]]).ownAnomalies(), []);
  });
});

describe('templateScore', () => {
  const rng = new Rng(21);
  const user = typist(rng, 31);
  const template = Array.from({ length: 30 }, () => user.sample());
  const pointerUser = () => Array.from({ length: 8 }, (_, i) => 0.5 + i * 0.1 + (rng.next() - 0.5) * 0.1);
  const pointerTemplate = Array.from({ length: 30 }, pointerUser);

  /** `away(x, t)`: x moved by t (0 … 1: from typical to far); for keystrokes, all timings × e^(0.6 t). */
  type Case = [name: string, detector: Detector, template: Vector[], sample: () => number[], centre: number[], away: (x: number[], t: number) => number[]];
  const cases: Case[] = [
    ...DETECTOR_NAMES.map((n): Case => [n, DETECTORS[n], template, () => user.sample(), user.means, (x, t) => x.map((v) => v * Math.exp(0.6 * t))]),
    ['pointer', POINTER_DETECTOR, pointerTemplate, pointerUser, Array.from({ length: 8 }, (_, i) => 0.5 + i * 0.1), (x, t) => x.map((v) => v + 0.15 * t)],
  ];
  for (const [name, detector, t, sample, centre, away] of cases) {
    it(`${name}: in [0, 1], low for the user, near 1 far away, rising smoothly with distance`, () => {
      const own = Array.from({ length: 100 }, () => templateScore(detector, t, sample()));
      assert.ok(own.every((s) => s >= 0 && s <= 1));
      assert.ok(mean(own) < 0.5, `the user's own samples: mean ${mean(own)}`);
      const far = templateScore(detector, t, away(centre, 2));
      assert.ok(far > 0.95, `far away: ${far}`);
      // Rising as a sample moves away from the user's typical one, on a continuous scale
      // (a percentile of 30 samples would take at most 31 values).
      const steps = [0, 0.25, 0.5, 0.75, 1, 2].map((d) => templateScore(detector, t, away(centre, d)));
      for (let i = 1; i < steps.length; i += 1) assert.ok(steps[i]! >= steps[i - 1]!, `rising: ${steps.join(' ')}`);
      const fine = Array.from({ length: 60 }, (_, i) => templateScore(detector, t, away(centre, i / 60)));
      assert.ok(new Set(fine.map((s) => s.toFixed(6))).size > 40, 'a continuous score');
      assert.ok(fine.every((s) => s >= 0 && s <= 1));
    });
  }

  it('no template, no score: fewer than 2 samples give 0', () => {
    assert.equal(templateScore(DETECTORS.nearest_neighbour, [], user.sample()), 0);
    assert.equal(templateScore(DETECTORS.nearest_neighbour, [user.sample()], user.sample()), 0);
  });

  it('calibration: 0 at ratio 0, 1 at an infinite ratio, increasing in between', () => {
    const c = DETECTORS.nearest_neighbour.calibration;
    assert.equal(calibrated(0, 30, c), 0);
    assert.equal(calibrated(Infinity, 30, c), 1);
    assert.ok(calibrated(1, 30, c) < calibrated(1.3, 30, c) && calibrated(1.3, 30, c) < calibrated(2, 30, c));
  });
});

describe('keystrokeVector and pointerVector', () => {
  it('lays a sample out in the CMU column order, in seconds: H, DD, UD per key, then the last H', () => {
    assert.deepEqual(keystrokeVector({ hold: [100, 90, 80], dd: [250, 300], ud: [150, 210] }), [0.1, 0.25, 0.15, 0.09, 0.3, 0.21, 0.08]);
  });

  it('pointerVector has the 8 features, finite for extreme summaries', () => {
    const v = pointerVector({ moves: 1, distance: 0, duration: 0, speedMean: 0, speedSd: 0, accelMean: 0, curvatureMean: 0, straightness: 0, pauses: 0, clicks: 0, clickDwellMean: 0 });
    assert.equal(v.length, 8);
    assert.ok(v.every(Number.isFinite));
  });
});

describe('ROC, equal-error rate, FAR at a given FRR', () => {
  it('EER: a threshold with one genuine sample rejected and one impostor accepted of four each', () => {
    assert.equal(equalErrorRate([0.1, 0.2, 0.3, 0.4], [0.35, 0.5, 0.6, 0.7]), 0.25);
  });

  it('EER interpolates between ROC points; ties move together', () => {
    // ROC (0, 1/2) → (1/4, 1/2) → (1/4, 0): crosses FRR = FAR at 1/4.
    assert.equal(equalErrorRate([1, 2, 3, 4], [3.5, 5]), 0.25);
    // A genuine and an impostor sample tie: (0, 1/2) → (1/2, 0), the diagonal at 1/4.
    assert.deepEqual(roc([1, 2], [2, 3]), [[0, 1], [0, 0.5], [0.5, 0], [1, 0]]);
    assert.equal(equalErrorRate([1, 2], [2, 3]), 0.25);
  });

  it('EER 0 when the classes separate, 1 when every impostor looks more typical than the user', () => {
    assert.equal(equalErrorRate([1, 2], [3, 4]), 0);
    assert.equal(equalErrorRate([3, 4], [1, 2]), 1);
  });

  it('FAR at 5% FRR: interpolated, and the lowest FAR at exactly that FRR', () => {
    const genuine = Array.from({ length: 10 }, (_, i) => i + 1);
    // ROC (0, 1) → (0.1, 1) → (0.1, 0): at 5% FRR every impostor passes; at 10% none does.
    assert.equal(farAtFrr(genuine, [9.5], 0.05), 1);
    assert.equal(farAtFrr(genuine, [9.5], 0.1), 0);
    // ROC (0, 1) → (0, 0.5) → (0.1, 0.5) …: half the impostors pass at 5% FRR.
    assert.equal(farAtFrr(genuine, [5.5, 20], 0.05), 0.5);
    // A tie at 10: (0, 1) → (0.1, 0.5) → …: halfway along the segment, 0.75.
    assert.equal(farAtFrr(genuine, [10, 0], 0.05), 0.75);
  });
});

function oneLineError(r: RunResult, code: number, re: RegExp) {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

const idp = (args: string[]) => runNode([BIN, ...args], { env: { PATH: process.env.PATH ?? '' } });

describeOrSkip(CMU_MISSING, 'the CMU keystroke benchmark', () => {
  it('the CSV header is keystrokeVector\'s order: a CMU row read as a sample gives back the row', () => {
    const [header, row] = fs.readFileSync(CMU, 'utf8').split('\r\n');
    const cols = header!.split(',').slice(3);
    const vals = row!.split(',').slice(3).map(Number);
    const ms = (kind: string) => cols.flatMap((c, i) => (c.split('.')[0] === kind ? [Math.round(vals[i]! * 10000) / 10] : []));
    const v = keystrokeVector({ hold: ms('H'), dd: ms('DD'), ud: ms('UD') });
    assert.equal(v.length, vals.length);
    v.forEach((x, i) => assert.ok(Math.abs(x - vals[i]!) < 1e-9, `${cols[i]}: ${x} vs ${vals[i]}`));
  });

  it('`idp keystroke eval` on 3 subjects: the table, the JSON, and one-line errors', async () => {
    const dir = tempDir('idp-keystroke-');
    const lines = fs.readFileSync(CMU, 'utf8').split('\r\n');
    // Header and the 3 × 400 rows of the first three subjects, CRLF as published.
    const small = path.join(dir, 'three.csv');
    fs.writeFileSync(small, `${lines.slice(0, 1 + 3 * 400).join('\r\n')}\r\n`);

    const text = await idp(['keystroke', 'eval', '--data', small]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /3 subjects, protocol split/);
    assert.match(text.stdout, /^scaled_manhattan\s+200 reps\s+0\.\d{3}\s+0\.\d{3}\s+0\.\d{3}$/m);
    assert.match(text.stdout, /^nearest_neighbour\s+newest 30\s+0\.\d{3}/m);
    assert.match(text.stdout, /^paper: scaled Manh\.\s+200 reps\s+0\.096\s+0\.069$/m);
    assert.match(text.stdout, /fires above 0\.9:/, 'the shipped policy\'s threshold');
    assert.equal(text.stderr, '', 'no progress output off a terminal');

    const json = await idp(['keystroke', 'eval', '--data', small, '--detectors', 'nearest_neighbour', '--above', '0.5', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as { subjects: number; results: { detector: string; template: number | 'all'; eer: { mean: number } }[]; live: { above: number; template: number }[] };
    assert.equal(out.subjects, 3);
    assert.deepEqual(out.results.map((r) => [r.detector, r.template]), [['nearest_neighbour', 'all'], ['nearest_neighbour', 30]]);
    assert.ok(out.results.every((r) => r.eer.mean >= 0 && r.eer.mean < 0.2), JSON.stringify(out.results));
    assert.deepEqual(out.live.map((l) => [l.template, l.above]), [[10, 0.5], [30, 0.5]]);

    const wrongHeader = path.join(dir, 'wrong.csv');
    fs.writeFileSync(wrongHeader, `subject,sessionIndex,rep,DD.a.b,H.a\r\n${lines[1]}\r\n`);
    const short = path.join(dir, 'short.csv');
    fs.writeFileSync(short, `${lines.slice(0, 1 + 400 + 150).join('\r\n')}\r\n`);
    const broken = path.join(dir, 'broken.csv');
    fs.writeFileSync(broken, `${lines[0]}\r\n${lines[1]}\r\n${lines[2]!.replace(/,[^,]*$/, ',x')}\r\n`);
    // Independent processes: run together.
    const errors: [string[], number, RegExp][] = [
      [['--data', path.join(dir, 'missing.csv')], 1, /cannot read .*missing\.csv/],
      [['--data', wrongHeader], 1, /not the CMU keystroke data/],
      [['--data', broken], 1, /broken\.csv:3: expected a subject and numbers/],
      [['--data', short], 1, /subject s003 has 150 repetitions; the protocol split needs at least 201/],
      [['--data', small, '--detectors', 'svm'], 1, /unknown detector "svm"/],
      [['--data', small, '--split', 'test'], 1, /--split: "test" is not one of protocol, cv/],
      [['--data', small, '--above', '2'], 1, /--above: a score between 0 and 1/],
      [[], 2, /--data is required/],
    ];
    const results = await Promise.all(errors.map(([args]) => idp(['keystroke', 'eval', ...args])));
    results.forEach((r, i) => oneLineError(r, errors[i]![1], errors[i]![2]));
    oneLineError(await idp(['keystroke', 'train', '--data', small]), 2, /unknown command "keystroke train"/);
  });

  it('through the engine: templates from trusted logins; the user\'s later logins rarely fire keystroke_anomaly, other typists\' mostly do', () => {
    const policy = loadPolicy(makePolicyDir());
    const subjects = readCmuCsv(CMU);
    /** A CMU repetition as the login page's sample (ms, rounded as the script rounds). */
    const sample = (v: Vector): Keystroke => {
      const pick = (from: number) => v.filter((_, i) => i % 3 === from).map((x) => Math.round(x * 1000));
      const hold = pick(0);
      const ud = pick(2);
      return { hold, dd: ud.map((u, i) => hold[i]! + u), ud };
    };
    const agent = parseAgent('Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0');
    const T0 = Date.parse('2026-03-02T09:00:00Z');
    const ctx = (i: number, v: Vector): LoginContext => ({
      ts: T0 + i * 3_600_000, user: 'u1', ip: '10.0.0.7', place: { scope: 'private' }, agent, deviceId: 'd1', scopes: ['openid'],
      behaviour: { v: 1, keystroke: sample(v) },
    });
    const fires = (user: ReturnType<typeof emptyUserHistory>, c: LoginContext) =>
      scoreLogin(c, computeSignals(c, user, emptyIpHistory(), policy.risk, policy.lists), policy).reasons.some((r) => r.factor === 'keystroke_anomaly');
    let own = 0;
    let others = 0;
    let ownN = 0;
    let othersN = 0;
    for (const s of subjects.slice(0, 10)) {
      const user = emptyUserHistory();
      const ip = emptyIpHistory();
      // 30 trusted low-risk logins (repetitions 171-200) build the template.
      s.reps.slice(170, 200).forEach((v, i) => observe(user, ip, ctx(i, v), { kind: 'password_ok', decision: 'allow', level: 'low' }, policy.risk));
      assert.equal(user.keystroke?.samples.length, 30);
      for (const v of s.reps.slice(200, 400).filter((_, i) => i % 10 === 0)) { ownN += 1; if (fires(user, ctx(100, v))) own += 1; }
      for (const o of subjects.filter((x) => x !== s)) { othersN += 1; if (fires(user, ctx(100, o.reps[0]!))) others += 1; }
    }
    assert.ok(own / ownN <= 0.05, `the user's own later logins fired ${own} of ${ownN}`);
    assert.ok(others / othersN >= 0.6, `other typists fired ${others} of ${othersN}`);
  });

  it('the full protocol (51 subjects): scaled Manhattan as published, nearest_neighbour ≤ 0.080; shipped calibration and threshold as fitted', () => {
    const subjects = readCmuCsv(CMU);
    assert.equal(subjects.length, 51);
    assert.ok(subjects.every((s) => s.reps.length === 400 && s.reps.every((r) => r.length === 31)));
    const sm = evaluateDetector(subjects, DETECTORS.scaled_manhattan);
    const nn = evaluateDetector(subjects, DETECTORS.nearest_neighbour);
    // Killourhy & Maxion (2009), Table 2: 0.096 (sd 0.069).
    assert.ok(sm.eer.mean >= 0.09 && sm.eer.mean <= 0.10, `scaled Manhattan ${sm.eer.mean}`);
    assert.ok(Math.abs(sm.eer.sd - 0.069) < 0.005, `sd ${sm.eer.sd}`);
    assert.ok(nn.eer.mean <= 0.080, `nearest_neighbour ${nn.eer.mean}`);
    assert.ok(nn.farAt5.mean < sm.farAt5.mean);

    // The calibration in keystroke.ts is what the cross-validation split (training
    // repetitions only) gives: a change to a detector must refit it.
    for (const name of DETECTOR_NAMES) {
      const fitted = fitCalibration(subjects, DETECTORS[name], { split: SPLITS.cv, templates: [10, 20, 30] });
      const shipped = DETECTORS[name].calibration;
      for (const k of ['slope', 'offset', 'size'] as const) assert.ok(Math.abs(fitted[k] - shipped[k]) < 0.01, `${name} ${k}: fitted ${fitted[k]}, shipped ${shipped[k]}`);
    }
    // At the shipped threshold (risk.yml keystroke_anomaly.above 0.9), on the test repetitions:
    // few of the user's own logins fire, most of other typists' do (README table).
    for (const template of [10, 30]) {
      const r = fireRates(subjects, DETECTORS.nearest_neighbour, { template, above: 0.9 });
      assert.ok(r.genuineFires < 0.04 && r.impostorFires > 0.6, JSON.stringify(r));
      assert.ok(r.genuineMedian < 0.5 && r.impostorMedian > 0.9, JSON.stringify(r));
    }
  });
});

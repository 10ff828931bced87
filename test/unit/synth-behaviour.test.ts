/**
 * The synthetic world's typing and pointer models (policies/synth-behaviour.ts): the CMU
 * benchmark's file read as the page's script would have measured it, and parametric samples
 * that the server would accept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keystrokeSchema, pointerSchema } from '../../policies/behaviour.ts';
import { DETECTORS, keystrokeVector, pointerVector, templateScore } from '../../policies/keystroke.ts';
import {
  cmuTypist, keystrokeOf, makeMouse, movePointer, parametricTypist, parseCmuKeystrokes, passwordShape, randomThumbprint, selectSubjects,
} from '../../policies/synth-behaviour.ts';
import { Rng } from '../../policies/synth.ts';

const HEADER = 'subject,sessionIndex,rep,H.a,DD.a.b,UD.a.b,H.b,DD.b.c,UD.b.c,H.c,DD.c.d,UD.c.d,H.d';
/** The last pair and key of a row: keydown→keydown 0.2 s, hold 0.1 s. */
const TAIL = '0.2000,0.1000,0.1000';

describe('CMU keystroke file', () => {
  it('reads seconds as whole milliseconds, keydown→keydown = hold + keyup→keydown, in recorded order', () => {
    const csv = [HEADER,
      `s002,1,2,0.1000,0.3000,0.2000,0.0800,0.2500,0.1700,0.0900,${TAIL}`,
      `s002,1,1,0.1491,0.3979,0.2488,0.1069,0.1674,0.0605,0.1169,${TAIL}`,
      `s003,1,1,0.0900,0.0500,-0.0400,0.0700,6.1000,6.0300,0.0800,${TAIL}`,
      `s003,2,1,0.0900,0.2000,0.1100,0.0700,0.3000,0.2300,0.0800,${TAIL}`,
    ].join('\r\n');
    const data = parseCmuKeystrokes(csv);
    assert.equal(data.positions, 4);
    assert.deepEqual(data.subjects, ['s002', 's003']);
    // Sorted by session and repetition; UD is the difference of the rounded times (248.8 → 249).
    assert.deepEqual(data.reps.get('s002')![0], { hold: [149, 107, 117, 100], dd: [398, 167, 200], ud: [249, 60, 83] });
    assert.deepEqual(data.reps.get('s002')![1], { hold: [100, 80, 90, 100], dd: [300, 250, 200], ud: [200, 170, 110] });
    // A pause beyond the 5 s the server accepts: no sample (the script sends none either).
    assert.equal(data.reps.get('s003')![0], undefined);
    assert.deepEqual(data.reps.get('s003')![1], { hold: [90, 70, 80, 100], dd: [200, 300, 200], ud: [110, 230, 120] });
  });

  it('keeps overlapping keys (keyup→keydown below zero)', () => {
    const k = parseCmuKeystrokes(`${HEADER}\ns002,1,1,0.0900,0.0500,-0.0400,0.0700,0.1000,0.0300,0.0800,${TAIL}`).reps.get('s002')![0]!;
    assert.deepEqual(k, { hold: [90, 70, 80, 100], dd: [50, 100, 200], ud: [-40, 30, 120] });
    assert.ok(keystrokeSchema.safeParse(k).success);
  });

  it('names the line of a malformed file', () => {
    assert.throws(() => parseCmuKeystrokes('subject,rep,H.a\ns002,1,0.1'), /line 1: not the CMU benchmark header/);
    assert.throws(() => parseCmuKeystrokes(`${HEADER}\ns002,1,1,0.1,0.2,0.1,0.1,0.2,0.1,0.1,${TAIL}\ns002,1,2,0.1,abc,0.1,0.1,0.2,0.1,0.1,${TAIL}`), /line 3: expected a subject and 12 numbers/);
    assert.throws(() => parseCmuKeystrokes(`${HEADER}\ns002,1,1,0.1,0.2`), /line 2/);
    assert.throws(() => parseCmuKeystrokes(HEADER), /no repetitions/);
  });

  it('selects subjects by id and inclusive range, at least two', () => {
    const rows = ['s002', 's003', 's004', 's005'].map((s) => `${s},1,1,0.1,0.2,0.1,0.1,0.2,0.1,0.1,${TAIL}`);
    const data = parseCmuKeystrokes([HEADER, ...rows].join('\n'));
    assert.deepEqual(selectSubjects(data, 's003-s004').subjects, ['s003', 's004']);
    assert.deepEqual(selectSubjects(data, 's005, s002').subjects, ['s002', 's005']);
    assert.throws(() => selectSubjects(data, 's004-s003'), /empty range "s004-s003"/);
    assert.throws(() => selectSubjects(data, 's099'), /unknown subject/);
    assert.throws(() => selectSubjects(data, 's002'), /at least two subjects/);
  });

  it('types a subject\'s repetitions in order, turning back at the end', () => {
    const rows = [1, 2, 3, 4].map((r) => `s002,1,${r},0.${r}00,0.5,0.${5 - r}00,0.1,0.2,0.1,0.1,${TAIL}`);
    const data = parseCmuKeystrokes([HEADER, ...rows, `s003,1,1,0.1,0.2,0.1,0.1,0.2,0.1,0.1,${TAIL}`].join('\n'));
    const t = cmuTypist(data, 's002', 2);
    const rng = new Rng(1);
    const order = Array.from({ length: 8 }, () => t.type(rng, 0)!.hold[0]! / 100);
    assert.deepEqual(order, [3, 4, 3, 2, 1, 2, 3, 4]);
  });
});

describe('parametric typing and pointer', () => {
  it('types samples the server accepts, varying around a profile with hesitations now and then', () => {
    const rng = new Rng(3);
    const start = Date.parse('2026-01-05T00:00:00Z');
    for (let p = 0; p < 30; p += 1) {
      const positions = 8 + rng.int(9);
      const typist = parametricTypist(rng, passwordShape(rng, positions), start);
      const samples = Array.from({ length: 200 }, (_, i) => typist.type(rng, start + i * 3_600_000)).filter((k) => k !== undefined);
      assert.ok(samples.length >= 195, 'almost every sample within range');
      for (const k of samples) {
        assert.ok(keystrokeSchema.safeParse(k).success);
        assert.equal(k.hold.length, positions);
      }
      for (let i = 0; i < positions - 1; i += 1) {
        const dd = samples.map((k) => k.dd[i]!).sort((a, b) => a - b);
        const median = dd[100]!;
        const iqr = dd[150]! - dd[50]!;
        // Log-normal noise: spread, but a recognisable rhythm.
        assert.ok(iqr > 0.05 * median && iqr < 0.8 * median, `position ${i}: median ${median}, IQR ${iqr}`);
      }
      const holds = samples.flatMap((k) => k.hold);
      const meanHold = holds.reduce((s, h) => s + h, 0) / holds.length;
      assert.ok(meanHold > 40 && meanHold < 200, `mean hold ${meanHold.toFixed(0)} ms`);
    }
  });

  it('separates an attacker typing the same password from the user about as well as the CMU benchmark\'s people', () => {
    // Template: a user's 30 samples a day apart; then their next sample and an attacker's
    // (someone else, new to the password). On the CMU file, with its subjects and other
    // subjects' repetitions in place of the profiles, the same measure (templateScore with
    // scaled Manhattan, templates of 30) gives: the user's own mean score 0.17, impostors'
    // mean 0.86, 64% of impostors above 0.9. The parametric attackers are a little harder to
    // tell apart (mean about 0.73): the synthetic evaluation errs on the attackers' side.
    const rng = new Rng(8);
    const own: number[] = [];
    const attack: number[] = [];
    for (let p = 0; p < 300; p += 1) {
      const shape = passwordShape(rng, 8 + rng.int(9));
      const user = parametricTypist(rng, shape, 0);
      const samples = Array.from({ length: 31 }, (_, i) => user.type(rng, i * 86_400_000)).filter((k) => k !== undefined).map(keystrokeVector);
      const template = samples.slice(0, 30);
      own.push(templateScore(DETECTORS.scaled_manhattan, template, samples.at(-1)!));
      const a = parametricTypist(rng, shape, 31 * 86_400_000, true).type(rng, 31 * 86_400_000);
      if (a) attack.push(templateScore(DETECTORS.scaled_manhattan, template, keystrokeVector(a)));
    }
    const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
    const above = attack.filter((x) => x > 0.9).length / attack.length;
    assert.ok(mean(own) > 0.05 && mean(own) < 0.35, `user's own mean score ${mean(own).toFixed(2)}`);
    assert.ok(mean(attack) > 0.65 && mean(attack) < 0.97, `attackers' mean score ${mean(attack).toFixed(3)}`);
    // Neither trivially separable nor hopeless: like real people.
    assert.ok(above > 0.35 && above < 0.9, `${(above * 100).toFixed(0)}% of attackers above 0.9`);
  });

  it('keeps whole milliseconds and refuses timings beyond the accepted ranges', () => {
    assert.deepEqual(keystrokeOf([100.4, 80.6, 90, 70], [120.5, 60, 100]), { hold: [100, 81, 90, 70], dd: [121, 60, 100], ud: [21, -21, 10] });
    assert.equal(keystrokeOf([100, 80, 90, 70], [5001, 100, 100]), undefined);
    assert.equal(keystrokeOf([2001, 80, 90, 70], [100, 100, 100]), undefined);
  });

  it('makes a stranger\'s pointer summary unusual for the user, but less clearly than their typing', () => {
    const rng = new Rng(9);
    const own: number[] = [];
    const attack: number[] = [];
    for (let p = 0; p < 300; p += 1) {
      const mouse = makeMouse(rng);
      const template = Array.from({ length: 30 }, () => pointerVector(movePointer(rng, mouse)));
      own.push(templateScore(DETECTORS.scaled_manhattan, template, pointerVector(movePointer(rng, mouse))));
      attack.push(templateScore(DETECTORS.scaled_manhattan, template, pointerVector(movePointer(rng, makeMouse(rng)))));
    }
    const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
    assert.ok(mean(own) > 0.02 && mean(own) < 0.3, `user's own mean score ${mean(own).toFixed(2)}`);
    // Weaker evidence than typing (the pointer score borrows the keystroke calibration; no
    // pointer benchmark exists to fit one on): clearly above the user, far from certain.
    assert.ok(mean(attack) > mean(own) + 0.1 && mean(attack) < 0.7, `strangers' mean score ${mean(attack).toFixed(3)}, the user's ${mean(own).toFixed(3)}`);
  });

  it('summarises pointer movement within the schema\'s ranges', () => {
    const rng = new Rng(4);
    for (let i = 0; i < 200; i += 1) {
      const m = makeMouse(rng);
      for (let j = 0; j < 10; j += 1) assert.ok(pointerSchema.safeParse(movePointer(rng, m)).success);
    }
  });

  it('makes device-key thumbprints of 43 base64url characters (32 bytes)', () => {
    const rng = new Rng(5);
    const keys = Array.from({ length: 100 }, () => randomThumbprint(rng));
    for (const k of keys) assert.match(k, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(new Set(keys).size, keys.length);
  });
});

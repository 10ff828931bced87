/**
 * The sign-in form's behavioural field (policies/behaviour.ts parseBehaviour, through
 * interactions/behaviour.ts readBehaviour): a well-formed sample is kept as sent; anything
 * malformed, oversized, out of range or of another length than the password gives no sample
 * at all (never an exception), and a sample marked unusable keeps no timings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_BEHAVIOUR_FIELD_BYTES, MAX_KEY_POSITIONS, parseBehaviour, type Behaviour } from '../../policies/behaviour.ts';
import { readBehaviour } from '../../interactions/behaviour.ts';
import { parseEvent } from '../../policies/event.ts';

const PASSWORD = 'Tangerine-42';

/** A typed password of `n` positions: holds ~90 ms, gaps ~150 ms, dd = hold + ud exactly. */
function keystroke(n: number) {
  const hold = Array.from({ length: n }, (_, i) => 80 + (i % 5) * 7);
  const ud = Array.from({ length: n - 1 }, (_, i) => 60 + (i % 3) * 25);
  const dd = ud.map((u, i) => hold[i]! + u);
  return { hold, dd, ud };
}

const POINTER = {
  moves: 42, distance: 913.5, duration: 1830, speedMean: 0.61, speedSd: 0.33, accelMean: 0.004, curvatureMean: 0.21,
  straightness: 0.87, pauses: 2, clicks: 1, clickDwellMean: 96,
};

const SAMPLE: Behaviour = { v: 1, keystroke: keystroke(PASSWORD.length), pointer: POINTER };
const json = (x: unknown) => JSON.stringify(x);

describe('behavioural field parsing', () => {
  it('keeps a well-formed sample exactly, and it is a valid part of a login event', () => {
    assert.deepEqual(parseBehaviour(json(SAMPLE), PASSWORD.length), SAMPLE);
    assert.deepEqual(readBehaviour(new Map([['behaviour', json(SAMPLE)]]), PASSWORD), SAMPLE);
    const event = parseEvent({ id: 'e', ts: '2026-03-05T09:20:00Z', user: 'u', ip: '192.0.2.1', userAgent: '', success: true, behaviour: SAMPLE });
    assert.deepEqual(event.behaviour, SAMPLE);
    // Overlapping keys (the next pressed before this one is released): ud < 0.
    const overlap = { v: 1, keystroke: { hold: [120, 90, 100, 80], dd: [70, 95, 60], ud: [-50, 5, -40] } };
    assert.deepEqual(parseBehaviour(json(overlap), 4), overlap);
  });

  it('counts the password in characters, not UTF-16 units or bytes', () => {
    const pw = 'añ😀b🐢cd';
    assert.equal([...pw].length, 7);
    const b = { v: 1, keystroke: keystroke(7) };
    assert.deepEqual(readBehaviour(new Map([['behaviour', json(b)]]), pw), b);
    assert.equal(readBehaviour(new Map([['behaviour', json({ v: 1, keystroke: keystroke(pw.length) })]]), pw)?.keystroke, undefined);
  });

  it('gives no sample (never an error) when the field is missing, empty or not JSON', () => {
    for (const raw of [undefined, '', ' ', '{', 'null', 'true', '42', '"x"', '[]', '{"v":1', '{v:1}', 'NaN', '\u0000']) {
      assert.equal(parseBehaviour(raw, PASSWORD.length), undefined, String(raw));
    }
    assert.equal(readBehaviour(new Map(), PASSWORD), undefined);
  });

  it('gives no sample when a field has the wrong type, a key is unknown, or the version is another', () => {
    const bad: unknown[] = [
      { ...SAMPLE, v: 2 },
      { ...SAMPLE, v: '1' },
      { keystroke: SAMPLE.keystroke },
      { ...SAMPLE, keystroke: { ...SAMPLE.keystroke, hold: SAMPLE.keystroke!.hold.map(String) } },
      { ...SAMPLE, keystroke: { ...SAMPLE.keystroke, hold: 'fast' } },
      { ...SAMPLE, pointer: { ...POINTER, moves: 4.5 } },
      { ...SAMPLE, pointer: { ...POINTER, clicks: '1' } },
      { ...SAMPLE, pointer: [] },
      // Extra keys, at every level: a key's identity has nowhere to go.
      { ...SAMPLE, keys: ['a', 'b'] },
      { ...SAMPLE, keystroke: { ...SAMPLE.keystroke, code: ['KeyA'] } },
      { ...SAMPLE, pointer: { ...POINTER, path: [[1, 2]] } },
      { ...SAMPLE, unusable: 'bored' },
      { ...SAMPLE, unusable: null },
    ];
    for (const b of bad) assert.equal(parseBehaviour(json(b), PASSWORD.length), undefined, json(b));
  });

  it('gives no sample when the field is oversized, even if it parses', () => {
    const padded = `${json(SAMPLE)}${' '.repeat(MAX_BEHAVIOUR_FIELD_BYTES)}`;
    assert.deepEqual(JSON.parse(padded), SAMPLE);
    assert.equal(parseBehaviour(padded, PASSWORD.length), undefined);
    // The limit is in bytes: 4096 characters of two bytes each are 8 KiB.
    const wide = `${json(SAMPLE).slice(0, -1)},"x":"${'é'.repeat(2100)}"}`;
    assert.ok(wide.length < 2 * MAX_BEHAVIOUR_FIELD_BYTES && Buffer.byteLength(wide) > MAX_BEHAVIOUR_FIELD_BYTES);
    assert.equal(parseBehaviour(wide, PASSWORD.length), undefined);
    // More positions than captured at most.
    const long = MAX_KEY_POSITIONS + 1;
    assert.equal(parseBehaviour(json({ v: 1, keystroke: keystroke(long) }), long), undefined);
  });

  it('gives no sample for absurd timings: negative or endless holds, gaps beyond range, non-finite numbers', () => {
    const k = SAMPLE.keystroke!;
    const withHold = (i: number, v: number) => {
      const hold = [...k.hold];
      hold[i] = v;
      // Keep dd = hold + ud, so only the range is wrong.
      const dd = k.dd.map((d, j) => (j === i ? v + k.ud[j]! : d));
      return { ...SAMPLE, keystroke: { hold, dd, ud: k.ud } };
    };
    for (const b of [
      withHold(0, -5), withHold(3, 2001), withHold(2, 1e9),
      { ...SAMPLE, keystroke: { ...k, ud: k.ud.map((u, i) => (i === 1 ? -2500 : u)), dd: k.dd.map((d, i) => (i === 1 ? k.hold[1]! - 2500 : d)) } },
      { ...SAMPLE, keystroke: { ...k, ud: k.ud.map((u, i) => (i === 1 ? 6000 : u)), dd: k.dd.map((d, i) => (i === 1 ? k.hold[1]! + 6000 : d)) } },
      { ...SAMPLE, pointer: { ...POINTER, speedMean: 1000 } },
      { ...SAMPLE, pointer: { ...POINTER, curvatureMean: 4 } },
      { ...SAMPLE, pointer: { ...POINTER, straightness: 1.5 } },
      { ...SAMPLE, pointer: { ...POINTER, distance: -1 } },
      { ...SAMPLE, pointer: { ...POINTER, moves: 0 } },
    ]) {
      assert.equal(parseBehaviour(json(b), PASSWORD.length), undefined, json(b));
    }
    // JSON has no NaN or Infinity: 1e999 parses as Infinity, which is refused.
    assert.equal(parseBehaviour(json(SAMPLE).replace('"hold":[80', '"hold":[1e999'), PASSWORD.length), undefined);
    // The script sends whole milliseconds: a fraction is a forgery (a replay nudged below what
    // anyone can type, keystroke.ts isReplayed).
    assert.equal(parseBehaviour(json(withHold(0, 80.0001)), PASSWORD.length), undefined, 'a fractional millisecond');
  });

  it('gives no sample when dd is not hold + ud, or the arrays do not line up', () => {
    const k = SAMPLE.keystroke!;
    for (const ks of [
      { ...k, dd: k.dd.map((d, i) => (i === 4 ? d + 40 : d)) },
      { ...k, dd: k.dd.slice(1), ud: k.ud.slice(1) },
      { ...k, dd: k.dd.slice(1) },
      { ...k, ud: [...k.ud, 10] },
      keystroke(3),
    ]) {
      assert.equal(parseBehaviour(json({ v: 1, keystroke: ks }), ks.hold.length), undefined, json(ks));
    }
    // The script rounds each instant, so ±2 ms is tolerated.
    const rounded = { ...k, dd: k.dd.map((d, i) => (i === 0 ? d + 2 : d)) };
    assert.deepEqual(parseBehaviour(json({ v: 1, keystroke: rounded }), k.hold.length)?.keystroke, rounded);
  });

  it('drops the timings, keeping the pointer, when their length is not the password\'s', () => {
    for (const n of [PASSWORD.length - 1, PASSWORD.length + 1, 0]) {
      assert.deepEqual(parseBehaviour(json(SAMPLE), n), { v: 1, unusable: undefined, pointer: POINTER });
    }
  });

  it('drops timings sent with an unusable reason, and keeps the reason and the pointer', () => {
    assert.deepEqual(parseBehaviour(json({ ...SAMPLE, unusable: 'paste' }), PASSWORD.length), { v: 1, unusable: 'paste', pointer: POINTER });
    for (const reason of ['correction', 'paste', 'autofill', 'composition', 'navigation', 'too_long', 'too_short'] as const) {
      assert.deepEqual(parseBehaviour(json({ v: 1, unusable: reason }), PASSWORD.length), { v: 1, unusable: reason });
    }
    // Touch: no pointer, no keystrokes, only the reason.
    assert.deepEqual(readBehaviour(new Map([['behaviour', json({ v: 1, unusable: 'autofill' })]]), PASSWORD), { v: 1, unusable: 'autofill' });
  });
});

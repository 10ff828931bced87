/**
 * `idp simulate` on a small hand-made history with known answers, run as the real command.
 * The policy scores by rules alone (model weight 0), so every score can be worked out by hand.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import mongoose from 'mongoose';
import { cmuCsv } from '../helpers/cmu.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { STORES, describeOrSkip, tempDir, testEnv } from '../helpers/env.ts';
import { RUN_DEADLINE_MS } from '../helpers/process.ts';
import { openStorage } from '../../adapters/storage/index.ts';
import type { LoginEventRecord } from '../../models/types.ts';
import type { LoginEvent } from '../../policies/synth.ts';

const CLI = path.join(import.meta.dirname, '..', '..', 'idp', 'cli.js');
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

function idp(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env }, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const day = (d: number, hhmm: string) => `2026-03-0${d}T${hhmm}:00.000Z`;
let n = 0;
const ev = (e: Omit<LoginEvent, 'id'>): LoginEvent => ({ id: `ev${String((n += 1)).padStart(2, '0')}`, clientId: 'web', scope: 'openid', ...e });

/** Alice logs in from London every morning; an attacker in Sydney has her password. */
const HISTORY: LoginEvent[] = [
  ...[1, 2, 3, 4, 5].map((d) => ev({ ts: day(d, '09:00'), user: 'alice', ip: '81.2.69.142', userAgent: FIREFOX, deviceId: 'alice-laptop', success: true, mfa: 'pass', label: 'legit' })),
  ev({ ts: day(5, '09:20'), user: 'alice', ip: '1.1.1.1', userAgent: SAFARI, success: true, mfa: 'fail', label: 'attack', attackType: 'impossible_travel' }),
  ev({ ts: day(5, '10:00'), user: 'alice', ip: '81.2.69.142', userAgent: FIREFOX, deviceId: 'alice-laptop', success: true, mfa: 'pass', label: 'legit' }),
  // Credential stuffing from a cloud address: 11 wrong passwords on 11 accounts, then a hit.
  ...Array.from({ length: 11 }, (_, i) => ev({ ts: day(6, `12:0${Math.floor(i / 2)}`), user: `victim${i}`, ip: '52.95.110.1', userAgent: FIREFOX, success: false, label: 'attack', attackType: 'credential_stuffing' })),
  ev({ ts: day(6, '12:07'), user: 'victim99', ip: '52.95.110.1', userAgent: FIREFOX, success: true, mfa: 'fail', label: 'attack', attackType: 'credential_stuffing' }),
  ev({ ts: day(6, '13:00'), user: 'bob', ip: '8.8.8.8', userAgent: SAFARI, deviceId: 'bob-mac', success: true, mfa: 'pass', label: 'legit', scenario: 'shared_nat' }),
];

interface Line { id: string; score: number; level: string; decision: string; requiredAcr: string | null; reasons: { factor: string; contribution: number }[] }

describe('idp simulate', () => {
  let rules: string;
  let eventsFile: string;

  before(() => {
    rules = makePolicyDir((f) => { f.risk.model.weight = 0; f.assurance.default.critical = 'block'; });
    eventsFile = path.join(tempDir(), 'events.jsonl');
    fs.writeFileSync(eventsFile, HISTORY.map((e) => JSON.stringify(e)).join('\n'));
  });

  it('replays the history and writes the decisions and the summary it should', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await idp(['simulate', '--events', eventsFile, '--policy', rules, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const lines = fs.readFileSync(path.join(out, 'decisions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    const scored = HISTORY.filter((e) => e.success);
    assert.deepEqual(lines.map((l) => l.id), scored.map((e) => e.id), 'one line per right password, in order');

    const byId = Object.fromEntries(lines.map((l) => [l.id, l]));
    // Alice's own logins: nothing unusual (the first has no history to compare with).
    for (const e of HISTORY.filter((x) => x.user === 'alice' && x.label === 'legit')) {
      assert.equal(byId[e.id]!.decision, 'allow', e.id);
      assert.equal(byId[e.id]!.score, 0, e.id);
    }
    // Sydney 20 minutes after London: impossible travel plus everything new → critical, block.
    const attack = byId[HISTORY[5]!.id]!;
    const factors = attack.reasons.map((x) => x.factor);
    for (const f of ['impossible_travel', 'new_country', 'new_city', 'new_asn', 'new_ip', 'new_device', 'new_browser', 'new_os']) assert.ok(factors.includes(f), f);
    assert.equal(attack.score, 1);
    assert.equal(attack.level, 'critical');
    assert.equal(attack.decision, 'block');
    assert.equal(attack.requiredAcr, null);
    // The stuffing hit: a cloud address (0.25), failures on 11 accounts (0.35), 11 failures (0.10).
    const hit = byId[HISTORY[18]!.id]!;
    assert.deepEqual(hit.reasons.map((x) => x.factor).sort(), ['credential_stuffing', 'hosting_network', 'ip_failures', 'model']);
    assert.ok(Math.abs(hit.score - 0.7) < 1e-9);
    assert.equal(hit.level, 'high');
    assert.equal(hit.decision, 'step_up');
    assert.equal(hit.requiredAcr, 'urn:adaptive-idp:aal2');
    assert.equal(byId[HISTORY[19]!.id]!.decision, 'allow', 'bob, new and ordinary');

    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.events, HISTORY.length);
    assert.equal(summary.scored, scored.length);
    assert.equal(summary.failedPasswords, 11);
    assert.deepEqual(summary.decisions, { allow: 7, step_up: 1, block: 1 });
    assert.deepEqual(summary.levels, { low: 7, medium: 0, high: 1, critical: 1 });
    assert.equal(summary.detection.legit.n, 7);
    assert.equal(summary.detection.legit.challengedOrBlocked, 0);
    assert.deepEqual(summary.detection.legit.scenarios, { shared_nat: { n: 1, challengedOrBlocked: 0, blocked: 0 } });
    assert.equal(summary.detection.attacks.impossible_travel.caught, 1);
    assert.equal(summary.detection.attacks.impossible_travel.blocked, 1);
    assert.equal(summary.detection.attacks.credential_stuffing.n, 1);
    assert.equal(summary.detection.attacks.credential_stuffing.caught, 1);
    assert.equal(summary.detection.all.score.auc, 1);
    assert.match(summary.policyVersion, /^[0-9a-f]{12}$/);
  });

  it('lists the decisions a candidate policy changes against a baseline', async () => {
    const candidate = makePolicyDir((f) => { f.risk.model.weight = 0; f.assurance.default.critical = 'block'; f.risk.factors.impossible_travel.weight = 0; });
    const out = path.join(tempDir(), 'cmp');
    const r = await idp(['simulate', '--events', eventsFile, '--policy', candidate, '--baseline-policy', rules, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const changes = fs.readFileSync(path.join(out, 'changes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(changes.map((c) => [c.id, c.baseline, c.candidate]), [[HISTORY[5]!.id, 'block', 'step_up']]);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.baseline.changedDecisions, 1);
    assert.deepEqual(summary.baseline.transitions, { 'block->step_up': 1 });
  });

  it('replays a policy in monitor mode: what it enforces, and what it would have done', async () => {
    const trial = makePolicyDir((f) => { f.risk.model.weight = 0; f.assurance.default.critical = 'block'; f.risk.factors.impossible_travel.mode = 'monitor'; });
    const check = await idp(['policy', 'check', trial]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /^in monitor mode \(scored and recorded, not counted in the decision\): impossible_travel$/m);
    const out = path.join(tempDir(), 'monitor');
    const r = await idp(['simulate', '--events', eventsFile, '--policy', trial, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).monitorDecisions, { allow: 7, step_up: 1, block: 1 });
    const lines = fs.readFileSync(path.join(out, 'decisions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line & { monitor?: { score: number; level: string; decision: string; requiredAcr: string | null } });
    const attack = lines.find((l) => l.id === HISTORY[5]!.id)!;
    // Enforced without impossible travel (as the baseline comparison above): a step-up.
    assert.equal(attack.decision, 'step_up');
    assert.deepEqual(attack.reasons.find((x) => x.factor === 'impossible_travel'), { factor: 'impossible_travel', contribution: 0.45, monitor: true });
    // What the policy would have done with it enforced: the block of the first test.
    assert.deepEqual(attack.monitor, { score: 1, level: 'critical', decision: 'block', requiredAcr: null });
    assert.ok(lines.every((l) => l.monitor !== undefined));
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(summary.decisions, { allow: 7, step_up: 2, block: 0 });
    assert.deepEqual(summary.monitor.decisions, { allow: 7, step_up: 1, block: 1 });
    assert.deepEqual(summary.monitor.levels, { low: 7, medium: 0, high: 1, critical: 1 });
    assert.equal(summary.monitor.differs, 1);
    assert.deepEqual(summary.monitor.attack, { n: 2, flagged: 2, blocked: 1 });

    const whole = makePolicyDir((f) => { f.risk.model.weight = 0; f.assurance.default.critical = 'block'; f.risk.mode = 'monitor'; });
    assert.match((await idp(['policy', 'check', whole])).stdout, /^the whole policy is in monitor mode: risk is assessed and recorded, never acted on/m);
    const out2 = path.join(tempDir(), 'monitor-whole');
    assert.equal((await idp(['simulate', '--events', eventsFile, '--policy', whole, '--out', out2])).code, 0);
    const s2 = JSON.parse(fs.readFileSync(path.join(out2, 'summary.json'), 'utf8'));
    assert.deepEqual(s2.decisions, { allow: 9, step_up: 0, block: 0 });
    assert.equal(s2.monitor.scored, 9);
    assert.ok(s2.monitor.decisions.block + s2.monitor.decisions.step_up >= 2, JSON.stringify(s2.monitor));
  });

  it('never lets labels reach the scorer', async () => {
    const unlabelled = path.join(tempDir(), 'unlabelled.jsonl');
    fs.writeFileSync(unlabelled, HISTORY.map(({ label: _l, attackType: _a, scenario: _s, ...e }) => JSON.stringify(e)).join('\n'));
    const a = path.join(tempDir(), 'a');
    const b = path.join(tempDir(), 'b');
    assert.equal((await idp(['simulate', '--events', eventsFile, '--policy', rules, '--out', a])).code, 0);
    assert.equal((await idp(['simulate', '--events', unlabelled, '--policy', rules, '--out', b])).code, 0);
    assert.equal(fs.readFileSync(path.join(a, 'decisions.jsonl'), 'utf8'), fs.readFileSync(path.join(b, 'decisions.jsonl'), 'utf8'));
    assert.equal(JSON.parse(fs.readFileSync(path.join(b, 'summary.json'), 'utf8')).detection, undefined);
  });

  it('refuses events out of time order or malformed, naming the line', async () => {
    const bad = path.join(tempDir(), 'bad.jsonl');
    const swapped = [...HISTORY];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    fs.writeFileSync(bad, swapped.map((e) => JSON.stringify(e)).join('\n'));
    const r = await idp(['simulate', '--events', bad, '--policy', rules, '--out', path.join(tempDir(), 'x')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.jsonl:4: events must be in time order/);

    fs.writeFileSync(bad, `${JSON.stringify(HISTORY[0])}\n{"id": "x", "ts": "yesterday"}\n`);
    const r2 = await idp(['simulate', '--events', bad, '--policy', rules, '--out', path.join(tempDir(), 'y')]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /^idp: .*bad\.jsonl:2: "ts" must be an ISO 8601 time with a time zone, e\.g\. 2026-03-05T09:20:00Z; "user" is missing \(a string\); /);
    assert.equal(r2.stderr.trim().split('\n').length, 1, r2.stderr);
    fs.writeFileSync(bad, `${JSON.stringify(HISTORY[0])}\nnot json\n`);
    assert.match((await idp(['simulate', '--events', bad, '--policy', rules, '--out', path.join(tempDir(), 'z')])).stderr, /bad\.jsonl:2: not valid JSON/);
    assert.equal((await idp(['simulate', '--events', '/nonexistent.jsonl', '--out', path.join(tempDir(), 'w')])).stderr.trim(), 'idp: cannot read /nonexistent.jsonl');
  });

  it('reports a malformed field by line and name in simulate, eval and train alike', async () => {
    const bad = path.join(tempDir(), 'scope.jsonl');
    // A wrong type where the engine would use the value ("scope" is split into scopes).
    fs.writeFileSync(bad, [...HISTORY.slice(0, 3), { ...HISTORY[3], scope: 5 }].map((e) => JSON.stringify(e)).join('\n'));
    const runs = [
      ['simulate', '--events', bad, '--policy', rules, '--out', path.join(tempDir(), 's')],
      ['model', 'eval', '--events', bad, '--policy', rules],
      ['model', 'train', '--events', bad, '--out', path.join(tempDir(), 'm.json'), '--policy', rules],
    ];
    for (const args of runs) {
      const r = await idp(args);
      assert.equal(r.code, 1, `${args[0]} ${args[1]}: ${r.stderr}`);
      assert.equal(r.stderr, `idp: ${bad}:4: "scope" must be a string, not a number\n`, `${args[0]} ${args[1]}`);
    }
  });

  it('checks a policy directory from the command line', async () => {
    const ok = await idp(['policy', 'check', rules]);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /is valid \(version [0-9a-f]{12}, model [0-9a-f]{12}\)/);
    const broken = makePolicyDir((f) => { f.risk.levels.high = 2; });
    const r = await idp(['policy', 'check', broken]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${broken.replace(/[/\\]/g, '.')}.risk\\.yml:\\d+:\\d+: levels\\.high: Too big`));
  });
});

for (const store of STORES) {
  describeOrSkip(store.skip, `idp events export with a malformed stored record (${store.kind} store)`, () => {
    const record = (id: string, ts: string, extra: Record<string, unknown> = {}) =>
      ({ id, ts, user: 'alice', ip: '81.2.69.142', userAgent: FIREFOX, success: false, clientId: 'web', scope: 'openid', ...extra }) as unknown as LoginEventRecord;
    let env: Record<string, string>;

    before(async () => {
      env = testEnv(store.kind, tempDir(), 1);
      const storage = await openStorage({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR! });
      try {
        await storage.events.append(record('good-1', day(1, '09:00')));
        // Written by hand or by another version: a number where the format has a string.
        await storage.events.append(record('bad-2', day(1, '09:01'), { scope: 5 }));
        await storage.events.append(record('good-3', day(1, '09:02'), { success: true, assessment: { score: 0.1, level: 'low', decision: 'allow', reasons: [] } }));
      } finally {
        await storage.close();
      }
    });

    it('exports every valid record as recorded, names the malformed one by id and field, and exits 1', async () => {
      const r = await idp(['events', 'export'], env);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as LoginEventRecord);
      assert.deepEqual(lines.map((e) => e.id), ['good-1', 'good-3']);
      assert.equal(lines[1]!.assessment?.decision, 'allow', 'the assessment is kept');
      assert.equal(r.stderr, 'idp: skipped event bad-2: "scope" must be a string, not a number\nexported 2 events; skipped 1 malformed (named above)\n');
    });

    it('stops with one line when a stored record is not JSON at all', async () => {
      if (store.kind === 'embedded') {
        const db = new DatabaseSync(path.join(env.DATA_DIR!, 'idp.sqlite'));
        db.prepare('UPDATE login_events SET doc = ? WHERE id = ?').run('{"id": "bad-2", "scope', 'bad-2');
        db.close();
      } else {
        const conn = await mongoose.createConnection(env.MONGODB_URI!).asPromise();
        await conn.collection<{ _id: string }>('login_events').updateOne({ _id: 'bad-2' }, { $set: { doc: '{"id": "bad-2", "scope' } });
        await conn.close();
      }
      const out = path.join(tempDir(), 'events.jsonl');
      const r = await idp(['events', 'export', '--out', out], env);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'idp: a stored event after good-1 is not valid JSON: export stopped after 1 event(s)\n');
      assert.deepEqual(fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as LoginEventRecord).id), ['good-1']);
    });
  });
}

/** `script` (util-linux) runs a command on a pseudo-terminal: how a person at a terminal sees it. */
const noScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return '`script` (util-linux) is not installed';
  }
})();

describe('idp model synth and eval', () => {
  let events: string;
  before(() => { events = path.join(tempDir(), 'synth.jsonl'); });

  it('shows progress on a terminal, and prints only its summary line otherwise', { skip: noScript }, async () => {
    const quoted = [process.execPath, CLI, 'model', 'synth', '--seed', '3', '--users', '300', '--days', '20', '--shared-nat-rate', '0.2', '--out', events]
      .map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const tty = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', quoted, '/dev/null'], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent' } }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    // Each redraw clears the line (ESC[2K), then the bar, the share and the count (idp/progress.ts).
    // eslint-disable-next-line no-control-regex -- ESC[2K is the terminal's "clear line" sequence
    assert.match(tty, /\r\x1b\[2Kworld \[=* *\] +\d+% {2}[\d,]+ addresses of 400,000 addresses/);
    // eslint-disable-next-line no-control-regex -- as above
    assert.match(tty, /\r\x1b\[2Ksynth \[=* *\] +\d+% {2}\d+ hours of logins of 480 hours of logins/);
    // eslint-disable-next-line no-control-regex -- ESC[2K is the terminal's "clear line" sequence
    assert.match(tty, /\r\x1b\[2K\{"options":\{"seed":3,/, 'the bar is cleared before the summary');

    const plain = await idp(['model', 'synth', '--seed', '3', '--users', '300', '--days', '20', '--shared-nat-rate', '0.2', '--out', `${events}.2`]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stderr.split('\n').length, 2, 'one line');
    assert.doesNotMatch(plain.stderr, /\r/);
    const summary = JSON.parse(plain.stderr) as { events: Record<string, number> };
    assert.ok(summary.events['scenario:shared_nat_griefed']! > 0);
    assert.equal(fs.readFileSync(`${events}.2`, 'utf8'), fs.readFileSync(events, 'utf8'), 'same seed, same events, with or without a terminal');
  });

  it('refuses a share outside 0..1 with one line', async () => {
    const r = await idp(['model', 'synth', '--shared-nat-rate', '1.5', '--users', '5', '--days', '1']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'idp: --shared-nat-rate: a fraction between 0 and 1, got 1.5\n');
  });

  it('types with a CMU keystroke file\'s subjects when given one, and says which in its summary', async () => {
    const dir = tempDir();
    const csv = path.join(dir, 'cmu.csv');
    fs.writeFileSync(csv, cmuCsv(4));
    const out = path.join(dir, 'cmu.jsonl');
    const r = await idp(['model', 'synth', '--seed', '4', '--users', '60', '--days', '10', '--keystrokes', csv, '--keystroke-subjects', 's003-s005',
      '--attack-mix', 'same_network=1,cookie_theft=1', '--victim-rate', '0.5', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stderr) as { keystrokes: { file: string; sha256: string; subjects: number; positions: number }; logins: Record<string, number>; legitBehaviour: Record<string, number> };
    assert.deepEqual({ ...summary.keystrokes, sha256: summary.keystrokes.sha256.length }, { file: 'cmu.csv', sha256: 64, subjects: 3, positions: 11 });
    assert.ok(summary.legitBehaviour.keystroke! > 0 && summary.legitBehaviour.autofill! > 0, JSON.stringify(summary.legitBehaviour));
    assert.deepEqual(Object.keys(summary.logins).filter((k) => k.startsWith('attack:') && k !== 'attack:credential_stuffing').sort(), ['attack:cookie_theft', 'attack:same_network']);
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LoginEvent);
    const typed = lines.filter((e) => e.behaviour?.keystroke);
    assert.ok(typed.length > 50 && typed.every((e) => e.behaviour!.keystroke!.hold.length === 11));
  });

  it('refuses a bad keystroke file, subject list or attack mix with one line', async () => {
    const dir = tempDir();
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, 'subject,rep\ns002,1\n');
    const good = path.join(dir, 'good.csv');
    fs.writeFileSync(good, cmuCsv(3));
    const cases: [string[], RegExp][] = [
      [['--keystrokes', path.join(dir, 'missing.csv')], /^idp: --keystrokes: cannot read .*missing\.csv: ENOENT\n$/],
      [['--keystrokes', bad], /^idp: --keystrokes .*bad\.csv: line 1: not the CMU benchmark header/],
      [['--keystrokes', good, '--keystroke-subjects', 's003'], /^idp: --keystrokes .*good\.csv: at least two subjects are needed/],
      [['--keystroke-subjects', 's002-s004'], /^idp: --keystroke-subjects needs --keystrokes\n$/],
      [['--attack-mix', 'phishing=1'], /^idp: --attack-mix: unknown attack "phishing" \(one of naive, vpn_hosting, targeted, impossible_travel, same_network, cookie_theft\)\n$/],
      [['--attack-mix', 'naive=-1'], /^idp: --attack-mix: "naive=-1" needs a weight of 0 or more/],
      [['--attack-mix', 'naive=0'], /^idp: --attack-mix: at least one attack needs a weight above 0\n$/],
      [['--private-rate', '2'], /^idp: --private-rate: a fraction between 0 and 1, got 2\n$/],
    ];
    for (const [args, message] of cases) {
      const r = await idp(['model', 'synth', '--users', '5', '--days', '1', ...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.split('\n').length, 2, 'one line');
    }
  });

  it('reports, for each scenario, the share of its legitimate logins challenged and blocked', async () => {
    if (!fs.existsSync(events)) {
      assert.equal((await idp(['model', 'synth', '--seed', '3', '--users', '300', '--days', '20', '--shared-nat-rate', '0.2', '--out', events])).code, 0);
    }
    const r = await idp(['model', 'eval', '--events', events]);
    assert.equal(r.code, 0, r.stderr);
    const row = (name: string) => {
      const m = new RegExp(`^${name} +(\\d+) +([\\d.]+)% +([\\d.]+)%$`, 'm').exec(r.stdout);
      assert.ok(m, `${name} row in:\n${r.stdout}`);
      return { n: Number(m[1]), challenged: Number(m[2]), blocked: Number(m[3]) };
    };
    const all = row('all legitimate logins');
    const shared = row('shared_nat');
    const griefed = row('shared_nat_griefed');
    // The counts are those of the file's labelled, successful logins.
    const lines = fs.readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LoginEvent);
    const count = (f: (e: LoginEvent) => boolean) => lines.filter((e) => e.success && e.label === 'legit' && f(e)).length;
    assert.equal(all.n, count(() => true));
    assert.equal(shared.n, count((e) => e.scenario === 'shared_nat'));
    assert.equal(griefed.n, count((e) => e.scenario === 'shared_nat_griefed'));
    for (const x of [all, shared, griefed]) assert.ok(x.challenged + x.blocked <= 100);
  });
});

/**
 * The `idp policy`, `idp label` and `idp model` commands of the policy lifecycle and the
 * feedback loop, run as the real command on the embedded store (the services under them are
 * tested on both stores in policy-admin.test.ts): exit codes, one-line refusals, and output.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { openStorage } from '../../adapters/storage/index.ts';
import type { LoginEventRecord } from '../../models/types.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { tempDir } from '../helpers/env.ts';
import { runNode, type RunResult } from '../helpers/process.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'idp', 'bin.js');
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';

function oneLineError(r: RunResult, code: number, re: RegExp) {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr.trim(), re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('idp policy / label / model on the store', () => {
  let env: Record<string, string>;
  let dir: string;
  const idp = (...args: string[]) => runNode([BIN, ...args], { env });

  before(async () => {
    const home = tempDir();
    dir = makePolicyDir();
    env = { PATH: process.env.PATH ?? '', DATA_DIR: path.join(home, 'data'), KEYS_FILE: path.join(home, 'keys.json'), POLICY_DIR: dir, LOG_LEVEL: 'silent' };
  });

  it('publishes, refuses what would change nothing or is stale, lists, shows, pulls and rolls back', async () => {
    const first = await idp('policy', 'publish', '--message', 'first');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^published \S+ as version 1 \(policy [0-9a-f]{12}, model [0-9a-f]{12}\)/);
    oneLineError(await idp('policy', 'publish', '--message', 'again'), 1, /^idp: the candidate is the live policy \(version 1\) already$/);
    oneLineError(await idp('policy', 'publish'), 2, /^idp: --message is required/);

    fs.writeFileSync(path.join(dir, 'lists.yml'), fs.readFileSync(path.join(dir, 'lists.yml'), 'utf8').replace('tor_exit_addresses: []', 'tor_exit_addresses: ["203.0.113.9"]'));
    const valid = await idp('policy', 'validate');
    assert.equal(valid.code, 0, valid.stderr);
    assert.match(valid.stdout, /is valid \(version [0-9a-f]{12}, model [0-9a-f]{12}\); not published; live: version 1$/m);
    oneLineError(await idp('policy', 'publish', '-m', 'stale', '--if-version', '0'), 1, /^idp: the live policy was changed meanwhile \(now version 1\)$/);
    const second = await idp('policy', 'publish', '-m', 'a Tor exit', '--if-version', '1', '--json');
    assert.equal(second.code, 0, second.stderr);
    assert.equal((JSON.parse(second.stdout) as { version: number }).version, 2);

    const history = await idp('policy', 'history', '--json');
    const items = (JSON.parse(history.stdout) as { items: { version: number; message: string; actor: { kind: string } }[] }).items;
    assert.deepEqual(items.map((v) => [v.version, v.message, v.actor.kind]), [[2, 'a Tor exit', 'cli'], [1, 'first', 'cli']]);
    const table = await idp('policy', 'history', '--limit', '1');
    assert.match(table.stdout, /^version\s+published\s+source\s+actor\s+hash\s+model\s+message\n2 /);
    assert.match(table.stderr, /^more: idp policy history --after \S+$/m);

    const show = await idp('policy', 'show');
    assert.match(show.stdout, /^version +2$/m);
    assert.match(show.stdout, /^file +model\.json \(\d+ bytes\)$/m);
    const pulled = path.join(tempDir(), 'pulled');
    assert.equal((await idp('policy', 'pull', '1', '--out', pulled)).code, 0);
    assert.doesNotMatch(fs.readFileSync(path.join(pulled, 'lists.yml'), 'utf8'), /203\.0\.113\.9/);
    assert.deepEqual(fs.readdirSync(pulled).sort(), ['assurance.yml', 'lists.yml', 'model.json', 'risk.yml']);

    const back = await idp('policy', 'rollback', '1', '-m', 'no Tor list after all');
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /^published version 1's files again as version 3/);
    oneLineError(await idp('policy', 'rollback', '9', '-m', 'x'), 1, /^idp: no policy version 9$/);
    oneLineError(await idp('policy', 'rollback', 'x', '-m', 'x'), 2, /^idp: --version: expected a whole number/);
    oneLineError(await idp('policy', 'frobnicate'), 2, /^idp: unknown command "policy frobnicate"/);
  });

  it('refuses a broken directory with the lines `idp policy check` prints', async () => {
    const broken = makePolicyDir((f) => { f.assurance.default.medium = 'aal7'; });
    const validate = await idp('policy', 'validate', broken);
    const check = await idp('policy', 'check', broken);
    assert.equal(validate.code, 1);
    assert.equal(check.code, 1);
    assert.match(validate.stderr, /assurance\.yml:\d+:\d+: default\.medium: "aal7" is not an assurance level/);
    assert.equal(validate.stderr, check.stderr);
    const publish = await idp('policy', 'publish', broken, '-m', 'broken');
    assert.equal(publish.code, 1);
    assert.match(publish.stderr, /^idp: the policy is invalid:\nassurance\.yml:\d+:\d+: default\.medium: "aal7"/);
  });

  it('labels stored events, dry-runs a candidate over them, retrains from the labels and activates the model', async () => {
    // A few days of one user's logins, recorded as the provider records them, and an attacker's.
    const s = await openStorage({ dataDir: env.DATA_DIR! });
    const ids: { id: string; attack: boolean }[] = [];
    try {
      const day = Date.now() - 20 * 86_400_000;
      for (let i = 0; i < 40; i += 1) {
        const attack = i % 5 === 4;
        const id = `ev-${String(i).padStart(2, '0')}`;
        const e: LoginEventRecord = {
          id, ts: new Date(day + i * 6 * 3_600_000).toISOString(), user: `user${i % 4}`, ip: attack ? `52.95.110.${i}` : `81.2.69.${140 + (i % 4)}`,
          userAgent: FIREFOX, deviceId: attack ? undefined : `dev${i % 4}`, success: true, clientId: 'web',
          assessment: { score: 0, level: 'low', decision: 'allow', reasons: [], confidence: 1, policyVersion: 'x', modelVersion: 'y', errors: [] },
        };
        await s.events.append(e);
        ids.push({ id, attack });
      }
      // Most labels straight into the store; the command is checked on two.
      for (const x of ids.slice(2)) await s.labels.set({ eventId: x.id, label: x.attack ? 'attack' : 'legit', actor: { kind: 'cli', id: 'test' }, at: new Date() }, 0);
    } finally {
      await s.close();
    }
    const set = await idp('label', 'set', 'ev-00', 'legit', '--note', 'the user confirmed it');
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout.trim(), 'event ev-00: legit (label version 1)');
    assert.equal((await idp('label', 'set', 'ev-01', 'legit')).code, 0);
    oneLineError(await idp('label', 'set', 'ev-00', 'attack', '--if-version', '0'), 1, /^idp: the label of event ev-00 was changed meanwhile \(now version 1\)$/);
    oneLineError(await idp('label', 'set', 'nope', 'attack'), 1, /^idp: no login event nope$/);
    oneLineError(await idp('label', 'set', 'ev-00', 'maybe'), 2, /^idp: the label is attack or legit, not "maybe"$/);
    const shown = JSON.parse((await idp('label', 'show', 'ev-00', '--json')).stdout) as { label: string; note: string; actor: { kind: string } }[];
    assert.deepEqual(shown.map((l) => [l.label, l.note, l.actor.kind]), [['legit', 'the user confirmed it', 'cli']]);
    const listed = JSON.parse((await idp('label', 'list', '--limit', '100', '--json')).stdout) as { items: { eventId: string }[] };
    assert.equal(listed.items.length, 40);
    // Every label in one file, whatever the page size (what report efficacy --labels reads).
    const page = JSON.parse((await idp('label', 'list', '--limit', '15', '--json')).stdout) as { items: unknown[]; next?: string };
    assert.equal(page.items.length, 15);
    assert.ok(page.next);
    const all = await idp('label', 'list', '--all', '--json');
    assert.equal(all.code, 0, all.stderr);
    const every = JSON.parse(all.stdout) as { items: { eventId: string }[]; next?: string };
    assert.deepEqual(every.items.map((l) => l.eventId).sort(), listed.items.map((l) => l.eventId).sort());
    assert.equal(every.next, undefined);

    const candidate = makePolicyDir((f) => { f.assurance.default.low = 'aal2'; });
    const dry = await idp('policy', 'dry-run', candidate, '--days', '30', '--json');
    assert.equal(dry.code, 0, dry.stderr);
    const report = JSON.parse(dry.stdout) as { window: { events: number }; candidate: { decisions: { allow: number } }; labelled: { attack: { n: number } } };
    assert.equal(report.window.events, 40);
    assert.equal(report.candidate.decisions.allow, 0);
    assert.equal(report.labelled.attack.n, 8);
    const text = await idp('policy', 'dry-run', candidate, '--days', '30');
    assert.match(text.stdout, /^40 events from /);
    assert.match(text.stdout, /^changed: \d+ decisions/m);

    const train = await idp('model', 'train', '--labels', '--trees', '3', '--max-depth', '4', '--label-weight', '3', '--json');
    assert.equal(train.code, 0, train.stderr);
    const r = JSON.parse(train.stdout) as { sha256: string; data: { train: { attack: number } }; heldOut: { before: { auc: number | null }; after: { auc: number | null } } };
    assert.match(r.sha256, /^[0-9a-f]{64}$/);
    assert.ok(r.data.train.attack > 0);
    assert.ok('auc' in r.heldOut.before && 'auc' in r.heldOut.after);
    const models = await idp('model', 'list');
    assert.match(models.stdout, new RegExp(`^${r.sha256} `, 'm'));
    const activate = await idp('model', 'activate', r.sha256, '-m', 'retrained on our labels');
    assert.equal(activate.code, 0, activate.stderr);
    assert.match(activate.stdout, new RegExp(`^published version \\d+ with model ${r.sha256.slice(0, 12)} pinned`));
    oneLineError(await idp('model', 'activate', r.sha256), 1, /is the live model already/);
    oneLineError(await idp('model', 'activate', 'abc'), 1, /^idp: sha256: a sha256 in lowercase hex$/);
  });
});

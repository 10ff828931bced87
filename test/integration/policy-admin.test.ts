/**
 * The admin services of the policy lifecycle and the feedback loop on a real store (both):
 * labels, the dry run over stored events, retraining from labelled events with the held-out
 * report, and activating the model through a policy publish. The stored "real" events are a
 * synthetic history (policies/synth.ts) recorded as the live provider records events (the
 * live policy's decision with each), without their labels; an administrator then labels some.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import { VersionConflictError } from '../../adapters/storage/port.ts';
import type { AuditInput, LoginEventRecord } from '../../models/types.ts';
import { ConflictError, InvalidError, NotFoundError } from '../../idp/admin/errors.ts';
import { getLabel, labelHistory, listLabels, setLabel } from '../../idp/admin/labels.ts';
import { activateModel, listModels, trainModel } from '../../idp/admin/model.ts';
import { dryRunPolicy, getLivePolicy, publishPolicy, rollbackPolicy } from '../../idp/admin/policies.ts';
import { DEFAULT_POLICY_DIR } from '../../idp/settings.ts';
import { loadPolicyFiles, readPolicyDir } from '../../policies/policy.ts';
import { Replayer } from '../../policies/simulate.ts';
import { DEFAULT_SYNTH, Rng, sampleWorld, synthesize, type LoginEvent, type SynthOptions } from '../../policies/synth.ts';
import type { Place } from '../../policies/types.ts';
import { mongoUriForTest, STORES, describeOrSkip, tempDir } from '../helpers/env.ts';

/** A small made-up world: the first octet picks a city, the second an ISP (as test/unit/synth.test.ts). */
const CITIES = [
  { country: 'GB', city: 'London', lat: 51.5, lon: -0.1 }, { country: 'FR', city: 'Lyon', lat: 45.8, lon: 4.8 },
  { country: 'AU', city: 'Sydney', lat: -33.9, lon: 151.2 }, { country: 'US', city: 'Denver', lat: 39.7, lon: -105 },
];
const ORGS = ['Home Broadband', 'Fibre Co', 'Mobile Telecom', 'Cloud Hosting'];
function placeOf(ip: string): Place {
  const [a = 0, b = 0] = ip.split('.').map(Number);
  if (a === 10) return { scope: 'private' };
  const c = CITIES[a % CITIES.length]!;
  return { scope: 'public', country: c.country, region: 'R', city: c.city, lat: c.lat, lon: c.lon, asn: 1000 + (b % 4) + 10 * (a % 4), asOrg: ORGS[b % 4] };
}

const SMALL: Omit<SynthOptions, 'seed'> = { ...DEFAULT_SYNTH, users: 40, days: 20, start: '2026-01-05T00:00:00Z', victimRate: 0.6, stuffingPerDay: 1, sharedNatRate: 0.2 };
function history(seed: number, opts: Partial<SynthOptions> = {}): LoginEvent[] {
  const rng = new Rng(seed);
  return [...synthesize({ seed, ...SMALL, ...opts }, sampleWorld(rng, placeOf, 20_000), rng)];
}
const END = Date.parse(SMALL.start) + SMALL.days * 86_400_000;

const actor = { kind: 'user' as const, id: 'analyst', ip: '192.0.2.7' };
const TRAIN = { trees: 5, maxDepth: 6, seed: 3 };

for (const store of STORES) {
  describeOrSkip(store.skip, `policy lifecycle and feedback loop services (${store.kind})`, () => {
    let s: Storage;
    const audit: AuditInput[] = [];
    let real: LoginEvent[];
    const deps = () => ({ storage: s, audit: async (e: AuditInput) => { audit.push(e); }, placeOf });

    before(async () => {
      s = await openStorage(store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { dataDir: tempDir('idp-admin-') });
      await publishPolicy(deps(), { files: readPolicyDir(DEFAULT_POLICY_DIR), message: 'the shipped policy', ifVersion: 0 }, actor);
      // Recorded as live records them: the live policy's assessment, no label, no challenge outcome.
      real = history(21);
      const live = loadPolicyFiles(readPolicyDir(DEFAULT_POLICY_DIR), 'live');
      const replay = new Replayer(live, placeOf);
      const records: LoginEventRecord[] = real.map((e) => {
        const r = replay.process(e);
        const { label: _l, attackType: _t, scenario: _s, mfa: _m, ...rest } = e;
        return {
          ...rest,
          ...(r ? { assessment: {
            score: r.assessment.score, level: r.assessment.level, decision: r.decision.decision, requiredAcr: r.decision.requiredAcr, reasons: r.assessment.reasons,
            confidence: r.assessment.confidence, policyVersion: r.assessment.policyVersion, modelVersion: r.assessment.modelVersion, errors: r.assessment.errors,
          } } : {}),
        };
      });
      for (let i = 0; i < records.length; i += 50) await Promise.all(records.slice(i, i + 50).map((r) => s.events.append(r)));
    });
    after(() => s?.close());

    describe('labels', () => {
      it('labels an event, changes the label on its version only, and refuses an event that is not stored', async () => {
        const e = real.find((x) => x.success)!;
        const l1 = await setLabel(deps(), e.id, { label: 'attack', note: 'reported by the user' }, actor);
        assert.deepEqual([l1.version, l1.label, l1.note], [1, 'attack', 'reported by the user']);
        await assert.rejects(setLabel(deps(), e.id, { label: 'legit', ifVersion: 0 }, actor), VersionConflictError);
        const l2 = await setLabel(deps(), e.id, { label: 'legit', ifVersion: 1 }, actor);
        assert.equal(l2.version, 2);
        assert.equal((await getLabel(deps(), e.id)).label, 'legit');
        assert.deepEqual((await labelHistory(deps(), e.id)).map((l) => l.label), ['attack', 'legit']);
        await assert.rejects(setLabel(deps(), 'no-such-event', { label: 'attack' }, actor), (x: unknown) => x instanceof NotFoundError && x.reason === 'event_not_found');
        await assert.rejects(setLabel(deps(), e.id, { label: 'evil' as 'attack' }, actor), (x: unknown) => x instanceof InvalidError && x.code === 'invalid_request' && /label/.test(x.message));
        await assert.rejects(getLabel(deps(), 'no-such-event'), NotFoundError);
        const recorded = audit.filter((x) => x.action === 'label.set');
        assert.deepEqual(recorded.map((x) => x.outcome), ['success', 'failure', 'success', 'failure']);
        assert.deepEqual(recorded[2]!.before, { label: 'attack', note: 'reported by the user', version: 1 });
        assert.deepEqual(recorded[2]!.after, { label: 'legit', note: null, version: 2 });
      });

      it('labels the history as an analyst would: every attack that got the password right, and some legitimate logins', async () => {
        const rng = new Rng(9);
        const chosen = real.filter((e) => e.success && (e.label === 'attack' || rng.next() < 0.15));
        for (const e of chosen) {
          const now = await s.labels.get(e.id);
          await setLabel(deps(), e.id, { label: e.label!, ifVersion: now?.version ?? 0 }, actor);
        }
        const listed: string[] = [];
        let after: string | undefined;
        do {
          const page = await listLabels(deps(), { limit: 37, ...(after ? { after } : {}) });
          listed.push(...page.items.map((l) => l.eventId));
          after = page.next;
        } while (after);
        // The chosen ones, and the event the first test labelled.
        assert.deepEqual(listed, [...new Set([...chosen.map((e) => e.id), real.find((x) => x.success)!.id])].sort());
        assert.ok(chosen.filter((e) => e.label === 'attack').length >= 10, 'enough attacks to learn from');
        await assert.rejects(listLabels(deps(), { after: '!!' }), (e: unknown) => (e as Error).name === 'InvalidCursorError' && (e as { code: string }).code === 'invalid_request');
        await assert.rejects(listLabels(deps(), { limit: 0 }), (e: unknown) => e instanceof InvalidError && e.code === 'invalid_request' && /^limit: /.test(e.message));
      });
    });

    describe('dry run', () => {
      it('replays the stored events of the window through the candidate and the live policy and reports what changes', async () => {
        const live = await getLivePolicy(deps());
        // Every low-risk login asked for a second factor.
        const assurance = parse(live.files['assurance.yml']!) as { default: Record<string, string> };
        assurance.default.low = 'aal2';
        const r = await dryRunPolicy(deps(), { files: { 'assurance.yml': stringify(assurance) }, days: 10, examples: 5 }, END);
        const inWindow = real.filter((e) => Date.parse(e.ts) >= END - 10 * 86_400_000 && Date.parse(e.ts) <= END);
        assert.equal(r.window.events, inWindow.length);
        assert.equal(r.window.scored, inWindow.filter((e) => e.success).length);
        assert.equal(r.live.version, live.version.version);
        assert.ok(r.live.decisions.allow > 0);
        // Every login the live policy let in is challenged now (the shipped map asks more than a
        // password at every other level); levels differ only where a labelled attack the live
        // policy let in would now have failed its challenge and stayed out of the user's history.
        assert.equal(r.candidate.decisions.allow, 0);
        assert.deepEqual(r.transitions.decisions, { 'allow->step_up': r.live.decisions.allow });
        assert.equal(r.changed.decisions, r.live.decisions.allow);
        assert.ok(r.changed.levels < r.changed.decisions / 10, `${r.changed.levels} levels changed`);
        assert.equal(r.examples.length, 5);
        assert.ok(r.examples.every((x) => x.live.decision === 'allow' && x.candidate.decision === 'step_up' && x.candidate.requiredAcr === 'urn:adaptive-idp:aal2'));
        const ts = r.examples.map((x) => Date.parse(x.ts));
        assert.deepEqual(ts, [...ts].sort((x, y) => x - y), 'the most recent, newest last');
        assert.ok(ts.every((t) => t >= END - 10 * 86_400_000));
        // The labelled logins among them: how each policy treats them.
        const labels = new Map<string, string>();
        for (const e of inWindow.filter((x) => x.success)) {
          const l = await s.labels.get(e.id);
          if (l) labels.set(e.id, l.label);
        }
        assert.ok(r.labelled);
        assert.equal(r.labelled.attack.n, [...labels.values()].filter((l) => l === 'attack').length);
        assert.equal(r.labelled.legit.n, [...labels.values()].filter((l) => l === 'legit').length);
        assert.ok(r.labelled.attack.n > 0 && r.labelled.legit.n > 0);
        for (const c of [r.labelled.attack, r.labelled.legit]) {
          assert.ok(c.flagged.candidate >= c.flagged.live && c.flagged.live <= c.n && c.blocked.candidate === c.blocked.live, JSON.stringify(c));
        }
      });

      it('finds nothing to report for the live policy itself, and refuses a broken candidate with its file/line/key messages', async () => {
        const same = await dryRunPolicy(deps(), { files: {}, days: 10, warmupDays: 5 }, END);
        assert.equal(same.changed.events, 0);
        assert.deepEqual(same.examples, []);
        assert.ok(same.window.scored > 0);
        const live = await getLivePolicy(deps());
        const broken = live.files['risk.yml']!.replace(/^levels:/m, 'levelz:');
        await assert.rejects(dryRunPolicy(deps(), { files: { 'risk.yml': broken } }, END), (e: unknown) =>
          e instanceof InvalidError && e.reason === 'policy_invalid' && (e.detail as { messages: string[] }).messages.some((m) => /^risk\.yml:\d+:\d+: levelz: /.test(m)));
      });
    });

    describe('retraining', () => {
      let sha: string;

      it('trains on the labelled events weighted above synthetic ones, and reports the held-out figures before activating anything', async (t) => {
        const live = await getLivePolicy(deps());
        const synthetic = history(22, { users: 25, days: 10 });
        const r = await trainModel(deps(), { ...TRAIN, labelWeight: 5 }, actor, { synthetic: { source: 'seed 22', events: synthetic } });
        t.diagnostic(`trained in ${r.seconds} s; held out: ${JSON.stringify(r.heldOut)}; data: ${JSON.stringify(r.data)}`);
        sha = r.sha256;
        assert.match(sha, /^[0-9a-f]{64}$/);
        assert.notEqual(r.modelVersion, live.version.modelVersion, 'a new model');
        assert.equal(r.policy.version, live.version.version);
        assert.equal(r.data.storedEvents, real.length);
        // The split: every scored labelled event on one side, about 30% held out.
        const labelled = r.data.train.attack + r.data.train.legit + r.data.heldOut.attack + r.data.heldOut.legit;
        assert.equal(labelled + r.data.labelled.notScored + r.data.labelled.notStored, r.data.labelled.attack + r.data.labelled.legit);
        const share = (r.data.heldOut.attack + r.data.heldOut.legit) / labelled;
        assert.ok(share > 0.15 && share < 0.45, `held out ${share}`);
        assert.ok(r.data.heldOut.attack > 0 && r.data.heldOut.legit > 0);
        // Labelled rows count labelWeight times each; synthetic ones once.
        assert.equal(r.data.rows.attack, r.data.synthetic!.attack + 5 * r.data.train.attack);
        assert.equal(r.data.rows.legit, r.data.synthetic!.legit + 5 * r.data.train.legit);
        // Figures for both models on the same held-out events.
        assert.equal(r.heldOut.before.model, live.version.modelVersion);
        assert.equal(r.heldOut.after.model, r.modelVersion);
        for (const f of [r.heldOut.before, r.heldOut.after]) {
          for (const x of [f.auc, f.tprAt1pctFpr, f.tprAt5pctFpr]) assert.ok(typeof x === 'number' && x >= 0 && x <= 1, JSON.stringify(f));
        }
        assert.equal(r.heldOut.note, undefined);
        // Kept, not active.
        assert.equal((await s.models.get(sha))?.report.sha256, sha);
        assert.equal((await getLivePolicy(deps())).version.version, live.version.version);
        assert.equal((await listModels(deps())).items[0]?.sha256, sha);
        assert.ok(audit.some((e) => e.action === 'model.train' && e.outcome === 'success' && e.target?.id === sha));
      });

      it('gives another model when the labels weigh otherwise, the same one for the same inputs', async () => {
        const synthetic = () => ({ synthetic: { source: 'seed 22', events: history(22, { users: 25, days: 10 }) } });
        const once = await trainModel(deps(), { ...TRAIN, labelWeight: 1 }, actor, synthetic());
        assert.notEqual(once.sha256, sha);
        assert.equal(once.data.rows.attack, once.data.synthetic!.attack + once.data.train.attack);
        const again = await trainModel(deps(), { ...TRAIN, labelWeight: 5 }, actor, synthetic());
        assert.equal(again.sha256, sha, 'reproducible');
        // Labelled real events alone are enough too.
        const alone = await trainModel(deps(), { ...TRAIN, labelWeight: 5 }, actor);
        assert.equal(alone.data.synthetic, null);
        assert.notEqual(alone.sha256, sha);
      });

      it('activates a trained model by publishing the live policy with its sha256 pinned, which a rollback undoes', async () => {
        const live = await getLivePolicy(deps());
        await assert.rejects(activateModel(deps(), { sha256: 'f'.repeat(64), ifVersion: live.version.version }, actor), (e: unknown) => e instanceof NotFoundError && e.reason === 'model_not_found');
        await assert.rejects(activateModel(deps(), { sha256: sha, ifVersion: live.version.version - 1 }, actor), VersionConflictError);
        const v = await activateModel(deps(), { sha256: sha, ifVersion: live.version.version }, actor);
        assert.equal(v.source, 'model');
        assert.equal(v.modelVersion, sha.slice(0, 12));
        const now = await getLivePolicy(deps());
        assert.equal(now.files['model.json'], (await s.models.get(sha))!.text);
        assert.match(now.files['risk.yml']!, new RegExp(`sha256: "${sha}"`));
        // Only the pin changed in risk.yml: its comments and the rest stay.
        assert.equal(now.files['risk.yml']!.replace(sha, 'X'), live.files['risk.yml']!.replace(/[0-9a-f]{64}/, 'X'));
        assert.equal(now.files['assurance.yml'], live.files['assurance.yml']);
        assert.equal(loadPolicyFiles(now.files, 'check').forest.version, sha.slice(0, 12));
        await assert.rejects(activateModel(deps(), { sha256: sha, ifVersion: v.version }, actor), (e: unknown) => e instanceof ConflictError && e.reason === 'policy_unchanged');
        const back = await rollbackPolicy(deps(), { version: live.version.version, message: 'the old model', ifVersion: v.version }, actor);
        assert.equal(back.modelVersion, live.version.modelVersion);
        assert.ok(audit.some((e) => e.action === 'model.activate' && e.outcome === 'success' && e.target?.id === String(v.version)));
      });

      it('refuses to train without both kinds of rows', async () => {
        const empty = await openStorage(store.kind === 'mongodb' ? { mongodbUri: mongoUriForTest(), dataDir: '' } : { dataDir: tempDir('idp-admin-empty-') });
        try {
          const d = { storage: empty, audit: async () => {}, placeOf };
          await assert.rejects(trainModel(d, TRAIN, actor), (e: unknown) => e instanceof NotFoundError && e.reason === 'policy_not_published');
          await publishPolicy(d, { files: readPolicyDir(DEFAULT_POLICY_DIR), message: 'first', ifVersion: 0 }, actor);
          await assert.rejects(trainModel(d, TRAIN, actor), (e: unknown) => e instanceof InvalidError && e.reason === 'training_data_insufficient');
        } finally {
          await empty.close();
        }
      });
    });
  });
}

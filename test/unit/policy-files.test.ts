/**
 * A policy loaded from its files' texts (a store version, a candidate) is the policy loaded
 * from the directory: the same content hash, the same file/line/key errors. And the runtime's
 * one door (install) keeps the last good policy on a bad one, as for a file edit.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkPolicy, loadPolicy, loadPolicyFiles, PolicyLoadError, policyFilesOnly, readPolicyDir, withModel } from '../../policies/policy.ts';
import { sha256Hex } from '../../policies/forest.ts';
import { startPolicyRuntime } from '../../policies/watcher.ts';
import { DEFAULT_POLICY_DIR } from '../../idp/settings.ts';
import { makePolicyDir } from '../helpers/policy.ts';

const errorsOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof PolicyLoadError) return e.errors;
    throw e;
  }
  return [];
};

describe('policy from its files', () => {
  it('compiles to the same version as the directory, and reads only the files a policy has', () => {
    const files = readPolicyDir(DEFAULT_POLICY_DIR);
    assert.deepEqual(Object.keys(files).sort(), ['assurance.yml', 'lists.yml', 'model.json', 'risk.yml']);
    const fromDir = loadPolicy(DEFAULT_POLICY_DIR);
    const fromFiles = loadPolicyFiles(files, 'store v1');
    assert.equal(fromFiles.version, fromDir.version);
    assert.equal(fromFiles.forest.version, fromDir.forest.version);
    assert.equal(fromFiles.dir, 'store v1');
    assert.deepEqual(fromFiles.risk, fromDir.risk);
    assert.deepEqual(Object.keys(policyFilesOnly({ ...files, 'old-model.json': '{}', 'notes.txt': 'x' })).sort(), Object.keys(files).sort());
  });

  it('refuses what the directory refuses, with the same file, line and key', () => {
    const dir = makePolicyDir((f) => { f.assurance.default.medium = 'aal7'; f.risk.levels.high = 0.1; });
    fs.appendFileSync(path.join(dir, 'lists.yml'), 'bogus_key: 1\n');
    const fromDir = checkPolicy(dir);
    assert.ok(fromDir.length >= 3, JSON.stringify(fromDir));
    assert.deepEqual(errorsOf(() => loadPolicyFiles(readPolicyDir(dir), 'candidate')), fromDir);
    // A missing file, and a model that is not there.
    const files = readPolicyDir(DEFAULT_POLICY_DIR);
    const { 'lists.yml': _lists, 'model.json': _model, ...rest } = files;
    const errors = errorsOf(() => loadPolicyFiles(rest, 'candidate'));
    assert.deepEqual(errors.map((e) => [e.file, e.path, e.message]), [['lists.yml', '', 'file is missing'], ['risk.yml', 'model.file', 'model file model.json not found']]);
    assert.equal(typeof errors[1]!.line, 'number');
  });

  it('pins another model by editing only the sha256 in risk.yml\'s text', () => {
    const files = readPolicyDir(DEFAULT_POLICY_DIR);
    const model = JSON.parse(files['model.json']!) as { trees: unknown[] };
    const text = `${JSON.stringify({ ...model, trees: model.trees.slice(0, 3) })}\n`;
    const pinned = withModel(files, text);
    const sha = sha256Hex(text);
    assert.equal(pinned['model.json'], text);
    assert.equal(pinned['risk.yml'], files['risk.yml']!.replace(/[0-9a-f]{64}/, sha));
    assert.equal(loadPolicyFiles(pinned, 'c').forest.version, sha.slice(0, 12));
    assert.equal(loadPolicyFiles(pinned, 'c').forest.trees.length, 3);
  });
});

describe('the runtime\'s install', () => {
  it('swaps in a valid policy, and keeps the last good one on an invalid one or one that changes the ACR values', () => {
    const rejected: string[] = [];
    const reloaded: (number | undefined)[] = [];
    const rt = startPolicyRuntime(DEFAULT_POLICY_DIR, {
      watch: false, onReject: (_e, message) => rejected.push(message), onReload: (_p, o) => reloaded.push(o.published),
    });
    const good = rt.current();
    const files = readPolicyDir(DEFAULT_POLICY_DIR);
    const other = { ...files, 'risk.yml': files['risk.yml']!.replace('weight: 0.5', 'weight: 0.4') };
    assert.equal(rt.install(() => loadPolicyFiles(other, 'store v2'), { source: 'store', published: 2 }), true);
    assert.notEqual(rt.current().version, good.version);
    assert.equal(rt.current().risk.model.weight, 0.4);
    assert.deepEqual([rt.stats.reloads, rt.stats.published], [1, 2]);
    assert.deepEqual(reloaded, [2]);
    const second = rt.current();
    const bad = { ...files, 'assurance.yml': files['assurance.yml']!.replace('medium: aal2', 'medium: aal7') };
    assert.equal(rt.install(() => loadPolicyFiles(bad, 'store v3'), { source: 'store', published: 3 }), false);
    assert.equal(rt.current(), second);
    assert.match(rejected[0]!, /^assurance\.yml:\d+:\d+: default\.medium: "aal7" is not an assurance level/);
    const acr = { ...files, 'assurance.yml': files['assurance.yml']!.replace('urn:adaptive-idp:aal3', 'urn:other:aal3') };
    assert.equal(rt.install(() => loadPolicyFiles(acr, 'store v4'), { source: 'store', published: 4 }), false);
    assert.match(rejected[1]!, /ACR values changed/);
    assert.deepEqual([rt.stats.rejected, rt.stats.published, rt.current()], [2, 2, second]);
  });
});

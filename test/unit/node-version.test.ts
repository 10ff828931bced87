import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { enginesRange, minimumOf, nodeVersionProblem } from '../../idp/node-version.ts';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');

describe('Node.js version check of the entry points', () => {
  it('refuses a version below the engines range with one line saying what to install', () => {
    const p = nodeVersionProblem('20.20.2', '>=22.13.0', '/usr/bin/node');
    assert.ok(p);
    assert.equal(p.split('\n').length, 1);
    assert.match(p, /needs Node\.js >=22\.13\.0/);
    assert.match(p, /this is Node\.js 20\.20\.2 \(\/usr\/bin\/node\)/);
    assert.match(p, /install Node\.js 24 LTS/);
    // The boundary, by minor and by patch.
    assert.ok(nodeVersionProblem('22.12.9', '>=22.13.0'));
    assert.ok(nodeVersionProblem('22.12.0', '>=22.13.0'));
    assert.ok(nodeVersionProblem('21.99.99', '>=22.13.0'));
  });

  it('accepts the minimum and anything newer', () => {
    for (const v of ['22.13.0', '22.13.1', '22.14.0', '23.0.0', '24.21.0', '100.0.0']) {
      assert.equal(nodeVersionProblem(v, '>=22.13.0'), undefined, v);
    }
  });

  it('does not refuse on a range or version it cannot read', () => {
    assert.equal(nodeVersionProblem('20.0.0', '^22 || ^24'), undefined);
    assert.equal(nodeVersionProblem('weird', '>=22.13.0'), undefined);
  });

  it('reads package.json "engines", which keeps to the one form the check understands', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    assert.equal(enginesRange(), pkg.engines.node);
    assert.ok(minimumOf(pkg.engines.node), `engines.node "${pkg.engines.node}" must be ">=X.Y.Z"`);
    // The Node running the tests satisfies it (else every entry point would refuse to start).
    assert.equal(nodeVersionProblem(process.versions.node, pkg.engines.node), undefined);
  });
});

/**
 * Policy validation: the shipped policy passes; each kind of broken file is rejected with
 * its file, line and key path, and a message that says what to fix.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkPolicy, formatPolicyError, loadPolicy, type PolicyError } from '../../policies/policy.ts';
import { DEFAULT_POLICY_DIR } from '../../idp/settings.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { tempDir } from '../helpers/env.ts';

/** A copy of the shipped policy files, as written, with one file's text edited. */
function withEdit(file: 'risk.yml' | 'lists.yml' | 'assurance.yml', edit: (text: string) => string): string {
  const dir = tempDir('idp-policy-');
  for (const f of fs.readdirSync(DEFAULT_POLICY_DIR)) fs.copyFileSync(path.join(DEFAULT_POLICY_DIR, f), path.join(dir, f));
  const p = path.join(dir, file);
  fs.writeFileSync(p, edit(fs.readFileSync(p, 'utf8')));
  return dir;
}

function lineOf(dir: string, file: string, needle: string): number {
  const idx = fs.readFileSync(path.join(dir, file), 'utf8').split('\n').findIndex((l) => l.includes(needle));
  assert.ok(idx >= 0, `"${needle}" not in ${file}`);
  return idx + 1;
}

function only(errors: PolicyError[]): PolicyError {
  assert.equal(errors.length, 1, errors.map(formatPolicyError).join('\n'));
  return errors[0]!;
}

describe('policy schema', () => {
  it('accepts the shipped policy', () => {
    assert.deepEqual(checkPolicy(DEFAULT_POLICY_DIR), []);
    const p = loadPolicy(DEFAULT_POLICY_DIR);
    assert.match(p.version, /^[0-9a-f]{12}$/);
    assert.deepEqual(p.assurance.levels.map((l) => l.name), ['aal1', 'aal2', 'aal3']);
  });

  it('names file, line and key for a misspelt key', () => {
    const dir = withEdit('risk.yml', (t) => t.replace('new_city:', 'new_citty:'));
    const errors = checkPolicy(dir);
    const unknown = errors.find((e) => e.path === 'factors.new_citty');
    assert.ok(unknown, errors.map(formatPolicyError).join('\n'));
    assert.equal(unknown.file, 'risk.yml');
    assert.equal(unknown.line, lineOf(dir, 'risk.yml', 'new_citty'));
    assert.match(unknown.message, /Unrecognized key/);
    // The key it replaced is now missing.
    assert.ok(errors.some((e) => e.path === 'factors.new_city' && /expected object, received undefined/.test(e.message)));
  });

  it('rejects an out-of-range weight at its line', () => {
    const dir = withEdit('risk.yml', (t) => t.replace('new_country:         { weight: 0.20 }', 'new_country:         { weight: 2 }'));
    const e = only(checkPolicy(dir));
    assert.deepEqual([e.file, e.path], ['risk.yml', 'factors.new_country.weight']);
    assert.equal(e.line, lineOf(dir, 'risk.yml', 'new_country:'));
    assert.match(e.message, /Too big: expected number to be <=1/);
    assert.match(formatPolicyError(e), /^risk\.yml:\d+:\d+: factors\.new_country\.weight: Too big/);
  });

  it('rejects thresholds that do not rise', () => {
    const e = only(checkPolicy(withEdit('risk.yml', (t) => t.replace('critical: 0.85', 'critical: 0.5'))));
    assert.equal(e.path, 'levels.critical');
    assert.match(e.message, /must be above levels\.high \(0\.6\)/);
  });

  it('reports YAML syntax errors with their position', () => {
    const e = only(checkPolicy(withEdit('lists.yml', (t) => t.replace('trusted_networks: []', 'trusted_networks: [10.0.0.0/8'))));
    assert.equal(e.file, 'lists.yml');
    assert.ok(e.line! > 1);
    assert.match(e.message, /^YAML: /);
  });

  it('rejects duplicate keys', () => {
    const e = only(checkPolicy(withEdit('lists.yml', (t) => `${t}\ntrusted_networks: []\n`)));
    assert.match(e.message, /Map keys must be unique/);
  });

  it('rejects a malformed network entry, naming it', () => {
    const dir = withEdit('lists.yml', (t) => t.replace('tor_exit_addresses: []', 'tor_exit_addresses: ["10.0.0.0/99"]'));
    const e = only(checkPolicy(dir));
    assert.equal(e.file, 'lists.yml');
    assert.match(e.message, /"10\.0\.0\.0\/99" has an invalid prefix length/);
    const e2 = only(checkPolicy(withEdit('lists.yml', (t) => t.replace('vpn_proxy_networks: []', 'vpn_proxy_networks: ["vpn.example.com"]'))));
    assert.equal(e2.path, 'vpn_proxy_networks.0');
    assert.match(e2.message, /must be an IP address or CIDR/);
  });

  it('rejects an assurance requirement that names no level', () => {
    const dir = withEdit('assurance.yml', (t) => t.replace('medium: aal2', 'medium: aal9'));
    const e = only(checkPolicy(dir));
    assert.deepEqual([e.file, e.path, e.line], ['assurance.yml', 'default.medium', lineOf(dir, 'assurance.yml', 'medium: aal9')]);
    assert.match(e.message, /"aal9" is not an assurance level \(one of aal1, aal2, aal3, block\)/);
  });

  it('refuses a model whose sha256 does not match the pin', () => {
    const dir = makePolicyDir();
    fs.appendFileSync(path.join(dir, 'model.json'), ' ');
    const e = only(checkPolicy(dir));
    assert.equal(e.path, 'model.sha256');
    assert.match(e.message, /tampered or mismatched model/);
  });

  it('reports a missing file and a missing model', () => {
    const dir = makePolicyDir();
    fs.rmSync(path.join(dir, 'lists.yml'));
    assert.deepEqual(checkPolicy(dir).map((e) => [e.file, e.message]), [['lists.yml', 'file is missing']]);
    const dir2 = makePolicyDir();
    fs.rmSync(path.join(dir2, 'model.json'));
    const e = only(checkPolicy(dir2));
    assert.equal(e.path, 'model.file');
    assert.match(e.message, /not found/);
  });

  it('lists every error at once', () => {
    const dir = withEdit('risk.yml', (t) => t.replace('weight: 0.5', 'weight: -1').replace('min_events: 3', 'min_events: many'));
    const errors = checkPolicy(dir);
    assert.deepEqual(errors.map((e) => e.path).sort(), ['cold_start.min_events', 'model.weight']);
  });
});

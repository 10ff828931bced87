/** Policy directories for tests: the shipped policy, with parts changed. */
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { DEFAULT_POLICY_DIR } from '../../idp/settings.ts';
import { tempDir } from './env.ts';

export type PolicyFiles = { risk: Record<string, any>; lists: Record<string, any>; assurance: Record<string, any> };

/** Copies the shipped policy (model included) to a temp dir, applying `patch` to the parsed YAML. */
export function makePolicyDir(patch: (f: PolicyFiles) => void = () => {}): string {
  const dir = tempDir('idp-policy-');
  const read = (f: string) => parse(fs.readFileSync(path.join(DEFAULT_POLICY_DIR, f), 'utf8')) as Record<string, any>;
  const files: PolicyFiles = { risk: read('risk.yml'), lists: read('lists.yml'), assurance: read('assurance.yml') };
  patch(files);
  fs.copyFileSync(path.join(DEFAULT_POLICY_DIR, files.risk.model.file), path.join(dir, path.basename(files.risk.model.file)));
  files.risk.model.file = path.basename(files.risk.model.file);
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, `${name}.yml`), stringify(content));
  return dir;
}

/**
 * A policy that asks only for a password below `critical`, and offers no enrolment: for tests
 * about other things.
 */
export function passwordOnlyPolicy(): string {
  return makePolicyDir((f) => {
    f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
    f.assurance.enrolment = { prompt: 'off' };
  });
}

/**
 * Rules only (model weight 0), confident after one trusted login, without the rules that
 * tests hopping between countries would trip (impossible travel, country hopping, the hour):
 * a login from a new country on a new browser is medium (aal2 in the shipped map).
 */
export function rulesOnlyPolicy(patch: (f: PolicyFiles) => void = () => {}): string {
  return makePolicyDir((f) => {
    f.risk.model.weight = 0;
    f.risk.cold_start.min_events = 1;
    f.risk.factors.impossible_travel.enabled = false;
    f.risk.factors.country_hopping.enabled = false;
    f.risk.factors.unusual_hour.enabled = false;
    patch(f);
  });
}

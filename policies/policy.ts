/**
 * Loading a policy directory: parse each YAML file keeping positions, validate it against
 * its schema, check what crosses files, verify the pinned model, and compile. Every error
 * names its file, line and key path (STYLE.md §4), and all of them are reported at once.
 *
 * This is the engine's only file reading; it happens at start, on hot reload and in the
 * CLI, never while scoring.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { loadModel, sha256Hex, type Forest } from './forest.ts';
import { POLICY_FILES, type AssurancePolicy, type RiskPolicy } from './schema.ts';
import { compileLists, FEATURE_NAMES, type CompiledLists } from './signals.ts';
import { formatFileError, parseYamlFile, yamlPosition, type FileError, type ParsedYaml } from './yaml-file.ts';

/** A problem in a policy file: its file, line and dotted key path (yaml-file.ts). */
export type PolicyError = FileError;
export const formatPolicyError = formatFileError;

export class PolicyLoadError extends Error {
  override name = 'PolicyLoadError';
  readonly errors: PolicyError[];
  constructor(dir: string, errors: PolicyError[]) {
    super(`policy ${dir} rejected:\n${errors.map(formatPolicyError).join('\n')}`);
    this.errors = errors;
  }
}

export interface CompiledPolicy {
  /** Content hash of the policy files and the model: recorded with every decision. */
  readonly version: string;
  readonly dir: string;
  readonly risk: RiskPolicy;
  readonly lists: CompiledLists;
  readonly assurance: AssurancePolicy;
  readonly forest: Forest;
}

/** One policy file of `dir`; its errors name it as the admin knows it (`risk.yml`). */
function parseFile<S extends z.ZodType>(dir: string, file: string, schema: S, errors: PolicyError[]): ParsedYaml<z.infer<S>> {
  return parseYamlFile(path.join(dir, file), file, schema, errors);
}

/** Stand-in model for training, where the policy's own model must not take part. */
const NO_MODEL: Forest = { features: FEATURE_NAMES, version: 'none', trees: [], probability: () => 0, votes: () => 0 };

/**
 * Loads and compiles a policy directory; throws PolicyLoadError listing every problem.
 * `withoutModel` skips the model (for training one) and scores with P(attack) = 0.
 */
export function loadPolicy(dirArg: string, opts: { withoutModel?: boolean } = {}): CompiledPolicy {
  const dir = path.resolve(dirArg);
  const errors: PolicyError[] = [];
  const risk = parseFile(dir, 'risk.yml', POLICY_FILES['risk.yml'], errors);
  const lists = parseFile(dir, 'lists.yml', POLICY_FILES['lists.yml'], errors);
  const assurance = parseFile(dir, 'assurance.yml', POLICY_FILES['assurance.yml'], errors);
  const err = (p: ParsedYaml<unknown>, keyPath: (string | number)[], message: string) =>
    errors.push({ file: p.file, ...yamlPosition(p, keyPath), path: keyPath.join('.'), message });

  if (risk.value) {
    const l = risk.value.levels;
    if (!(l.medium < l.high)) err(risk, ['levels', 'high'], `must be above levels.medium (${l.medium})`);
    if (!(l.high < l.critical)) err(risk, ['levels', 'critical'], `must be above levels.high (${l.high})`);
  }

  let compiledLists: CompiledLists | undefined;
  if (lists.value) {
    try {
      compiledLists = compileLists(lists.value);
    } catch (e) {
      err(lists, [], (e as Error).message);
    }
  }

  if (assurance.value) {
    const a = assurance.value;
    const names = a.levels.map((l) => l.name);
    a.levels.forEach((l, i) => {
      if (names.indexOf(l.name) !== i) err(assurance, ['levels', i, 'name'], `duplicate level "${l.name}"`);
      if (a.levels.findIndex((o) => o.acr === l.acr) !== i) err(assurance, ['levels', i, 'acr'], `duplicate acr "${l.acr}"`);
      // Levels are ordered: a session that meets one meets every weaker one (policies/assurance.ts).
      const prev = a.levels[i - 1];
      if (prev && (l.factors < prev.factors || (prev.phishing_resistant && !l.phishing_resistant))) {
        err(assurance, ['levels', i], `level "${l.name}" demands less than "${prev.name}" before it: list levels weakest first`);
      }
    });
    const check = (map: Record<string, string | undefined>, at: (string | number)[]) => {
      for (const [level, req] of Object.entries(map)) {
        if (req !== undefined && req !== 'block' && !names.includes(req)) {
          err(assurance, [...at, level], `"${req}" is not an assurance level (one of ${[...names, 'block'].join(', ')})`);
        }
      }
    };
    check(a.default, ['default']);
    for (const [id, m] of Object.entries(a.clients)) check(m, ['clients', id]);
    for (const [op, m] of Object.entries(a.operations)) check(m, ['operations', op]);
  }

  let forest: Forest | undefined;
  let modelBytes: Buffer | undefined;
  if (risk.value && opts.withoutModel) {
    forest = NO_MODEL;
    modelBytes = Buffer.alloc(0);
  } else if (risk.value) {
    const file = path.resolve(dir, risk.value.model.file);
    try {
      modelBytes = fs.readFileSync(file);
      forest = loadModel(modelBytes, risk.value.model.sha256, FEATURE_NAMES);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') err(risk, ['model', 'file'], `model file ${file} not found`);
      else err(risk, ['model', 'sha256'], (e as Error).message);
    }
  }

  if (errors.length > 0 || !risk.value || !lists.value || !assurance.value || !compiledLists || !forest || !modelBytes) {
    throw new PolicyLoadError(dir, errors);
  }
  const version = sha256Hex(
    [risk, lists, assurance].map((p) => `${p.file}\n${String(p.doc)}`).join('\n') + sha256Hex(modelBytes),
  ).slice(0, 12);
  return Object.freeze({ version, dir, risk: risk.value, lists: compiledLists, assurance: assurance.value, forest });
}

/** Every problem in a policy directory, or none (`idp policy check`). */
export function checkPolicy(dir: string): PolicyError[] {
  try {
    loadPolicy(dir);
    return [];
  } catch (e) {
    if (e instanceof PolicyLoadError) return e.errors;
    return [{ file: dir, path: '', message: (e as Error).message }];
  }
}

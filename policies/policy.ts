/**
 * Loading a policy directory: parse each YAML file keeping positions, validate it against
 * its schema, check what crosses files, verify the pinned model, and compile. Every error
 * names its file, line and key path (STYLE.md §4), and all of them are reported at once.
 *
 * A policy is read from a directory (POLICY_DIR, `idp policy check`) or from a bundle of its
 * files' texts held in memory (a version published to the store, a candidate sent to the
 * admin API): both go through the same checks and give the same messages, so a candidate is
 * refused exactly as the same edit of a file would be.
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
import { isScalar, parse as parseYaml, parseDocument } from 'yaml';
import { formatFileError, parseYamlText, yamlPosition, type FileError, type ParsedYaml } from './yaml-file.ts';

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

/**
 * A policy's files by name, as texts: the three YAML files under their names and the model
 * under the name risk.yml's `model.file` gives it (UTF-8 JSON). What the store keeps of a
 * published version, and what a candidate is.
 */
export type PolicyFiles = Readonly<Record<string, string>>;

/** The YAML files every policy has (the model is the fourth file, named in risk.yml). */
export const POLICY_FILE_NAMES = ['risk.yml', 'lists.yml', 'assurance.yml'] as const;

/** Where a policy's files are read from. */
interface PolicySource {
  /** Names the policy in errors and in CompiledPolicy.dir: a directory's path, or e.g. `store v3`. */
  readonly name: string;
  /** A file's bytes by its name relative to the policy; undefined when it is missing. */
  read(file: string): Buffer | Error | undefined;
  /** How a missing model file is named in its error (a directory: the path it was looked for at). */
  where(file: string): string;
}

function dirSource(dir: string): PolicySource {
  return {
    name: dir,
    read(file) {
      try {
        return fs.readFileSync(path.resolve(dir, file));
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : e as Error;
      }
    },
    where: (file) => path.resolve(dir, file),
  };
}

function filesSource(files: PolicyFiles, name: string): PolicySource {
  return {
    name,
    read: (file) => (Object.hasOwn(files, file) ? Buffer.from(files[file]!, 'utf8') : undefined),
    where: (file) => file,
  };
}

/** One policy file; its errors name it as the admin knows it (`risk.yml`). */
function parseFile<S extends z.ZodType>(src: PolicySource, file: string, schema: S, errors: PolicyError[]): ParsedYaml<z.infer<S>> {
  const bytes = src.read(file);
  return parseYamlText(Buffer.isBuffer(bytes) ? bytes.toString('utf8') : bytes as Error | undefined, file, schema, errors);
}

/** Stand-in model for training, where the policy's own model must not take part. */
const NO_MODEL: Forest = { features: FEATURE_NAMES, version: 'none', trees: [], probability: () => 0, votes: () => 0 };

/**
 * Loads and compiles a policy directory; throws PolicyLoadError listing every problem.
 * `withoutModel` skips the model (for training one) and scores with P(attack) = 0.
 */
export function loadPolicy(dirArg: string, opts: { withoutModel?: boolean } = {}): CompiledPolicy {
  return loadFrom(dirSource(path.resolve(dirArg)), opts);
}

/**
 * Loads and compiles a policy from its files' texts (a version from the store, a candidate),
 * with the same checks and messages as loadPolicy; `name` stands for the directory in
 * CompiledPolicy.dir and in PolicyLoadError's message.
 */
export function loadPolicyFiles(files: PolicyFiles, name: string, opts: { withoutModel?: boolean } = {}): CompiledPolicy {
  return loadFrom(filesSource(files, name), opts);
}

function loadFrom(src: PolicySource, opts: { withoutModel?: boolean }): CompiledPolicy {
  const dir = src.name;
  const errors: PolicyError[] = [];
  const risk = parseFile(src, 'risk.yml', POLICY_FILES['risk.yml'], errors);
  const lists = parseFile(src, 'lists.yml', POLICY_FILES['lists.yml'], errors);
  const assurance = parseFile(src, 'assurance.yml', POLICY_FILES['assurance.yml'], errors);
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
    const bytes = src.read(risk.value.model.file);
    if (bytes === undefined) err(risk, ['model', 'file'], `model file ${src.where(risk.value.model.file)} not found`);
    else if (bytes instanceof Error) err(risk, ['model', 'file'], bytes.message);
    else {
      try {
        forest = loadModel(bytes, risk.value.model.sha256, FEATURE_NAMES);
        modelBytes = bytes;
      } catch (e) {
        err(risk, ['model', 'sha256'], (e as Error).message);
      }
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

/** The model file risk.yml's text names, if it can be made out (read leniently: the loader reports what is wrong). */
export function modelFileOf(riskYml: string | undefined): string | undefined {
  try {
    const file = (parseYaml(riskYml ?? '') as { model?: { file?: unknown } } | null)?.model?.file;
    return typeof file === 'string' && file ? file : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The files of a policy directory as a bundle (PolicyFiles): the three YAML files and the
 * model risk.yml names, read as they are. A file that is missing or unreadable is left out
 * (loading the bundle then says so).
 */
export function readPolicyDir(dirArg: string): Record<string, string> {
  const dir = path.resolve(dirArg);
  const files: Record<string, string> = {};
  const read = (file: string) => {
    try {
      files[file] = fs.readFileSync(path.resolve(dir, file), 'utf8');
    } catch {
      // Left out: the loader names it ("file is missing", "model file … not found").
    }
  };
  for (const f of POLICY_FILE_NAMES) read(f);
  const model = modelFileOf(files['risk.yml']);
  if (model) read(model);
  return files;
}

/**
 * Only the files a policy consists of: the three YAML files and the model its risk.yml
 * names (a candidate completed from the live version must not carry the live model along
 * when it names another one).
 */
export function policyFilesOnly(files: PolicyFiles): Record<string, string> {
  const model = modelFileOf(files['risk.yml']);
  return Object.fromEntries(Object.entries(files).filter(([name]) => (POLICY_FILE_NAMES as readonly string[]).includes(name) || name === model));
}

/**
 * The files with another model pinned: the model file risk.yml names gets `modelText`, and
 * risk.yml's `model.sha256` its sha256, edited in place so the file's comments and layout
 * stay as they are (a model activated through the store, idp/admin/model.ts). The result is
 * checked by the loader like any candidate; a risk.yml that names no model is returned as it is.
 */
export function withModel(files: PolicyFiles, modelText: string): Record<string, string> {
  const risk = files['risk.yml'];
  const model = modelFileOf(risk);
  if (risk === undefined || model === undefined) return { ...files };
  const doc = parseDocument(risk);
  const sha = sha256Hex(Buffer.from(modelText, 'utf8'));
  const node = doc.getIn(['model', 'sha256'], true);
  let text: string;
  if (isScalar(node) && node.range) {
    // The value's characters replaced in the text, in its quoting: nothing else moves.
    const q = node.type === 'QUOTE_DOUBLE' ? '"' : node.type === 'QUOTE_SINGLE' ? "'" : '';
    text = `${risk.slice(0, node.range[0])}${q}${sha}${q}${risk.slice(node.range[1])}`;
  } else {
    doc.setIn(['model', 'sha256'], sha);
    text = String(doc);
  }
  return { ...files, 'risk.yml': text, [model]: modelText };
}

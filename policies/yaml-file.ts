/**
 * YAML configuration files read with their positions: parse, validate against a zod schema,
 * and report every problem with its file, line and key path (STYLE.md §4), all at once.
 * The policy files (policy.ts) and the directory file (adapters/directory/config.ts) both
 * read through here, so their errors look alike and `idp config check` prints them alike.
 *
 * No I/O besides reading the one file it is given (parseYamlText: none).
 */
import fs from 'node:fs';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';

export interface FileError {
  file: string;
  line?: number | undefined;
  column?: number | undefined;
  /** Dotted key path, e.g. factors.new_country.weight */
  path: string;
  message: string;
}

export function formatFileError(e: FileError): string {
  const where = e.line !== undefined ? `${e.file}:${e.line}${e.column !== undefined ? `:${e.column}` : ''}` : e.file;
  return `${where}: ${e.path ? `${e.path}: ` : ''}${e.message}`;
}

export interface ParsedYaml<T> {
  /** The name errors carry (as the user knows the file). */
  file: string;
  doc: Document;
  lines: LineCounter;
  /** The validated value; absent when the file is missing, not YAML, or fails the schema. */
  value?: T;
}

/** Position of the node at `keyPath` (of its key, for a map entry), or of its nearest existing ancestor. */
export function yamlPosition(p: ParsedYaml<unknown>, keyPath: (string | number)[]): { line?: number; column?: number } {
  if (keyPath.length > 0) {
    const parent = keyPath.length === 1 ? p.doc.contents : p.doc.getIn(keyPath.slice(0, -1), true);
    const last = keyPath[keyPath.length - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === last);
      if (pair && isNode(pair.key) && pair.key.range) {
        const { line, col } = p.lines.linePos(pair.key.range[0]);
        return { line, column: col };
      }
    }
  }
  for (let n = keyPath.length; n >= 0; n -= 1) {
    const node = n === 0 ? p.doc.contents : p.doc.getIn(keyPath.slice(0, n), true);
    if (isNode(node) && node.range) {
      const { line, col } = p.lines.linePos(node.range[0]);
      return { line, column: col };
    }
  }
  return {};
}

/** An error at `keyPath` of a parsed file, positioned at its line. */
export function errorAt(p: ParsedYaml<unknown>, keyPath: (string | number)[], message: string): FileError {
  return { file: p.file, ...yamlPosition(p, keyPath), path: keyPath.join('.'), message };
}

/**
 * Reads `filePath` and validates it against `schema`, pushing every problem onto `errors`
 * under the name `file`. Messages never quote the file's text beyond YAML's first line of
 * diagnosis, so a value (a secret put where it does not belong) is not echoed.
 */
export function parseYamlFile<S extends z.ZodType>(filePath: string, file: string, schema: S, errors: FileError[]): ParsedYaml<z.infer<S>> {
  let text: string;
  try {
    text = fs.readFileSync(filePath, 'utf8');
  } catch (err) {
    return parseYamlText((err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : err as Error, file, schema, errors);
  }
  return parseYamlText(text, file, schema, errors);
}

/**
 * The same for a file's text held in memory (a policy version from the store, a candidate
 * sent to the admin API): the same checks and the same messages as for the file on disk.
 * `undefined` is a missing file; an Error, one that could not be read.
 */
export function parseYamlText<S extends z.ZodType>(text: string | Error | undefined, file: string, schema: S, errors: FileError[]): ParsedYaml<z.infer<S>> {
  const lines = new LineCounter();
  if (typeof text !== 'string') {
    errors.push({ file, path: '', message: text === undefined ? 'file is missing' : text.message });
    return { file, doc: parseDocument('', { lineCounter: lines }), lines };
  }
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const parsed: ParsedYaml<z.infer<S>> = { file, doc, lines };
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const { line, col } = lines.linePos(e.pos[0]);
      errors.push({ file, line, column: col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
    }
    return parsed;
  }
  const result = schema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    for (const issue of result.error.issues) {
      const keyPath = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
      // For an unknown key, point at the key itself.
      const keys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : [];
      const at = keys.length ? [...keyPath, keys[0]!] : keyPath;
      errors.push({ file, ...yamlPosition(parsed, at), path: at.join('.'), message: issue.message });
    }
    return parsed;
  }
  parsed.value = result.data;
  return parsed;
}

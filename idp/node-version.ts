/**
 * The first thing every entry point runs (`npm start` → main.ts, `idp` → bin.ts): is this
 * Node.js new enough for package.json "engines"?
 *
 * Why a module of its own: static imports are linked before any code of the importing module
 * runs, so an entry point that imported the server would die on Node 20 with a raw
 * `ERR_UNKNOWN_BUILTIN_MODULE node:sqlite` trace before it could say anything. The entry
 * points import only this, check, and then import the rest dynamically.
 *
 * So this file imports nothing but long-standing built-ins and uses no recent API: it must
 * load and speak on the old Node it refuses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type Version = [number, number, number];

function parseVersion(v: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function below(a: Version, b: Version): boolean {
  for (let i = 0; i < 3; i += 1) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/**
 * The minimum version of an "engines" range, or undefined when the range is not of the one
 * form this project uses (`>=X.Y.Z`; a unit test keeps package.json to it).
 */
export function minimumOf(range: string): string | undefined {
  const m = /^>=\s*v?(\d+\.\d+\.\d+)$/.exec(range.trim());
  return m ? m[1] : undefined;
}

/**
 * One line saying what to install, or undefined when `running` satisfies `range`.
 * `running` is `process.versions.node` (no leading "v").
 */
export function nodeVersionProblem(running: string, range: string, executable = process.execPath): string | undefined {
  const min = minimumOf(range);
  const have = parseVersion(running);
  const need = min === undefined ? undefined : parseVersion(min);
  // An unreadable range or version is no reason to refuse: the real error, if any, follows.
  if (!have || !need || !below(have, need)) return undefined;
  return `adaptive-idp needs Node.js ${range} (it uses the built-in node:sqlite), but this is Node.js ${running} (${executable}): `
    + 'install Node.js 24 LTS (https://nodejs.org, or `nvm install 24`) and run it with that';
}

/** package.json "engines.node", read from the installed package (this file runs from dist/idp/). */
export function enginesRange(): string | undefined {
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  try {
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { engines?: { node?: unknown } };
    return typeof pkg.engines?.node === 'string' ? pkg.engines.node : undefined;
  } catch {
    return undefined;
  }
}

/** Exits with one line on stderr (exit code 1) when this Node.js is too old. */
export function requireSupportedNode(): void {
  const range = enginesRange();
  const problem = range === undefined ? undefined : nodeVersionProblem(process.versions.node, range);
  if (problem === undefined) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

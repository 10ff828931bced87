/**
 * The import boundaries of ARCHITECTURE.md, as the linter enforces them (eslint.config.js):
 * each forbidden import is reported, each allowed one is not.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');

async function violations(file: string, code: string): Promise<string[]> {
  const { boundaries } = (await import(path.join(ROOT, 'eslint.config.js'))) as { boundaries: Linter.Config[] };
  const eslint = new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser as Linter.Parser } }, ...boundaries],
  });
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('import boundaries (ARCHITECTURE.md)', () => {
  const forbidden: [string, string, RegExp][] = [
    ['policies/x.ts', "import { startServer } from '../idp/server.ts';", /policies\/ imports nothing/],
    ['policies/x.ts', "import type { Storage } from '../adapters/storage/port.ts';", /policies\/ imports nothing/],
    ['policies/x.ts', "import Koa from 'koa';", /no HTTP/],
    ['interactions/steps/x.ts', "import { openMongoStorage } from '../../adapters/storage/mongo.ts';", /storage port/],
    ['interactions/x.ts', "import mongoose from 'mongoose';", /Only adapters\//],
    ['interactions/x.ts', "import { loadSettings } from '../idp/settings.ts';", /only the kernel/],
    ['adapters/x.ts', "import { loadSettings } from '../idp/settings.ts';", /only the kernel/],
    ['adapters/storage/x.ts', "import { login } from '../../interactions/steps/login.ts';", /interaction layer/],
    ['models/x.ts', "import { RiskService } from '../interactions/risk.ts';", /record types/],
    ['idp/x.ts', "import { DatabaseSync } from 'node:sqlite';", /Only adapters\//],
  ];
  for (const [file, code, message] of forbidden) {
    it(`reports ${code} in ${file}`, async () => {
      const v = await violations(file, code);
      assert.equal(v.length, 1, v.join('\n'));
      assert.match(v[0]!, /^no-restricted-imports: /);
      assert.match(v[0]!, message);
    });
  }

  const allowed: [string, string][] = [
    ['policies/x.ts', "import { decide } from './decision.ts';"],
    ['interactions/x.ts', "import { UserError } from '../idp/errors.ts';"],
    ['interactions/steps/x.ts', "import type { Events } from '../../idp/events.ts';"],
    ['interactions/x.ts', "import type { Storage } from '../adapters/storage/port.ts';"],
    ['interactions/methods/x.ts', "import type { SecretBox } from '../../adapters/crypto.ts';"],
    ['interactions/x.ts', "import { decide } from '../policies/decision.ts';"],
    ['adapters/storage/x.ts', "import mongoose from 'mongoose';"],
    ['models/x.ts', "import { Schema } from 'mongoose';"],
    ['idp/x.ts', "import { interactionRouter } from '../interactions/router.ts';"],
  ];
  for (const [file, code] of allowed) {
    it(`allows ${code} in ${file}`, async () => {
      assert.deepEqual(await violations(file, code), []);
    });
  }
});

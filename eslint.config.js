// ESLint (flat config) with typescript-eslint. Besides the usual checks, it enforces the
// import boundaries of ARCHITECTURE.md ("The pieces and who may import whom"); a test
// (test/unit/lint-boundaries.test.ts) shows each boundary rule firing.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const LAYERS = 'idp|interactions|policies|adapters|models';
/** Any relative import of a file of `layer`. */
const into = (layer) => `(^|/)\\.\\.?/(\\.\\./)*(${layer})/`;
/** idp/'s kernel, the only part of idp/ lower layers may import. */
const beyondKernel = `${into('idp')}(?!(errors|log|events)\\.ts$)`;
const DATABASES = ['mongoose', 'node:sqlite'].map((name) => ({
  name, message: 'Only adapters/ knows which database is in use (ARCHITECTURE.md): go through the storage port.',
}));

/** The boundary rules, per layer: exported for the test that shows them firing. */
export const boundaries = [
  {
    files: ['policies/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [...DATABASES, ...['koa', '@koa/router', 'oidc-provider'].map((name) => ({ name, message: 'policies/ is a library with no HTTP (ARCHITECTURE.md).' }))],
        patterns: [{ regex: into('idp|interactions|adapters|models'), message: 'policies/ imports nothing from idp/, interactions/, adapters/ or models/: it receives plain data (ARCHITECTURE.md).' }],
      }],
    },
  },
  {
    files: ['models/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['koa', '@koa/router', 'oidc-provider'].map((name) => ({ name, message: 'models/ is the data model: no logic, no HTTP (ARCHITECTURE.md).' })),
        patterns: [{ regex: into('idp|interactions|adapters'), message: 'models/ holds record types and schemas only (ARCHITECTURE.md).' }],
      }],
    },
  },
  {
    files: ['interactions/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: DATABASES,
        patterns: [
          { regex: beyondKernel, message: 'Of idp/, lower layers import only the kernel: errors.ts, log.ts, events.ts (ARCHITECTURE.md).' },
          // crypto.ts: the methods seal and open their secrets (a TOTP seed) with the data key.
          // directory/index.ts: the directories' service (search, bind), never an LDAP connection directly.
          { regex: `${into('adapters')}(?!(storage/port|geoip|crypto|directory/index)\\.ts$)`, message: 'interactions/ uses the storage port (adapters/storage/port.ts), the geo lookup, secret encryption (adapters/crypto.ts) and the directories (adapters/directory/index.ts), never a store or an LDAP connection directly (ARCHITECTURE.md).' },
        ],
      }],
    },
  },
  {
    // Only adapters/ (and models/' mongoose schemas) know which database is in use.
    files: ['adapters/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { regex: beyondKernel, message: 'Of idp/, lower layers import only the kernel: errors.ts, log.ts, events.ts (ARCHITECTURE.md).' },
          { regex: into('interactions'), message: 'adapters/ talk to the outside; they do not import the interaction layer (ARCHITECTURE.md).' },
        ],
      }],
    },
  },
  {
    files: ['idp/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: DATABASES }] },
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.ci/**', 'data/**', 'certs/**', 'test/e2e/artifacts/**', 'out/**', 'bench-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: [`{${LAYERS},test}/**/*.ts`],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // STYLE.md §8: a linter that catches floating promises.
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test's describe/it return promises the runner itself awaits.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // The pages' own scripts run in the browser (interactions/assets.ts serves them).
    files: ['interactions/assets/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { window: 'readonly', document: 'readonly', fetch: 'readonly', encodeURIComponent: 'readonly' },
    },
  },
  {
    // Tests patch parsed YAML of any shape.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...boundaries,
);

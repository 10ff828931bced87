/**
 * The test run itself: suites that need MongoDB or Chromium are counted as skipped when those
 * are missing, and fail the run under CI=true; a hung test becomes a failure with the flags of
 * `npm test`, and the children a test started do not outlive it.
 * Each case runs a small fixture file with node --test in a child process.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../helpers/env.ts';
import { runNode } from '../helpers/process.ts';
import { mongoTestFiles } from '../run-mongo.ts';

const HELPERS = path.join(import.meta.dirname, '..', 'helpers');
const ROOT = path.join(import.meta.dirname, '..', '..', '..');
const SUITES = path.join(HELPERS, 'suites.fixture.js');
const HANG = path.join(HELPERS, 'hang.fixture.js');

/** The summary counters of node's spec reporter ("ℹ skipped 2"). */
function summary(out: string): Record<string, number> {
  return Object.fromEntries([...out.matchAll(/^ℹ (\w+) (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** Whether a process runs (a zombie, dead but not yet reaped, does not). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** A clean environment: the developer's or CI's own MONGODB_URI / CI must not leak in. */
const env = (extra: Record<string, string>) => ({ PATH: process.env.PATH ?? '', ...extra });

describe('skipped suites are visible, and fail under CI=true', () => {
  it('counts a suite whose MongoDB or Chromium is missing as a skipped test, with the reason', async () => {
    const r = await runNode(['--test', '--test-reporter=spec', SUITES], { env: env({ CHROMIUM_PATH: '/nonexistent/chromium' }) });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = summary(r.stdout);
    assert.equal(s.skipped, 2, r.stdout);
    assert.equal(s.pass, 1, 'the embedded-store suite ran');
    assert.match(r.stdout, /# MONGODB_URI is not set/);
    assert.match(r.stdout, /# \/nonexistent\/chromium is not installed/);
  });

  it('fails the run under CI=true, saying what is missing', async () => {
    const r = await runNode(['--test', '--test-reporter=spec', SUITES], { env: env({ CI: 'true', CHROMIUM_PATH: '/nonexistent/chromium' }) });
    assert.equal(r.code, 1, r.stdout);
    const s = summary(r.stdout);
    assert.equal(s.fail, 2, r.stdout);
    assert.equal(s.skipped, 0);
    assert.match(r.stdout, /CI=true and MONGODB_URI is not set: this suite may not be skipped in CI/);
    assert.match(r.stdout, /CI=true and \/nonexistent\/chromium is not installed/);
  });

  it('runs every suite under CI=true when both are there', async () => {
    // The fixture's suites only need the variables to point somewhere; nothing connects.
    const r = await runNode(['--test', '--test-reporter=spec', SUITES], {
      env: env({ CI: 'true', MONGODB_URI: 'mongodb://127.0.0.1:27017/', CHROMIUM_PATH: process.execPath }),
    });
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual([summary(r.stdout).pass, summary(r.stdout).skipped, summary(r.stdout).fail], [3, 0, 0]);
  });
});

describe('npm run test:mongo: the MongoDB suites again, on a second server', () => {
  it('TEST_STORES=mongodb keeps only the MongoDB suites; an unknown store name fails the file', async () => {
    const r = await runNode(['--test', '--test-reporter=spec', SUITES], {
      env: env({ CI: 'true', TEST_STORES: 'mongodb', MONGODB_URI: 'mongodb://127.0.0.1:27017/', CHROMIUM_PATH: process.execPath }),
    });
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual([summary(r.stdout).pass, summary(r.stdout).skipped, summary(r.stdout).fail], [2, 0, 0]);
    assert.match(r.stdout, /fixture suite \(mongodb store\)/);
    assert.doesNotMatch(r.stdout, /fixture suite \(embedded store\)/);
    const bad = await runNode(['--test', '--test-reporter=spec', SUITES], { env: env({ TEST_STORES: 'mongo', CHROMIUM_PATH: process.execPath }) });
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stdout + bad.stderr, /TEST_STORES: unknown store "mongo"/);
  });

  it('runs the test files that use the MongoDB store, and no others', () => {
    const files = mongoTestFiles(path.join(ROOT, 'dist', 'test')).map((f) => path.relative(path.join(ROOT, 'dist', 'test'), f));
    for (const f of ['integration/storage.contract.test.js', 'integration/oidc-flow.test.js', 'unit/totp.test.js']) assert.ok(files.includes(f), `${f} missing: ${files.join(' ')}`);
    for (const f of ['unit/assurance.test.js', 'e2e/login.e2e.test.js']) assert.ok(!files.includes(f), `${f} does not use MongoDB`);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts['test:mongo'] ?? '', /run-mongo\.js/);
  });
});

describe('a hung test', () => {
  it('npm test gives every test a timeout, and lets every test file report before it exits', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { test: string } };
    const timeout = /--test-timeout=(\d+)/.exec(pkg.scripts.test)?.[1];
    assert.ok(timeout && Number(timeout) > 0 && Number(timeout) <= 10 * 60_000, `a per-test timeout of at most 10 min: ${pkg.scripts.test}`);
    // --test-force-exit ended test files before all their tests had reported (a whole
    // describe block of engine.test.js went missing in 2 runs of 6, with no failure shown).
    // Every file exits on its own; .ci/run bounds the whole run with a timeout instead.
    assert.doesNotMatch(pkg.scripts.test, /--test-force-exit/);
    const ci = fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');
    assert.match(ci, /timeout [^\n]*npm test/);
  });

  it('fails at its timeout instead of hanging the run, and its child process does not outlive it', async () => {
    const pidFile = path.join(tempDir('idp-hang-'), 'pid');
    const started = Date.now();
    const r = await runNode(['--test', '--test-timeout=3000', '--test-force-exit', '--test-reporter=spec', HANG], {
      env: env({ PID_FILE: pidFile }),
      timeoutMs: 60_000,
    });
    assert.equal(r.signal, null, `the run ended by itself, not at the deadline of this test: ${r.stdout}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /test timed out after 3000ms/);
    assert.ok(Date.now() - started < 60_000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.ok(pid > 0);
    // The helper killed it when the test file ended.
    assert.equal(running(pid), false, `child ${pid} still running`);
  });
});

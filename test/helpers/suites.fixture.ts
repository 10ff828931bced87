/**
 * Not a test of the suite: a test file that test-tooling.test.ts runs in a child process to
 * see how suites that need MongoDB or Chromium are reported when those are missing.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { STORES, describeOrSkip } from './env.ts';
import { chromiumMissing } from './chromium.ts';

for (const store of STORES) {
  describeOrSkip(store.skip, `fixture suite (${store.kind} store)`, () => {
    it('runs', () => assert.ok(true));
  });
}
describeOrSkip(chromiumMissing, 'fixture suite (browser)', () => {
  it('runs', () => assert.ok(true));
});

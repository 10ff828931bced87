/**
 * Not a test of the suite: a test file that test-tooling.test.ts runs in a child process. Its
 * test starts a server-like child through the helper, never stops it, and hangs, as the CLI
 * test did that waited a fixed 5 s for "listening". The child's pid goes to $PID_FILE.
 */
import fs from 'node:fs';
import { it } from 'node:test';
import { startNode } from './process.ts';

it('hangs with a child running', async () => {
  const child = startNode(['-e', 'setInterval(() => {}, 1000)']);
  fs.writeFileSync(process.env.PID_FILE ?? '', String(child.child.pid));
  await new Promise(() => {});
});

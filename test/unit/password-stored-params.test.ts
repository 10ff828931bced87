/**
 * Review of f999d09 (issue 10): a stored hash carries its own cost parameters, and verify()
 * hands them to @node-rs/argon2 unchecked. With m= above the machine's memory the `argon2`
 * package failed at once ("Memory allocation error"); @node-rs/argon2 reserves it and keeps
 * committing memory until the kernel kills the process. Run in a child process, killed
 * after a few seconds, so a failure of this test does not take the test runner down.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const PASSWORD_JS = fileURLToPath(new URL('../../interactions/methods/password.js', import.meta.url));

/** verify() of `stored` in a child; its answer, or 'killed' when it ran past `ms`, and its peak RSS in MiB. */
function verifyInChild(stored: string, ms: number): Promise<{ answer: string; rssMib: number }> {
  const code = `
    const { PasswordHasher } = await import(${JSON.stringify(PASSWORD_JS)});
    const h = new PasswordHasher({ memoryKib: 19456, iterations: 2 }, 15);
    const r = await h.verify(${JSON.stringify(stored)}, 'tram ankle violet sextant');
    console.log(JSON.stringify(r));
    console.error('rss', Math.round(process.resourceUsage().maxRSS / 1024));
    process.exit(0);`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let rss = 0;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { const m = /rss (\d+)/.exec(String(d)); if (m) rss = Number(m[1]); });
    const poll = setInterval(() => {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const m = /VmRSS:\s+(\d+)/.exec(status);
        if (m) rss = Math.max(rss, Math.round(Number(m[1]) / 1024));
      } catch { /* gone, or not Linux */ }
    }, 100);
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', () => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ answer: out.trim() || 'killed', rssMib: rss });
    });
  });
}

describe('a stored hash with absurd cost parameters', () => {
  it('fails closed at once instead of committing memory until the process is killed', async () => {
    // A well-formed PHC string (salt 16 bytes, output 32) but m = 2^32-1 KiB (4 TiB).
    const stored = '$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE';
    const { answer, rssMib } = await verifyInChild(stored, 4000);
    assert.equal(answer, '{"ok":false,"needsRehash":false}', `verify() did not answer within 4 s (peak RSS ${rssMib} MiB)`);
    assert.ok(rssMib < 512, `verify() grew the process to ${rssMib} MiB`);
  });
});

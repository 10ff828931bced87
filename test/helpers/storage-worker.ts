/**
 * A separate process using the store, as another IdP instance would. Commands (argv):
 *   reserve <key> <n> <max> [free]   reserve n times in parallel, print how many were allowed;
 *                                    with `free`, attempts after that many wait a minute
 *   advance <factor> <n> <value>     advance a factor's counter to value n times in parallel, print how many won
 *   accounts <n>              create n accounts, printing each id as it commits, forever-ish
 *   records <n>               upsert oidc records 10 at a time (queued writes that share a
 *                             commit), printing each id once its write was answered
 */
import crypto from 'node:crypto';
import { openStorage } from '../../adapters/storage/index.ts';

const [cmd, a, b, c, d] = process.argv.slice(2);
const storage = await openStorage({ mongodbUri: process.env.MONGODB_URI || undefined, dataDir: process.env.DATA_DIR ?? '' });
if (cmd === 'reserve') {
  const n = Number(b);
  const results = await Promise.all(Array.from({ length: n }, () => storage.attempts.reserve(a!, {
    now: Date.now(), max: Number(c), windowMs: Infinity, waitMs: (count) => (d !== undefined && count >= Number(d) ? 60_000 : 0),
  })));
  process.stdout.write(`${results.filter((r) => r.allowed).length}\n`);
  await storage.close();
} else if (cmd === 'advance') {
  const results = await Promise.all(Array.from({ length: Number(b) }, () => storage.factors.advance(a!, Number(c), new Date())));
  process.stdout.write(`${results.filter(Boolean).length}\n`);
  await storage.close();
} else if (cmd === 'accounts') {
  for (let i = 0; i < Number(a); i += 1) {
    const id = crypto.randomUUID();
    await storage.accounts.create({ id, username: `user${i}`, emailVerified: false, passwordHash: '$argon2id$fake' });
    // Printed only after the commit returned: the parent kills us at a random point.
    process.stdout.write(`${id}\n`);
  }
  await storage.close();
} else if (cmd === 'records') {
  for (let i = 0; i < Number(a); i += 10) {
    await Promise.all(Array.from({ length: 10 }, async (_, j) => {
      const id = `rec${i + j}`;
      await storage.oidc.upsert({ model: 'Session', id, payload: { n: i + j }, expiresAt: Date.now() + 3_600_000 });
      // Printed only once the store answered: the parent kills us at a random point.
      process.stdout.write(`${id}\n`);
    }));
  }
  await storage.close();
}
// Policy lifecycle and feedback loop (issue 11):
//   publish <ifVersion> <n>          publish n versions in parallel, all on ifVersion; print how many won
//   label <eventId> <ifVersion> <n>  set the event's label n times in parallel on ifVersion; print how many won
if (cmd === 'publish' || cmd === 'label') {
  const actor = { kind: 'system' as const, id: `worker-${process.pid}` };
  const n = Number(cmd === 'publish' ? b : c);
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => (cmd === 'publish'
    ? storage.policies.publish({ hash: `w${process.pid}-${i}`, modelVersion: 'm', message: `worker ${i}`, actor, source: 'publish', files: { 'risk.yml': `# ${process.pid} ${i}\n` } }, Number(a))
    : storage.labels.set({ eventId: a!, label: i % 2 ? 'attack' : 'legit', actor, at: new Date() }, Number(b)))));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Error);
  // Any failure but a lost compare-and-set is a bug: report it rather than count it as a loss.
  const other = failed.find((e) => e.name !== 'VersionConflictError');
  if (other) throw other;
  process.stdout.write(`${results.length - failed.length}\n`);
  await storage.close();
}

/**
 * What keeps the provider's idle footprint small (issue 10), checked on its behaviour, not on
 * RSS figures (those depend on the machine; `npm run bench` prints them):
 * - a provider on the embedded store never loads mongoose, the MongoDB driver or bson, and
 *   the passkey library waits for the first ceremony;
 * - once the server has been quiet for a while, one full collection gives V8's grown young
 *   generation back, once per busy spell.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import { collectWhenIdle } from '../../idp/idle-gc.ts';
import { runNode } from '../helpers/process.ts';
import { tempDir } from '../helpers/env.ts';

const DIST = path.join(import.meta.dirname, '..', '..');

/** Starts the provider in a child process and lists the packages it loaded (resolve hook). */
async function packagesLoaded(extraSteps = ''): Promise<string[]> {
  const dir = tempDir('idp-footprint-');
  const script = path.join(dir, 'probe.mjs');
  fs.writeFileSync(script, `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ resolve(specifier, context, next) {
      const r = next(specifier, context);
      const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
      if (m) seen.add(m[1]);
      return r;
    } });
    const { loadSettings } = await import(${JSON.stringify(path.join(DIST, 'idp', 'settings.js'))});
    const { startServer } = await import(${JSON.stringify(path.join(DIST, 'idp', 'server.js'))});
    const { createLogger } = await import(${JSON.stringify(path.join(DIST, 'idp', 'log.js'))});
    const settings = loadSettings({ DATA_DIR: ${JSON.stringify(path.join(dir, 'data'))}, KEYS_FILE: ${JSON.stringify(path.join(dir, 'keys.json'))}, PORT: '0', HOST: '127.0.0.1', ISSUER: 'http://localhost:3000', LOG_LEVEL: 'silent' });
    const server = await startServer(settings, createLogger('silent'));
    ${extraSteps}
    await server.close();
    process.stdout.write(JSON.stringify([...seen].sort()));
  `);
  const r = await runNode([script]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

describe('idle footprint', () => {
  it('a provider on the embedded store loads neither mongoose, its driver nor the passkey library until a ceremony needs it', async () => {
    const loaded = await packagesLoaded();
    // The probe sees what was loaded: oidc-provider and koa are always there.
    assert.ok(loaded.includes('oidc-provider') && loaded.includes('koa'), loaded.join(' '));
    for (const pkg of ['mongoose', 'mongodb', 'bson', '@simplewebauthn/server']) assert.ok(!loaded.includes(pkg), `${pkg} was loaded`);
    // A passkey ceremony loads it: the registration options of a made-up account.
    const withPasskey = await packagesLoaded(`
      const { WebAuthn } = await import(${JSON.stringify(path.join(DIST, 'interactions', 'methods', 'webauthn.js'))});
      const w = new WebAuthn(server.storage, { issuer: 'http://localhost:3000' });
      const o = await w.registrationOptions({ binding: 'b', account: { id: 'a1', username: 'alice', emailVerified: false } });
      if (!o.challenge) throw new Error('no challenge');
    `);
    assert.ok(withPasskey.includes('@simplewebauthn/server'));
  });

  it('runs one full collection after a quiet spell, again only after requests, and the young generation shrinks', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as { port: number };
    const idle = collectWhenIdle(server, { quietMs: 300, checkMs: 50 });
    const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
    try {
      // Short-lived garbage, as serving makes: the young generation grows.
      let keep = 0;
      for (let i = 0; i < 3_000_000; i += 1) keep += { i, s: `x${i}` }.s.length;
      assert.ok(keep > 0);
      const grown = newSpace();
      const waitFor = async (runs: number) => {
        for (let i = 0; i < 100 && idle.runs < runs; i += 1) await new Promise((r) => setTimeout(r, 50));
      };
      await waitFor(1);
      assert.equal(idle.runs, 1, 'one collection after start-up');
      assert.ok(newSpace() < grown, `new space ${newSpace()} not below ${grown}`);
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(idle.runs, 1, 'not again while nothing happened');
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'ok');
      await waitFor(2);
      assert.equal(idle.runs, 2, 'once more after a request and a quiet spell');
    } finally {
      idle.stop();
      server.close();
    }
  });
});

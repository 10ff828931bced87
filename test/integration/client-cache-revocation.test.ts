/**
 * Issue 10's rule for the verified client cache (adapters/client-cache.ts): "caches never
 * serve a revoked client beyond their stated life" (CLIENT_CACHE_MS). There is no `idp
 * client remove`: an operator revokes a client by deleting or editing its record in the
 * database, which no code of ours sees happen. So a client removed there must be refused,
 * and a client whose secret was changed there must stop accepting the old one, within the
 * stated life on both stores, however busy the client is meanwhile.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { SecretBox } from '../../adapters/crypto.ts';
import { loadOrCreateKeys } from '../../adapters/keys.ts';
import { clientSecretContext } from '../../adapters/oidc-adapter.ts';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const LIFE_MS = 300;
const SECRET = 'client-cache-revocation-secret-0123456789';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const { kind, skip } of STORES) {
  describeOrSkip(skip, `a client removed or changed directly in the database (${kind})`, () => {
    let srv: TestServer;
    /** Runs a change on the client records the way an operator would: straight in the database. */
    let direct: { remove(id: string): Promise<void>; setSecret(id: string, ciphertext: string): Promise<void>; close(): Promise<void> };
    before(async () => {
      srv = await startTestServer(kind, { CLIENT_CACHE_MS: String(LIFE_MS) });
      if (kind === 'embedded') {
        const db = new DatabaseSync(path.join(srv.settings.dataDir, 'idp.sqlite'), { timeout: 10_000 });
        direct = {
          async remove(id) { db.prepare('DELETE FROM clients WHERE client_id = ?').run(id); },
          async setSecret(id, ct) { db.prepare('UPDATE clients SET secret_ct = ? WHERE client_id = ?').run(ct, id); },
          async close() { db.close(); },
        };
      } else {
        const mc = await MongoClient.connect(srv.settings.mongodbUri!);
        const clients = mc.db().collection<{ _id: string }>('clients');
        direct = {
          async remove(id) { await clients.deleteOne({ _id: id }); },
          async setSecret(id, ct) { await clients.updateOne({ _id: id }, { $set: { secretCiphertext: ct } }); },
          async close() { await mc.close(); },
        };
      }
    });
    after(async () => {
      await direct?.close();
      await srv?.close();
    });

    const grant = async (id: string, secret = SECRET) => (await fetch(`${srv.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    })).status;

    const cacheHits = async () => Number(/^idp_client_lookups_total\{source="cache"\} (\d+)$/m.exec(await (await fetch(`${srv.issuer}/metrics`)).text())?.[1]);

    /** Registers a client and uses it until it is answered from the cache (so the test cannot pass vacuously). */
    async function cachedClient(id: string): Promise<void> {
      await srv.addClient(id, { redirect_uris: ['https://rp.example/cb'], grant_types: ['client_credentials'], response_types: [], scope: 'openid' }, SECRET);
      // The stamp changed with the addition: the next check empties the cache once.
      await sleep(LIFE_MS);
      for (let i = 0; i < 3; i += 1) assert.equal(await grant(id), 200);
      const hits = await cacheHits();
      assert.equal(await grant(id), 200);
      assert.equal(await cacheHits(), hits + 1, 'the client is served from the cache');
    }

    /** Keeps the client busy (so it stays cached) for `ms`, then returns the statuses seen after it. */
    async function busyFor(id: string, ms: number, secret?: string): Promise<number[]> {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        await grant(id, secret);
        await sleep(20);
      }
      return Promise.all(Array.from({ length: 5 }, () => grant(id, secret)));
    }

    it('refuses a client deleted from the database within CLIENT_CACHE_MS, though it was in use all along', async () => {
      await cachedClient('gone');
      await direct.remove('gone');
      // Three lives, with slack for a loaded machine: every request after it must be refused.
      const after = await busyFor('gone', LIFE_MS * 3);
      assert.deepEqual(after, [401, 401, 401, 401, 401], 'a deleted client is still served from the cache');
    });

    it('stops accepting the old secret of a client changed in the database within CLIENT_CACHE_MS', async () => {
      await cachedClient('rotated');
      const box = new SecretBox(loadOrCreateKeys(srv.settings.keysFile).dataKey);
      const fresh = `${SECRET}-rotated`;
      await direct.setSecret('rotated', box.seal(fresh, clientSecretContext('rotated')));
      const old = await busyFor('rotated', LIFE_MS * 3);
      assert.deepEqual(old, [401, 401, 401, 401, 401], 'the old secret is still accepted');
      assert.equal(await grant('rotated', fresh), 200);
    });
  });
}

/**
 * The edge of the server: what it believes about the client's address, its own URLs and
 * who may read /metrics, whatever the request's headers claim.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { rawRequest } from '../helpers/raw-http.ts';

describe('/metrics exposure', () => {
  describe('without TRUST_PROXY or a token', () => {
    let srv: TestServer;
    before(async () => { srv = await startTestServer('embedded'); });
    after(() => srv?.close());

    it('answers a direct loopback caller', async () => {
      const r = await rawRequest(`${srv.url}/metrics`);
      assert.equal(r.status, 200);
      assert.match(r.body, /idp_policy_info/);
    });

    it('refuses a loopback connection relayed by a proxy it was not told about', async () => {
      const relayed: Record<string, string>[] = [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }, { 'x-real-ip': '203.0.113.9' }];
      for (const headers of relayed) {
        const r = await rawRequest(`${srv.url}/metrics`, { headers });
        assert.equal(r.status, 403, JSON.stringify(headers));
        assert.doesNotMatch(r.body, /idp_/);
      }
    });

    it('refuses a foreign Host (DNS rebinding from a page on the same machine)', async () => {
      const r = await rawRequest(`${srv.url}/metrics`, { headers: { host: 'evil.example' } });
      assert.equal(r.status, 403);
      assert.equal((await rawRequest(`${srv.url}/metrics`, { headers: { host: 'localhost' } })).status, 200);
    });
  });

  describe('with TRUST_PROXY', () => {
    let open: TestServer;
    let tokened: TestServer;
    before(async () => {
      open = await startTestServer('embedded', { TRUST_PROXY: 'true' });
      tokened = await startTestServer('embedded', { TRUST_PROXY: 'true', METRICS_TOKEN: 'metrics-token-for-the-edge-test' });
    });
    after(async () => { await open?.close(); await tokened?.close(); });

    it('refuses everyone when no METRICS_TOKEN is set (every request arrives from the local proxy)', async () => {
      const r = await rawRequest(`${open.url}/metrics`);
      assert.equal(r.status, 403);
      assert.doesNotMatch(r.body, /idp_/);
      assert.ok(open.logs.some((l) => l.level === 'warn' && /METRICS_TOKEN/.test(l.msg)), 'the start says why');
    });

    it('serves the bearer of METRICS_TOKEN, and nobody else', async () => {
      assert.equal((await rawRequest(`${tokened.url}/metrics`)).status, 403);
      assert.equal((await rawRequest(`${tokened.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 403);
      const r = await rawRequest(`${tokened.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-for-the-edge-test' } });
      assert.equal(r.status, 200);
      assert.match(r.body, /idp_policy_info/);
    });
  });
});

/**
 * The edge of the server: what it believes about the client's address, its own URLs and
 * who may read /metrics, whatever the request's headers claim.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { Browser } from '../helpers/browser.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import type { LoginEventRecord } from '../../models/types.ts';

const PASSWORD = 'edge of the server test password';
const SPOOFED = '203.0.113.66';
const PROXY_SAW = '198.51.100.7';

async function seed(srv: TestServer): Promise<client.Configuration> {
  await srv.addUser('erin', PASSWORD);
  await srv.addClient('edge-app', {
    redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
  });
  return discover(srv.issuer, 'edge-app');
}

async function events(srv: TestServer): Promise<LoginEventRecord[]> {
  const out: LoginEventRecord[] = [];
  for await (const e of srv.storage.events.list({})) out.push(e);
  return out;
}

/** Every URL-valued member of the discovery document. */
function discoveryUrls(doc: Record<string, unknown>): string[] {
  return Object.entries(doc).filter(([k, v]) => typeof v === 'string' && (k.endsWith('_endpoint') || k.endsWith('_uri') || k === 'issuer')).map(([, v]) => v as string);
}

describe('the provider\'s own URLs come from ISSUER, never from request headers', () => {
  let srv: TestServer;
  let proxied: TestServer;
  before(async () => {
    srv = await startTestServer('embedded');
    proxied = await startTestServer('embedded', { TRUST_PROXY: 'true' });
  });
  after(async () => { await srv?.close(); await proxied?.close(); });

  it('serves discovery (GET and HEAD) from the right host', async () => {
    const r = await rawRequest(`${srv.url}/.well-known/openid-configuration`);
    assert.equal(r.status, 200);
    const doc = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(doc.issuer, srv.issuer);
    assert.equal(doc.authorization_endpoint, `${srv.issuer}/auth`);
    const head = await rawRequest(`${srv.url}/.well-known/openid-configuration`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('ignores a foreign Host header, an absolute-form target and, behind a trusted proxy, X-Forwarded-Host/-Proto', async () => {
    const attempts: [TestServer, Parameters<typeof rawRequest>[1]][] = [
      [srv, { headers: { host: 'evil.example' } }],
      [srv, { headers: { host: 'evil.example:8443' } }],
      [srv, { path: 'http://evil.example/.well-known/openid-configuration', headers: { host: 'evil.example' } }],
      [srv, { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } }],
      [proxied, { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } }],
      [proxied, { headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example, also.evil' } }],
    ];
    for (const [s, opts] of attempts) {
      const r = await rawRequest(`${s.url}/.well-known/openid-configuration`, opts);
      assert.equal(r.status, 200, JSON.stringify(opts));
      const urls = discoveryUrls(JSON.parse(r.body) as Record<string, unknown>);
      assert.ok(urls.length >= 6);
      for (const u of urls) assert.ok(u.startsWith(`${s.issuer}/`) || u === s.issuer, `${u} (request ${JSON.stringify(opts)})`);
    }
  });

  it('posts the logout form to the issuer', async () => {
    const r = await rawRequest(`${srv.url}/session/end`, { headers: { host: 'evil.example' } });
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.body, /evil\.example/);
    assert.match(r.body, new RegExp(`action="${srv.issuer}/session/end/confirm"`));
  });

  it('sends the browser back to the issuer after login, whatever X-Forwarded-Host says', async () => {
    const config = await seed(proxied);
    const browser = new Browser({ 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' });
    // Any hop to evil.example would fail here: there is no such host to connect to.
    const login = await loginThroughForm(config, 'erin', PASSWORD, { scope: 'openid' }, browser);
    assert.ok(login.callback.searchParams.get('code'));
    assert.equal(login.callback.searchParams.get('iss'), proxied.issuer, 'RFC 9207 iss is the issuer');
  });
});

describe('TRUST_PROXY: the client address is the one our proxies appended', () => {
  let one: TestServer;
  let two: TestServer;
  before(async () => {
    one = await startTestServer('embedded', { TRUST_PROXY: 'true' });
    two = await startTestServer('embedded', { TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '2' });
  });
  after(async () => { await one?.close(); await two?.close(); });

  it('ignores a spoofed leftmost X-Forwarded-For entry (one proxy)', async () => {
    const config = await seed(one);
    // The client sent "X-Forwarded-For: 203.0.113.66"; our proxy appended the address it saw.
    const browser = new Browser({ 'x-forwarded-for': `${SPOOFED}, ${PROXY_SAW}` });
    await assert.rejects(loginThroughForm(config, 'erin', 'a wrong password for erin', { scope: 'openid' }, browser));
    await loginThroughForm(config, 'erin', PASSWORD, { scope: 'openid' }, browser);
    const seen = (await events(one)).map((e) => e.ip);
    assert.ok(seen.length >= 2, 'failures and the success are recorded');
    assert.deepEqual(new Set(seen), new Set([PROXY_SAW]));
  });

  it('falls back to the connection\'s address when the forwarded entry is not an address', async () => {
    const srv = await startTestServer('embedded', { TRUST_PROXY: 'true' });
    try {
      const config = await seed(srv);
      // Only a request that reached us without our proxy can carry this; it must not pick its
      // own throttling bucket.
      const browser = new Browser({ 'x-forwarded-for': 'garbage, not-an-ip' });
      await assert.rejects(loginThroughForm(config, 'erin', 'a wrong password for erin', { scope: 'openid' }, browser));
      const seen = (await events(srv)).map((e) => e.ip);
      assert.ok(seen.length >= 1);
      assert.deepEqual(new Set(seen), new Set(['127.0.0.1']));
      assert.equal((await srv.storage.attempts.get('ip:127.0.0.1', Date.now(), 3_600_000)).count, seen.length);
      assert.equal((await srv.storage.attempts.get('ip:not-an-ip', Date.now(), 3_600_000)).count, 0);
    } finally {
      await srv.close();
    }
  });

  it('counts TRUST_PROXY_HOPS entries from the right (two proxies)', async () => {
    const config = await seed(two);
    // Client claims 192.0.2.1; the first proxy appended the client (203.0.113.66), the second the first proxy.
    const browser = new Browser({ 'x-forwarded-for': `192.0.2.1, ${SPOOFED}, ${PROXY_SAW}` });
    await loginThroughForm(config, 'erin', PASSWORD, { scope: 'openid' }, browser);
    assert.deepEqual((await events(two)).map((e) => e.ip), [SPOOFED]);
  });
});

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
      // Any mark a proxy leaves: the client's address, or only the scheme, the host or its own
      // name (RFC 9110 §7.6.3 Via), as proxies configured to pass no address still send.
      const relayed: Record<string, string>[] = [
        { 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }, { 'x-real-ip': '203.0.113.9' },
        { 'x-forwarded-proto': 'https' }, { 'x-forwarded-host': 'idp.example' }, { via: '1.1 edge' },
      ];
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

/**
 * The admin API over HTTP with real tokens of this provider (openid-client's
 * client_credentials grant with the admin API's resource indicator), on both stores:
 * - the OpenAPI document and the reference page; every operation of the document refuses a
 *   request without a token (401) and a token without its scope (403), as RFC 6750 §3.1 says;
 * - RFC 9457 problems for bad input, a wrong media type, a large body, an unknown route or
 *   method, and tokens that are not for this API;
 * - clients: create (secret once), read, replace with If-Match (428 / 412 / 200), 100
 *   parallel replacements of one version (one wins), secret rotation (the old secret stops
 *   at the token endpoint), deletion (its admin token stops);
 * - cursor pagination with Link headers; events by filter and as JSON lines; keys with their
 *   revision as ETag.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { runNode } from '../helpers/process.ts';
import { totpCode } from '../helpers/totp.ts';
import { logoutReceiver } from '../helpers/logout-receiver.ts';
import { accountKey } from '../../interactions/throttle.ts';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { LoginEventRecord } from '../../models/types.ts';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

const SECRET = 'an-admin-client-secret-long-enough-0123456789';
const ALL = 'admin:read admin:write admin:policy admin:keys';
const PASSWORD = 'correct horse battery staple';
const AAL2 = 'urn:adaptive-idp:aal2';
const AAL3 = 'urn:adaptive-idp:aal3';
const BIN = path.join(import.meta.dirname, '..', '..', 'idp', 'bin.js');

interface Problem { type: string; title: string; status: number; detail: string; code: string; instance: string; errors?: { path: string; message: string }[] }
interface OpenApi { openapi: string; paths: Record<string, Record<string, { operationId: string; 'x-required-scope': string; security: unknown[]; responses: Record<string, unknown> }>> }

for (const store of STORES) {
  describeOrSkip(store.skip, `admin API (${store.kind})`, () => {
    let srv: TestServer;
    let base: string;
    let audience: string;
    const tokens = new Map<string, string>();

    /** A client_credentials token for the admin API from a client registered for `registered`, asking for `scope`. */
    async function tokenFor(clientId: string, registered: string, scope: string): Promise<string> {
      const key = `${clientId} ${scope}`;
      if (tokens.has(key)) return tokens.get(key)!;
      if (!(await srv.storage.clients.find(clientId))) {
        await srv.addClient(clientId, { redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: registered }, SECRET);
      }
      const config = await discover(srv.issuer, clientId, SECRET);
      const t = await client.clientCredentialsGrant(config, { scope, resource: audience });
      tokens.set(key, t.access_token);
      return t.access_token;
    }
    const admin = () => tokenFor('admin-all', ALL, ALL);

    async function call(method: string, path: string, opts: { token?: string | undefined; body?: unknown; headers?: Record<string, string> } = {}) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
        ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
      });
      const text = await res.text();
      const type = res.headers.get('content-type') ?? '';
      return { status: res.status, headers: res.headers, text, type, json: /^application\/(problem\+)?json/.test(type) && text ? JSON.parse(text) as unknown : undefined };
    }
    const problem = (r: { json: unknown; type: string }) => {
      assert.match(r.type, /^application\/problem\+json/);
      return r.json as Problem;
    };

    before(async () => {
      srv = await startTestServer(store.kind);
      base = `${srv.url}/admin/api/v1`;
      audience = `${srv.issuer}/admin/api`;
    });
    after(() => srv?.close());

    it('publishes an OpenAPI 3.1 document and a reference page built from the same routes', async () => {
      const doc = await call('GET', '/../openapi.json');
      assert.equal(doc.status, 200);
      const api = doc.json as OpenApi;
      assert.equal(api.openapi, '3.1.0');
      const ops = Object.values(api.paths).flatMap((item) => Object.values(item));
      assert.ok(ops.length >= 12, `operations: ${ops.length}`);
      for (const op of ops) {
        assert.match(op['x-required-scope'], /^admin:(read|write|policy|keys)$/, op.operationId);
        assert.ok(op.responses['401'] && op.responses['403'], `${op.operationId} documents its refusals`);
      }
      // RFC 9110 §9.3.2: HEAD answers as GET does, without the body.
      for (const at of ['/admin/api/openapi.json', '/admin/api']) {
        const head = await fetch(`${srv.url}${at}`, { method: 'HEAD' });
        assert.equal(head.status, 200, `HEAD ${at}`);
        assert.equal(await head.text(), '');
      }
      const page = await fetch(`${srv.url}/admin/api`);
      const html = await page.text();
      assert.equal(page.status, 200);
      for (const op of ops) assert.ok(html.includes(`id="${op.operationId}"`), `the reference page shows ${op.operationId}`);
      assert.ok(html.includes('id="problem-version_conflict"'), 'each problem type has the anchor its type URI names');
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    });

    it('refuses every operation without a token (401) and with a token lacking its scope (403)', async () => {
      const api = (await call('GET', '/../openapi.json')).json as OpenApi;
      const others: Record<string, string> = { 'admin:read': 'admin:write', 'admin:write': 'admin:read', 'admin:policy': 'admin:read', 'admin:keys': 'admin:read' };
      let checked = 0;
      for (const [template, item] of Object.entries(api.paths)) {
        const path = template.replace(/\{\w+\}/g, 'x');
        for (const [method, op] of Object.entries(item)) {
          const none = await call(method.toUpperCase(), path);
          assert.equal(none.status, 401, `${op.operationId} without a token`);
          assert.equal(problem(none).code, 'unauthorized');
          assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm="admin"$/, 'no error code when no token was sent (RFC 6750 §3.1)');
          const scope = op['x-required-scope'];
          const wrong = await call(method.toUpperCase(), path, { token: await tokenFor('admin-all', ALL, others[scope]!) });
          assert.equal(wrong.status, 403, `${op.operationId} with only ${others[scope]}`);
          assert.equal(problem(wrong).code, 'insufficient_scope');
          assert.match(wrong.headers.get('www-authenticate') ?? '', new RegExp(`error="insufficient_scope", scope="${scope}"`));
          checked += 1;
        }
      }
      assert.ok(checked >= 12);
    });

    it('grants admin scopes only to a client registered for them by name, and only for the admin API', async () => {
      // Registered without a scope list: oidc-provider would grant every static resource scope by default; never the admin ones.
      await srv.addClient('plain-svc', { redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic' }, SECRET);
      const config = await discover(srv.issuer, 'plain-svc', SECRET);
      const t = await client.clientCredentialsGrant(config, { resource: audience }).catch((e: unknown) => e as Error);
      if (!(t instanceof Error)) {
        const r = await call('GET', '/clients', { token: t.access_token });
        assert.equal(r.status, 403, 'a token without admin scopes is refused');
        assert.doesNotMatch(t.scope ?? '', /admin:/);
      }
      // A registered admin client asking for a scope it is not registered for gets none of it.
      const readOnly = await tokenFor('reader', 'admin:read', 'admin:read');
      assert.equal((await call('GET', '/clients', { token: readOnly })).status, 200);
      assert.equal((await call('POST', '/clients', { token: readOnly, body: {} })).status, 403);
    });

    it('refuses tokens that are not this API\'s with invalid_token', async () => {
      const bad = [
        'not-a-jwt',
        // An ID-token-shaped JWT signed by someone else.
        `${Buffer.from('{"alg":"HS256","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: srv.issuer, aud: audience, sub: 'admin-all', client_id: 'admin-all', scope: ALL, exp: 9e9 })).toString('base64url')}.sig`,
      ];
      for (const token of bad) {
        const r = await call('GET', '/clients', { token });
        assert.equal(r.status, 401);
        assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      }
      // A valid token of this provider, for the userinfo endpoint (opaque, no resource): not for this API.
      const config = await discover(srv.issuer, 'admin-all', SECRET);
      const opaque = await client.clientCredentialsGrant(config, {});
      assert.equal((await call('GET', '/clients', { token: opaque.access_token })).status, 401);
    });

    it('manages a client: created with its secret once, read without it, replaced under If-Match, rotated, removed', async () => {
      const token = await admin();
      const id = `app-${crypto.randomUUID().slice(0, 8)}`;
      const created = await call('POST', '/clients', { token, body: { client_id: id, client_name: 'Orders', grant_types: ['client_credentials'], scope: 'openid' } });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.headers.get('etag'), '"1"');
      assert.equal(created.headers.get('location'), `${base}/clients/${id}`);
      const secret = (created.json as { client_secret: string }).client_secret;
      assert.ok(secret.length >= 43);
      const got = await call('GET', `/clients/${id}`, { token });
      assert.equal(got.status, 200);
      assert.doesNotMatch(got.text, new RegExp(secret));
      assert.doesNotMatch(got.text, /"client_secret"|secretCiphertext|v1\./);
      // The new client works at the token endpoint with the secret shown.
      const cc = await client.clientCredentialsGrant(await discover(srv.issuer, id, secret), {});
      assert.ok(cc.access_token);

      const body = { client_name: 'Orders v2', grant_types: ['client_credentials'], scope: 'openid' };
      const noMatch = await call('PUT', `/clients/${id}`, { token, body });
      assert.equal(noMatch.status, 428);
      assert.equal(problem(noMatch).code, 'precondition_required');
      const stale = await call('PUT', `/clients/${id}`, { token, body, headers: { 'if-match': '"7"' } });
      assert.equal(stale.status, 412);
      assert.equal(problem(stale).code, 'version_conflict');
      assert.equal(stale.headers.get('etag'), '"1"', 'the 412 names the current version');
      const ok = await call('PUT', `/clients/${id}`, { token, body, headers: { 'if-match': '"1"' } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.headers.get('etag'), '"2"');
      assert.equal((ok.json as { client_name: string }).client_name, 'Orders v2');

      const rotated = await call('POST', `/clients/${id}/secret`, { token, headers: { 'if-match': '"2"' } });
      assert.equal(rotated.status, 200, rotated.text);
      const newSecret = (rotated.json as { client_secret: string }).client_secret;
      assert.notEqual(newSecret, secret);
      await assert.rejects(client.clientCredentialsGrant(await discover(srv.issuer, id, secret), {}), 'the old secret no longer works');
      assert.ok((await client.clientCredentialsGrant(await discover(srv.issuer, id, newSecret), {})).access_token);

      assert.equal((await call('DELETE', `/clients/${id}`, { token, headers: { 'if-match': '"2"' } })).status, 412);
      const removed = await call('DELETE', `/clients/${id}`, { token, headers: { 'if-match': '"3"' } });
      assert.equal(removed.status, 204);
      assert.equal((await call('GET', `/clients/${id}`, { token })).status, 404);
      await assert.rejects(client.clientCredentialsGrant(await discover(srv.issuer, id, newSecret), {}), 'a removed client gets no tokens');
    });

    it('puts its changes on the audit trail, which it serves, exports (ECS) and verifies', async () => {
      const token = await admin();
      const id = `audited-${crypto.randomUUID().slice(0, 6)}`;
      const created = await call('POST', '/clients', { token, body: { client_id: id, grant_types: ['client_credentials'], scope: 'openid' } });
      assert.equal(created.status, 201);
      const secret = (created.json as { client_secret: string }).client_secret;
      const page = await call('GET', `/audit?action=client.create&targetId=${id}`, { token });
      assert.equal(page.status, 200, page.text);
      const rec = (page.json as { items: { action: string; actor: { kind: string; id: string; ip?: string }; after: { client_id: string } }[] }).items[0]!;
      assert.equal(rec.action, 'client.create');
      assert.deepEqual({ kind: rec.actor.kind, id: rec.actor.id }, { kind: 'client', id: 'admin-all' });
      assert.ok(rec.actor.ip, 'from where');
      assert.equal(rec.after.client_id, id);
      assert.doesNotMatch(page.text, new RegExp(secret), 'never the secret');
      const exp = await call('GET', '/audit/export', { token });
      assert.equal(exp.status, 200);
      const events = exp.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(events.some((e) => (e.event as { action?: string } | undefined)?.action === 'client.create' && typeof e['@timestamp'] === 'string'));
      const v = await call('GET', '/audit/verify', { token });
      assert.equal(v.status, 200);
      assert.equal((v.json as { ok: boolean }).ok, true);
      assert.equal((await call('GET', '/audit?since=yesterday', { token })).status, 400);
      assert.equal((await call('GET', '/audit?cursor=zzz', { token })).status, 400);
    });

    it('lets one of 100 parallel replacements of one version win; the others get 412', async () => {
      const token = await admin();
      const id = `race-${crypto.randomUUID().slice(0, 8)}`;
      assert.equal((await call('POST', '/clients', { token, body: { client_id: id, grant_types: ['client_credentials'], scope: 'openid' } })).status, 201);
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) =>
        call('PUT', `/clients/${id}`, { token, body: { client_name: `n${i}`, grant_types: ['client_credentials'], scope: 'openid' }, headers: { 'if-match': '"1"' } })));
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${[...new Set(statuses)].join(',')}`);
      assert.equal(statuses.filter((s) => s === 412).length, 99);
      const winner = (results.find((r) => r.status === 200)!.json as { client_name: string }).client_name;
      assert.equal(((await call('GET', `/clients/${id}`, { token })).json as { client_name: string }).client_name, winner);
    });

    it('answers bad input with RFC 9457 problems, never a 500', async () => {
      const token = await admin();
      const invalid = await call('POST', '/clients', { token, body: { client_id: 'has space', redirect_uris: ['not a uri'], grant_types: ['password'], extra: 1 } });
      assert.equal(invalid.status, 400);
      const p = problem(invalid);
      assert.equal(p.code, 'invalid_request');
      assert.equal(p.type, `${srv.issuer}/admin/api#problem-invalid_request`);
      assert.equal(p.instance, '/admin/api/v1/clients');
      const paths = p.errors!.map((e) => e.path);
      for (const want of ['body.client_id', 'body.redirect_uris.0', 'body.grant_types.0']) assert.ok(paths.includes(want), `${want} in ${paths.join(', ')}`);
      assert.ok(p.errors!.some((e) => /extra/.test(e.message)), 'an unknown field is named');
      assert.equal(problem(await call('POST', '/clients', { token, body: '{"client_name":' })).code, 'invalid_request');
      const wrongType = await call('POST', '/clients', { token, body: undefined, headers: { 'content-type': 'text/plain' } });
      assert.equal(wrongType.status, 415);
      const big = await call('POST', '/clients', { token, body: { client_name: 'x'.repeat(2 * 1024 * 1024) } });
      assert.equal(big.status, 413);
      assert.equal(problem(await call('GET', '/nothing-here', { token })).code, 'not_found');
      const method = await call('PATCH', '/clients', { token });
      assert.equal(method.status, 405);
      assert.match(method.headers.get('allow') ?? '', /GET/);
      assert.equal((await call('GET', '/clients?limit=0', { token })).status, 400);
      assert.equal(problem(await call('GET', '/clients?cursor=bm9wZQ', { token })).code, 'invalid_request');
      assert.equal(problem(await call('GET', `/events?cursor=${Buffer.from('["x",1]').toString('base64url')}`, { token })).code, 'invalid_request');
      assert.equal((await call('PUT', '/clients/x', { token, body: {}, headers: { 'if-match': 'W/"1"' } })).status, 400, 'a weak ETag is not a precondition for a change');
      assert.ok(!srv.logs.some((l) => l.msg === 'admin api error'), 'nothing reached the 500 path');
    });

    it('pages through clients with a cursor and a Link header', async () => {
      const token = await admin();
      for (let i = 0; i < 23; i++) await srv.addClient(`paged-${String(i).padStart(2, '0')}`, { redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }, SECRET);
      const seen: string[] = [];
      let url: string | undefined = '/clients?limit=10';
      let pages = 0;
      while (url) {
        const r = await call('GET', url, { token });
        assert.equal(r.status, 200);
        const page = r.json as { items: { client_id: string }[]; next?: string };
        seen.push(...page.items.map((c) => c.client_id));
        pages += 1;
        const link = r.headers.get('link');
        if (page.next) {
          assert.match(link ?? '', /rel="next"/);
          url = `/clients?limit=10&cursor=${page.next}`;
        } else {
          assert.equal(link, null);
          url = undefined;
        }
      }
      const all = (await srv.storage.clients.list()).map((c) => c.clientId);
      assert.deepEqual(seen, all);
      assert.equal(pages, Math.ceil(all.length / 10));

      // The links it emits derive from ISSUER, never from the request: not from an absolute-form
      // request target (RFC 9112 §3.2.2) naming another host.
      const { port } = new URL(srv.url);
      const head = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(
          `GET http://evil.example/admin/api/v1/clients?limit=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`));
        let text = '';
        socket.on('data', (c: Buffer) => { text += c.toString(); });
        socket.on('end', () => resolve(text.split('\r\n\r\n')[0]!));
        socket.on('error', reject);
      });
      assert.match(head, /^HTTP\/1\.1 200/);
      assert.match(head, new RegExp(`\\nlink: <${srv.issuer}/admin/api/v1/clients\\?limit=1&cursor=`, 'i'));
    });

    it('finds login events by user, IP, level and decision, and exports them as JSON lines', async () => {
      const token = await admin();
      const now = Date.now();
      const ev = (i: number, extra: Partial<LoginEventRecord>): LoginEventRecord => ({
        id: `adm-ev-${i}`, ts: new Date(now - i * 1000).toISOString(), user: 'u-admin-test', ip: '198.51.100.7', userAgent: 'ua', success: true,
        behaviour: { keystroke: { n: 1 } } as unknown as LoginEventRecord['behaviour'], ...extra,
      });
      const assessment = (level: string, decision: 'allow' | 'step_up' | 'block') => ({ score: 0.5, level, decision, reasons: [], confidence: 1, policyVersion: 'p', modelVersion: 'm', errors: [] });
      await srv.storage.events.append(ev(1, { assessment: assessment('high', 'step_up') }));
      await srv.storage.events.append(ev(2, { assessment: assessment('low', 'allow') }));
      await srv.storage.events.append(ev(3, { ip: '203.0.113.9', success: false }));
      const r = await call('GET', '/events?user=u-admin-test&decision=step_up', { token });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual((r.json as { items: { id: string }[] }).items.map((e) => e.id), ['adm-ev-1']);
      assert.doesNotMatch(r.text, /keystroke/, 'the raw behavioural sample is not served');
      const byIp = await call('GET', '/events?ip=203.0.113.9', { token });
      assert.deepEqual((byIp.json as { items: { id: string }[] }).items.map((e) => e.id), ['adm-ev-3']);
      const failed = await call('GET', '/events?user=u-admin-test&outcome=failure', { token });
      assert.deepEqual((failed.json as { items: { id: string }[] }).items.map((e) => e.id), ['adm-ev-3']);
      const one = await call('GET', '/events/adm-ev-2', { token });
      assert.equal((one.json as { assessment: { level: string } }).assessment.level, 'low');
      assert.equal((await call('GET', '/events/nope', { token })).status, 404);
      const exp = await call('GET', '/events/export?user=u-admin-test', { token });
      assert.equal(exp.status, 200);
      assert.match(exp.type, /^application\/x-ndjson/);
      const lines = exp.text.trim().split('\n').map((l) => JSON.parse(l) as { id: string });
      assert.deepEqual(lines.map((e) => e.id), ['adm-ev-1', 'adm-ev-2', 'adm-ev-3'], 'newest first');
      assert.equal((await call('GET', '/events?level=extreme', { token })).status, 400);
    });

    it('serves an administrator by the roles their account holds, at AAL2, and asks AAL3 for the sensitive operations (RFC 9470)', async () => {
      const accountId = await srv.addUser('root-admin', PASSWORD);
      const totp = await srv.addTotp(accountId);
      // The first administrator is made on the server's disk.
      const env = { PATH: process.env.PATH ?? '', ...srv.env };
      const made = await runNode([BIN, 'user', 'roles', 'root-admin', '--set', 'admin:read admin:write'], { env });
      assert.equal(made.code, 0, made.stderr);
      assert.deepEqual((JSON.parse(made.stdout) as { scopes: string[] }).scopes, ['admin:read', 'admin:write']);
      await srv.addClient('console', {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
        scope: `openid ${ALL}`, first_party: true,
      }, SECRET);
      const config = await discover(srv.issuer, 'console', SECRET);
      const params = { scope: `openid ${ALL}`, resource: audience };
      const l = await loginThroughForm(config, 'root-admin', PASSWORD, params);
      const aal1 = await client.authorizationCodeGrant(config, l.callback, { pkceCodeVerifier: l.verifier, expectedNonce: l.nonce, expectedState: l.state }, { resource: audience });
      const weak = await call('GET', '/clients', { token: aal1.access_token });
      assert.equal(weak.status, 401, weak.text);
      assert.equal(problem(weak).code, 'insufficient_user_authentication');
      assert.match(weak.headers.get('www-authenticate') ?? '', new RegExp(`error="insufficient_user_authentication".*acr_values="${AAL2} ${AAL3}"`));

      // The console sends the administrator back with the acr_values of the challenge: only the second factor is asked.
      const verifier = client.randomPKCECodeVerifier();
      const retry = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, ...params, acr_values: `${AAL2} ${AAL3}`, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const second = await l.browser.navigate(retry, {}, REDIRECT_URI);
      const back = await l.browser.submit(second, '/totp', { code: totpCode(totp) }, REDIRECT_URI);
      assert.ok(back.url.href.startsWith(REDIRECT_URI), back.body.slice(0, 300));
      const aal2 = await client.authorizationCodeGrant(config, back.url, { pkceCodeVerifier: verifier }, { resource: audience });
      const token = aal2.access_token;
      assert.equal(aal2.scope?.split(' ').filter((x) => x.startsWith('admin:')).sort().join(' '), 'admin:read admin:write', 'the token carries only the roles the account holds');
      assert.equal((await call('GET', '/clients', { token })).status, 200);
      assert.equal((await call('GET', `/users/${accountId}/roles`, { token })).status, 200);
      // The client is registered for admin:keys, but the account does not hold it.
      const keys = await call('POST', '/keys/rotate', { token, headers: { 'if-match': '"0"' } });
      assert.equal(keys.status, 403);
      assert.equal(problem(keys).code, 'insufficient_scope');
      // Sensitive: AAL3 (a passkey) within ADMIN_SENSITIVE_MAX_AGE.
      const id = `by-admin-${crypto.randomUUID().slice(0, 6)}`;
      const created = await call('POST', '/clients', { token, body: { client_id: id, grant_types: ['client_credentials'], scope: 'openid' } });
      assert.equal(created.status, 201, created.text);
      const rotate = await call('POST', `/clients/${id}/secret`, { token, headers: { 'if-match': '"1"' } });
      assert.equal(rotate.status, 401);
      assert.match(rotate.headers.get('www-authenticate') ?? '', new RegExp(`acr_values="${AAL3}"`));
      // Roles cannot grant what the caller does not hold.
      const other = await srv.addUser('helper-admin', PASSWORD);
      const grant = await call('PUT', `/users/${other}/roles`, { token, body: { scopes: ['admin:keys'] }, headers: { 'if-match': '"0"' } });
      assert.equal(grant.status, 401, 'setting roles is sensitive: AAL3 first');
      // A role taken away counts at the next request.
      const roles = await srv.storage.roles.get(accountId);
      await srv.storage.roles.set(accountId, ['admin:write'], roles.version);
      assert.equal((await call('GET', '/clients', { token })).status, 403);
      // A disabled administrator's token stops at the next request (a JWT access token cannot be revoked).
      const writeToken = await call('POST', '/users', { token, body: { username: `made-${crypto.randomUUID().slice(0, 6)}` } });
      assert.equal(writeToken.status, 201, writeToken.text);
      const account = (await srv.storage.accounts.findById(accountId))!;
      await srv.storage.accounts.setDisabled(accountId, { at: new Date(), reason: 'left', by: 'test' }, account.version);
      const disabled = await call('POST', '/users', { token, body: { username: `made-${crypto.randomUUID().slice(0, 6)}` } });
      assert.equal(disabled.status, 401, disabled.text);
      assert.match(problem(disabled).detail, /disabled/);
    });

    it('lets a client holding admin:write grant only the roles it holds itself', async () => {
      const writer = await tokenFor('role-writer', 'admin:read admin:write', 'admin:read admin:write');
      const user = await srv.addUser(`role-target-${crypto.randomUUID().slice(0, 6)}`, PASSWORD);
      const refused = await call('PUT', `/users/${user}/roles`, { token: writer, body: { scopes: ['admin:read', 'admin:keys'] }, headers: { 'if-match': '"0"' } });
      assert.equal(refused.status, 403);
      assert.match(problem(refused).detail, /admin:keys/);
      const ok = await call('PUT', `/users/${user}/roles`, { token: writer, body: { scopes: ['admin:read'] }, headers: { 'if-match': '"0"' } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.headers.get('etag'), '"1"');
      assert.equal((await call('PUT', `/users/${user}/roles`, { token: writer, body: { scopes: [] }, headers: { 'if-match': '"0"' } })).status, 412);
      assert.equal((await call('GET', '/users/nobody/roles', { token: writer })).status, 404);
    });

    it('lets a caller register, change, re-key or remove a client with admin scopes only if it holds them all', async () => {
      // admin:write alone must not mint a client that holds admin:keys (nor take over one by rotating its secret).
      const writer = await tokenFor('client-writer', 'admin:read admin:write', 'admin:read admin:write');
      const strong = `strong-${crypto.randomUUID().slice(0, 6)}`;
      const refused = await call('POST', '/clients', { token: writer, body: { client_id: strong, grant_types: ['client_credentials'], scope: 'admin:read admin:keys' } });
      assert.equal(refused.status, 403, refused.text);
      assert.equal(problem(refused).code, 'forbidden');
      assert.match(problem(refused).detail, /admin:keys/);
      assert.doesNotMatch(refused.text, /client_secret/);
      assert.equal(await srv.storage.clients.find(strong), undefined, 'nothing was registered');
      // Within what it holds, it may.
      const own = `own-${crypto.randomUUID().slice(0, 6)}`;
      const ok = await call('POST', '/clients', { token: writer, body: { client_id: own, grant_types: ['client_credentials'], scope: 'admin:read' } });
      assert.equal(ok.status, 201, ok.text);
      const grow = await call('PUT', `/clients/${own}`, { token: writer, body: { grant_types: ['client_credentials'], scope: 'admin:read admin:policy' }, headers: { 'if-match': '"1"' } });
      assert.equal(grow.status, 403, 'no scope it lacks added to a client');
      // A client that holds more than the caller: not changed, re-keyed or removed by it.
      await tokenFor('keys-holder', ALL, 'admin:read');
      const version = `"${(await srv.storage.clients.find('keys-holder'))!.version}"`;
      const attempts = [
        await call('PUT', '/clients/keys-holder', { token: writer, body: { grant_types: ['client_credentials'], scope: 'admin:read' }, headers: { 'if-match': version } }),
        await call('POST', '/clients/keys-holder/secret', { token: writer, headers: { 'if-match': version } }),
        await call('DELETE', '/clients/keys-holder', { token: writer, headers: { 'if-match': version } }),
      ];
      for (const r of attempts) {
        assert.equal(r.status, 403, r.text);
        assert.equal(problem(r).code, 'forbidden');
        assert.doesNotMatch(r.text, /client_secret/);
      }
      assert.equal(`"${(await srv.storage.clients.find('keys-holder'))!.version}"`, version, 'the client is as it was');
      // A token holding every admin scope may.
      assert.equal((await call('POST', '/clients/keys-holder/secret', { token: await admin(), headers: { 'if-match': version } })).status, 200);
    });

    it('lets a caller change, unlock, strip the factors of, disable or delete an administrator only if it holds all their roles', async () => {
      // admin:write alone must not weaken the sign-in of an admin:keys administrator (reset their
      // second factor, lift their lock-out) nor take them out.
      const writer = await tokenFor('user-writer', 'admin:read admin:write', 'admin:read admin:write');
      const keeper = await srv.addUser(`keeper-${crypto.randomUUID().slice(0, 6)}`, PASSWORD);
      await srv.addTotp(keeper);
      await srv.storage.roles.set(keeper, ['admin:keys', 'admin:read'], 0);
      const v = `"${(await srv.storage.accounts.findById(keeper))!.version}"`;
      const attempts = [
        await call('PATCH', `/users/${keeper}`, { token: writer, body: { claims: { nickname: 'x' } }, headers: { 'if-match': v } }),
        await call('DELETE', `/users/${keeper}/factors`, { token: writer }),
        await call('POST', `/users/${keeper}/unlock`, { token: writer }),
        await call('POST', `/users/${keeper}/disable`, { token: writer, body: { reason: 'no' }, headers: { 'if-match': v } }),
        await call('POST', `/users/${keeper}/enable`, { token: writer, headers: { 'if-match': v } }),
        await call('DELETE', `/users/${keeper}/sessions`, { token: writer }),
        await call('DELETE', `/users/${keeper}`, { token: writer, headers: { 'if-match': v } }),
      ];
      for (const r of attempts) {
        assert.equal(r.status, 403, r.text);
        assert.equal(problem(r).code, 'forbidden');
        assert.match(problem(r).detail, /admin:keys/);
      }
      assert.equal((await srv.storage.factors.list(keeper)).length, 1, 'the second factor is still there');
      assert.equal(`"${(await srv.storage.accounts.findById(keeper))!.version}"`, v, 'the account is as it was');
      // Reading is not changing.
      assert.equal((await call('GET', `/users/${keeper}`, { token: writer })).status, 200);
      // An account holding only what the caller holds, or nothing, is the caller's to change.
      const reader = await srv.addUser(`reader-${crypto.randomUUID().slice(0, 6)}`, PASSWORD);
      await srv.storage.roles.set(reader, ['admin:read'], 0);
      assert.equal((await call('POST', `/users/${reader}/unlock`, { token: writer })).status, 204);
      assert.equal((await call('DELETE', `/users/${keeper}/factors`, { token: await admin() })).status, 200);
    });

    it('pages through 1,000 users with a cursor, each once, in username order, and filters them', async () => {
      const token = await admin();
      const prefix = `bulk${crypto.randomUUID().slice(0, 4)}`;
      for (let i = 0; i < 1000; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => srv.storage.accounts.create({
          id: crypto.randomUUID(), username: `${prefix}-${String(i + j).padStart(4, '0')}`, emailVerified: false, passwordHash: '!none',
        })));
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await call('GET', `/users?username_prefix=${prefix}&limit=100${cursor ? `&cursor=${cursor}` : ''}`, { token });
        assert.equal(r.status, 200, r.text);
        const page = r.json as { items: { username: string }[]; next?: string };
        assert.ok(page.items.length <= 100);
        seen.push(...page.items.map((u) => u.username));
        cursor = page.next;
        pages += 1;
      } while (cursor);
      assert.equal(seen.length, 1000);
      assert.equal(new Set(seen).size, 1000, 'no user twice');
      assert.deepEqual(seen, [...seen].sort(), 'username order');
      assert.ok(pages >= 10 && pages <= 11, `pages: ${pages}`);
      const filtered = await call('GET', `/users?username_prefix=${prefix}-099&limit=500`, { token });
      assert.equal((filtered.json as { items: unknown[] }).items.length, 10);
      assert.equal((await call('GET', '/users?disabled=maybe', { token })).status, 400);
    });

    it('changes a user\'s claims under If-Match, disables and enables them, and deletes with a fresh version only', async () => {
      const token = await admin();
      const created = await call('POST', '/users', { token, body: { username: `claimed-${crypto.randomUUID().slice(0, 6)}`, claims: { given_name: 'Ada', email: 'ada@example.com' } } });
      assert.equal(created.status, 201, created.text);
      const user = created.json as { id: string; version: number };
      assert.equal(created.headers.get('etag'), `"${user.version}"`);
      assert.doesNotMatch(created.text, /password/i);
      const patch = { claims: { family_name: 'Lovelace', address: { locality: 'London', country: 'GB' }, phone_number: '+441234567890' } };
      assert.equal((await call('PATCH', `/users/${user.id}`, { token, body: patch })).status, 428);
      assert.equal((await call('PATCH', `/users/${user.id}`, { token, body: patch, headers: { 'if-match': `"${user.version + 1}"` } })).status, 412);
      const changed = await call('PATCH', `/users/${user.id}`, { token, body: patch, headers: { 'if-match': `"${user.version}"` } });
      assert.equal(changed.status, 200, changed.text);
      const claims = (changed.json as { claims: Record<string, unknown> }).claims;
      assert.equal(claims.family_name, 'Lovelace');
      assert.equal(claims.given_name, 'Ada');
      assert.deepEqual(claims.address, { locality: 'London', country: 'GB' });
      const bad = await call('PATCH', `/users/${user.id}`, { token, body: { claims: { birthdate: '31/12/1999', zoneinfo: 'Mars/Olympus' } }, headers: { 'if-match': `"${user.version + 1}"` } });
      assert.equal(bad.status, 400);
      assert.ok(problem(bad).errors!.length >= 2, 'each bad claim named');
      const v2 = user.version + 1;
      const disabled = await call('POST', `/users/${user.id}/disable`, { token, body: { reason: 'left the company' }, headers: { 'if-match': `"${v2}"` } });
      assert.equal(disabled.status, 200, disabled.text);
      assert.equal((disabled.json as { disabled: { reason: string } }).disabled.reason, 'left the company');
      const v3 = Number(disabled.headers.get('etag')!.replaceAll('"', ''));
      assert.equal((await call('POST', `/users/${user.id}/enable`, { token, headers: { 'if-match': `"${v3}"` } })).status, 200);
      assert.equal((await call('DELETE', `/users/${user.id}`, { token, headers: { 'if-match': `"${v3}"` } })).status, 412, 'the enable made a new version');
      assert.equal((await call('DELETE', `/users/${user.id}`, { token, headers: { 'if-match': `"${v3 + 1}"` } })).status, 200);
      assert.equal((await call('GET', `/users/${user.id}`, { token })).status, 404);
      const trail = await call('GET', `/audit?targetId=${user.id}&order=asc`, { token });
      assert.deepEqual((trail.json as { items: { action: string; outcome: string }[] }).items.filter((r) => r.outcome === 'success').map((r) => r.action),
        ['user.create', 'user.update', 'user.disable', 'user.enable', 'user.delete']);
    });

    it('publishes a policy under If-Match, refuses a broken one with the file/line/key messages, rolls back, and labels events', async () => {
      const token = await admin();
      const liveRes = await call('GET', '/policies/live', { token });
      assert.equal(liveRes.status, 200, liveRes.text);
      const live = liveRes.json as { version: { version: number; hash: string }; files: Record<string, string> };
      assert.equal(liveRes.headers.get('etag'), `"${live.version.version}"`);
      const broken = live.files['assurance.yml']!.replace(/medium: aal1/, 'medium: aal7');
      assert.notEqual(broken, live.files['assurance.yml']);
      const checked = await call('POST', '/policies/validate', { token, body: { files: { 'assurance.yml': broken } } });
      assert.equal(checked.status, 200);
      const v = checked.json as { valid: boolean; messages: string[] };
      assert.equal(v.valid, false);
      assert.match(v.messages[0]!, /^assurance\.yml:\d+:\d+: default\.medium: "aal7" is not an assurance level/);
      const refused = await call('POST', '/policies', { token, body: { files: { 'assurance.yml': broken }, message: 'broken' }, headers: { 'if-match': `"${live.version.version}"` } });
      assert.equal(refused.status, 400, refused.text);
      assert.equal(problem(refused).errors?.[0]?.path, 'body.files.assurance.yml.default.medium');
      const risk = parseYaml(live.files['risk.yml']!) as { factors: { new_country: { weight: number } } };
      risk.factors.new_country.weight = 0.43;
      const candidate = { files: { 'risk.yml': stringifyYaml(risk) }, message: 'new_country weighs more' };
      assert.equal((await call('POST', '/policies', { token, body: candidate })).status, 428);
      assert.equal((await call('POST', '/policies', { token, body: candidate, headers: { 'if-match': `"${live.version.version + 3}"` } })).status, 412);
      const published = await call('POST', '/policies', { token, body: candidate, headers: { 'if-match': `"${live.version.version}"` } });
      assert.equal(published.status, 201, published.text);
      const next = (published.json as { version: number; hash: string });
      assert.equal(next.version, live.version.version + 1);
      // Live here within the poll interval (a second instance is tested in policy-store.test.ts).
      const deadline = Date.now() + 5000;
      while (srv.policies.current().version !== next.hash && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(srv.policies.current().version, next.hash);
      const history = await call('GET', '/policies/versions?limit=1', { token });
      assert.equal((history.json as { items: { version: number }[] }).items[0]!.version, next.version);
      assert.ok(history.headers.get('link'), 'more versions: a next link');
      const back = await call('POST', '/policies/rollback', { token, body: { version: live.version.version, message: 'back' }, headers: { 'if-match': `"${next.version}"` } });
      assert.equal(back.status, 201, back.text);
      assert.equal((back.json as { hash: string }).hash, live.version.hash);
      const trail = await call('GET', '/audit?action=policy.&order=asc', { token });
      const actions = (trail.json as { items: { action: string; outcome: string; actor: { id: string } }[] }).items.filter((r) => r.actor.id === 'admin-all').map((r) => `${r.action}:${r.outcome}`);
      // Refusals are recorded too: the broken candidate and the stale If-Match (a missing one never reached the service).
      assert.deepEqual(actions, ['policy.publish:failure', 'policy.publish:failure', 'policy.publish:success', 'policy.rollback:success']);

      await srv.storage.events.append({ id: 'label-me', ts: new Date().toISOString(), user: 'u1', ip: '192.0.2.3', userAgent: 'ua', success: true });
      const label = { label: 'attack', note: 'credential stuffing from a known botnet' };
      assert.equal((await call('PUT', '/events/label-me/label', { token, body: label })).status, 428);
      const set = await call('PUT', '/events/label-me/label', { token, body: label, headers: { 'if-match': '"0"' } });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.headers.get('etag'), '"1"');
      assert.equal((await call('PUT', '/events/label-me/label', { token, body: { label: 'legit' }, headers: { 'if-match': '"0"' } })).status, 412);
      const got = await call('GET', '/events/label-me/label', { token });
      assert.equal((got.json as { label: string }).label, 'attack');
      assert.equal((await call('PUT', '/events/no-such-event/label', { token, body: label, headers: { 'if-match': '"0"' } })).status, 404);
      const labels = await call('GET', '/labels', { token });
      assert.ok((labels.json as { items: { eventId: string }[] }).items.some((l) => l.eventId === 'label-me'));
    });

    it('retrains the model in a worker as a job, and reports a failure as the job\'s, not a 500', async () => {
      const token = await admin();
      // Too few labels to train on here: the job fails with the service's reason.
      const started = await call('POST', '/model/train', { token, body: { trees: 2, maxDepth: 3 } });
      assert.equal(started.status, 202, started.text);
      const job = started.json as { id: string; state: string };
      assert.equal(started.headers.get('location'), `${base}/model/train/${job.id}`);
      let state = job.state;
      let last: { state: string; error?: { code: string; message: string } } = job;
      const deadline = Date.now() + 60_000;
      while (state === 'running' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        last = (await call('GET', `/model/train/${job.id}`, { token })).json as typeof last;
        state = last.state;
      }
      assert.equal(state, 'failed', JSON.stringify(last));
      assert.ok(last.error?.code && last.error.message, JSON.stringify(last));
      assert.equal((await call('GET', `/model/train/${crypto.randomUUID()}`, { token })).status, 404);
      assert.equal((await call('GET', '/models', { token })).status, 200);
    });

    it('ends a signed-in user\'s session (the RP told by back-channel logout, its refresh token stopped), revokes grants, unlocks and resets factors over HTTP', async () => {
      const token = await admin();
      const receiver = await logoutReceiver();
      try {
        await srv.addClient('rp-admin', {
          redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
          scope: 'openid profile offline_access', backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true,
        }, SECRET);
        const config = await discover(srv.issuer, 'rp-admin', SECRET);
        const username = `signed-in-${crypto.randomUUID().slice(0, 6)}`;
        const id = await srv.addUser(username, PASSWORD);
        await srv.addTotp(id);
        const l = await loginThroughForm(config, username, PASSWORD, { scope: 'openid offline_access' });
        const tokens = await client.authorizationCodeGrant(config, l.callback, { pkceCodeVerifier: l.verifier, expectedNonce: l.nonce, expectedState: l.state });
        assert.ok(tokens.refresh_token);
        const sessions = await call('GET', `/users/${id}/sessions`, { token });
        assert.equal(sessions.status, 200, sessions.text);
        const list = (sessions.json as { items: { uid: string; clients: { client_id: string }[] }[] }).items;
        assert.equal(list.length, 1);
        assert.equal(list[0]!.clients[0]!.client_id, 'rp-admin');
        for (const v of l.browser.cookies.values()) assert.ok(v.length < 8 || !sessions.text.includes(v), 'never a cookie value');
        const grants = await call('GET', `/users/${id}/grants`, { token });
        assert.equal((grants.json as { items: unknown[] }).items.length, 1);
        const ended = await call('DELETE', `/users/${id}/sessions/${list[0]!.uid}`, { token });
        assert.equal(ended.status, 200, ended.text);
        assert.deepEqual(ended.json, { sessions: 1, grants: 1, notified: 1, failed: 0 });
        await receiver.waitFor(1);
        const logout = await receiver.verify(receiver.tokens[0]!, srv.issuer, 'rp-admin');
        assert.equal(logout.sub, id);
        await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), 'the refresh token stopped with its grant');
        assert.equal(((await call('GET', `/users/${id}/sessions`, { token })).json as { items: unknown[] }).items.length, 0);
        assert.equal((await call('DELETE', `/users/${id}/sessions/nope`, { token })).status, 404);

        // A failed attempt counted against the account (as the throttle counts one), cleared by an administrator.
        await srv.storage.attempts.reserve(accountKey(id), { now: Date.now(), max: 100, windowMs: Infinity, waitMs: () => 0 });
        const counted = () => srv.storage.attempts.get(accountKey(id), Date.now(), Infinity).then((b) => b.count);
        assert.ok((await counted()) > 0, 'the failures are counted');
        assert.equal((await call('POST', `/users/${id}/unlock`, { token })).status, 204);
        assert.equal(await counted(), 0, 'unlocked');
        const again = await loginThroughForm(config, username, PASSWORD, { scope: 'openid' });
        assert.ok(again.callback.searchParams.get('code'), 'signs in after the unlock');
        const reset = await call('DELETE', `/users/${id}/factors`, { token });
        assert.equal(reset.status, 200, reset.text);
        assert.equal((reset.json as { removed: number }).removed, 1);
        assert.equal((await srv.storage.factors.list(id)).length, 0);
      } finally {
        await receiver.close();
      }
    });

    it('dry-runs a candidate over the stored events and reads a published version', async () => {
      const token = await admin();
      const live = (await call('GET', '/policies/live', { token })).json as { version: { version: number }; files: Record<string, string> };
      const risk = parseYaml(live.files['risk.yml']!) as { factors: { new_country: { weight: number } } };
      risk.factors.new_country.weight = 0.9;
      const dry = await call('POST', '/policies/dry-run', { token, body: { files: { 'risk.yml': stringifyYaml(risk) }, days: 1 } });
      assert.equal(dry.status, 200, dry.text);
      const report = dry.json as { window: { events: number; days: number }; live: { decisions: Record<string, number> }; candidate: { decisions: Record<string, number> } };
      assert.equal(report.window.days, 1);
      assert.ok(report.window.events > 0, 'the logins of this run were replayed');
      const version = await call('GET', `/policies/versions/${live.version.version}`, { token });
      assert.equal(version.status, 200);
      assert.equal((version.json as { version: number; files: Record<string, string> }).version, live.version.version);
      assert.equal((await call('GET', '/policies/versions/999999', { token })).status, 404);
    });

    it('retrains on synthetic logins in a worker, reports held-out figures, and activates the model through a publish under If-Match', async () => {
      const token = await admin();
      const started = await call('POST', '/model/train', { token, body: { trees: 3, maxDepth: 4, holdout: 0.3, synthetic: { users: 60, days: 10, seed: 7 } } });
      assert.equal(started.status, 202, started.text);
      const job = started.json as { id: string };
      let last: { state: string; report?: { sha256: string; heldOut: unknown; data: { synthetic: { events: number } | null } }; error?: unknown } = { state: 'running' };
      const deadline = Date.now() + 170_000;
      while (last.state === 'running' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        last = (await call('GET', `/model/train/${job.id}`, { token })).json as typeof last;
      }
      assert.equal(last.state, 'done', JSON.stringify(last));
      const report = last.report!;
      assert.match(report.sha256, /^[0-9a-f]{64}$/);
      assert.ok(report.heldOut, 'held-out figures before anything is activated');
      assert.ok((report.data.synthetic?.events ?? 0) > 0, 'trained on the synthetic logins');
      const model = await call('GET', `/models/${report.sha256}`, { token });
      assert.equal(model.status, 200);
      assert.doesNotMatch(model.text, /"text"/, 'the model file itself is not served');
      const live = await call('GET', '/policies/live', { token });
      const version = Number(live.headers.get('etag')!.replaceAll('"', ''));
      const activated = await call('POST', '/model/activate', { token, body: { sha256: report.sha256 }, headers: { 'if-match': `"${version}"` } });
      assert.equal(activated.status, 201, activated.text);
      const pinned = (await call('GET', '/policies/live', { token })).json as { files: Record<string, string> };
      assert.ok(pinned.files['risk.yml']!.includes(report.sha256), 'the policy pins the new model');
    });

    it('lists signing keys with their revision as ETag and rotates under If-Match', async () => {
      const token = await admin();
      const list = await call('GET', '/keys', { token });
      assert.equal(list.status, 200);
      const set = list.json as { revision: number; keys: { kid: string; state: string }[] };
      assert.ok(set.keys.some((k) => k.state === 'current'));
      assert.doesNotMatch(list.text, /"d":|"p":|"q":/, 'no private key material');
      assert.equal(list.headers.get('etag'), `"${set.revision}"`);
      assert.equal((await call('POST', '/keys/rotate', { token })).status, 428);
      assert.equal((await call('POST', '/keys/rotate', { token, headers: { 'if-match': `"${set.revision + 5}"` } })).status, 412);
      const rotated = await call('POST', '/keys/rotate', { token, headers: { 'if-match': `"${set.revision}"` } });
      assert.equal(rotated.status, 200, rotated.text);
      assert.equal(rotated.headers.get('etag'), `"${set.revision + 1}"`);
      const again = await call('POST', '/keys/rotate', { token, headers: { 'if-match': `"${set.revision + 1}"` } });
      assert.equal(again.status, 409, 'keys already staged: the step is refused');
      assert.match(problem(again).detail, /already staged/);
      // The key file gone for a moment (replaced by hand, a volume remounting): the API answers
      // 503 and makes no new one, whose new data key would orphan every secret at the next start.
      const keysFile = srv.settings.keysFile;
      fs.renameSync(keysFile, `${keysFile}.away`);
      try {
        for (const r of [await call('GET', '/keys', { token }), await call('POST', '/keys/retire', { token, headers: { 'if-match': `"${set.revision + 1}"` } })]) {
          assert.equal(r.status, 503, r.text);
          assert.equal(problem(r).code, 'unavailable');
        }
        assert.equal(fs.existsSync(keysFile), false, 'no key file was made');
      } finally {
        fs.renameSync(`${keysFile}.away`, keysFile);
      }
      assert.equal((await call('GET', '/keys', { token })).status, 200);
      // The client that used its admin token is removed: the token stops working at once.
      const id = `short-lived-${crypto.randomUUID().slice(0, 6)}`;
      const t = await tokenFor(id, 'admin:read', 'admin:read');
      assert.equal((await call('GET', '/keys', { token: t })).status, 200);
      const c = await srv.storage.clients.find(id);
      await srv.storage.clients.remove(id, c!.version);
      const gone = await call('GET', '/keys', { token: t });
      assert.equal(gone.status, 401);
      assert.match(problem(gone).detail, /no longer exists/);
    });
  });
}

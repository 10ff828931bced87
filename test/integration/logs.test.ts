/**
 * The server's log over real HTTP, with openid-client as the relying party: one login (a wrong
 * password, the right one, a TOTP step-up, consent, code exchange, refresh, userinfo) read
 * back from the lines the real logger wrote. Every line is JSON with time/level/msg; every
 * line of a request has its req_id; the requests of the login share one login_id; and no
 * secret of the login is anywhere in the raw text. The log does not depend on the store:
 * the embedded one is enough.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { startTestServer, type LogEntry, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser, type Page } from '../helpers/browser.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';
const WRONG = 'incorrect pony stapler 42';
const CLIENT_SECRET = 'a-client-secret-that-must-never-be-logged-0123456789';
const AAL2 = 'urn:adaptive-idp:aal2';
const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

describe('logs: one login, read back from the log', () => {
  let srv: TestServer;
  let config: client.Configuration;
  let secret: string;

  before(async () => {
    srv = await startTestServer('embedded');
    const ada = await srv.addUser('ada', PASSWORD);
    secret = await srv.addTotp(ada);
    await srv.addClient('web', {
      redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }, CLIENT_SECRET);
    config = await discover(srv.issuer, 'web', CLIENT_SECRET);
  });
  after(() => srv?.close());

  it('tags every line of a login with its req_id and one login_id, and writes none of its secrets', async () => {
    const from = srv.rawLogs.length;
    const browser = new Browser({ 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' });
    const cookiesSeen = new Set<string>();
    const keepCookies = () => { for (const v of browser.cookies.values()) cookiesSeen.add(v); };
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid offline_access', prompt: 'consent', acr_values: AAL2, nonce, state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    let page: Page = await browser.navigate(url, {}, REDIRECT_URI);
    keepCookies();
    assert.match(page.body, /name="password"/);
    page = await browser.submit(page, '/login', { username: 'ada', password: WRONG }, REDIRECT_URI);
    keepCookies();
    assert.match(page.body, /name="password"/, 'a wrong password: the form again');
    page = await browser.submit(page, '/login', { username: 'ada', password: PASSWORD }, REDIRECT_URI);
    keepCookies();
    assert.match(page.body, /\/totp"/, 'the RP asked for aal2: the second factor');
    const code = totpCode(secret);
    page = await browser.submit(page, '/totp', { code }, REDIRECT_URI);
    keepCookies();
    if (!page.url.href.startsWith(REDIRECT_URI) && page.body.includes('/confirm')) page = await browser.submit(page, '/confirm', {}, REDIRECT_URI);
    keepCookies();
    assert.ok(page.url.href.startsWith(REDIRECT_URI), `at the client: ${page.status} ${page.body.slice(0, 300)}`);
    const authorizationCode = page.url.searchParams.get('code')!;
    const tokens = await client.authorizationCodeGrant(config, page.url, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
    assert.equal(tokens.claims()?.acr, AAL2);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    await client.fetchUserInfo(config, refreshed.access_token, tokens.claims()!.sub);

    const raw = srv.rawLogs.slice(from);
    // Every line: one JSON object, with the line's own fields.
    const lines: LogEntry[] = raw.map((l) => {
      assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'), 'one line each');
      const e = JSON.parse(l) as LogEntry;
      assert.ok(!Number.isNaN(Date.parse(String(e.time))) && /^\d{4}-\d\d-\d\dT/.test(String(e.time)), `ISO time: ${l}`);
      assert.ok(LEVELS.has(e.level), `level name: ${l}`);
      assert.equal(typeof e.msg, 'string');
      return e;
    });
    // Everything here was written while serving a request.
    for (const e of lines) assert.equal(typeof e.req_id, 'string', `a req_id on ${JSON.stringify(e)}`);
    const access = lines.filter((e) => e.msg === 'request');
    const paths = access.map((e) => `${String(e.method)} ${String(e.path)}`);
    for (const p of ['GET /auth', 'GET /interaction/:uid', 'POST /interaction/:uid/login', 'POST /interaction/:uid/totp', 'GET /auth/:uid', 'POST /token', 'GET /me']) {
      assert.ok(paths.includes(p), `an access line for ${p}: ${paths.join(', ')}`);
    }
    // One login: its requests share one login_id; the others (JWKS) have none.
    const loginIds = new Set(lines.map((e) => e.login_id).filter((v) => v !== undefined));
    assert.equal(loginIds.size, 1, `one login_id: ${[...loginIds].join(', ')}`);
    for (const e of access.filter((a) => !/jwks/.test(String(a.path)))) assert.ok(e.login_id !== undefined, `login_id on ${JSON.stringify(e)}`);
    const loginLines = lines.filter((e) => /^(login|risk|stepup)\./.test(e.msg));
    assert.ok(loginLines.some((e) => e.msg === 'login.failed') && loginLines.some((e) => e.msg === 'login.succeeded'), loginLines.map((e) => e.msg).join());
    for (const e of loginLines) assert.ok(loginIds.has(e.login_id as string), `the login's events carry its id: ${JSON.stringify(e)}`);
    // Each request's lines carry its own id: the access lines have distinct ones.
    assert.equal(new Set(access.map((e) => e.req_id)).size, access.length);
    assert.ok(access.every((e) => typeof e.status === 'number' && typeof e.ms === 'number'));

    const text = raw.join('');
    const secrets: Record<string, string> = {
      password: PASSWORD, 'wrong password': WRONG, 'TOTP code': code, 'authorization code': authorizationCode, 'client secret': CLIENT_SECRET,
      'code verifier': verifier, 'access token': tokens.access_token, 'refresh token': tokens.refresh_token!, 'ID token': tokens.id_token!,
      'refreshed access token': refreshed.access_token, 'refreshed refresh token': refreshed.refresh_token!,
      'ID token signature': tokens.id_token!.split('.')[2]!,
    };
    assert.ok(cookiesSeen.size >= 3, 'the login set its cookies');
    for (const [i, v] of [...cookiesSeen].entries()) secrets[`cookie value ${i}`] = v;
    for (const [name, value] of Object.entries(secrets)) {
      assert.ok(value.length >= 6, `${name} is long enough to search for`);
      assert.ok(!text.includes(value), `the ${name} is not in the log`);
    }
    assert.ok(!/[?&](code|state|nonce)=/.test(text), 'no query string');
  });

  it('takes an incoming X-Request-Id only from the proxy it was told of (TRUST_PROXY), and a safe one only', async () => {
    // Not behind a proxy: the id is whatever the client chose, so it is not taken: a client
    // must not pick the id its lines are logged under (nor another request's).
    const direct = await fetch(`${srv.url}/.well-known/openid-configuration`, { headers: { 'x-request-id': 'lb-7f3a.12_x' } });
    assert.equal(direct.status, 200);
    assert.match(direct.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/, 'a new id');
    const proxied = await startTestServer('embedded', { TRUST_PROXY: 'true' });
    try {
      const from = proxied.logs.length;
      const safe = await fetch(`${proxied.url}/.well-known/openid-configuration`, { headers: { 'x-request-id': 'lb-7f3a.12_x' } });
      assert.equal(safe.status, 200);
      assert.equal(safe.headers.get('x-request-id'), 'lb-7f3a.12_x');
      for (const unsafe of ['a b', 'x'.repeat(65), '<script>', 'id;drop']) {
        const res = await fetch(`${proxied.url}/.well-known/openid-configuration`, { headers: { 'x-request-id': unsafe } });
        const id = res.headers.get('x-request-id')!;
        assert.notEqual(id, unsafe);
        assert.match(id, /^[0-9a-f-]{36}$/, 'a new id instead');
      }
      // An error page (our error boundary) keeps the header too.
      const missing = await fetch(`${proxied.url}/no/such/page?token=abcdef123456`);
      assert.equal(missing.status, 404);
      const missingId = missing.headers.get('x-request-id');
      assert.ok(missingId);
      await new Promise((r) => setTimeout(r, 50));
      const lines = proxied.logs.slice(from).filter((e) => e.msg === 'request');
      assert.ok(lines.some((e) => e.req_id === 'lb-7f3a.12_x' && e.path === '/.well-known/openid-configuration' && e.status === 200));
      const notFound = lines.find((e) => e.req_id === missingId);
      assert.ok(notFound, 'the 404 is logged under the id it was answered with');
      assert.equal(notFound.path, '/no/such/page', 'without its query string');
      assert.equal(notFound.status, 404);
    } finally {
      await proxied.close();
    }
  });

  it('writes a failing request\'s path without its interaction uid (it is the _interaction cookie\'s value)', async () => {
    const from = srv.rawLogs.length;
    const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', state: client.randomState(), nonce: client.randomNonce() });
    const start = await fetch(url, { redirect: 'manual' });
    const uid = new URL(start.headers.get('location')!, srv.url).pathname.split('/').pop()!;
    assert.ok(uid.length >= 16, `an interaction uid: ${uid}`);
    const cookie = start.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    // The store fails: reading the login's state on our page (the interaction itself is read),
    // then reading the interaction in oidc-provider's resume. Both answer 500 and log an error.
    const find = srv.storage.oidc.find.bind(srv.storage.oidc);
    for (const [path, failing] of [[`/interaction/${uid}`, (m: string) => m !== 'Interaction'], [`/auth/${uid}`, (m: string) => m === 'Interaction']] as const) {
      srv.storage.oidc.find = async (model, id, now) => {
        if (failing(model)) throw new Error('the store is down');
        return find(model, id, now);
      };
      try {
        const res = await fetch(`${srv.url}${path}`, { headers: { cookie }, redirect: 'manual' });
        assert.equal(res.status, 500, path);
      } finally {
        srv.storage.oidc.find = find;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
    const raw = srv.rawLogs.slice(from);
    const errors = raw.map((l) => JSON.parse(l) as LogEntry).filter((e) => e.level === 'error');
    assert.ok(errors.some((e) => e.path === '/interaction/:uid'), `an error line for the page: ${JSON.stringify(errors)}`);
    assert.ok(errors.some((e) => e.path === '/auth/:uid'), `an error line for the resume: ${JSON.stringify(errors)}`);
    for (const l of raw) assert.ok(!l.includes(uid), `no interaction uid in ${l}`);
  });
});

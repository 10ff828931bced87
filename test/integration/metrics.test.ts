/**
 * /metrics against a scripted set of logins, over real HTTP with openid-client as the RP,
 * on both stores: each counter of docs/metrics.md moves by exactly what the script did,
 * histograms count, the info metrics carry the live versions, the output is valid
 * Prometheus exposition, and no label value carries a username, an address, a secret or a
 * password.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { parse, stringify } from 'yaml';
import { STORES, describeOrSkip, localhostIssuer, mongoUriForTest } from '../helpers/env.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';
import { WebAuthn } from '../../interactions/methods/webauthn.ts';
import { openMongoStorage } from '../../adapters/storage/mongo.ts';
import { makePolicyDir, rulesOnlyPolicy } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI, secretOnPage, startAuthorization } from '../helpers/rp.ts';
import { Browser, findForm, type Page } from '../helpers/browser.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'metrics-test correct horse battery';
const WRONG = 'metrics-test wrong staple';
const SECRET = 'metrics-test-client-secret-0123456789abcdef';
// Distinctive names: none may appear in any label value.
const ZELDA = 'zelda.metricsuser';
const QUENTIN = 'quentin.metricsuser';
const NOBODY = 'nobody.metricsuser';
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
const LONDON = '81.2.69.142';
const SYDNEY = '1.1.1.1';
const TOR = '185.220.101.1';

// ---- a small parser of the text exposition format (version 0.0.4) ----

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Exposition { samples: Sample[]; types: Map<string, string>; helps: Map<string, string> }

const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/y;

/** Parses, and fails on anything the format does not allow (HELP/TYPE twice, a sample of no family). */
function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: [], types: new Map(), helps: new Map() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const map = meta[1] === 'HELP' ? out.helps : out.types;
      assert.ok(!map.has(meta[2]!), `${meta[1]} ${meta[2]} twice`);
      if (meta[1] === 'TYPE') assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
      map.set(meta[2]!, meta[3]!);
      continue;
    }
    assert.ok(!line.startsWith('#'), `a comment the format does not know: ${line}`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    let i = 0;
    while (i < body.length) {
      LABEL.lastIndex = i;
      const l = LABEL.exec(body);
      assert.ok(l, `bad labels in ${line}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      i = LABEL.lastIndex;
      if (body[i] === ',') i += 1;
    }
    const value = Number(m[3] === '+Inf' ? Infinity : m[3]);
    assert.ok(!Number.isNaN(value), `bad value in ${line}`);
    out.samples.push({ name: m[1]!, labels, value });
  }
  // Every sample belongs to a family with a TYPE (histograms: _bucket, _sum, _count).
  for (const s of out.samples) {
    const family = out.types.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(out.types.has(family), `sample ${s.name} of no declared family`);
    assert.ok(out.helps.has(family), `family ${family} without HELP`);
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `match`. */
function value(e: Exposition, name: string, match: Record<string, string> = {}): number {
  return e.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const store of STORES) {
  describeOrSkip(store.skip, `metrics (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let policyDir: string;
    let text = '';
    let before0: Exposition;
    let after0: Exposition;
    /** Counter deltas between the two scrapes. */
    const delta = (name: string, match: Record<string, string> = {}) => value(after0, name, match) - value(before0, name, match);

    const submit = async (browser: Browser, page: Page, action: string, fields: Record<string, string>) => {
      let p = await browser.submit(page, action, fields, REDIRECT_URI);
      if (!p.url.href.startsWith(REDIRECT_URI) && p.body.includes('/confirm')) p = await browser.submit(p, '/confirm', {}, REDIRECT_URI);
      return p;
    };
    const exchange = async (f: { page: Page; verifier: string; nonce: string; state: string }) => {
      assert.ok(f.page.url.href.startsWith(REDIRECT_URI), `expected the callback, got ${f.page.status}: ${f.page.body.slice(0, 300)}`);
      await client.authorizationCodeGrant(config, f.page.url, { pkceCodeVerifier: f.verifier, expectedNonce: f.nonce, expectedState: f.state });
    };
    const isPassword = (p: Page) => p.body.includes('name="password"');

    before(async () => {
      policyDir = rulesOnlyPolicy((f) => {
        f.risk.factors.tor_exit.weight = 0.9;
        f.lists.tor_exit_addresses = [TOR];
        f.assurance.enrolment = { prompt: 'off', missing_factor: { action: 'refuse', enroll_max_level: 'high' } };
        f.assurance.default.critical = 'block';
      });
      // Two free failures per account: the third attempt is refused by the throttle.
      srv = await startTestServer(store.kind, { TRUST_PROXY: 'true', METRICS_TOKEN: SECRET.slice(0, 20), POLICY_DIR: policyDir, THROTTLE_ACCOUNT_FREE: '2', THROTTLE_IP_FREE: '50', THROTTLE_IP_MAX: '100' });
      const zelda = await srv.addUser(ZELDA, PASSWORD);
      await srv.addUser(QUENTIN, PASSWORD);
      const totp = await srv.addTotp(zelda);
      await srv.addClient('metrics-rp', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }, SECRET);
      config = await discover(srv.issuer, 'metrics-rp', SECRET);
      const token = SECRET.slice(0, 20);
      const scrapeWithToken = async () => {
        const res = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
        const t = await res.text();
        return { t, e: parseExposition(t) };
      };

      before0 = (await scrapeWithToken()).e;

      // 3 low-risk logins on one browser at home (each a fresh sign-in: prompt=login).
      const home = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
      for (let i = 0; i < 3; i += 1) {
        const f = await startAuthorization(config, home, { prompt: 'login' });
        assert.ok(isPassword(f.page), f.page.body.slice(0, 300));
        f.page = await submit(home, f.page, '/login', { username: ZELDA, password: PASSWORD });
        await exchange(f);
      }
      // 2 wrong passwords, then the throttle refuses the third attempt (even a right password).
      for (const password of [WRONG, WRONG, PASSWORD]) {
        const b = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
        const f = await startAuthorization(config, b);
        f.page = await submit(b, f.page, '/login', { username: QUENTIN, password });
        assert.ok(isPassword(f.page));
      }
      // An unknown username.
      {
        const b = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
        const f = await startAuthorization(config, b);
        f.page = await submit(b, f.page, '/login', { username: NOBODY, password: WRONG });
        assert.ok(isPassword(f.page));
      }
      // A step-up from a new country: a wrong TOTP code, then the right one.
      {
        const b = new Browser({ 'x-forwarded-for': SYDNEY, 'user-agent': SAFARI });
        const f = await startAuthorization(config, b);
        f.page = await submit(b, f.page, '/login', { username: ZELDA, password: PASSWORD });
        assert.ok(f.page.body.includes('/totp"'), f.page.body.slice(0, 300));
        const right = totpCode(totp);
        f.page = await submit(b, f.page, '/totp', { code: right === '000000' ? '111111' : '000000' });
        assert.match(f.page.body, /That code is not right/);
        f.page = await submit(b, f.page, '/totp', { code: right });
        await exchange(f);
      }
      // A block: a Tor exit is critical.
      {
        const b = new Browser({ 'x-forwarded-for': TOR, 'user-agent': SAFARI });
        const f = await startAuthorization(config, b);
        f.page = await submit(b, f.page, '/login', { username: ZELDA, password: PASSWORD });
        assert.ok(isPassword(f.page));
      }
      // A policy change accepted, then one rejected.
      const riskFile = path.join(policyDir, 'risk.yml');
      const risk = parse(fs.readFileSync(riskFile, 'utf8')) as { factors: { new_country: { weight: number } } };
      risk.factors.new_country.weight = 0.41;
      const first = srv.policies.current().version;
      fs.writeFileSync(riskFile, stringify(risk));
      await until(() => srv.policies.current().version !== first);
      const assuranceFile = path.join(policyDir, 'assurance.yml');
      fs.writeFileSync(assuranceFile, fs.readFileSync(assuranceFile, 'utf8').replace(/medium: aal2/, 'medium: aal7'));
      await until(() => srv.policies.stats.rejected === 1);

      const last = await scrapeWithToken();
      text = last.t;
      after0 = last.e;
    });
    after(() => srv?.close());

    it('counts the logins by outcome and decision, and the first-factor refusals by reason', () => {
      assert.equal(delta('idp_logins_total', { outcome: 'success', decision: 'allow' }), 3);
      assert.equal(delta('idp_logins_total', { outcome: 'success', decision: 'step_up' }), 1);
      assert.equal(delta('idp_logins_total', { outcome: 'failure', decision: 'none' }), 3);
      assert.equal(delta('idp_logins_total', { outcome: 'throttled', decision: 'none' }), 1);
      assert.equal(delta('idp_logins_total', { outcome: 'blocked', decision: 'block' }), 1);
      assert.equal(delta('idp_logins_total', { outcome: 'unavailable' }), 0);
      assert.equal(delta('idp_logins_total'), 9);
      assert.equal(delta('idp_login_failures_total', { reason: 'bad_password' }), 2);
      assert.equal(delta('idp_login_failures_total', { reason: 'unknown_user' }), 1);
      assert.equal(delta('idp_login_failures_total'), 3);
      assert.equal(delta('idp_throttle_refusals_total', { factor: 'password' }), 1);
      assert.equal(delta('idp_throttle_refusals_total'), 1);
    });

    it('counts the step-up funnel and the named events', () => {
      assert.equal(delta('idp_stepup_total', { method: 'totp', result: 'prompted' }), 1);
      assert.equal(delta('idp_stepup_total', { method: 'totp', result: 'failed' }), 1);
      assert.equal(delta('idp_stepup_total', { method: 'totp', result: 'passed' }), 1);
      assert.equal(delta('idp_stepup_refused_total'), 0);
      for (const [event, n] of [['login.succeeded', 4], ['login.failed', 3], ['login.throttled', 1], ['login.blocked', 1],
        ['stepup.required', 1], ['stepup.failed', 1], ['stepup.passed', 1], ['risk.decided', 7], ['policy.reloaded', 1], ['policy.rejected', 1]] as const) {
        assert.equal(delta('idp_events_total', { event }), n, event);
      }
      // Every event name is listed from the start (rates need the series before the first event).
      assert.ok(before0.samples.some((s) => s.name === 'idp_events_total' && s.labels.event === 'directory.unavailable' && s.value === 0));
    });

    it('counts each assessment: decision, level, score and duration histograms, factors from the live policy', () => {
      // 3 at home + the step-up + the block (the throttled and refused attempts are not assessed),
      // and the session of the 2nd and 3rd login at home, re-assessed when prompt=login came
      // (ARCHITECTURE.md "Re-authorization"): 7.
      assert.equal(srv.logs.filter((l) => l.msg === 'risk.decided' && l.on === 'session').length, 2);
      assert.equal(delta('idp_risk_assessments_total'), 7);
      assert.equal(delta('idp_risk_assessments_total', { decision: 'allow' }), 5);
      assert.equal(delta('idp_risk_assessments_total', { decision: 'step_up' }), 1);
      assert.equal(delta('idp_risk_assessments_total', { decision: 'block', level: 'critical', required_acr: 'none' }), 1);
      assert.equal(delta('idp_risk_score_count'), 7);
      assert.equal(delta('idp_risk_score_bucket', { le: '+Inf' }), 7);
      assert.equal(delta('idp_risk_score_bucket', { le: '1' }), 7, 'a score is at most 1');
      assert.equal(delta('idp_risk_assessment_duration_seconds_count'), 7);
      assert.ok(delta('idp_risk_assessment_duration_seconds_sum') > 0);
      assert.deepEqual(after0.samples.filter((s) => s.name === 'idp_risk_score_bucket').map((s) => s.labels.le),
        ['0.1', '0.2', '0.3', '0.4', '0.5', '0.6', '0.7', '0.8', '0.9', '1', '+Inf']);
      assert.equal(delta('idp_risk_factor_fired_total', { factor: 'tor_exit' }), 1);
      assert.ok(Math.abs(delta('idp_risk_factor_contribution_total', { factor: 'tor_exit' }) - 0.9) < 1e-9);
      assert.ok(delta('idp_risk_factor_fired_total', { factor: 'new_country' }) >= 1, 'the step-up from a new country');
      const factors = new Set(after0.samples.filter((s) => s.name === 'idp_risk_factor_fired_total').map((s) => s.labels.factor));
      const allowed = new Set([...Object.keys(srv.policies.current().risk.factors), 'model', 'cold_start', 'shared_address', 'other']);
      for (const f of factors) assert.ok(allowed.has(f!), `factor label ${f}`);
    });

    it('counts policy reloads by result and shows the live policy, model and build', () => {
      assert.equal(delta('idp_policy_reloads_total', { result: 'ok' }), 1);
      assert.equal(delta('idp_policy_reloads_total', { result: 'rejected' }), 1);
      assert.equal(after0.samples.filter((s) => s.name === 'idp_policy_reloads_total').length, 4, 'result × source, all shown');
      const info = after0.samples.filter((s) => s.name === 'idp_policy_info');
      assert.equal(info.length, 1);
      assert.equal(info[0]!.labels.version, srv.policies.current().version);
      assert.equal(info[0]!.labels.published, String(srv.policies.stats.published ?? ''));
      assert.equal(info[0]!.value, 1);
      const model = after0.samples.filter((s) => s.name === 'idp_model_info');
      assert.deepEqual(model.map((s) => [s.labels.version, s.value]), [[srv.policies.current().forest.version, 1]]);
      const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
      const build = after0.samples.filter((s) => s.name === 'idp_build_info');
      assert.deepEqual(build.map((s) => [s.labels.version, s.labels.node_version, s.value]), [[pkg.version, process.version, 1]]);
    });

    it('times every request by route, and the store operations', () => {
      // One code exchange per finished login.
      assert.equal(delta('idp_http_request_duration_seconds_count', { route: 'token', method: 'POST', status: '2xx' }), 4);
      assert.ok(delta('idp_http_request_duration_seconds_count', { route: 'interaction', method: 'POST' }) >= 11);
      assert.ok(delta('idp_http_request_duration_seconds_count', { route: 'authorization', method: 'GET' }) >= 8);
      const routes = new Set(after0.samples.filter((s) => s.name === 'idp_http_request_duration_seconds_count').map((s) => s.labels.route));
      for (const r of routes) {
        assert.ok(['authorization', 'token', 'userinfo', 'introspection', 'revocation', 'jwks', 'discovery', 'end_session', 'backchannel',
          'interaction', 'account', 'admin_api', 'metrics', 'asset', 'other'].includes(r!), `route ${r}`);
      }
      assert.ok(routes.has('metrics') && routes.has('discovery'));
      const ops = delta('idp_store_operations_total', { store: store.kind });
      assert.ok(ops > 0);
      // Every operation sent is timed once it is answered (the scrape's own reads are counted
      // before they are answered: a few at most).
      const timed = delta('idp_store_operation_duration_seconds_count', { store: store.kind });
      assert.ok(timed <= ops && timed >= ops - 5, `${timed} timed of ${ops}`);
      assert.equal(value(after0, 'idp_store_errors_total'), 0);
      assert.ok(after0.samples.some((s) => s.name === 'process_cpu_user_seconds_total'), 'default process metrics');
      assert.ok(after0.samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds'), 'default Node.js metrics');
    });

    it('puts no username, address, secret or password in any label value', () => {
      const forbidden = [ZELDA, QUENTIN, NOBODY, LONDON, SYDNEY, TOR, SECRET, SECRET.slice(0, 20), PASSWORD, WRONG, 'metrics-rp', 'metricsuser'];
      for (const s of after0.samples) {
        for (const v of Object.values(s.labels)) {
          for (const f of forbidden) assert.ok(!v.includes(f), `${s.name}{…="${v}"} contains ${f}`);
        }
      }
      // Nor anywhere else in the text.
      for (const f of forbidden) assert.ok(!text.includes(f), f);
    });
  });
}

describeOrSkip(false, 'METRICS=off', () => {
  let srv: TestServer;
  before(async () => { srv = await startTestServer('embedded', { METRICS: 'off' }); });
  after(() => srv?.close());

  it('serves no /metrics and records nothing, while the rest serves as before', async () => {
    const res = await fetch(`${srv.url}/metrics`);
    assert.equal(res.status, 404);
    assert.doesNotMatch(await res.text(), /idp_/);
    assert.equal((await fetch(`${srv.url}/.well-known/openid-configuration`)).status, 200);
    // Nothing observes the store: counting goes on (StoreStats.ops), timing does not.
    assert.ok([...srv.storage.stats.ops.values()].reduce((a, b) => a + b, 0) > 0);
  });
});

describeOrSkip(false, 'a store failure on the sign-in pages', () => {
  let srv: TestServer;
  let config: client.Configuration;
  before(async () => {
    srv = await startTestServer('embedded');
    await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }, SECRET);
    config = await discover(srv.issuer, 'web', SECRET);
  });
  after(() => srv?.close());

  // Read by line: right after a start prom-client writes the event-loop means as `Nan`, which
  // Prometheus takes (its parser ignores case) and parseExposition, strict, does not.
  const interaction5xx = async () => (await (await fetch(`${srv.url}/metrics`)).text()).split('\n')
    .filter((l) => l.startsWith('idp_http_request_duration_seconds_count{route="interaction",') && l.includes('status="5xx"'))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);

  it('answers 5xx, counted as such, when the interaction cannot be read; a missing or unknown one stays a 400', async () => {
    const browser = new Browser();
    const { page } = await startAuthorization(config, browser);
    assert.match(page.body, /name="password"/);
    const before5xx = await interaction5xx();
    // The store fails reading the interaction: an outage, not "this sign-in expired"
    // (IdpLoginErrorRate watches the 5xx share of these routes).
    const find = srv.storage.oidc.find.bind(srv.storage.oidc);
    srv.storage.oidc.find = async (model, id, now) => {
      if (model === 'Interaction') throw new Error('the store is down');
      return find(model, id, now);
    };
    try {
      const shown = await browser.request(page.url);
      assert.equal(shown.status, 500, 'the page');
      const posted = await browser.request(new URL(`${page.url.pathname}/login`, page.url), {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=a&password=b&csrf=c',
      });
      assert.equal(posted.status, 500, 'the form');
    } finally {
      srv.storage.oidc.find = find;
    }
    assert.equal(await interaction5xx(), before5xx + 2);
    // The store answering: no cookie, or an interaction it does not have, is the user's 400.
    assert.equal((await fetch(page.url)).status, 400, 'no interaction cookie');
    assert.equal((await browser.request(new URL('/interaction/unknownInteractionUid0123', page.url))).status, 400, 'another uid');
    assert.equal((await browser.request(page.url)).status, 200, 'the page again once the store answers');
  });
});

const mongo = STORES.find((s) => s.kind === 'mongodb');
describeOrSkip(mongo ? mongo.skip : 'MongoDB not selected', 'a MongoDB outage in idp_store_errors_total', () => {
  it('counts the operations that found no server to send to, not only the commands that failed on the wire', async () => {
    // The store reached through a TCP relay this test can cut: the server stays up for the others.
    const target = new URL(mongoUriForTest());
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((c) => {
      const up = net.connect(Number(target.port || 27017), target.hostname);
      sockets.add(c).add(up);
      c.pipe(up).pipe(c);
      const end = () => { c.destroy(); up.destroy(); };
      for (const s of [c, up]) s.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const relayed = new URL(target);
    relayed.host = `127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
    const storage = await openMongoStorage(relayed.toString());
    try {
      const failures: string[] = [];
      storage.stats.observe({ op: (op, _s, failed) => { if (failed) failures.push(op); } });
      const ops = () => [...storage.stats.ops.values()].reduce((a, b) => a + b, 0);
      assert.equal(await storage.accounts.findById('nobody'), undefined);
      relay.close();
      for (const s of sockets) s.destroy();
      const calls = () => Promise.all([
        storage.accounts.findById('x'), storage.clients.find('x'), storage.oidc.find('Session', 'x', Date.now()),
      ].map((p) => p.then(() => 'answered', (e: Error) => e.name)));
      // The first calls fail on the connections they had; what follows finds no server at all.
      await calls();
      const [failed0, ops0] = [failures.length, ops()];
      assert.deepEqual(await calls(), ['MongoServerSelectionError', 'MongoServerSelectionError', 'MongoServerSelectionError']);
      assert.equal(failures.length - failed0, 3, `each call counted as a failed store operation: ${failures.join(', ')}`);
      assert.equal(ops() - ops0, 3, 'and as an operation (the error ratio stays at most 1)');
    } finally {
      await storage.close().catch(() => undefined);
    }
  });
});

describeOrSkip(false, 'a passkey refused as the first factor', () => {
  let srv: TestServer;
  let config: client.Configuration;
  before(async () => {
    // http://localhost: passkeys are offered there (methods/webauthn.ts `supported`).
    srv = await startTestServer('embedded', await localhostIssuer());
    await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    config = await discover(srv.issuer, 'web');
  });
  after(() => srv?.close());

  const scrape = async () => (await (await fetch(`${srv.url}/metrics`)).text()).split('\n');
  const sum = (lines: string[], prefix: string) => lines.filter((l) => l.startsWith(prefix)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);

  it('counts a login whose passkey the provider refused as a first-factor failure', async () => {
    // A credential the authenticator made but the provider never registered.
    const id = await srv.addUser('paula', PASSWORD);
    const account = (await srv.storage.accounts.findById(id))!;
    const authenticator = new SoftAuthenticator({ origin: srv.issuer, rpId: 'localhost' });
    authenticator.create(await new WebAuthn(srv.storage, { issuer: srv.issuer }).registrationOptions({ binding: 'setup', account, userVerification: 'required' }));
    const browser = new Browser();
    const page = await browser.navigate(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }));
    const form = findForm(page.body, '/passkey');
    const options = await browser.request(new URL(`${form.action}/options`, page.url), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: form.hidden.csrf! }),
    });
    assert.equal(options.status, 200);
    const response = authenticator.get(await options.json() as Parameters<SoftAuthenticator['get']>[0]);
    const before0 = await scrape();
    const refused = await browser.submit(page, '/passkey', { response: JSON.stringify(response) }, REDIRECT_URI);
    assert.equal(refused.status, 400, refused.body.slice(0, 300));
    const after0 = await scrape();
    assert.equal(sum(after0, 'idp_logins_total{outcome="failure",decision="none"}') - sum(before0, 'idp_logins_total{outcome="failure",decision="none"}'), 1);
    assert.equal(sum(after0, 'idp_login_failures_total{reason="other"}') - sum(before0, 'idp_login_failures_total{reason="other"}'), 1);
    assert.equal(sum(after0, 'idp_stepup_total{') - sum(before0, 'idp_stepup_total{'), 0, 'no step-up');
  });

  it('counts a step-up answered with another account\'s passkey as a failed step-up', async () => {
    const webauthn = new WebAuthn(srv.storage, { issuer: srv.issuer });
    const register = async (username: string) => {
      const account = (await srv.storage.accounts.findById(await srv.addUser(username, PASSWORD)))!;
      const authenticator = new SoftAuthenticator({ origin: srv.issuer, rpId: 'localhost' });
      const binding = { binding: 'setup', account, userVerification: 'required' } as const;
      await webauthn.verifyRegistration({ ...binding, response: authenticator.create(await webauthn.registrationOptions(binding)), enrolledVia: 'admin' });
      return authenticator;
    };
    await register('quinn');
    const other = await register('rosa');
    const browser = new Browser();
    const login = await browser.navigate(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid', acr_values: 'urn:adaptive-idp:aal2',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }));
    // The password, then the step-up page asks quinn for a passkey.
    const step = await browser.submit(login, '/login', { username: 'quinn', password: PASSWORD }, REDIRECT_URI);
    const form = findForm(step.body, '/passkey');
    const options = await browser.request(new URL(`${form.action}/options`, step.url), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: form.hidden.csrf! }),
    });
    assert.equal(options.status, 200);
    const request = await options.json() as Parameters<SoftAuthenticator['get']>[0];
    // rosa's authenticator answers with rosa's own passkey, valid but not quinn's.
    const response = other.get(request, { credentialId: other.credentials[0]!.id.toString('base64url') });
    const before0 = await scrape();
    const refused = await browser.submit(step, '/passkey', { response: JSON.stringify(response) }, REDIRECT_URI);
    assert.match(refused.body, /belongs to (another|a different) account/, refused.body.slice(0, 300));
    const after0 = await scrape();
    assert.equal(sum(after0, 'idp_stepup_total{method="webauthn",result="failed"}') - sum(before0, 'idp_stepup_total{method="webauthn",result="failed"}'), 1);
    assert.equal(sum(after0, 'idp_stepup_total{method="webauthn",result="passed"}') - sum(before0, 'idp_stepup_total{method="webauthn",result="passed"}'), 0);
  });
});

describeOrSkip(false, 'an enrolment a login requires', () => {
  let srv: TestServer;
  let config: client.Configuration;
  before(async () => {
    // aal2 asked by the RP, no factor on the account: the login requires enrolling one.
    srv = await startTestServer('embedded', {
      POLICY_DIR: makePolicyDir((f) => {
        f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
        f.assurance.enrolment = { prompt: 'off', missing_factor: { action: 'enroll', enroll_max_level: 'high' } };
      }),
    });
    await srv.addUser('erin', PASSWORD);
    await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }, SECRET);
    config = await discover(srv.issuer, 'web', SECRET);
  });
  after(() => srv?.close());

  const scrape = async () => (await (await fetch(`${srv.url}/metrics`)).text()).split('\n');
  const count = (lines: string[], result: string) => Number(lines.find((l) => l.startsWith(`idp_stepup_total{method="enrolment",result="${result}"}`))?.split(' ').pop() ?? 0);

  it('counts the enrolment funnel: prompted, a wrong code failed, the right one passed', async () => {
    const browser = new Browser();
    const f = await startAuthorization(config, browser, { acr_values: 'urn:adaptive-idp:aal2' });
    const s0 = await scrape();
    let page = await browser.submit(f.page, '/login', { username: 'erin', password: PASSWORD }, REDIRECT_URI);
    const secret = secretOnPage(page);
    assert.ok(secret, `the enrolment page: ${page.body.slice(0, 300)}`);
    const right = totpCode(secret);
    page = await browser.submit(page, '/enrol/totp', { code: right === '000000' ? '111111' : '000000' }, REDIRECT_URI);
    assert.match(page.body, /That code is not right/);
    const s1 = await scrape();
    page = await browser.submit(page, '/enrol/totp', { code: right }, REDIRECT_URI);
    assert.doesNotMatch(page.body, /That code is not right/);
    const s2 = await scrape();
    assert.equal(count(s1, 'prompted') - count(s0, 'prompted'), 1);
    assert.equal(count(s1, 'failed') - count(s0, 'failed'), 1, 'the wrong code');
    assert.equal(count(s2, 'passed') - count(s1, 'passed'), 1);
  });
});

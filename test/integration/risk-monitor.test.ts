/**
 * Monitor mode on a live provider: a login the enforcing policy would challenge is let
 * through, its event records what the policy would have decided, the `risk.decided` line
 * says it, /metrics counts it, and the token's `risk` claim carries only what was enforced.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { makePolicyDir, rulesOnlyPolicy } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, type LoginResult } from '../helpers/rp.ts';
import { Browser } from '../helpers/browser.ts';
import type { LoginEventRecord } from '../../models/types.ts';
import type { RiskClaim } from '../../interactions/login-record.ts';

const PASSWORD = 'correct horse battery staple';
const METRICS_TOKEN = 'metrics-token-for-the-monitor-test';
const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
const london = () => new Browser({ 'x-forwarded-for': '81.2.69.142', 'user-agent': FIREFOX_WINDOWS });
const sydney = () => new Browser({ 'x-forwarded-for': '1.1.1.1', 'user-agent': SAFARI_MAC });

async function eventsOf(srv: TestServer, user: string): Promise<LoginEventRecord[]> {
  const out: LoginEventRecord[] = [];
  for await (const e of srv.storage.events.list({})) if (e.user === user) out.push(e);
  return out;
}

/** The value of one series of the monitor counter (0 while it has not moved). */
async function monitorCount(srv: TestServer, decision: string, level: string): Promise<number> {
  const r = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.match(text, /^# TYPE idp_risk_monitor_decisions_total counter$/m);
  const m = new RegExp(`^idp_risk_monitor_decisions_total\\{decision="${decision}",level="${level}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function riskClaimOf(config: client.Configuration, login: LoginResult): Promise<RiskClaim> {
  const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
  const risk = tokens.claims()!.risk as unknown as RiskClaim | undefined;
  assert.ok(risk, 'the ID token carries the risk claim');
  return risk;
}

async function setUp(store: (typeof STORES)[number]['kind'], policyDir: string) {
  const srv = await startTestServer(store, { TRUST_PROXY: 'true', METRICS_TOKEN, POLICY_DIR: policyDir });
  const id = await srv.addUser('grace', PASSWORD);
  await srv.addClient('web', { redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none', scope: 'openid risk' });
  return { srv, id, config: await discover(srv.issuer, 'web') };
}

for (const store of STORES) {
  describeOrSkip(store.skip, `the whole policy in monitor mode, live (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let id: string;

    before(async () => {
      // The shipped policy, as a trial: risk.yml `mode: monitor`.
      ({ srv, id, config } = await setUp(store.kind, makePolicyDir((f) => { f.risk.mode = 'monitor'; })));
    });
    after(() => srv?.close());

    it('says at start that the policy does not act on risk', () => {
      const warning = srv.logs.find((l) => l.level === 'warn' && /whole policy is in monitor mode/.test(l.msg));
      assert.ok(warning, 'a warning at load');
      assert.equal(warning.policy, srv.policies.current().version);
    });

    it('lets through a login the policy would stop, records and counts what it would have done', async () => {
      await loginThroughForm(config, 'grace', PASSWORD, { scope: 'openid risk' }, london());
      const [first] = await eventsOf(srv, id);
      assert.equal(first!.assessment!.decision, 'allow');
      const counted = { decision: first!.assessment!.monitor!.decision, level: first!.assessment!.monitor!.level };
      assert.equal(await monitorCount(srv, counted.decision, counted.level), 1, 'the first login was counted too');

      // Seconds later, from the other side of the world, on another browser: the shipped
      // policy would challenge or block it (test/integration/risk-login.test.ts).
      const login = await loginThroughForm(config, 'grace', PASSWORD, { scope: 'openid risk' }, sydney());
      assert.ok(login.callback.searchParams.get('code'), 'let through to the relying party');

      const second = (await eventsOf(srv, id))[1]!;
      const a = second.assessment!;
      assert.equal(a.decision, 'allow');
      assert.equal(a.level, 'low');
      assert.equal(a.score, 0);
      assert.equal(a.requiredAcr, 'urn:adaptive-idp:aal1');
      assert.ok(a.monitor, 'the event records the decision the policy implies');
      assert.notEqual(a.monitor.decision, 'allow');
      assert.notEqual(a.monitor.level, 'low');
      assert.ok(a.monitor.score > first!.assessment!.monitor!.score);
      const travel = a.reasons.find((r) => r.factor === 'impossible_travel');
      assert.ok(travel?.monitor === true && travel.contribution > 0, JSON.stringify(a.reasons));
      assert.ok(a.reasons.every((r) => r.monitor === true), 'nothing is enforced');

      const line = srv.logs.find((l) => l.msg === 'risk.decided' && l.event === second.id);
      assert.ok(line);
      assert.equal(line.decision, 'allow');
      assert.deepEqual((line.monitor as { decision: string }).decision, a.monitor.decision);
      assert.equal(await monitorCount(srv, a.monitor.decision, a.monitor.level), 1, 'the counter moved');

      // Tokens carry what was enforced, not the trial.
      const risk = await riskClaimOf(config, login);
      assert.deepEqual({ score: risk.score, level: risk.level, reasons: risk.reasons }, { score: 0, level: 'low', reasons: [] });
      // The login was let in, so it joined the trusted history (live semantics).
      const history = await srv.storage.risk.getUser(id) as { trusted: number };
      assert.equal(history.trusted, 2);
    });
  });

  describeOrSkip(store.skip, `one factor in monitor mode, live (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let id: string;

    before(async () => {
      // Rules only: from a new country on a new browser scores medium (a second factor);
      // without new_country and new_asn it is low.
      ({ srv, id, config } = await setUp(store.kind, rulesOnlyPolicy((f) => {
        f.risk.factors.new_country.mode = 'monitor';
        f.risk.factors.new_asn.mode = 'monitor';
      })));
    });
    after(() => srv?.close());

    it('leaves the monitored factors out of the decision and the token, and records the decision with them', async () => {
      const info = srv.logs.find((l) => /in monitor mode \(scored and recorded, not counted in the decision\): new_asn, new_country$/.test(l.msg));
      assert.ok(info, 'the start says which parts are monitored');
      await loginThroughForm(config, 'grace', PASSWORD, { scope: 'openid risk' }, london());
      const before = await monitorCount(srv, 'step_up', 'medium');
      const login = await loginThroughForm(config, 'grace', PASSWORD, { scope: 'openid risk' }, sydney());
      const a = (await eventsOf(srv, id))[1]!.assessment!;
      assert.equal(a.decision, 'allow');
      assert.equal(a.level, 'low');
      assert.deepEqual(a.reasons.filter((r) => r.monitor).map((r) => r.factor).sort(), ['new_asn', 'new_country']);
      assert.ok(a.reasons.some((r) => r.factor === 'new_device' && !r.monitor));
      assert.deepEqual({ decision: a.monitor!.decision, level: a.monitor!.level, requiredAcr: a.monitor!.requiredAcr }, { decision: 'step_up', level: 'medium', requiredAcr: 'urn:adaptive-idp:aal2' });
      assert.ok(Math.abs(a.monitor!.score - a.score - 0.28) < 1e-9, `${a.monitor!.score} = ${a.score} + new_country + new_asn`);
      assert.equal(await monitorCount(srv, 'step_up', 'medium'), before + 1);
      const risk = await riskClaimOf(config, login);
      assert.equal(risk.level, 'low');
      assert.ok(risk.reasons.length > 0 && risk.reasons.every((r) => r.factor !== 'new_country' && r.factor !== 'new_asn'), JSON.stringify(risk.reasons));
      assert.ok(Math.abs(risk.score - a.score) < 1e-4);
    });
  });
}

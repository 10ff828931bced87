/**
 * Regressions from the adversarial review of the step-up: an idle session never renews
 * itself without a factor, a required enrolment cannot be walked round, an enrolment is made
 * once under parallel submissions, and the enrolment offer respects the risk ceiling.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI, secretOnPage, startAuthorization } from '../helpers/rp.ts';
import { Browser, findForm, type Page } from '../helpers/browser.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';
const AAL2 = 'urn:adaptive-idp:aal2';
const atClient = (p: Page) => p.url.href.startsWith(REDIRECT_URI);

const authorize = startAuthorization;
const secretOf = secretOnPage;

for (const store of STORES) {
  describeOrSkip(store.skip, `step-up hardening (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let ada: string;

    before(async () => {
      const policy = makePolicyDir((f) => {
        f.risk.model.weight = 0;
        f.risk.cold_start.min_events = 1000; // no novelty: every login here is low risk
        // aal2 goes idle after 3 s: short enough for a test.
        f.assurance.levels[1].reauth = { max_hours: 24, idle_minutes: 0.05 };
        f.assurance.enrolment = { prompt: 'require', missing_factor: { action: 'enroll', enroll_max_level: 'medium' } };
      });
      srv = await startTestServer(store.kind, { POLICY_DIR: policy, THROTTLE_ACCOUNT_FREE: '100' });
      ada = await srv.addUser('ada', PASSWORD);
      await srv.addUser('newbie', PASSWORD);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    it('asks the held factor again once an AAL2 session went idle, and never renews it with nothing proven', async () => {
      const secret = await srv.addTotp(ada);
      const b = new Browser();
      const f = await authorize(config, b, { acr_values: AAL2 });
      let page = await b.submit(f.page, '/login', { username: 'ada', password: PASSWORD }, REDIRECT_URI);
      page = await b.submit(page, '/totp', { code: totpCode(secret) }, REDIRECT_URI);
      if (!atClient(page)) page = await b.submit(page, '/confirm', {}, REDIRECT_URI);
      assert.ok(atClient(page), page.body.slice(0, 300));
      const first = (await client.authorizationCodeGrant(config, page.url, { pkceCodeVerifier: f.verifier, expectedState: f.state, expectedNonce: f.nonce })).claims()!;
      assert.equal(first.acr, AAL2);

      await new Promise((r) => setTimeout(r, 4000));
      const again = await authorize(config, b, { acr_values: AAL2 });
      assert.ok(!atClient(again.page), 'an idle session is not served at aal2 without a factor');
      assert.ok(!again.page.body.includes('name="password"'), 'the password is not asked again');
      assert.match(again.page.body, /name="code"/);
      const second = await srv.addTotp(ada);
      const done = await b.submit(again.page, '/totp', { code: totpCode(second) }, REDIRECT_URI);
      assert.ok(atClient(done));
      const claims = (await client.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: again.verifier, expectedState: again.state, expectedNonce: again.nonce })).claims()!;
      assert.equal(claims.acr, AAL2);
      assert.ok(claims.auth_time! > first.auth_time!);
    });

    it('does not let /continue walk round a required enrolment, and enrols once under 100 parallel confirmations', async () => {
      const b = new Browser();
      const f = await authorize(config, b);
      const enrol = await b.submit(f.page, '/login', { username: 'newbie', password: PASSWORD }, REDIRECT_URI);
      assert.match(enrol.body, /requires a second step/);
      assert.doesNotMatch(enrol.body, /\/enrol\/skip/);
      const csrf = /name="csrf" value="([^"]+)"/.exec(enrol.body)![1]!;
      const action = findForm(enrol.body, '/enrol/totp').action;
      const post = (path: string, fields: Record<string, string>) => b.request(new URL(action.replace('/enrol/totp', path), enrol.url), {
        method: 'POST', body: new URLSearchParams({ csrf, ...fields }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal((await post('/continue', {})).status, 400);

      const secret = secretOf(enrol)!;
      const code = totpCode(secret);
      const results = await Promise.all(Array.from({ length: 100 }, () => post('/enrol/totp', { code })));
      assert.equal(results.filter((r) => r.status === 200).length, 1, results.map((r) => r.status).join(','));
      const factors = await srv.storage.factors.list((await srv.storage.accounts.findByUsername('newbie'))!.id);
      assert.deepEqual(factors.map((x) => x.kind).sort(), ['recovery', 'totp']);
    });
  });
}

/**
 * Second-factor enrolment during a login, and recovery codes, over real HTTP with
 * openid-client as the relying party: the shipped policy's first login, an enrolment the
 * policy requires (flagged in the audit trail), the recovery codes shown once and usable once.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { rulesOnlyPolicy } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI, secretOnPage, startAuthorization } from '../helpers/rp.ts';
import { Browser, findForm, type Page } from '../helpers/browser.ts';
import { totpCode } from '../helpers/totp.ts';
import { DEFAULT_POLICY_DIR } from '../../idp/settings.ts';

const PASSWORD = 'correct horse battery staple';
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
const LONDON = '81.2.69.142';

const atClient = (p: Page) => p.url.href.startsWith(REDIRECT_URI);

const start = startAuthorization;

async function claimsOf(config: client.Configuration, page: Page, f: { verifier: string; state: string; nonce: string }) {
  assert.ok(atClient(page), `expected the callback, got ${page.status}: ${page.body.slice(0, 400)}`);
  const t = await client.authorizationCodeGrant(config, page.url, { pkceCodeVerifier: f.verifier, expectedState: f.state, expectedNonce: f.nonce });
  return t.claims()!;
}

/** Follows the consent page of a first authorization, if shown. */
const consent = async (b: Browser, p: Page) => (!atClient(p) && p.body.includes('/confirm') ? b.submit(p, '/confirm', {}, REDIRECT_URI) : p);

const secretOf = secretOnPage;

for (const store of STORES) {
  describeOrSkip(store.skip, `enrolment at login, shipped policy (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    before(async () => {
      srv = await startTestServer(store.kind, { POLICY_DIR: DEFAULT_POLICY_DIR });
      await srv.addUser('newbie', PASSWORD);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    it("lets a new account's first login from the same machine in at AAL1, after others' typos, and offers enrolment", async () => {
      // Other people's typos from this address first (the quick start's machine).
      for (const name of ['nwebie', 'newbee', 'admin']) {
        const b = new Browser();
        const { page } = await start(config, b);
        await b.submit(page, '/login', { username: name, password: 'wrong password here' });
      }
      const b = new Browser();
      const { page, ...flow } = await start(config, b);
      const offer = await b.submit(page, '/login', { username: 'newbie', password: PASSWORD }, REDIRECT_URI);
      assert.match(offer.body, /Set up a second step/);
      assert.match(offer.body, /<svg/, 'the QR code is in the page');
      assert.ok(secretOf(offer), 'the secret is shown as text');
      const done = await consent(b, await b.submit(offer, '/enrol/skip', {}, REDIRECT_URI));
      const claims = await claimsOf(config, done, flow);
      assert.equal(claims.acr, 'urn:adaptive-idp:aal1');
      assert.deepEqual(claims.amr, ['pwd', 'rba']);
    });
  });

  describeOrSkip(store.skip, `enrolment the login requires, and recovery codes (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let carol: string;
    let codes: string[] = [];

    before(async () => {
      const policy = rulesOnlyPolicy((f) => {
        f.assurance.enrolment = { prompt: 'off', missing_factor: { action: 'enroll', enroll_max_level: 'high' } };
      });
      // 20 parallel logins of one account must all reach their checks (throttling has its own tests).
      srv = await startTestServer(store.kind, { TRUST_PROXY: 'true', POLICY_DIR: policy, THROTTLE_ACCOUNT_FREE: '100' });
      carol = await srv.addUser('carol', PASSWORD);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
      const home = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
      const { page } = await start(config, home);
      assert.ok(atClient(await consent(home, await home.submit(page, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI))));
    });
    after(() => srv?.close());

    it('has a risky login of an account without a second factor enrol one, flagged, then shows 10 recovery codes once', async () => {
      const b = new Browser({ 'x-forwarded-for': '1.1.1.1', 'user-agent': SAFARI });
      const { page, ...flow } = await start(config, b);
      const enrol = await b.submit(page, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI);
      assert.match(enrol.body, /your account does not have one yet/);
      assert.doesNotMatch(enrol.body, /\/enrol\/skip/, 'a required enrolment cannot be skipped');
      // A crafted skip is refused too, and the login stays where it was.
      const csrf = /name="csrf" value="([^"]+)"/.exec(enrol.body)![1]!;
      const skip = await b.request(new URL(findForm(enrol.body, '/enrol/totp').action.replace('/enrol/totp', '/enrol/skip'), enrol.url), {
        method: 'POST', body: new URLSearchParams({ csrf }), headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(skip.status, 400);
      const secret = secretOf(enrol);
      assert.ok(secret);
      const wrong = await b.submit(enrol, '/enrol/totp', { code: totpCode(secret) === '000000' ? '111111' : '000000' });
      assert.match(wrong.body, /That code is not right/);
      const shown = await b.submit(wrong, '/enrol/totp', { code: totpCode(secret) });
      codes = [...shown.body.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);
      assert.equal(codes.length, 10);
      assert.equal(new Set(codes).size, 10);
      const done = await consent(b, await b.submit(shown, '/continue', {}, REDIRECT_URI));
      const claims = await claimsOf(config, done, flow);
      assert.equal(claims.acr, 'urn:adaptive-idp:aal2');
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);

      const factors = await srv.storage.factors.list(carol);
      assert.deepEqual(factors.map((f) => [f.kind, f.enrolledVia]).sort(), [['recovery', 'login'], ['totp', 'login']]);
      // Stored hashed and sealed: neither the codes nor the secret are in the records.
      const stored = JSON.stringify(factors);
      for (const c of codes) assert.ok(!stored.includes(c));
      assert.ok(!stored.includes(secret));
      const audit = srv.logs.find((l) => l.msg === 'mfa.enrolled' && l.account === carol);
      assert.equal(audit?.flagged, true);
      assert.equal(audit?.level, 'warn');
      // On the audit trail: both factors, by carol from where she signed in, flagged, never their secrets.
      const trail = (await srv.audit.query({ action: 'factor.enrol', targetId: carol, order: 'asc' })).items;
      assert.deepEqual(trail.map((r) => [(r.after as { kind: string }).kind, r.actor.kind, r.actor.id, r.actor.ip, (r.detail as { via: string; flagged: boolean }).via, (r.detail as { flagged: boolean }).flagged]),
        [['totp', 'user', carol, '1.1.1.1', 'login', true], ['recovery', 'user', carol, '1.1.1.1', 'login', true]]);
      const recorded = JSON.stringify(trail);
      assert.ok(!recorded.includes(secret) && !codes.some((c) => recorded.includes(c)));
    });

    it('accepts a recovery code once in place of the app', async () => {
      const code = codes[3]!;
      const b = new Browser({ 'x-forwarded-for': '8.8.8.8', 'user-agent': SAFARI });
      const { page, ...flow } = await start(config, b);
      const second = await b.submit(page, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI);
      assert.match(second.body, /Use a recovery code/);
      const done = await consent(b, await b.submit(second, '/recovery', { code: code.toLowerCase() }, REDIRECT_URI));
      const claims = await claimsOf(config, done, flow);
      assert.equal(claims.acr, 'urn:adaptive-idp:aal2');
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
      assert.ok(srv.logs.some((l) => l.msg === 'mfa.recovery_used' && l.account === carol && l.left === 9));

      const again = new Browser({ 'x-forwarded-for': '200.160.2.3', 'user-agent': SAFARI });
      const { page: p2 } = await start(config, again);
      const second2 = await again.submit(p2, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI);
      const reused = await again.submit(second2, '/recovery', { code }, REDIRECT_URI);
      assert.ok(!atClient(reused));
      assert.match(reused.body, /not right, or it was already used/);
    });

    it('of 20 parallel submissions of one recovery code in 20 logins exactly one gets in', async () => {
      const code = codes[7]!;
      const flows = await Promise.all(Array.from({ length: 20 }, async () => {
        const b = new Browser({ 'x-forwarded-for': '202.12.27.33', 'user-agent': SAFARI });
        const { page } = await start(config, b);
        return { b, page: await b.submit(page, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI) };
      }));
      for (const f of flows) assert.match(f.page.body, /Use a recovery code/);
      const pages = await Promise.all(flows.map((f) => f.b.submit(f.page, '/recovery', { code }, REDIRECT_URI)));
      const inside = pages.filter((p) => atClient(p) || p.body.includes('/confirm'));
      assert.equal(inside.length, 1, pages.map((p) => p.status).join(','));
    });
  });
}

/**
 * Adaptive step-up over real HTTP, with openid-client as the relying party: what the risk
 * engine and the relying party ask for is what the user must prove, and the tokens say what
 * was proven (acr, amr, auth_time). Both stores.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { rulesOnlyPolicy } from '../helpers/policy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI, startAuthorization } from '../helpers/rp.ts';
import { Browser, type Page } from '../helpers/browser.ts';
import { totpCode } from '../helpers/totp.ts';
import { factorKey } from '../../interactions/throttle.ts';

const PASSWORD = 'correct horse battery staple';
const AAL1 = 'urn:adaptive-idp:aal1';
const AAL2 = 'urn:adaptive-idp:aal2';
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
const LONDON = '81.2.69.142';
const SYDNEY = '1.1.1.1';
const TOR = '185.220.101.1';
// Each test that needs a risky context comes from a country of its own: a login let in makes
// its place known to the engine.
const US = '8.8.8.8';
const BRAZIL = '200.160.2.3';
const JAPAN = '202.12.27.33';

/**
 * Rules only (model weight 0), so levels are known: a login from a new country on a new
 * browser is medium (aal2); a Tor exit is critical (block). Impossible travel, country hopping
 * and the hour are off so the tests can hop between countries without tripping them.
 */
function stepUpPolicy(missing: 'refuse' | 'enroll') {
  return rulesOnlyPolicy((f) => {
    f.risk.factors.tor_exit.weight = 0.9;
    f.lists.tor_exit_addresses = [TOR];
    f.assurance.enrolment = { prompt: 'off', missing_factor: { action: missing, enroll_max_level: 'high' } };
    // The shipped map asks a second factor at critical; these tests are about a block.
    f.assurance.default.critical = 'block';
  });
}

interface Flow {
  browser: Browser;
  page: Page;
  verifier: string;
  nonce: string;
  state: string;
}

async function authorize(config: client.Configuration, browser: Browser, params: Record<string, string> = {}): Promise<Flow> {
  return { browser, ...(await startAuthorization(config, browser, params)) };
}

const isPassword = (p: Page) => p.body.includes('name="password"');
const isSecondFactor = (p: Page) => p.body.includes('/totp"') && !p.body.includes('/enrol/totp');
const atClient = (p: Page) => p.url.href.startsWith(REDIRECT_URI);

async function submit(f: Flow, action: string, fields: Record<string, string>): Promise<Page> {
  f.page = await f.browser.submit(f.page, action, fields, REDIRECT_URI);
  // The consent page of a first authorization of the client.
  if (!atClient(f.page) && f.page.body.includes('/confirm')) f.page = await f.browser.submit(f.page, '/confirm', {}, REDIRECT_URI);
  return f.page;
}

async function tokens(config: client.Configuration, f: Flow) {
  assert.ok(atClient(f.page), `expected the client's callback, got ${f.page.status} ${f.page.url}: ${f.page.body.slice(0, 400)}`);
  const t = await client.authorizationCodeGrant(config, f.page.url, { pkceCodeVerifier: f.verifier, expectedNonce: f.nonce, expectedState: f.state });
  const claims = t.claims();
  assert.ok(claims);
  return { tokens: t, claims };
}

for (const store of STORES) {
  describeOrSkip(store.skip, `adaptive step-up (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let ada: string;
    /** Ada's first authenticator app. A code is accepted once per app, and so is every
     *  earlier one (RFC 6238 §5.2): tests after the replay test add an app of their own. */
    let secret: string;
    const london = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });

    before(async () => {
      // 20 parallel submissions must all reach the code check: the second-factor throttle
      // would otherwise refuse most of them before (that limit has its own test below).
      srv = await startTestServer(store.kind, { TRUST_PROXY: 'true', POLICY_DIR: stepUpPolicy('refuse'), THROTTLE_ACCOUNT_FREE: '100' });
      ada = await srv.addUser('ada', PASSWORD);
      await srv.addUser('bob', PASSWORD);
      secret = await srv.addTotp(ada);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      await srv.addClient('strict', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none', min_acr: AAL2 });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    it('lets a low-risk login in with a password: AAL1, amr pwd + rba', async () => {
      const f = await authorize(config, london);
      assert.ok(isPassword(f.page));
      await submit(f, '/login', { username: 'ada', password: PASSWORD });
      const { claims } = await tokens(config, f);
      assert.equal(claims.acr, AAL1);
      assert.deepEqual(claims.amr, ['pwd', 'rba']);
      assert.ok(Math.abs((claims.auth_time ?? 0) - Date.now() / 1000) < 30);
    });

    it('asks a login from a new country for the second factor, and says so in the tokens', async () => {
      const sydney = new Browser({ 'x-forwarded-for': SYDNEY, 'user-agent': SAFARI });
      const f = await authorize(config, sydney);
      await submit(f, '/login', { username: 'ada', password: PASSWORD });
      assert.ok(isSecondFactor(f.page), f.page.body.slice(0, 600));
      assert.match(f.page.body, /name="code"/);
      assert.match(f.page.body, /autocomplete="one-time-code"/);
      // A wrong code first: the same page, with the error tied to the field.
      await submit(f, '/totp', { code: '000000' === totpCode(secret) ? '111111' : '000000' });
      assert.match(f.page.body, /That code is not right/);
      await submit(f, '/totp', { code: totpCode(secret) });
      const { claims } = await tokens(config, f);
      assert.equal(claims.acr, AAL2);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
      const event = srv.logs.find((l) => l.msg === 'login.succeeded' && l.account === ada && l.acr === 'aal2');
      assert.ok(event, 'the success is logged with its level');
    });

    it('refuses a TOTP code used before, and of 20 parallel submissions of one code exactly one wins', async () => {
      // The code of the step after the last accepted one (±1 step tolerance accepts it now).
      const next = totpCode(secret, Date.now() + 30_000);
      const flows = await Promise.all(Array.from({ length: 20 }, async () => {
        const f = await authorize(config, new Browser({ 'x-forwarded-for': US, 'user-agent': SAFARI }));
        await submit(f, '/login', { username: 'ada', password: PASSWORD });
        assert.ok(isSecondFactor(f.page));
        return f;
      }));
      const pages = await Promise.all(flows.map((f) => submit(f, '/totp', { code: next })));
      assert.equal(pages.filter(atClient).length, 1, pages.map((p) => p.status).join(','));
      const refused = pages.filter((p) => !atClient(p));
      assert.equal(refused.length, 19);
      for (const p of refused) assert.match(p.body, /That code was already used/);
      // The current code is of an earlier step than the one accepted: refused too.
      const again = flows.find((f) => !atClient(f.page))!;
      await submit(again, '/totp', { code: totpCode(secret) });
      assert.match(again.page.body, /already used/);
    });

    it('refuses a critical login with the words of a wrong password', async () => {
      const tor = new Browser({ 'x-forwarded-for': TOR, 'user-agent': SAFARI });
      const f = await authorize(config, tor);
      await submit(f, '/login', { username: 'ada', password: PASSWORD });
      assert.ok(!atClient(f.page));
      assert.ok(isPassword(f.page));
      assert.match(f.page.body, /The username or password is incorrect\./);
    });

    it('refuses, like a wrong password, a risky login of an account that has no second factor (missing_factor: refuse)', async () => {
      const home = await authorize(config, new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX }));
      await submit(home, '/login', { username: 'bob', password: PASSWORD });
      assert.ok(atClient(home.page), 'his first login, at home, is let in');
      const f = await authorize(config, new Browser({ 'x-forwarded-for': BRAZIL, 'user-agent': SAFARI }));
      await submit(f, '/login', { username: 'bob', password: PASSWORD });
      assert.ok(isPassword(f.page));
      assert.match(f.page.body, /The username or password is incorrect\./);
      assert.doesNotMatch(f.page.body, /second step|set up/i);
      // Byte for byte the page of a wrong password (the typed username kept, the same
      // buttons), once the interaction's id, CSRF token and device-key nonce are masked:
      // nothing tells a password-guesser that this password was right.
      const wrong = await authorize(config, new Browser({ 'x-forwarded-for': BRAZIL, 'user-agent': SAFARI }));
      await submit(wrong, '/login', { username: 'bob', password: 'not the password at all' });
      const mask = (body: string) => body.replace(/\/interaction\/[^/"]+/g, '/interaction/UID').replace(/(csrf"? value=|data-csrf=)"[^"]*"/g, '$1"CSRF"')
        .replace(/(data-device-nonce=|data-device-message=)"[^"]*"/g, '$1"NONCE"');
      assert.equal(f.page.status, wrong.page.status);
      assert.equal(mask(f.page.body), mask(wrong.page.body));
    });

    it('steps an AAL1 session up to acr_values=aal2 with the missing factor only: no password again', async () => {
      const before = await authorize(config, london);
      const first = await tokens(config, before);
      assert.equal(first.claims.acr, AAL1);
      await new Promise((r) => setTimeout(r, 1100));
      const f = await authorize(config, london, { acr_values: AAL2 });
      assert.ok(!isPassword(f.page), 'the password is not asked again');
      assert.ok(isSecondFactor(f.page), f.page.body.slice(0, 500));
      await submit(f, '/totp', { code: totpCode(await srv.addTotp(ada)) });
      const { claims } = await tokens(config, f);
      assert.equal(claims.acr, AAL2);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
      assert.ok(claims.auth_time! > first.claims.auth_time!, 'a new auth_time');
      // Now the session meets aal2: an essential acr of aal2 is served at once (no login loop).
      const essential = await authorize(config, london, { claims: JSON.stringify({ id_token: { acr: { essential: true, value: AAL2 } } }) });
      assert.equal((await tokens(config, essential)).claims.acr, AAL2);
      // And an RP that lists only aal1 gets aal1 back from the same session (OIDC Core §5.5.1.1).
      const low = await authorize(config, london, { acr_values: AAL1 });
      assert.equal((await tokens(config, low)).claims.acr, AAL1);
    });

    it('finishes a step-up only onto the session it began on', async () => {
      const b = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
      const f1 = await authorize(config, b);
      await submit(f1, '/login', { username: 'ada', password: PASSWORD });
      await tokens(config, f1);
      const up = await authorize(config, b, { acr_values: AAL2 });
      assert.ok(isSecondFactor(up.page));
      // Meanwhile the browser signs in again (another tab): a new authentication replaces it.
      await new Promise((r) => setTimeout(r, 1100));
      const again = await authorize(config, b, { prompt: 'login' });
      await submit(again, '/login', { username: 'ada', password: PASSWORD });
      await tokens(config, again);
      const stale = await submit(up, '/totp', { code: totpCode(await srv.addTotp(ada)) });
      assert.ok(!atClient(stale));
      assert.equal(stale.status, 400);
      assert.match(stale.body, /out of date|expired/);
    });

    it('takes a fresh browser asking an essential aal2 through password and code, without a loop', async () => {
      const f = await authorize(config, new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX }), {
        claims: JSON.stringify({ id_token: { acr: { essential: true, value: AAL2 } } }),
      });
      await submit(f, '/login', { username: 'ada', password: PASSWORD });
      assert.ok(isSecondFactor(f.page), f.page.body.slice(0, 400));
      await submit(f, '/totp', { code: totpCode(await srv.addTotp(ada)) });
      assert.equal((await tokens(config, f)).claims.acr, AAL2);
    });

    it('answers an essential ACR it does not know with unmet_authentication_requirements', async () => {
      const f = await authorize(config, new Browser({ 'x-forwarded-for': LONDON }), {
        claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'urn:example:unknown' } } }),
      });
      assert.ok(atClient(f.page), f.page.body.slice(0, 300));
      assert.equal(f.page.url.searchParams.get('error'), 'unmet_authentication_requirements');
    });

    it('honours max_age: a session older than it signs in again', async () => {
      const b = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
      const f1 = await authorize(config, b);
      await submit(f1, '/login', { username: 'ada', password: PASSWORD });
      const first = await tokens(config, f1);
      await new Promise((r) => setTimeout(r, 2100));
      const f2 = await authorize(config, b, { max_age: '1' });
      assert.ok(isPassword(f2.page), 'a fresh authentication is asked');
      assert.match(f2.page.body, /value="ada"/, 'the account is named');
      await submit(f2, '/login', { username: 'ada', password: PASSWORD });
      const second = await tokens(config, f2);
      assert.ok(second.claims.auth_time! > first.claims.auth_time!);
      // Within max_age the session is used as it is.
      const f3 = await authorize(config, b, { max_age: '60' });
      assert.equal((await tokens(config, f3)).claims.auth_time, second.claims.auth_time);
    });

    it("holds every authorization of a client to its minimum ACR", async () => {
      const strict = await discover(srv.issuer, 'strict');
      const f = await authorize(strict, new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX }));
      await submit(f, '/login', { username: 'ada', password: PASSWORD });
      assert.ok(isSecondFactor(f.page));
      await submit(f, '/totp', { code: totpCode(await srv.addTotp(ada)) });
      assert.equal((await tokens(strict, f)).claims.acr, AAL2);
    });

    it('scores an existing session again: from a new country it steps up, from a Tor exit it ends', async () => {
      const b = new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX });
      const f1 = await authorize(config, b);
      await submit(f1, '/login', { username: 'ada', password: PASSWORD });
      assert.equal((await tokens(config, f1)).claims.acr, AAL1);
      // The same session cookie, now from Japan on another browser: the missing factor only.
      b.headers['x-forwarded-for'] = JAPAN;
      b.headers['user-agent'] = SAFARI;
      const f2 = await authorize(config, b);
      assert.ok(!isPassword(f2.page));
      assert.ok(isSecondFactor(f2.page), f2.page.body.slice(0, 300));
      await submit(f2, '/totp', { code: totpCode(await srv.addTotp(ada)) });
      const raised = await tokens(config, f2);
      assert.equal(raised.claims.acr, AAL2);
      assert.deepEqual(raised.claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
      // From a Tor exit the engine says block: the session ends.
      b.headers['x-forwarded-for'] = TOR;
      const f3 = await authorize(config, b);
      assert.ok(atClient(f3.page));
      assert.equal(f3.page.url.searchParams.get('error'), 'access_denied');
      // The session ended: the next request asks for a login.
      b.headers['x-forwarded-for'] = LONDON;
      b.headers['user-agent'] = FIREFOX;
      const f4 = await authorize(config, b);
      assert.ok(isPassword(f4.page));
    });

    it('pauses second-factor guessing like passwords', async () => {
      const paused = await startTestServer(store.kind, { TRUST_PROXY: 'true', POLICY_DIR: stepUpPolicy('refuse') });
      try {
        const id = await paused.addUser('eve', PASSWORD);
        await paused.addTotp(id);
        await paused.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
        const cfg = await discover(paused.issuer, 'web');
        const first = await authorize(cfg, new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX }));
        await submit(first, '/login', { username: 'eve', password: PASSWORD });
        const f = await authorize(cfg, new Browser({ 'x-forwarded-for': SYDNEY, 'user-agent': SAFARI }));
        await submit(f, '/login', { username: 'eve', password: PASSWORD });
        assert.ok(isSecondFactor(f.page));
        const statuses: number[] = [];
        for (let i = 0; i < 6; i += 1) statuses.push((await submit(f, '/totp', { code: '12345' + String(i) })).status);
        // Five free attempts (THROTTLE_ACCOUNT_FREE), then a wait: 429 with Retry-After.
        assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
        assert.equal(statuses[5], 429);
        assert.ok(Number(f.page.headers.get('retry-after')) >= 1);
        assert.match(f.page.body, /Sign-in is paused/);

        // 100 parallel guesses at another account's code: the bucket counts each one before
        // its check, so the five free attempts are checked and every further one only once
        // its delay has passed since the one before (1 s, then 2 s, ...).
        const mid = await paused.addUser('mallory', PASSWORD);
        await paused.addTotp(mid);
        const home = await authorize(cfg, new Browser({ 'x-forwarded-for': LONDON, 'user-agent': FIREFOX }));
        await submit(home, '/login', { username: 'mallory', password: PASSWORD });
        const g = await authorize(cfg, new Browser({ 'x-forwarded-for': JAPAN, 'user-agent': SAFARI }));
        await submit(g, '/login', { username: 'mallory', password: PASSWORD });
        assert.ok(isSecondFactor(g.page));
        const start = Date.now();
        const burst = await Promise.all(Array.from({ length: 100 }, (_, i) => g.browser.submit(g.page, '/totp', { code: String(100_000 + i) }, REDIRECT_URI)));
        const checked = burst.filter((p) => p.status === 200).length;
        assert.equal(checked + burst.filter((p) => p.status === 429).length, 100, burst.map((p) => p.status).join(','));
        // Refused guesses are not counted: the bucket holds exactly the checked ones.
        assert.equal((await paused.storage.attempts.get(factorKey(mid), Date.now(), Infinity)).count, checked);
        // The server may take longer than the first delay to answer all 100 (FerretDB takes
        // 1-2 s), and a guess reaching the throttle 1 s after the fifth is the schedule, not a
        // race. So no "at most five": the k-th check (k > 5) must come at least 1 + 2 + ... s
        // after the burst began, which a guess let past the throttle alongside the first
        // five (a race) is not. Each check is logged after its guess was counted.
        const checkedAt = paused.logs.filter((l) => l.msg === 'stepup.failed' && l.account === mid).map((l) => Date.parse(String(l.time))).sort((a, b) => a - b);
        assert.equal(checkedAt.length, checked);
        checkedAt.slice(5).forEach((at, i) => {
          assert.ok(at - start >= (2 ** (i + 1) - 1) * 1000, `guess ${i + 6} was checked ${at - start} ms into the burst, inside its delay`);
        });
        // The embedded store is exact; MongoDB may refuse early under contention (the strict
        // side), and the free guesses it refused are still there to be had.
        if (store.kind === 'embedded') assert.ok(checked >= 5, `checked ${checked}`);
        if (checked < 5) {
          for (let i = checked; i < 5; i += 1) assert.equal((await submit(g, '/totp', { code: String(200_000 + i) })).status, 200);
          assert.equal((await submit(g, '/totp', { code: '300000' })).status, 429);
        }
      } finally {
        await paused.close();
      }
    });
  });
}

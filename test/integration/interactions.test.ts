/**
 * The login pages under bad input and under attack, over real HTTP: every failure is a
 * rendered page with a stable code (never a 500, never a stack trace), credentials errors
 * are indistinguishable, and throttling counts parallel attempts exactly.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser, findForm, type Page } from '../helpers/browser.ts';
import { accountKey, ipKey } from '../../interactions/throttle.ts';

const PASSWORD = 'correct horse battery staple';

function assertErrorPage(status: number, body: string, expectedStatus: number, code: string) {
  assert.equal(status, expectedStatus, `status for ${code}`);
  assert.match(body, /<!doctype html>/i);
  assert.match(body, new RegExp(`<code>${code}</code>`));
  assert.doesNotMatch(body, /\bat [^\s]+ \(|\.js:\d+:\d+/, 'no stack trace');
}

function loginError(body: string): string | undefined {
  return /<p id="login-error"[^>]*>([^<]*)<\/p>/.exec(body)?.[1];
}

for (const store of STORES) {
  describeOrSkip(store.skip, `interaction pages (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let carolId: string;

    before(async () => {
      // These tests are about pages and throttling (the password-only test policy).
      srv = await startTestServer(store.kind);
      carolId = await srv.addUser('carol', PASSWORD);
      await srv.addUser('dave', PASSWORD);
      await srv.addClient('web', {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none',
        client_name: 'Web <App> & "Co"',
      });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    async function loginPage(browser = new Browser()): Promise<{ browser: Browser; page: Page }> {
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      });
      const page = await browser.navigate(url);
      assert.equal(page.status, 200);
      return { browser, page };
    }

    async function post(browser: Browser, page: Page, fields: Record<string, string>, override: Partial<RequestInit> = {}) {
      const form = findForm(page.body, '/login');
      const res = await browser.request(new URL(form.action, page.url), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...form.hidden, ...fields }),
        ...override,
      });
      return { status: res.status, body: await res.text(), headers: res.headers };
    }

    it('renders an accessible, escaped, uncacheable login page', async () => {
      const { page } = await loginPage();
      assert.equal(page.headers.get('cache-control'), 'no-store');
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      assert.match(page.body, /<label for="username">/);
      assert.match(page.body, /<label for="password">/);
      assert.match(page.body, /name="username"[^>]*autocomplete="username"/);
      assert.match(page.body, /type="password" autocomplete="current-password"/);
      assert.match(page.body, /Web &lt;App&gt; &amp; &quot;Co&quot;/, 'client name is escaped');
      assert.match(page.body, /name="csrf" value="[A-Za-z0-9_-]{43}"/);
    });

    it('gives the same message and status for a wrong password and an unknown user', async () => {
      const { browser, page } = await loginPage();
      const wrong = await post(browser, page, { username: 'dave', password: 'wrong password, quite long' });
      const unknown = await post(browser, page, { username: 'nobody-here', password: 'wrong password, quite long' });
      assert.equal(wrong.status, unknown.status);
      // Only what is true: no talk of pauses on a first failure.
      assert.equal(loginError(wrong.body), 'The username or password is incorrect.');
      assert.equal(loginError(unknown.body), loginError(wrong.body));
      // Error next to the field, announced to assistive technology.
      assert.match(wrong.body, /aria-describedby="login-error"/);
    });

    it('says sign-in is paused, and for how long, when it is; alike for real and unknown usernames, and whatever the password', async () => {
      const { browser, page } = await loginPage();
      const pause = async (username: string) => {
        for (let i = 0; i < srv.settings.accountFreeFailures; i += 1) await post(browser, page, { username, password: 'wrong password, quite long' });
        // The right password during the delay is refused unchecked, with the same words.
        return post(browser, page, { username, password: PASSWORD });
      };
      const real = await pause('dave');
      const unknown = await pause('nobody-at-all');
      for (const r of [real, unknown]) {
        assert.equal(r.status, 429);
        assert.match(loginError(r.body) ?? '', /^Sign-in is paused after too many failed attempts\. Try again in \d+ seconds?\.$/);
        assert.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After (RFC 6585 §4)');
      }
      // The IP bucket is shared by every test on this loopback address.
      await srv.storage.attempts.reset(ipKey('127.0.0.1'));
      await srv.storage.attempts.reset(accountKey((await srv.storage.accounts.findByUsername('dave'))!.id));
    });

    it('re-renders the form with the field\'s error when the password or username is empty, and counts nothing', async () => {
      const { browser, page } = await loginPage();
      const before = await srv.storage.attempts.get(ipKey('127.0.0.1'), Date.now(), 3_600_000);
      const noPassword = await post(browser, page, { username: 'carol', password: '' });
      assert.equal(noPassword.status, 400);
      assert.match(noPassword.body, /<p id="password-error" class="error" role="alert">Enter your password\.<\/p>/);
      assert.match(noPassword.body, /id="password"[^>]*autofocus[^>]*aria-invalid="true" aria-describedby="password-error"/);
      assert.match(noPassword.body, /name="username"[^>]*value="carol"/, 'what was typed is kept');
      // The re-rendered form works: the login goes on from it.
      const noUser = await post(browser, { ...page, body: noPassword.body }, { username: '  ', password: 'something' });
      assert.equal(noUser.status, 400);
      assert.match(noUser.body, /<p id="username-error" class="error" role="alert">Enter your username\.<\/p>/);
      const after = await srv.storage.attempts.get(ipKey('127.0.0.1'), Date.now(), 3_600_000);
      assert.equal(after.count, before.count, 'no attempt counted');
      let next = await browser.submit({ ...page, body: noUser.body }, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI);
      if (next.body.includes('/confirm')) next = await browser.submit(next, '/confirm', {}, REDIRECT_URI);
      assert.ok(next.url.searchParams.get('code'), `signed in from the re-rendered form: ${loginError(next.body) ?? next.status}`);
    });

    it('verifies at most the free allowance of 100 parallel wrong passwords, counts them all, and still lets the owner in from a recognised browser', async () => {
      // The owner logs in once: this browser becomes recognised for the account.
      const owner = new Browser();
      await loginThroughForm(config, 'carol', PASSWORD, { scope: 'openid' }, owner);
      await srv.storage.attempts.reset(ipKey('127.0.0.1'));

      // 100 parallel attempts, one interaction, one CSRF token (issue 6 §1).
      const attacker = await loginPage();
      const logged = srv.logs.length;
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 100 }, () => post(attacker.browser, attacker.page, { username: 'carol', password: 'not the password at all' })));
      const seconds = (Date.now() - started) / 1000;
      for (const r of results) {
        assert.ok(r.status === 200 || r.status === 429, `status ${r.status}`);
        assert.ok(loginError(r.body));
      }
      const outcomes = srv.logs.slice(logged).filter((l) => l.msg === 'login.failed' || l.msg === 'login.throttled');
      assert.equal(outcomes.length, 100);
      const checked = outcomes.filter((l) => l.msg === 'login.failed').length;
      const free = srv.settings.accountFreeFailures;
      // The delay applies from the moment each attempt is reserved: the rest wait. A burst
      // that itself lasts longer than the delays (1 s, 2 s, … on a loaded machine) may see
      // one more checked per delay that passed; the storage contract pins the exact count
      // with a fixed clock.
      const delaysPassed = Math.floor(Math.log2(seconds + 1));
      // (MongoDB may refuse early under contention, even the whole burst: the strict side.)
      assert.ok(checked <= free + delaysPassed, `${checked} passwords checked in ${seconds} s; the free allowance is ${free}`);
      if (store.kind === 'embedded' && delaysPassed === 0) assert.equal(checked, free, 'the embedded store is exact');
      assert.equal(results.filter((r) => r.status === 429).length, 100 - checked);
      const counted = await srv.storage.attempts.get(accountKey(carolId), Date.now(), Infinity);
      assert.equal(counted.count, checked, 'every checked attempt counted, none lost');

      for (const r of results.filter((x) => x.status === 429)) assert.ok(Number(r.headers.get('retry-after')) >= 1);

      // The IP bucket is shared by both browsers here (same loopback address); clear it so
      // this checks the account buckets only.
      await srv.storage.attempts.reset(ipKey('127.0.0.1'));
      const back = await loginThroughForm(config, 'carol', PASSWORD, { scope: 'openid', prompt: 'login' }, owner);
      assert.ok(back.callback.searchParams.get('code'), 'the owner got in');
      // The owner's success ends the run of failures.
      assert.equal((await srv.storage.attempts.get(accountKey(carolId), Date.now(), Infinity)).count, 0);
    });

    it('renders an error page for an unknown or foreign interaction', async () => {
      const res = await fetch(new URL('/interaction/does-not-exist', srv.issuer));
      assertErrorPage(res.status, await res.text(), 400, 'interaction_not_found');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      // A real interaction uid, but this browser does not hold its cookie.
      const { page } = await loginPage();
      const stranger = await new Browser().request(page.url);
      assertErrorPage(stranger.status, await stranger.text(), 400, 'interaction_not_found');
    });

    it('renders an error page for an expired interaction', async () => {
      const { browser, page } = await loginPage();
      const uid = page.url.pathname.split('/').pop()!;
      const rec = await srv.storage.oidc.find('Interaction', uid, Date.now());
      assert.ok(rec);
      await srv.storage.oidc.upsert({ ...rec, expiresAt: Date.now() - 1000 });
      const r = await post(browser, page, { username: 'carol', password: PASSWORD });
      assertErrorPage(r.status, r.body, 400, 'interaction_not_found');
    });

    it('refuses a missing or wrong CSRF token', async () => {
      const { browser, page } = await loginPage();
      const missing = await post(browser, page, { username: 'carol', password: PASSWORD, csrf: '' });
      assertErrorPage(missing.status, missing.body, 403, 'csrf_failed');
      const wrong = await post(browser, page, { username: 'carol', password: PASSWORD, csrf: 'A'.repeat(43) });
      assertErrorPage(wrong.status, wrong.body, 403, 'csrf_failed');
      // Without the CSRF cookie (a cross-site POST would not carry it).
      browser.cookies.delete('idp_csrf');
      const noCookie = await post(browser, page, { username: 'carol', password: PASSWORD });
      assertErrorPage(noCookie.status, noCookie.body, 403, 'csrf_failed');
    });

    it('refuses a replayed login form once the login has completed', async () => {
      const { browser, page } = await loginPage();
      let next = await browser.submit(page, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI);
      if (next.body.includes('/confirm')) next = await browser.submit(next, '/confirm', {}, REDIRECT_URI);
      assert.ok(next.url.searchParams.get('code'), `no code: ${next.status} ${loginError(next.body) ?? next.body.slice(0, 200)}`);
      const replay = await post(browser, page, { username: 'carol', password: PASSWORD });
      assert.ok(replay.status === 400, `status ${replay.status}`);
      assert.match(replay.body, /<code>interaction_(not_found|out_of_date)<\/code>/);
    });

    it('refuses wrong content types, oversized and malformed forms with pages, not 500s', async () => {
      const { browser, page } = await loginPage();
      const json = await post(browser, page, {}, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'carol' }) });
      assertErrorPage(json.status, json.body, 415, 'unsupported_media_type');

      const huge = await post(browser, page, { username: 'carol', password: 'x'.repeat(100_000) });
      assertErrorPage(huge.status, huge.body, 413, 'payload_too_large');

      const longName = await post(browser, page, { username: 'u'.repeat(300), password: PASSWORD });
      assertErrorPage(longName.status, longName.body, 400, 'invalid_form');

      const form = findForm(page.body, '/login');
      const raw = async (body: string) => {
        const res = await browser.request(new URL(form.action, page.url), {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
        });
        return { status: res.status, body: await res.text() };
      };
      const csrf = encodeURIComponent(form.hidden.csrf!);
      const badUtf8 = await raw(`csrf=${csrf}&username=%ff%fe&password=x`);
      assertErrorPage(badUtf8.status, badUtf8.body, 400, 'invalid_form');
      const repeated = await raw(`csrf=${csrf}&username=carol&username=dave&password=x`);
      assertErrorPage(repeated.status, repeated.body, 400, 'invalid_form');
      const missing = await raw(`csrf=${csrf}`);
      assertErrorPage(missing.status, missing.body, 400, 'invalid_form');
      const control = await raw(`csrf=${csrf}&username=car%00ol&password=x`);
      assertErrorPage(control.status, control.body, 400, 'invalid_form');
    });

    it('answers wrong methods and unknown paths with pages', async () => {
      const { browser, page } = await loginPage();
      const get = await browser.request(new URL(`${page.url.pathname}/login`, srv.issuer));
      assertErrorPage(get.status, await get.text(), 405, 'method_not_allowed');
      const nothing = await fetch(new URL('/no/such/page', srv.issuer));
      assertErrorPage(nothing.status, await nothing.text(), 404, 'not_found');
    });

    it('answers malformed protocol requests with OAuth errors', async () => {
      const auth = await fetch(new URL('/auth', srv.issuer), { redirect: 'manual' });
      assert.equal(auth.status, 400);
      assert.match(await auth.text(), /invalid_request|invalid_client/);
      const token = await fetch(new URL('/token', srv.issuer), {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":',
      });
      assert.ok(token.status === 400 || token.status === 401, `status ${token.status}`);
      const body = (await token.json()) as { error: string };
      assert.ok(typeof body.error === 'string');
    });
  });
}

for (const store of STORES) {
  describeOrSkip(store.skip, `throttling counters under parallel attempts (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;

    before(async () => {
      // Delays start after 25 failures here, so all 20 parallel attempts are checked
      // whatever the timing, and the count must come out at exactly 20.
      srv = await startTestServer(store.kind, { THROTTLE_ACCOUNT_FREE: '25', THROTTLE_IP_FREE: '50' });
      await srv.addUser('erin', PASSWORD);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    it('20 parallel wrong passwords count as 20 on the account and on the IP', async () => {
      const browser = new Browser();
      const page = await browser.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }));
      const form = findForm(page.body, '/login');
      await Promise.all(Array.from({ length: 20 }, async () => {
        const res = await browser.request(new URL(form.action, page.url), {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ ...form.hidden, username: 'erin', password: 'wrong wrong wrong wrong' }),
        });
        assert.equal(res.status, 200);
        assert.ok(loginError(await res.text()));
      }));
      const id = (await srv.storage.accounts.findByUsername('erin'))!.id;
      assert.equal((await srv.storage.attempts.get(accountKey(id), Date.now(), Infinity)).count, 20);
      assert.equal((await srv.storage.attempts.get(ipKey('127.0.0.1'), Date.now(), 3_600_000)).count, 20);
    });
  });
}

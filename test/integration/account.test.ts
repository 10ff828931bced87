/**
 * The account page over real HTTP, on both stores: signing in through the built-in client
 * (state, PKCE, the code redeemed once), the list of factors, re-authentication before a
 * change (max_age + acr_values), removing a factor (CSRF, another account's factor, the last
 * one only after a confirmation), adding an authenticator app that then works at a step-up
 * of an application (openid-client as its RP), new recovery codes replacing the old ones,
 * 100 parallel submissions adding one app, and adding a passkey (a software authenticator).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI, secretOnPage } from '../helpers/rp.ts';
import { Browser, findForm, type Page } from '../helpers/browser.ts';
import { totpCode } from '../helpers/totp.ts';
import { runNode } from '../helpers/process.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import { replaceRecoveryCodes } from '../../interactions/methods/recovery.ts';
import { deriveKey, loadOrCreateKeys } from '../../adapters/keys.ts';

const PASSWORD = 'correct horse battery staple';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const AAL2 = 'urn:adaptive-idp:aal2';

const csrfOf = (page: Page) => /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
/** The secret as the page shows it for typing (groups of four). */
const secretOf = secretOnPage;
const codesOf = (page: Page) => [...page.body.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);

async function post(b: Browser, url: string, fields: Record<string, string>) {
  const res = await b.request(url, { method: 'POST', headers: FORM, body: new URLSearchParams(fields) });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

/**
 * Opens /account in `b`: signs in if asked (password, then the code of `secret` if a second
 * step is asked), and returns the page it lands on.
 */
async function openAccount(srv: TestServer, b: Browser, username: string, secret?: string, at = Date.now()): Promise<Page> {
  let page = await b.navigate(`${srv.url}/account`);
  if (page.body.includes('name="password"')) page = await b.submit(page, '/login', { username, password: PASSWORD });
  if (page.body.includes('Confirm it is you') && secret) page = await b.submit(page, '/totp', { code: totpCode(secret, at) });
  return page;
}

/** Makes the browser's session look signed in `seconds` earlier (its auth_time), as if time had passed. */
async function ageSession(srv: TestServer, b: Browser, seconds: number): Promise<void> {
  const id = b.cookies.get('_session');
  assert.ok(id, 'the browser has a session');
  const rec = await srv.storage.oidc.find('Session', id, Date.now());
  assert.ok(rec, 'the session is stored');
  rec.payload.loginTs = (rec.payload.loginTs as number) - seconds;
  await srv.storage.oidc.upsert(rec);
}

for (const store of STORES) {
  describeOrSkip(store.skip, `account page (${store.kind} store)`, () => {
    let srv: TestServer;
    let alice: string;
    let bob: string;
    let aliceSecret: string;
    let bobFactor: string;
    const ab = new Browser();

    before(async () => {
      srv = await startTestServer(store.kind);
      alice = await srv.addUser('alice', PASSWORD, { name: 'Alice' });
      bob = await srv.addUser('bob', PASSWORD);
      await srv.addUser('carol', PASSWORD);
      await srv.addUser('dave', PASSWORD);
      aliceSecret = await srv.addTotp(alice);
      await srv.addTotp(bob);
      bobFactor = (await srv.storage.factors.list(bob))[0]!.id;
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    });
    after(() => srv?.close());

    it('sends a browser without a session through the sign-in of its own client, then lists the factors', async () => {
      const first = await ab.navigate(`${srv.url}/account`);
      assert.match(first.url.pathname, /^\/interaction\//);
      assert.match(first.body, /to continue to <strong>Your account<\/strong>/);
      const page = await ab.submit(first, '/login', { username: 'alice', password: PASSWORD });
      // No consent page for the provider's own client: straight back to the page.
      assert.equal(page.url.pathname, '/account');
      assert.equal(page.status, 200);
      assert.match(page.body, /Signed in as <strong>alice<\/strong> \(Alice\)/);
      assert.match(page.body, /<strong>Phone<\/strong> <span class="muted">\(Authenticator app\)<\/span>/);
      assert.match(page.body, /by an administrator; never used/);
      // A password-only session of an account with an app: changes need two factors first.
      assert.match(page.body, /Before a change you will be asked to confirm it is you/);
      assert.equal(page.headers.get('cache-control'), 'no-store');
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.ok(!page.body.includes(aliceSecret), 'no secret on the page');
      // The built-in client is configuration, not a registered relying party.
      assert.ok(!(await srv.storage.clients.list()).some((c) => c.clientId === 'account'));
    });

    it('refuses a callback in another browser, and a replayed one', async () => {
      const b = new Browser();
      const login = await b.navigate(`${srv.url}/account`);
      const stop = await b.submit(login, '/login', { username: 'carol', password: PASSWORD }, `${srv.issuer}/account/callback`);
      const callback = stop.url.href;
      assert.match(callback, /[?&]code=/);
      const stranger = await new Browser().navigate(callback);
      assert.equal(stranger.status, 400);
      assert.match(stranger.body, /account_signin_expired/);
      const mine = await b.navigate(callback);
      assert.equal(mine.url.pathname, '/account');
      assert.match(mine.body, /Signed in as <strong>carol<\/strong>/);
      const again = await b.navigate(callback);
      assert.equal(again.status, 400);
      assert.match(again.body, /account_signin_expired/);
      // Garbage is a page with a code, never a stack trace.
      const bad = await b.navigate(`${srv.url}/account/callback?state=${'x'.repeat(5000)}&code[]=1`);
      assert.equal(bad.status, 400);
      assert.doesNotMatch(bad.body, /\n\s+at /);
    });

    it('checks the CSRF token and the account before removing anything', async () => {
      const page = await ab.navigate(`${srv.url}/account`);
      const csrf = csrfOf(page)!;
      const mine = findForm(page.body, '/account/remove').hidden.factor!;
      const url = `${srv.url}/account/remove`;
      assert.equal((await post(ab, url, { factor: mine })).status, 403);
      assert.equal((await post(ab, url, { factor: mine, csrf: `${csrf.slice(0, -2)}AA` })).status, 403);
      // Another session's token (Bob's, in his browser) does not open Alice's.
      const bb = new Browser();
      const bobPage = await openAccount(srv, bb, 'bob');
      assert.equal((await post(ab, url, { factor: mine, csrf: csrfOf(bobPage)! })).status, 403);
      // Bob's factor id with Alice's session: not found, and Bob keeps it.
      const foreign = await post(ab, url, { factor: bobFactor, csrf });
      assert.equal(foreign.status, 404);
      assert.match(foreign.body, /factor_not_found/);
      assert.equal((await srv.storage.factors.list(bob)).length, 1);
      // Not a form: a clear error.
      const json = await ab.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(json.status, 415);
      assert.equal((await srv.storage.factors.list(alice)).length, 1);
    });

    it('asks a stale session to sign in again at its level (here two factors) before a removal, and the last one to be confirmed', async () => {
      await ageSession(srv, ab, 600);
      const page = await ab.navigate(`${srv.url}/account`);
      const factor = findForm(page.body, '/account/remove').hidden.factor!;
      const res = await post(ab, `${srv.url}/account/remove`, { factor, csrf: csrfOf(page)! });
      assert.equal(res.status, 303);
      const auth = new URL(res.location!, srv.issuer);
      assert.equal(auth.pathname, '/auth');
      assert.equal(auth.searchParams.get('client_id'), 'account');
      assert.equal(auth.searchParams.get('max_age'), '300');
      assert.equal(auth.searchParams.get('acr_values'), AAL2);
      assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
      assert.equal((await srv.storage.factors.list(alice)).length, 1, 'nothing removed yet');

      // Past max_age: the password again (the name filled in), then the app's code.
      const login = await ab.navigate(auth);
      assert.match(login.body, /name="password"/);
      assert.match(login.body, /value="alice"/);
      const second = await ab.submit(login, '/login', { username: 'alice', password: PASSWORD });
      assert.match(second.body, /Confirm it is you/);
      const back = await ab.submit(second, '/totp', { code: totpCode(aliceSecret) });
      assert.equal(back.url.pathname, '/account');
      assert.match(back.body, /You confirmed it is you/);
      assert.match(back.body, /so you can make changes now/);

      // The last authenticator: a confirmation page, and still nothing removed.
      const confirm = await ab.submit(back, '/account/remove', {});
      assert.equal(confirm.status, 200);
      assert.match(confirm.body, /Turn off your second step\?/);
      assert.match(confirm.body, /“Phone” is the last second step/);
      assert.equal((await srv.storage.factors.list(alice)).length, 1);
      const done = await ab.submit(confirm, '/account/remove', {});
      assert.equal(done.url.pathname, '/account');
      assert.equal(done.url.searchParams.get('done'), 'off');
      assert.match(done.body, /Your second step is off/);
      assert.deepEqual(await srv.storage.factors.list(alice), []);
      const audit = srv.logs.find((l) => l.msg === 'mfa.removed' && l.account === alice);
      assert.equal(audit?.level, 'warn');
      assert.equal(audit?.last, true);
      assert.equal(audit?.via, 'self');
      // On the audit trail: by alice herself, with what was removed.
      const [removed] = (await srv.audit.query({ action: 'factor.remove', targetId: alice })).items;
      assert.deepEqual(removed?.actor, { kind: 'user', id: alice, ip: '127.0.0.1' });
      assert.deepEqual(removed.before, { id: factor, kind: 'totp', label: 'Phone', enrolledVia: 'admin' });
      assert.equal((removed.detail as { last: boolean }).last, true);
    });

    let carolSecret = '';
    let carolCodes: string[] = [];
    const cb = new Browser();

    it('adds an authenticator app: the secret on the page only, turned on by its code, with recovery codes shown once', async () => {
      const account = await openAccount(srv, cb, 'carol');
      assert.match(account.body, /you can make changes now/, 'a fresh password-only session of an account without a second step');
      const page = await cb.navigate(`${srv.url}/account/totp`);
      assert.equal(page.status, 200);
      assert.match(page.body, /<svg/);
      carolSecret = secretOf(page)!;
      assert.ok(carolSecret);
      assert.ok(!Object.values(findForm(page.body, '/account/totp').hidden).some((v) => v.includes(carolSecret)), 'never in a form field');
      // The same secret while the page is pending (reload, or back from a confirmation).
      assert.equal(secretOf(await cb.navigate(`${srv.url}/account/totp`)), carolSecret);

      const wrong = await cb.submit(page, '/account/totp', { code: totpCode(carolSecret) === '000000' ? '111111' : '000000' });
      assert.equal(wrong.status, 400);
      assert.match(wrong.body, /That code is not right/);
      const shown = await cb.submit(page, '/account/totp', { code: totpCode(carolSecret), label: 'Work phone' });
      assert.equal(shown.status, 200);
      carolCodes = codesOf(shown);
      assert.equal(carolCodes.length, 10);
      assert.match(shown.body, /Your authenticator app is on/);

      const list = await cb.navigate(`${srv.url}/account`);
      assert.match(list.body, /<strong>Work phone<\/strong> <span class="muted">\(Authenticator app\)<\/span>/);
      assert.match(list.body, /\(10 of them left\)/);
      const carol = (await srv.storage.accounts.findByUsername('carol'))!.id;
      const factors = await srv.storage.factors.list(carol);
      assert.deepEqual(factors.map((f) => [f.kind, f.enrolledVia]).sort(), [['recovery', 'self'], ['totp', 'self']]);
      const stored = JSON.stringify(factors);
      assert.ok(!stored.includes(carolSecret));
      for (const c of carolCodes) assert.ok(!stored.includes(c));
      const logs = JSON.stringify(srv.logs);
      assert.ok(!logs.includes(carolSecret) && !carolCodes.some((c) => logs.includes(c)), 'no secret in the logs');
      assert.ok(srv.logs.some((l) => l.msg === 'mfa.enrolled' && l.account === carol && l.kind === 'totp' && l.via === 'self'));
      // On the audit trail: the app and its codes, by carol, never their secrets.
      const trail = (await srv.audit.query({ action: 'factor.enrol', targetId: carol, order: 'asc' })).items;
      assert.deepEqual(trail.map((r) => [(r.after as { kind: string; label: string }).kind, (r.after as { label: string }).label, r.actor.id]),
        [['totp', 'Work phone', carol], ['recovery', 'Recovery codes', carol]]);
      const recorded = JSON.stringify(trail);
      assert.ok(!recorded.includes(carolSecret) && !carolCodes.some((c) => recorded.includes(c)));
    });

    it('has the new app ask at the next step-up of an application, and count there', async () => {
      const config = await discover(srv.issuer, 'web');
      const verifier = client.randomPKCECodeVerifier();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', acr_values: AAL2,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      const second = await cb.navigate(url, {}, REDIRECT_URI);
      assert.match(second.body, /Confirm it is you/);
      assert.doesNotMatch(second.body, /name="password"/, 'the session still counts: only the missing factor');
      // The next time step: the enrolment spent the current one (RFC 6238 §5.2).
      let page = await cb.submit(second, '/totp', { code: totpCode(carolSecret, Date.now() + 30_000) }, REDIRECT_URI);
      if (page.body.includes('/confirm')) page = await cb.submit(page, '/confirm', {}, REDIRECT_URI);
      const tokens = await client.authorizationCodeGrant(config, page.url, { pkceCodeVerifier: verifier }, undefined);
      const claims = tokens.claims()!;
      assert.equal(claims.acr, AAL2);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa', 'rba']);
    });

    it('replaces the recovery codes: the old ones stop working, the new ones work', async () => {
      const account = await cb.navigate(`${srv.url}/account`);
      const shown = await cb.submit(account, '/account/recovery', {});
      assert.equal(shown.status, 200);
      assert.match(shown.body, /Your earlier recovery codes no longer work/);
      const fresh = codesOf(shown);
      assert.equal(fresh.length, 10);
      assert.ok(!fresh.some((c) => carolCodes.includes(c)));
      const [replaced] = (await srv.audit.query({ action: 'factor.enrol', targetType: 'user', limit: 1 })).items;
      assert.equal((replaced?.after as { kind: string }).kind, 'recovery');
      assert.equal((replaced!.detail as { replaced: boolean }).replaced, true);

      const config = await discover(srv.issuer, 'web');
      const stepUp = async (code: string) => {
        const b = new Browser();
        const url = client.buildAuthorizationUrl(config, {
          redirect_uri: REDIRECT_URI, scope: 'openid', acr_values: AAL2,
          code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
        });
        const login = await b.navigate(url, {}, REDIRECT_URI);
        const second = await b.submit(login, '/login', { username: 'carol', password: PASSWORD }, REDIRECT_URI);
        return b.submit(second, '/recovery', { code }, REDIRECT_URI);
      };
      const old = await stepUp(carolCodes[0]!);
      assert.match(old.body, /That recovery code is not right, or it was already used/);
      const ok = await stepUp(fresh[0]!);
      assert.ok(ok.url.href.startsWith(REDIRECT_URI) || ok.body.includes('/confirm'), `${ok.status} ${ok.body.slice(0, 300)}`);
    });

    it('of 100 parallel submissions of the right code, one adds the app', async () => {
      const b = new Browser();
      await openAccount(srv, b, 'dave');
      const page = await b.navigate(`${srv.url}/account/totp`);
      const secret = secretOf(page)!;
      const fields = { ...findForm(page.body, '/account/totp').hidden, code: totpCode(secret) };
      const results = await Promise.all(Array.from({ length: 100 }, () => post(b, `${srv.url}/account/totp`, fields)));
      const dave = (await srv.storage.accounts.findByUsername('dave'))!.id;
      const factors = await srv.storage.factors.list(dave);
      assert.equal(factors.filter((f) => f.kind === 'totp').length, 1);
      assert.equal(factors.filter((f) => f.kind === 'recovery').length, 1);
      assert.equal(results.filter((r) => r.status === 200).length, 1, results.map((r) => r.status).join(','));
      // The others: a page (the code was taken), or, once the app is on, a confirmation with
      // it first (the account now holds a second factor); never a 500.
      assert.ok(results.every((r) => r.status === 200 || r.status === 400 || (r.status === 303 && r.location?.startsWith('/auth?'))), results.map((r) => r.status).join(','));
    });

    it('asks a stale session to confirm before new recovery codes and comes back to the page; a cancelled confirmation changes nothing', async () => {
      // Alice now has no factor: a password-only confirmation (max_age), at her session's level.
      const key = deriveKey(loadOrCreateKeys(srv.settings.keysFile).dataKey, 'recovery');
      await srv.addTotp(alice);
      await replaceRecoveryCodes(srv.storage.factors, key, { id: 'alice-codes', accountId: alice, enrolledVia: 'admin' });
      await ageSession(srv, ab, 600);
      const page = await ab.navigate(`${srv.url}/account`);
      const res = await post(ab, `${srv.url}/account/recovery`, { csrf: csrfOf(page)! });
      assert.equal(res.status, 303);
      const login = await ab.navigate(new URL(res.location!, srv.issuer));
      // Cancel at the sign-in page: back to the account page, nothing changed.
      const cancelled = await ab.submit(login, '/abort', {});
      assert.equal(cancelled.url.pathname, '/account');
      assert.match(cancelled.body, /You did not confirm it is you, so nothing was changed/);
      assert.ok((await srv.storage.factors.list(alice)).some((f) => f.id === 'alice-codes'));
    });
  });
}

describe('the account page\'s client under the policy', () => {
  let srv: TestServer;
  let secret: string;
  before(async () => {
    // README "Your account": assurance.yml can hold the page's sign-in to a level, like any client.
    const policy = makePolicyDir((f) => {
      f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'block' };
      f.assurance.clients = { account: { low: 'aal2', medium: 'aal2', high: 'aal2', critical: 'block' } };
      f.assurance.enrolment = { prompt: 'off' };
    });
    srv = await startTestServer('embedded', { POLICY_DIR: policy });
    secret = await srv.addTotp(await srv.addUser('hana', PASSWORD));
  });
  after(() => srv?.close());

  it('asks the second factor when the policy names `account`', async () => {
    const b = new Browser();
    const login = await b.navigate(`${srv.url}/account`);
    const second = await b.submit(login, '/login', { username: 'hana', password: PASSWORD });
    assert.match(second.body, /Confirm it is you/);
    const page = await b.submit(second, '/totp', { code: totpCode(secret) });
    assert.equal(page.url.pathname, '/account');
    // A session at two factors, fresh: changes need no further confirmation.
    assert.match(page.body, /so you can make changes now/);
  });
});

describe('the account client id is reserved', () => {
  let srv: TestServer;
  before(async () => { srv = await startTestServer('embedded'); });
  after(() => srv?.close());

  it('is refused by `idp client add`, in one line', async () => {
    const bin = path.join(import.meta.dirname, '..', '..', 'idp', 'bin.js');
    const r = await runNode([bin, 'client', 'add', '--id', 'account', '--public', '--redirect-uri', 'https://evil.example/cb'], { env: { PATH: process.env.PATH ?? '', ...srv.env } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^idp: client "account" is reserved for the provider's own account page/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.deepEqual(await srv.storage.clients.list(), []);
  });
});

for (const store of STORES) {
  describeOrSkip(store.skip, `account page: passkeys (${store.kind} store)`, () => {
    let srv: TestServer;
    const b = new Browser();

    before(async () => {
      // Browsers run WebAuthn only for a domain: the issuer is localhost.
      srv = await startTestServer(store.kind, { ISSUER: 'http://localhost:$PORT' });
      await srv.addUser('erin', PASSWORD);
    });
    after(() => srv?.close());

    it('adds a passkey through the login\'s ceremony handlers, bound to the session', async () => {
      const account = await openAccount(srv, b, 'erin');
      assert.match(account.body, /Add a passkey/);
      const page = await b.navigate(`${srv.issuer}/account/passkey`);
      assert.equal(page.status, 200);
      const csrf = findForm(page.body, '/account/passkey').hidden.csrf!;
      const opts = await b.request(`${srv.issuer}/account/passkey/options`, { method: 'POST', headers: FORM, body: new URLSearchParams({ csrf }) });
      assert.equal(opts.status, 200);
      const options = await opts.json() as PublicKeyCredentialCreationOptionsJSON;
      assert.equal(options.rp.id, 'localhost');
      const auth = new SoftAuthenticator({ origin: srv.issuer, rpId: 'localhost' });
      const done = await b.submit(page, '/account/passkey', { response: JSON.stringify(auth.create(options)) });
      assert.equal(done.status, 200);
      assert.match(done.body, /Your passkey is on/);
      assert.equal(codesOf(done).length, 10);
      const erin = (await srv.storage.accounts.findByUsername('erin'))!.id;
      const factors = await srv.storage.factors.list(erin);
      assert.deepEqual(factors.map((f) => [f.kind, f.enrolledVia]).sort(), [['recovery', 'self'], ['webauthn', 'self']]);
      const list = await b.navigate(`${srv.issuer}/account`);
      assert.match(list.body, /\(Passkey\)/);
    });

    it('refuses the ceremony to a session that is not fresh, as JSON the page can show', async () => {
      await ageSession(srv, b, 600);
      const page = await b.navigate(`${srv.issuer}/account`);
      const csrf = csrfOf(page)!;
      const opts = await b.request(`${srv.issuer}/account/passkey/options`, { method: 'POST', headers: FORM, body: new URLSearchParams({ csrf }) });
      assert.equal(opts.status, 403);
      const body = await opts.json() as { error: string; message: string };
      assert.equal(body.error, 'account_reauth_required');
      // The page itself sends the user to confirm first.
      const res = await b.request(`${srv.issuer}/account/passkey`);
      assert.equal(res.status, 303);
      assert.equal(new URL(res.headers.get('location')!, srv.issuer).searchParams.get('max_age'), '300');
    });
  });
}

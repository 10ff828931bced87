/**
 * The passkey handlers (interactions/steps/passkey.ts) over real HTTP, with a software
 * authenticator in place of the browser's: options as JSON (failures as JSON the page's
 * script can show), results posted as a form, CSRF enforced on both, bad input answered
 * with a clear error, and a replayed result refused.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { Browser, findForm } from '../helpers/browser.ts';
import { startPasskeyHarness, UID, type PasskeyHarness } from '../helpers/passkey-harness.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('passkey handlers over HTTP (embedded store)', () => {
  let h: PasskeyHarness;
  let auth: SoftAuthenticator;
  /** Holds a passkey registered before the tests (for jo). */
  let known: SoftAuthenticator;
  const ivy = { id: crypto.randomUUID(), username: 'ivy', name: 'Ivy' };
  const jo = { id: crypto.randomUUID(), username: 'jo', name: undefined };

  before(async () => {
    h = await startPasskeyHarness();
    auth = new SoftAuthenticator({ origin: h.url, rpId: 'localhost' });
    known = new SoftAuthenticator({ origin: h.url, rpId: 'localhost' });
    const o = await h.webauthn.registrationOptions({ binding: 'setup', account: jo });
    await h.webauthn.verifyRegistration({ binding: 'setup', account: jo, response: known.create(o), enrolledVia: 'admin' });
  });
  after(() => h?.close());
  beforeEach(() => {
    h.results.length = 0;
    h.failures.length = 0;
  });

  /** A browser with the page open: its cookie jar and the form's CSRF token. */
  async function open(): Promise<{ browser: Browser; csrf: string }> {
    const browser = new Browser();
    const page = await browser.navigate(`${h.url}/interaction/${UID}`);
    assert.equal(page.status, 200);
    return { browser, csrf: findForm(page.body, '/passkey').hidden.csrf! };
  }

  async function options<T>(browser: Browser, csrf: string | undefined): Promise<{ status: number; type: string; body: T }> {
    const res = await browser.request(`${h.url}/interaction/${UID}/passkey/options`, {
      method: 'POST', headers: FORM, body: new URLSearchParams(csrf === undefined ? {} : { csrf }),
    });
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() as T };
  }

  async function submit(browser: Browser, fields: Record<string, string>) {
    const res = await browser.request(`${h.url}/interaction/${UID}/passkey`, { method: 'POST', headers: FORM, body: new URLSearchParams(fields) });
    return { status: res.status, location: res.headers.get('location'), body: await res.text() };
  }

  it('registers, then signs in, through the two endpoints', async () => {
    const { browser, csrf } = await open();
    h.ceremony = { kind: 'register', account: ivy, enrolledVia: 'self', label: 'Ivy\'s laptop' };
    const reg = await options<PublicKeyCredentialCreationOptionsJSON>(browser, csrf);
    assert.equal(reg.status, 200);
    assert.match(reg.type, /^application\/json/);
    assert.equal(reg.body.rp.id, 'localhost');
    let res = await submit(browser, { csrf, response: JSON.stringify(auth.create(reg.body)) });
    assert.equal(res.status, 303);
    assert.equal(res.location, '/done');
    assert.equal(h.results[0]?.kind === 'register' && h.results[0].factor.label, 'Ivy\'s laptop');

    h.ceremony = { kind: 'authenticate' };
    const get = await options<PublicKeyCredentialRequestOptionsJSON>(browser, csrf);
    const response = JSON.stringify(auth.get(get.body));
    res = await submit(browser, { csrf, response });
    assert.equal(res.status, 303);
    const result = h.results[1];
    assert.equal(result?.kind === 'authenticate' && result.assertion.accountId, ivy.id);

    // The same result posted again: refused, with the page's words.
    res = await submit(browser, { csrf, response });
    assert.equal(res.status, 400);
    assert.equal(h.failures[0]?.code, 'challenge_reused');
    assert.match(res.body, /already used/);
  });

  it('answers the options request with JSON errors the page can show', async () => {
    const { browser, csrf } = await open();
    h.ceremony = { kind: 'authenticate' };
    const noCsrf = await options<{ error: string; message: string }>(browser, undefined);
    assert.equal(noCsrf.status, 403);
    assert.match(noCsrf.type, /^application\/json/);
    assert.equal(noCsrf.body.error, 'csrf_failed');
    assert.match(noCsrf.body.message, /could not be verified/);
    assert.equal((await options<{ error: string }>(new Browser(), csrf)).body.error, 'csrf_failed', 'a token without its cookie');

    const json = await browser.request(`${h.url}/interaction/${UID}/passkey/options`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ csrf }) });
    assert.equal(json.status, 415);
    assert.equal((await json.json() as { error: string }).error, 'unsupported_media_type');

    h.ceremony = undefined;
    const none = await options<{ error: string }>(browser, csrf);
    assert.equal(none.status, 400);
    assert.equal(none.body.error, 'interaction_out_of_date');
  });

  it('refuses a result without CSRF, without a response, oversized or not JSON, with a clear page', async () => {
    const { browser, csrf } = await open();
    h.ceremony = { kind: 'authenticate', accountId: jo.id };
    const get = await options<PublicKeyCredentialRequestOptionsJSON>(browser, csrf);
    const response = JSON.stringify(known.get(get.body));

    let res = await submit(browser, { response });
    assert.equal(res.status, 403);
    assert.match(res.body, /csrf_failed/);
    res = await submit(browser, { csrf });
    assert.equal(res.status, 400);
    assert.match(res.body, /invalid_form/);
    res = await submit(browser, { csrf, response: 'x'.repeat(12_001) });
    assert.equal(res.status, 400);
    assert.match(res.body, /invalid_form/);
    res = await submit(browser, { csrf, response: 'x'.repeat(20_000) });
    assert.equal(res.status, 413);
    res = await submit(browser, { csrf, response: '{not json' });
    assert.equal(res.status, 400);
    assert.equal(h.failures.at(-1)?.code, 'verification_failed');
    assert.match(res.body, /could not be verified/);
    assert.doesNotMatch(res.body, /SyntaxError|at [^\s]+ \(|\.js:\d+/);

    // None of that consumed the challenge: the genuine result still goes through.
    res = await submit(browser, { csrf, response });
    assert.equal(res.status, 303);
    const last = h.results.at(-1);
    assert.equal(last?.kind === 'authenticate' ? last.assertion.accountId : undefined, jo.id);
  });
});

/**
 * The sign-in page's scripts (assets/behaviour.js, assets/device-key.js) in a real browser
 * when the user clicks "Sign in" twice: the form goes out once, so the device key's
 * single-use nonce is not spent by one post and refused as a replay in the other (which
 * would score the user's own proven browser as a copied cookie, and log a replay).
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as client from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { describeOrSkip, localhostIssuer } from '../helpers/env.ts';
import { chromiumMissing, launchChromium, reachCallback, stubCallback } from '../helpers/chromium.ts';
import type { LoginEventRecord } from '../../models/types.ts';

const PASSWORD = 'correct horse battery staple';

describeOrSkip(chromiumMissing, 'a double submit of the sign-in form in a real browser', () => {
  let srv: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let config: client.Configuration;
  let user: string;

  before(async () => {
    srv = await startTestServer('embedded', await localhostIssuer());
    user = await srv.addUser('dora', PASSWORD);
    await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    config = await discover(srv.issuer, 'web');
    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
    await stubCallback(page, REDIRECT_URI);
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await srv?.close();
  });

  async function events(): Promise<LoginEventRecord[]> {
    const out: LoginEventRecord[] = [];
    for await (const e of srv.storage.events.list({})) if (e.user === user) out.push(e);
    return out;
  }

  /** One login, clicking "Sign in" once or twice; the posts of the form the page made. */
  async function login(twice: boolean): Promise<number> {
    await page.goto(client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'login',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }).href);
    for (let i = 0; i < 100 && (await page.inputValue('input[name=device_proof]')) === ''; i += 1) await new Promise((r) => setTimeout(r, 50));
    await page.getByLabel('Username').fill('dora');
    await page.getByLabel('Password').pressSequentially(PASSWORD, { delay: 15 });
    const button = page.getByRole('button', { name: 'Sign in', exact: true });
    let posts = 0;
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/login')) posts += 1; });
    const box = (await button.boundingBox())!;
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    await page.mouse.click(x, y);
    // A second click while the first post is on its way (hashing the password takes a moment).
    if (twice) {
      await new Promise((r) => setTimeout(r, 60));
      await page.mouse.click(x, y);
    }
    await reachCallback(page);
    return posts;
  }

  it('posts the form once: the proven browser stays proven, and no replay is logged', async () => {
    for (let i = 0; i < 3; i += 1) await login(false);
    const before = (await events()).length;
    const posts = await login(true);
    assert.equal(posts, 1, 'one post of the form');
    const after = await events();
    const posted = after.slice(before);
    assert.equal(posted.length, 1, `one attempt recorded, got ${posted.length}: ${JSON.stringify(posted.map((e) => e.assessment?.reasons.map((r) => r.factor)))}`);
    assert.ok(posted[0]!.assessment!.reasons.some((r) => r.factor === 'device_proven'), JSON.stringify(posted[0]!.assessment!.reasons));
    assert.deepEqual(srv.logs.filter((l) => l.msg === 'device.proof_refused'), []);
  });
});

/**
 * One authorization request, one authorization response (RFC 6749 §4.1.2): an interaction is
 * finished and resumed once. The finish step saves its result on the interaction the request
 * loaded at its start (interactions/context.ts saveInteractionResult); when several sign-in
 * posts of one interaction run in parallel (a double click, a replaying client) and the first
 * one's browser resumes it (oidc-provider destroys it), a later finish must not write it back:
 * that would let the interaction be resumed again, for a second authorization code.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Browser, findForm } from '../helpers/browser.ts';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { REDIRECT_URI, discover, startAuthorization } from '../helpers/rp.ts';

const SECRET = 'interaction-once-secret-0123456789abcdef';
const PASSWORD = 'an interaction once test password';
const PARALLEL = 8;

for (const { kind, skip } of STORES) {
  describeOrSkip(skip, `an interaction is finished and resumed once (${kind})`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer(kind);
      await srv.addUser('once', PASSWORD);
      await srv.addClient('rp', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid profile', first_party: true }, SECRET);
    });
    after(async () => srv?.close());

    it(`gives one authorization code for ${PARALLEL} parallel right sign-ins of one interaction whose first is resumed at once`, async () => {
      const config = await discover(srv.issuer, 'rp', SECRET);
      for (let round = 0; round < 3; round += 1) {
        const browser = new Browser();
        const { page } = await startAuthorization(config, browser, { scope: 'openid profile' });
        const uid = page.url.pathname.split('/').pop()!;
        const form = findForm(page.body, '/login');
        // The cookies before any resume: what a replaying client keeps.
        const kept = new Map(browser.cookies);
        const copy = () => { const b = new Browser(); for (const [k, v] of kept) b.cookies.set(k, v); return b; };
        let codes = 0;
        let resumed = false;
        const statuses = await Promise.all(Array.from({ length: PARALLEL }, async () => {
          const b = copy();
          const res = await b.request(new URL(form.action, page.url), {
            method: 'POST', body: new URLSearchParams({ ...form.hidden, username: 'once', password: PASSWORD }),
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          });
          const location = res.headers.get('location');
          if (res.status === 303 && location && !resumed) {
            resumed = true;
            const back = await b.navigate(new URL(location, page.url), {}, REDIRECT_URI);
            if (back.url.searchParams.get('code')) codes += 1;
          }
          return res.status;
        }));
        // Finished (303), refused as gone or out of date (400), or paused by the throttle (429): never a 500.
        for (const s of statuses) assert.ok([303, 400, 429].includes(s), `status ${s}: ${statuses.join(',')}`);
        assert.equal(codes, 1, `round ${round}: ${statuses.join(',')}`);
        assert.equal(await srv.storage.oidc.find('Interaction', uid, Date.now()), undefined, `round ${round}: the resumed interaction is back in the store`);
        const again = await copy().navigate(new URL(`/auth/${uid}`, srv.issuer), {}, REDIRECT_URI);
        assert.equal(again.url.searchParams.get('code'), null, `round ${round}: resumed a second time`);
        assert.equal(again.status, 400, `round ${round}: ${again.status} ${again.url}`);
      }
    });
  });
}

/**
 * The sign-in form's `behaviour` field over real HTTP, as a client without the script (or a
 * forger) sends it, on both stores: a well-formed sample is scored and stored with the
 * first-factor success only; a malformed, oversized, absurd or mismatched one is ignored and
 * the login goes on as without JavaScript (never an error page); BEHAVIOUR_RETENTION_DAYS=0
 * scores and trains without storing; and samples older than the retention leave the events
 * when the server starts.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import mongoose from 'mongoose';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser, type Page } from '../helpers/browser.ts';
import { makePolicyDir } from '../helpers/policy.ts';
import type { LoginEventRecord } from '../../models/types.ts';
import type { Behaviour } from '../../policies/behaviour.ts';

const PASSWORD = 'correct horse battery staple';
const N = [...PASSWORD].length;
const DAY = 86_400_000;

function sample(n = N): Behaviour {
  const hold = Array.from({ length: n }, (_, i) => 70 + (i % 4) * 9);
  const ud = Array.from({ length: n - 1 }, (_, i) => 50 + (i % 5) * 20);
  return {
    v: 1, keystroke: { hold, ud, dd: ud.map((u, i) => hold[i]! + u) },
    pointer: { moves: 30, distance: 640, duration: 1500, speedMean: 0.5, speedSd: 0.2, accelMean: 0.003, curvatureMean: 0.3, straightness: 0.8, pauses: 1, clicks: 1, clickDwellMean: 85 },
  };
}

/** Rules only, every level let in with the password: each login finishes and may train the template. */
const policy = () => makePolicyDir((f) => {
  f.risk.model.weight = 0;
  f.assurance.default = { low: 'aal1', medium: 'aal1', high: 'aal1', critical: 'aal1' };
  f.assurance.enrolment = { prompt: 'off' };
});

for (const store of STORES) {
  describeOrSkip(store.skip, `behavioural field over HTTP (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let userId: string;

    before(async () => {
      srv = await startTestServer(store.kind, { POLICY_DIR: policy() });
      userId = await srv.addUser('ines', PASSWORD);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    async function signInPage(s: TestServer, browser: Browser, cfg = config): Promise<Page> {
      const page = await browser.navigate(client.buildAuthorizationUrl(cfg, {
        redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'login',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }), {}, REDIRECT_URI);
      assert.match(page.body, /name="behaviour" value=""/, 'the form carries the empty field the script fills');
      return page;
    }

    /** Submits the form; through the consent page if shown; true when the RP was reached. */
    async function signIn(s: TestServer, fields: Record<string, string>, cfg = config): Promise<boolean> {
      const browser = new Browser();
      let page = await browser.submit(await signInPage(s, browser, cfg), '/login', fields, REDIRECT_URI);
      if (page.body.includes('/confirm')) page = await browser.submit(page, '/confirm', {}, REDIRECT_URI);
      assert.doesNotMatch(page.body, /\bat [^\s]+ \(|\.js:\d+:\d+/, 'no stack trace');
      return page.url.href.startsWith(REDIRECT_URI);
    }

    async function lastEvent(s: TestServer, user: string): Promise<LoginEventRecord> {
      let last: LoginEventRecord | undefined;
      for await (const e of s.storage.events.list({})) if (e.user === user) last = e;
      assert.ok(last, 'an event was recorded');
      return last;
    }

    it('scores and stores a well-formed sample with the first-factor success; a wrong password\'s is not stored', async () => {
      const b = sample();
      assert.equal(await signIn(srv, { username: 'ines', password: 'not the password at all', behaviour: JSON.stringify(sample(23)) }), false);
      const failed = await lastEvent(srv, userId);
      assert.equal(failed.success, false);
      assert.equal(failed.behaviour, undefined);

      assert.equal(await signIn(srv, { username: 'ines', password: PASSWORD, behaviour: JSON.stringify(b) }), true);
      const ok = await lastEvent(srv, userId);
      assert.equal(ok.success, true);
      assert.deepEqual(ok.behaviour, b);
      assert.deepEqual(ok.assessment?.behaviour, { keystroke: { score: 0, confidence: 0 }, pointer: { score: 0, confidence: 0 } }, 'scored: learning, so confidence 0');
      // The finish step added the sample to the user's templates.
      const history = (await srv.storage.risk.getUser(userId)) as { keystroke?: { positions: number; samples: unknown[] }; pointer?: { samples: unknown[] } };
      assert.equal(history.keystroke?.positions, N);
      assert.equal(history.keystroke?.samples.length, 1);
      assert.equal(history.pointer?.samples.length, 1);
    });

    it('ignores a malformed, oversized, absurd or mismatched field: the login works as without JavaScript', async () => {
      const good = sample();
      const cases: [string, string, Behaviour | undefined][] = [
        ['not JSON', '{"v":1,', undefined],
        ['JSON of another shape', '[1,2,3]', undefined],
        ['another version', JSON.stringify({ ...good, v: 2 }), undefined],
        ['an extra key', JSON.stringify({ ...good, keys: 'correct' }), undefined],
        ['oversized', JSON.stringify(good) + ' '.repeat(4096), undefined],
        ['a negative hold', JSON.stringify({ ...good, keystroke: { ...good.keystroke, hold: [-30, ...good.keystroke!.hold.slice(1)] } }), undefined],
        ['dd unlike hold + ud', JSON.stringify({ ...good, keystroke: { ...good.keystroke, dd: good.keystroke!.dd.map((d) => d + 50) } }), undefined],
        ['timings of another length (the pointer is kept)', JSON.stringify(sample(N - 1)), { v: 1, pointer: good.pointer }],
        ['timings with a reason (dropped, the reason kept)', JSON.stringify({ ...good, unusable: 'paste' }), { v: 1, unusable: 'paste', pointer: good.pointer }],
        ['an empty field (no JavaScript)', '', undefined],
      ];
      for (const [name, raw, expected] of cases) {
        assert.equal(await signIn(srv, { username: 'ines', password: PASSWORD, behaviour: raw }), true, name);
        const ev = await lastEvent(srv, userId);
        assert.equal(ev.success, true, name);
        assert.deepEqual(ev.behaviour, expected, name);
        if (!expected?.keystroke) assert.equal(ev.assessment?.behaviour?.keystroke, undefined, `${name}: no keystroke score`);
      }
    });

    it('with BEHAVIOUR_RETENTION_DAYS=0 scores and trains on the sample but never stores it', async () => {
      const zero = await startTestServer(store.kind, { POLICY_DIR: policy(), BEHAVIOUR_RETENTION_DAYS: '0' });
      try {
        const id = await zero.addUser('jon', PASSWORD);
        await zero.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
        const cfg = await discover(zero.issuer, 'web');
        assert.equal(await signIn(zero, { username: 'jon', password: PASSWORD, behaviour: JSON.stringify(sample()) }, cfg), true);
        const ev = await lastEvent(zero, id);
        assert.equal(ev.behaviour, undefined);
        assert.doesNotMatch(JSON.stringify(ev), /"hold"|"dd"|"ud"|"moves"/);
        assert.deepEqual(ev.assessment?.behaviour?.keystroke, { score: 0, confidence: 0 });
        const history = (await zero.storage.risk.getUser(id)) as { keystroke?: { samples: unknown[] } };
        assert.equal(history.keystroke?.samples.length, 1, 'the template still learns');
      } finally {
        await zero.close();
      }
    });

    it('removes samples past the retention from the events when the server starts, and keeps the rest', async () => {
      const now = Date.now();
      const base = { user: 'retained', ip: '192.0.2.8', userAgent: 'UA', success: true, clientId: 'web' };
      await srv.storage.events.append({ ...base, id: 'ret-old', ts: new Date(now - 40 * DAY).toISOString(), behaviour: sample() });
      await srv.storage.events.append({ ...base, id: 'ret-new', ts: new Date(now - 20 * DAY).toISOString(), behaviour: sample() });
      await srv.storage.events.append({ ...base, id: 'ret-broken', ts: new Date(now - 50 * DAY).toISOString(), behaviour: sample() });
      await srv.close();
      // A record edited by hand into something that is not JSON stops neither the start nor the prune.
      const broken = '{"id": "ret-broken", "behaviour';
      if (store.kind === 'embedded') {
        const db = new DatabaseSync(path.join(srv.env.DATA_DIR!, 'idp.sqlite'));
        db.prepare('UPDATE login_events SET doc = ? WHERE id = ?').run(broken, 'ret-broken');
        db.close();
      } else {
        const conn = await mongoose.createConnection(srv.env.MONGODB_URI!).asPromise();
        await conn.collection<{ _id: string }>('login_events').updateOne({ _id: 'ret-broken' }, { $set: { doc: broken } });
        await conn.close();
      }
      srv = await startTestServer(store.kind, {
        POLICY_DIR: policy(), BEHAVIOUR_RETENTION_DAYS: '30', DATA_DIR: srv.env.DATA_DIR!, KEYS_FILE: srv.env.KEYS_FILE!,
        ...(srv.env.MONGODB_URI ? { MONGODB_URI: srv.env.MONGODB_URI } : {}),
      });
      const old = await srv.storage.events.findById('ret-old');
      assert.deepEqual(old, { ...base, id: 'ret-old', ts: new Date(now - 40 * DAY).toISOString() });
      assert.deepEqual((await srv.storage.events.findById('ret-new'))?.behaviour, sample());
      assert.ok(srv.logs.some((l) => l.msg === 'behaviour pruned' && l.events === 1 && l.retentionDays === 30));
    });
  });
}

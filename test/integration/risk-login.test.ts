/**
 * Live scoring over HTTP: the login interaction scores every first-factor success, stores
 * the assessment with the event, and acts on the decision; failures are recorded too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { RUN_DEADLINE_MS } from '../helpers/process.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser } from '../helpers/browser.ts';
import type { LoginEventRecord } from '../../models/types.ts';
import { DEFAULT_POLICY_DIR } from '../../idp/settings.ts';

const PASSWORD = 'correct horse battery staple';
const CLI = path.join(import.meta.dirname, '..', '..', 'idp', 'cli.js');
const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

async function events(srv: TestServer): Promise<LoginEventRecord[]> {
  const out: LoginEventRecord[] = [];
  for await (const e of srv.storage.events.list({})) out.push(e);
  return out;
}

for (const store of STORES) {
  describeOrSkip(store.skip, `risk scoring of live logins (${store.kind} store)`, () => {
    let srv: TestServer;
    let config: client.Configuration;
    let id: string;

    before(async () => {
      // The shipped policy as it is, behind a proxy that reports the client address.
      srv = await startTestServer(store.kind, { TRUST_PROXY: 'true', POLICY_DIR: DEFAULT_POLICY_DIR });
      id = await srv.addUser('grace', PASSWORD);
      await srv.addClient('web', { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
      config = await discover(srv.issuer, 'web');
    });
    after(() => srv?.close());

    it('scores a login from the other side of the world higher, with the reasons, and does not let it through', async () => {
      const london = new Browser({ 'x-forwarded-for': '81.2.69.142', 'user-agent': FIREFOX_WINDOWS });
      const first = await loginThroughForm(config, 'grace', PASSWORD, { scope: 'openid' }, london);
      assert.ok(first.callback.searchParams.get('code'), 'the first login is let in');

      // A wrong password from Sydney is recorded too.
      const sydney = new Browser({ 'x-forwarded-for': '1.1.1.1', 'user-agent': SAFARI_MAC });
      const page = await sydney.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }));
      await sydney.submit(page, '/login', { username: 'grace', password: 'not the password' });
      // Then the right password, minutes after London.
      const second = await sydney.submit(page, '/login', { username: 'grace', password: PASSWORD }, REDIRECT_URI);
      assert.ok(!second.url.href.startsWith(REDIRECT_URI), 'not let through with a password alone');

      const all = (await events(srv)).filter((e) => e.user === id);
      assert.equal(all.length, 3);
      const [a, failed, b] = all;
      assert.equal(a!.success, true);
      assert.equal(a!.ip, '81.2.69.142');
      assert.equal(a!.assessment!.decision, 'allow');
      assert.equal(failed!.success, false);
      assert.equal(failed!.assessment, undefined);
      assert.equal(b!.ip, '1.1.1.1');
      assert.equal(b!.userAgent, SAFARI_MAC);
      assert.ok(b!.assessment!.score > a!.assessment!.score, `${b!.assessment!.score} > ${a!.assessment!.score}`);
      const reasons = b!.assessment!.reasons.map((r) => r.factor);
      assert.ok(reasons.includes('impossible_travel'), reasons.join(', '));
      assert.ok(reasons.includes('model'));
      assert.match(b!.assessment!.reasons.find((r) => r.factor === 'impossible_travel')!.detail!, /km in/);
      assert.notEqual(b!.assessment!.decision, 'allow');
      // grace holds no second factor. Up to the policy's enroll_max_level (medium) she may
      // enrol one now, flagged in the audit trail; above it, or blocked, the page must not
      // tell that the password was right.
      if (b!.assessment!.level === 'medium') {
        assert.match(second.body, /your account does not have one yet/);
      } else {
        assert.match(second.body, /<p id="login-error"[^>]*>The username or password is incorrect\.<\/p>/);
      }
      assert.equal(b!.assessment!.policyVersion, srv.policies.current().version);
      assert.equal(b!.assessment!.modelVersion, srv.policies.current().forest.version);
      assert.ok(srv.logs.some((l) => l.msg === 'risk.decided' && l.event === b!.id && l.decision === b!.assessment!.decision));
    });

    it('lets a user who logs in again and again from one address, each time in a fresh browser, settle to low', async () => {
      // What an OpenID conformance suite does: one test user, one address behind a local
      // proxy, a new browser profile per test module, no cookie kept.
      const suiteUser = await srv.addUser('conformance', PASSWORD);
      for (let i = 0; i < 12; i += 1) {
        const fresh = new Browser({ 'x-forwarded-for': '127.0.0.1', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36' });
        const r = await loginThroughForm(config, 'conformance', PASSWORD, { scope: 'openid' }, fresh);
        assert.ok(r.callback.searchParams.get('code'), `login ${i + 1} is let in`);
      }
      const mine = (await events(srv)).filter((e) => e.user === suiteUser);
      assert.equal(mine.length, 12);
      const late = mine.slice(3).map((e) => e.assessment!.level);
      assert.deepEqual(late, late.map(() => 'low'), `levels: ${mine.map((e) => e.assessment!.level).join(' ')}`);
    });

    it('exports the events as JSON lines in the documented format', async () => {
      const r = await promisify(execFile)(process.execPath, [CLI, 'events', 'export'], { env: { PATH: process.env.PATH ?? '', ...srv.env }, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' });
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as LoginEventRecord);
      assert.ok(lines.length >= 3);
      for (const e of lines) {
        for (const k of ['id', 'ts', 'user', 'ip', 'userAgent'] as const) assert.equal(typeof e[k], 'string', k);
        assert.equal(typeof e.success, 'boolean');
        assert.ok(!Number.isNaN(Date.parse(e.ts)));
      }
      assert.deepEqual(lines.map((e) => e.ts), [...lines.map((e) => e.ts)].sort(), 'in time order');
      const later = await promisify(execFile)(process.execPath, [CLI, 'events', 'export', '--since', lines.at(-1)!.ts], { env: { PATH: process.env.PATH ?? '', ...srv.env }, timeout: RUN_DEADLINE_MS, killSignal: 'SIGKILL' });
      assert.ok(later.stdout.trim().split('\n').length < lines.length);
    });
  });
}

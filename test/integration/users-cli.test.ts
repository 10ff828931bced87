/**
 * `idp user` administration commands (issue 11), run as separate processes against the store
 * of a running server, as an operator would: claims set with options or a JSON file reach the
 * relying party at once; a stale --if-version is refused; bad values give one line naming the
 * option (exit 2); disable ends the user's sessions and tells the RP by back-channel logout
 * (the command signs the logout token itself), enable lets them in again; sessions are listed
 * and revoked; delete removes the user. `idp client add` registers the address and phone scopes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import { STORES, describeOrSkip, tempDir } from '../helpers/env.ts';
import { runNode, type RunResult } from '../helpers/process.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser } from '../helpers/browser.ts';
import { logoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'idp', 'bin.js');
const PASSWORD = 'a long enough password for the user commands';
const INCORRECT = /The username or password is incorrect\./;

function oneLineError(r: RunResult, code: number, re: RegExp) {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

for (const store of STORES) {
  describeOrSkip(store.skip, `idp user administration commands (${store.kind} store)`, () => {
    let srv: TestServer;
    let receiver: LogoutReceiver;
    let config: client.Configuration;
    const idp = (args: string[], stdin?: string) => runNode([BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...srv.env }, stdin });
    const ok = async (args: string[], stdin?: string) => {
      const r = await idp(args, stdin);
      assert.equal(r.code, 0, `idp ${args.join(' ')}: ${r.stderr}`);
      return r;
    };

    before(async () => {
      srv = await startTestServer(store.kind, { THROTTLE_IP_FREE: '10000', THROTTLE_IP_MAX: '100000' });
      receiver = await logoutReceiver();
    });
    after(async () => {
      await receiver?.close();
      await srv?.close();
    });

    it('registers a client for the address and phone scopes; claims set with options and a file reach it', async () => {
      const added = await ok(['client', 'add', '--id', 'crm', '--redirect-uri', REDIRECT_URI, '--backchannel-logout-uri', receiver.url,
        '--scope', 'openid offline_access profile email address phone']);
      const secret = (JSON.parse(added.stdout) as { client_secret: string }).client_secret;
      config = await discover(srv.issuer, 'crm', secret);

      const user = JSON.parse((await ok(['user', 'add', 'Rosa', '--password-stdin', '--email', 'rosa@example.com', '--email-verified', '--given-name', 'Rosa',
        '--address-locality', 'Montgomery', '--address-country', 'US'], `${PASSWORD}\n`)).stdout) as { id: string; username: string };
      assert.equal(user.username, 'rosa');
      const file = path.join(tempDir('idp-claims-'), 'claims.json');
      fs.writeFileSync(file, JSON.stringify({ family_name: 'Parks', birthdate: '0000-02-04', address: { region: 'AL' } }));
      const set = JSON.parse((await ok(['user', 'set', 'rosa', '--claims', file, '--phone-number', '+1 334 555 0100', '--phone-number-verified',
        '--zoneinfo', 'America/Chicago', '--if-version', '1'])).stdout) as { version: number; claims: Record<string, unknown> };
      assert.equal(set.version, 2);
      assert.deepEqual(set.claims.address, { locality: 'Montgomery', country: 'US', region: 'AL' });

      const shown = JSON.parse((await ok(['user', 'show', 'ROSA'])).stdout) as { id: string; version: number; claims: Record<string, unknown>; disabled: unknown };
      assert.equal(shown.id, user.id);
      assert.equal(shown.disabled, null);
      assert.ok(!JSON.stringify(shown).includes('argon2'), 'no hash shown');

      const login = await loginThroughForm(config, 'rosa', PASSWORD, { scope: 'openid profile email address phone' });
      const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
      const info = await client.fetchUserInfo(config, tokens.access_token, user.id);
      assert.deepEqual({ ...info, updated_at: undefined }, {
        sub: user.id, email: 'rosa@example.com', email_verified: true, given_name: 'Rosa', family_name: 'Parks', birthdate: '0000-02-04',
        zoneinfo: 'America/Chicago', phone_number: '+1 334 555 0100', phone_number_verified: true, preferred_username: 'rosa',
        address: { locality: 'Montgomery', country: 'US', region: 'AL' }, updated_at: undefined,
      });

      // --unset removes; a stale version is refused, naming the current one.
      const unset = JSON.parse((await ok(['user', 'set', 'rosa', '--unset', 'birthdate', '--unset', 'address.region', '--no-phone-number-verified'])).stdout) as { claims: Record<string, unknown> };
      assert.equal(unset.claims.birthdate, undefined);
      assert.equal(unset.claims.phone_number_verified, false);
      assert.deepEqual(unset.claims.address, { locality: 'Montgomery', country: 'US' });
      oneLineError(await idp(['user', 'set', 'rosa', '--nickname', 'R', '--if-version', '2']), 1, /changed meanwhile \(now version 3\)/);
    });

    it('bad values give one line naming the option, exit 2, and change nothing', async () => {
      oneLineError(await idp(['user', 'set', 'rosa', '--birthdate', '1990-13-01']), 2, /^idp: --birthdate: must be YYYY-MM-DD/);
      oneLineError(await idp(['user', 'set', 'rosa', '--phone-number', '0334 555']), 2, /^idp: --phone-number: must be an international number in E\.164 form/);
      oneLineError(await idp(['user', 'set', 'rosa', '--address-postal-code', '']), 2, /^idp: --address-postal-code: must not be empty/);
      oneLineError(await idp(['user', 'set', 'rosa', '--locale', 'en_US']), 2, /--locale: must be a BCP 47 language tag/);
      oneLineError(await idp(['user', 'set', 'rosa']), 2, /give at least one claim/);
      oneLineError(await idp(['user', 'set', 'rosa', '--if-version', 'two', '--nickname', 'x']), 2, /--if-version: expected/);
      oneLineError(await idp(['user', 'add', 'sam', '--password-stdin', '--website', 'ftp://x'], `${PASSWORD}\n`), 2, /--website: must be an absolute http or https URL/);
      oneLineError(await idp(['user', 'add', 'sam', '--password-stdin', '--email', 'nope'], `${PASSWORD}\n`), 2, /--email: must be an email address/);
      const file = path.join(tempDir('idp-claims-'), 'bad.json');
      fs.writeFileSync(file, '{"sub": "x"}');
      oneLineError(await idp(['user', 'set', 'rosa', '--claims', file]), 2, /Unrecognized key.*sub/);
      fs.writeFileSync(file, '[1]');
      oneLineError(await idp(['user', 'set', 'rosa', '--claims', file]), 2, /--claims: the file must hold one JSON object/);
      oneLineError(await idp(['user', 'show', 'nobody']), 1, /no user "nobody"/);
      oneLineError(await idp(['user', 'disable', 'rosa']), 2, /--reason is required/);
      oneLineError(await idp(['user', 'revoke', 'rosa']), 2, /give one of --session <uid>, --grant <id> or --all/);
      oneLineError(await idp(['user', 'list', '--created-after', 'last week']), 2, /--created-after: /);
      assert.equal(await srv.storage.accounts.findByUsername('sam'), undefined);
      assert.equal((await srv.storage.accounts.findByUsername('rosa'))!.version, 3);
    });

    it('disable ends the sessions (the RP is told) and refuses the sign-in; sessions, revoke, enable, list filters and delete', async () => {
      const login = await loginThroughForm(config, 'rosa', PASSWORD, { scope: 'openid offline_access' });
      const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
      const sessions = JSON.parse((await ok(['user', 'sessions', 'rosa', '--json'])).stdout) as { sessions: { uid: string; clients: { sid: string }[] }[]; grants: unknown[] };
      assert.ok(sessions.sessions.some((s) => s.clients.some((c) => c.sid === tokens.claims()!.sid)));
      assert.ok(sessions.grants.length >= 1);
      assert.match((await ok(['user', 'sessions', 'rosa'])).stdout, /^sessions:\nuid\s+login_at/);

      const before = receiver.tokens.length;
      const disabled = await ok(['user', 'disable', 'rosa', '--reason', 'account review']);
      const told = /^disabled rosa; \d+ sessions? ended, \d+ grants? revoked, (\d+) relying part(?:y|ies) told by back-channel logout\n$/.exec(disabled.stdout);
      assert.ok(told, disabled.stdout);
      await receiver.waitFor(before + Number(told[1]));
      const sids = await Promise.all(receiver.tokens.slice(before).map(async (t) => (await receiver.verify(t, srv.issuer, 'crm')).sid));
      assert.ok(sids.includes(tokens.claims()!.sid), 'this session\'s sid among those the RP was told');
      await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (e: client.ResponseBodyError) => e.error === 'invalid_grant');
      const browser = new Browser();
      const page = await browser.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }));
      assert.match((await browser.submit(page, '/login', { username: 'rosa', password: PASSWORD }, REDIRECT_URI)).body, INCORRECT);

      const listed = JSON.parse((await ok(['user', 'list', '--disabled', '--json'])).stdout) as { username: string; disabled: string }[];
      assert.deepEqual(listed.map((u) => u.username), ['rosa']);
      assert.match(listed[0]!.disabled, /account review/);
      assert.ok(!(JSON.parse((await ok(['user', 'list', '--no-disabled', '--json'])).stdout) as { username: string }[]).some((u) => u.username === 'rosa'));
      assert.match((await ok(['user', 'list', '--prefix', 'ro'])).stdout, /^username\s+id\s+email\s+name\s+directory\s+created\s+disabled\nrosa\s/);

      assert.equal((await ok(['user', 'enable', 'rosa'])).stdout, 'enabled rosa\n');
      const again = await loginThroughForm(config, 'rosa', PASSWORD, { scope: 'openid' });
      await client.authorizationCodeGrant(config, again.callback, { pkceCodeVerifier: again.verifier, expectedNonce: again.nonce, expectedState: again.state });
      const uid = (JSON.parse((await ok(['user', 'sessions', 'rosa', '--json'])).stdout) as { sessions: { uid: string }[] }).sessions[0]!.uid;
      // `--session=<uid>`: a uid may begin with "-" (oidc-provider's alphabet has it), which
      // `--session <uid>` would read as another option.
      assert.match((await ok(['user', 'revoke', 'rosa', `--session=${uid}`])).stdout, /^1 session ended, 1 grant revoked/);
      oneLineError(await idp(['user', 'revoke', 'rosa', `--session=${uid}`]), 1, /no session/);
      assert.match((await ok(['user', 'revoke', 'rosa', '--all'])).stdout, /^0 sessions ended/);

      const id = (await srv.storage.accounts.findByUsername('rosa'))!.id;
      assert.match((await ok(['user', 'delete', 'rosa'])).stdout, /^deleted rosa; .*login events kept\n$/);
      assert.equal(await srv.storage.accounts.findById(id), undefined);
      oneLineError(await idp(['user', 'delete', 'rosa']), 1, /no user "rosa"/);
    });
  });
}

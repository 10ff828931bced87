/**
 * Users as an administrator manages them (issue 11), through the users service the CLI and
 * the admin API share (idp/admin/users.ts), against a running provider over real HTTP on both
 * stores, with openid-client as the relying party:
 * - OIDC Core §5.1 claims set by an administrator reach the RP: `profile`, `address` and
 *   `phone` (§5.4) in userinfo, and in the ID token through the claims parameter (§5.5);
 * - changes are versioned (a stale If-Match is refused) and audited, secrets never recorded;
 * - disabling ends the user's sessions (the RP is told by back-channel logout), stops their
 *   refresh and access tokens, and refuses their sign-in with the generic error;
 * - sessions and grants are listed and revoked one by one;
 * - deleting removes the account with everything of it but its login events.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, it } from 'node:test';
import * as client from 'openid-client';
import * as z from 'zod';
import type { AuditInput } from '../../models/types.ts';
import { VersionConflictError } from '../../adapters/storage/port.ts';
import { UserAdminError, UserService, type UserView } from '../../idp/admin/users.ts';
import { standaloneLogoutNotifier } from '../../idp/cli-users.ts';
import { accountKey } from '../../interactions/throttle.ts';
import { STORES, describeOrSkip } from '../helpers/env.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { discover, loginThroughForm, REDIRECT_URI } from '../helpers/rp.ts';
import { Browser } from '../helpers/browser.ts';
import { logoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.ts';

const PASSWORD = 'a password long enough for the admin tests';
const SECRET = 'a-client-secret-that-is-long-enough-0123456789';
const INCORRECT = /The username or password is incorrect\./;
const ADMIN = { kind: 'client' as const, id: 'admin-tool', ip: '192.0.2.50' };

/** Every claim OIDC Core §5.1 defines, as an administrator sets them. */
const CLAIMS = {
  email: 'grace@example.com', email_verified: true, name: 'Grace Brewster Hopper', given_name: 'Grace', family_name: 'Hopper',
  middle_name: 'Brewster', nickname: 'Amazing Grace', preferred_username: 'grace.h', profile: 'https://example.com/grace',
  picture: 'https://example.com/grace.jpg', website: 'https://grace.example.com', gender: 'female', birthdate: '1906-12-09',
  zoneinfo: 'America/New_York', locale: 'en-US', phone_number: '+1 (202) 555-0142;ext=7', phone_number_verified: true,
  address: { formatted: '1 Navy Way\nArlington, VA 22202\nUSA', street_address: '1 Navy Way', locality: 'Arlington', region: 'VA', postal_code: '22202', country: 'US' },
};

for (const store of STORES) {
  describeOrSkip(store.skip, `administering users (${store.kind} store)`, () => {
    let srv: TestServer;
    let receiver: LogoutReceiver;
    let config: client.Configuration;
    let users: UserService;
    const audit: AuditInput[] = [];

    before(async () => {
      srv = await startTestServer(store.kind, { THROTTLE_IP_FREE: '10000', THROTTLE_IP_MAX: '100000' });
      receiver = await logoutReceiver();
      await srv.addClient('rp', {
        redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic', scope: 'openid profile email address phone offline_access',
        backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true,
      }, SECRET);
      config = await discover(srv.issuer, 'rp', SECRET);
      users = new UserService({
        storage: srv.storage, settings: srv.settings, logout: standaloneLogoutNotifier(srv.settings, srv.storage),
        audit: async (e) => { audit.push(structuredClone(e)); },
      });
    });
    after(async () => {
      await receiver?.close();
      await srv?.close();
    });

    async function signIn(username: string, params: Record<string, string> = {}, browser = new Browser()) {
      const login = await loginThroughForm(config, username, PASSWORD, { scope: 'openid profile email address phone offline_access', ...params }, browser);
      const tokens = await client.authorizationCodeGrant(config, login.callback, { pkceCodeVerifier: login.verifier, expectedNonce: login.nonce, expectedState: login.state });
      return { tokens, claims: tokens.claims()!, browser: login.browser };
    }

    /** A sign-in attempt that must be refused: the page it ends on. */
    async function refusedSignIn(username: string) {
      const browser = new Browser();
      const page = await browser.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'login',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }));
      return browser.submit(page, '/login', { username, password: PASSWORD }, REDIRECT_URI);
    }

    const create = (username: string, claims: Record<string, unknown> = {}) => users.create(ADMIN, { username, password: PASSWORD, claims });

    it('discovery offers the address and phone scopes and every standard claim', () => {
      const m = config.serverMetadata();
      for (const s of ['openid', 'profile', 'email', 'address', 'phone', 'offline_access']) assert.ok(m.scopes_supported?.includes(s), s);
      for (const c of [...Object.keys(CLAIMS), 'updated_at', 'sub']) assert.ok(m.claims_supported?.includes(c), c);
    });

    it('claims set by an administrator reach the RP: every one in userinfo with profile, email, address and phone; in the ID token through the claims parameter', async () => {
      const grace = await create('grace', CLAIMS);
      assert.deepEqual({ ...grace.claims, updated_at: undefined }, { ...CLAIMS, updated_at: undefined });
      const { tokens, claims } = await signIn('grace');
      assert.equal(claims.sub, grace.id);
      const info = await client.fetchUserInfo(config, tokens.access_token, grace.id);
      assert.deepEqual({ ...info }, { sub: grace.id, ...CLAIMS, updated_at: grace.claims.updated_at });

      // profile alone: no address, no phone, no email (OIDC Core §5.4).
      const narrow = await signIn('grace', { scope: 'openid profile' });
      const some = await client.fetchUserInfo(config, narrow.tokens.access_token, grace.id);
      assert.equal(some.given_name, 'Grace');
      assert.equal(some.birthdate, '1906-12-09');
      for (const c of ['address', 'phone_number', 'phone_number_verified', 'email']) assert.equal(some[c], undefined, c);

      // The claims parameter puts them in the ID token too (OIDC Core §5.5).
      const viaIdToken = await signIn('grace', {
        scope: 'openid',
        claims: JSON.stringify({ id_token: { address: null, phone_number: null, phone_number_verified: null, zoneinfo: null, updated_at: null } }),
      });
      assert.deepEqual(viaIdToken.claims.address, CLAIMS.address);
      assert.equal(viaIdToken.claims.phone_number, CLAIMS.phone_number);
      assert.equal(viaIdToken.claims.phone_number_verified, true);
      assert.equal(viaIdToken.claims.zoneinfo, 'America/New_York');
      assert.equal(viaIdToken.claims.updated_at, grace.claims.updated_at, 'sign-ins (recognised browsers) do not move updated_at');
    });

    it('a local user without claims still gets preferred_username and updated_at; the RP never gets claims left out', async () => {
      const bare = await create('bare');
      const { tokens } = await signIn('bare');
      const info = await client.fetchUserInfo(config, tokens.access_token, bare.id);
      assert.deepEqual({ ...info }, { sub: bare.id, preferred_username: 'bare', updated_at: bare.claims.updated_at });
    });

    it('a change names its version (If-Match): applied as a merge patch, a stale one refused; updated_at moves; both audited without secrets', async () => {
      const ivan = await create('ivan', { given_name: 'Ivan', nickname: 'Vanya', address: { locality: 'Kyiv', country: 'UA' } });
      assert.equal(ivan.version, 1);
      await new Promise((r) => setTimeout(r, 1100));
      const changed = await users.update(ADMIN, ivan.id, { claims: { nickname: null, family_name: 'Petrenko', address: { locality: null, postal_code: '01001' } } }, 1);
      assert.equal(changed.version, 2);
      assert.deepEqual(changed.claims, {
        email_verified: false, given_name: 'Ivan', family_name: 'Petrenko', address: { country: 'UA', postal_code: '01001' }, updated_at: changed.claims.updated_at,
      });
      assert.ok(changed.claims.updated_at > ivan.claims.updated_at, 'updated_at is the time of this change');
      await assert.rejects(users.update(ADMIN, ivan.id, { claims: { given_name: 'Lost update' } }, 1), (e: unknown) => e instanceof VersionConflictError && e.current === 2);
      assert.equal((await users.get(ivan.id)).claims.given_name, 'Ivan');
      // Without a version (the CLI): the version read just before.
      assert.equal((await users.update(ADMIN, ivan.id, { claims: { address: null } })).version, 3);

      const entries = audit.filter((e) => e.target?.id === ivan.id);
      assert.deepEqual(entries.map((e) => [e.action, e.outcome]), [['user.create', 'success'], ['user.update', 'success'], ['user.update', 'failure'], ['user.update', 'success']]);
      const [created, updated, refused] = entries;
      assert.deepEqual(created!.actor, ADMIN);
      assert.deepEqual(created!.detail, { password: 'set' });
      assert.equal((updated!.before as UserView).claims.nickname, 'Vanya');
      assert.equal((updated!.after as UserView).claims.nickname, undefined);
      assert.equal(refused!.detail?.reason, 'version_conflict');
      const all = JSON.stringify(audit);
      assert.ok(!all.includes(PASSWORD) && !all.includes('argon2'), 'no password nor hash on the trail');
    });

    it('bad claims are refused with a message for each field, and nothing is changed', async () => {
      const judy = await create('judy', { given_name: 'Judy' });
      const err = await users.update(ADMIN, judy.id, {
        claims: {
          birthdate: '1990-02-30', zoneinfo: '+01:00', locale: 'en_US', phone_number: '555-1212', website: 'javascript:alert(1)',
          given_name: 'bad\u0007bell', email: 'not-an-email', address: { country: '' }, sub: 'x',
        } as never,
      }).catch((e: unknown) => e);
      assert.ok(err instanceof z.ZodError, String(err));
      const byPath = new Map(err.issues.map((i) => [i.path.join('.'), i.message]));
      // The unknown key is refused first, on its own (a strict object).
      assert.match(byPath.get('claims') ?? '', /Unrecognized key/);
      const fields = await users.update(ADMIN, judy.id, {
        claims: {
          birthdate: '1990-02-30', zoneinfo: '+01:00', locale: 'en_US', phone_number: '555-1212', website: 'javascript:alert(1)',
          given_name: 'bad\u0007bell', email: 'not-an-email', address: { country: '' },
        },
      }).then(() => assert.fail('accepted'), (e: unknown) => e as z.ZodError);
      const messages = Object.fromEntries(fields.issues.map((i) => [i.path.join('.'), i.message]));
      assert.match(messages['claims.birthdate']!, /YYYY-MM-DD/);
      assert.match(messages['claims.zoneinfo']!, /IANA time zone/);
      assert.match(messages['claims.locale']!, /BCP 47/);
      assert.match(messages['claims.phone_number']!, /E\.164/);
      assert.match(messages['claims.website']!, /http or https URL/);
      assert.match(messages['claims.given_name']!, /control characters/);
      assert.match(messages['claims.email']!, /email address/);
      assert.match(messages['claims.address.country']!, /must not be empty/);
      assert.equal(Object.keys(messages).length, 8);
      const unchanged = await users.get(judy.id);
      assert.equal(unchanged.version, 1);
      assert.equal(unchanged.claims.given_name, 'Judy');
      // Year withheld and year-only birthdates are §5.1's own forms.
      for (const birthdate of ['0000-02-29', '1999', '2000-02-29']) assert.equal((await users.update(ADMIN, judy.id, { claims: { birthdate } })).claims.birthdate, birthdate);
      await assert.rejects(users.update(ADMIN, judy.id, { claims: { birthdate: '1999-02-29' } }), z.ZodError);
      await assert.rejects(users.update(ADMIN, crypto.randomUUID(), { claims: { nickname: 'x' } }), (e: unknown) => e instanceof UserAdminError && e.code === 'not_found');
    });

    it('disabling ends the sessions (the RP is told by back-channel logout), stops refresh and access tokens, refuses the sign-in; enabling lets the user in again', async () => {
      const kate = await create('kate', { given_name: 'Kate' });
      const first = await signIn('kate');
      const second = await signIn('kate');
      assert.equal((await users.sessions(kate.id)).length, 2);
      const before = receiver.tokens.length;

      const disabled = await users.disable(ADMIN, kate.id, { reason: 'laptop stolen' }, 1);
      assert.equal(disabled.version, 2);
      assert.equal(disabled.disabled?.reason, 'laptop stolen');
      assert.equal(disabled.disabled?.by, 'client:admin-tool');
      assert.deepEqual(disabled.revoked, { sessions: 2, grants: 2, notified: 2, failed: 0 });

      await receiver.waitFor(before + 2);
      const sids = new Set<unknown>();
      for (const token of receiver.tokens.slice(before)) {
        const payload = await receiver.verify(token, srv.issuer, 'rp');
        assert.equal(payload.sub, kate.id);
        sids.add(payload.sid);
      }
      assert.deepEqual(sids, new Set([first.claims.sid, second.claims.sid]), 'each session\'s sid, as the RP knows it');

      await assert.rejects(client.refreshTokenGrant(config, first.tokens.refresh_token!), (e: client.ResponseBodyError) => e.error === 'invalid_grant');
      await assert.rejects(client.fetchUserInfo(config, second.tokens.access_token, kate.id));
      assert.equal((await client.tokenIntrospection(config, second.tokens.access_token)).active, false);
      assert.deepEqual(await users.sessions(kate.id), []);
      assert.deepEqual(await users.grants(kate.id), []);
      // The browser's session is gone: the sign-in page again, where the password is refused
      // with the words of a wrong one.
      assert.match((await refusedSignIn('kate')).body, INCORRECT);
      assert.ok(srv.logs.some((l) => l.msg === 'login.failed' && l.reason === 'account_disabled'), 'the log says why');

      const enabled = await users.enable(ADMIN, kate.id);
      assert.equal(enabled.version, 3);
      assert.equal(enabled.disabled, null);
      const again = await signIn('kate');
      assert.equal(again.claims.sub, kate.id);
      assert.deepEqual(audit.filter((e) => e.target?.id === kate.id).map((e) => e.action), ['user.create', 'user.disable', 'user.enable']);
    });

    it('a refresh token kept aside stops when the user is disabled, even if its session was already gone', async () => {
      const leo = await create('leo');
      const { tokens } = await signIn('leo');
      // As if the session had expired: only the grant and its tokens are left.
      for (const s of await srv.storage.oidc.listByAccount('Session', leo.id, Date.now())) await srv.storage.oidc.destroy('Session', s.id);
      const r = await users.disable(ADMIN, leo.id, { reason: 'test' });
      assert.equal(r.revoked.grants, 1);
      await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (e: client.ResponseBodyError) => e.error === 'invalid_grant');
    });

    it('sessions and grants are listed; one session is ended (its RP told) and one grant revoked (its tokens stop), the others untouched', async () => {
      const mia = await create('mia');
      const a = await signIn('mia');
      const b = await signIn('mia');
      const sessions = await users.sessions(mia.id);
      assert.equal(sessions.length, 2);
      for (const s of sessions) {
        assert.ok(s.uid && s.login_at && s.expires_at);
        assert.equal(s.clients.length, 1);
        assert.equal(s.clients[0]!.client_id, 'rp');
        assert.deepEqual(s.amr, ['pwd', 'rba']);
      }
      // No session's cookie value (its id) is shown, only its uid.
      const stored = await srv.storage.oidc.listByAccount('Session', mia.id, Date.now());
      assert.ok(!JSON.stringify(sessions).includes(stored[0]!.id));
      const grants = await users.grants(mia.id);
      assert.equal(grants.length, 2);
      assert.ok(grants.every((g) => g.client_id === 'rp' && g.scope.split(' ').includes('address')));

      const ofA = sessions.find((s) => s.clients[0]!.sid === a.claims.sid)!;
      const before = receiver.tokens.length;
      assert.deepEqual(await users.revokeSession(ADMIN, mia.id, ofA.uid), { sessions: 1, grants: 1, notified: 1, failed: 0 });
      await receiver.waitFor(before + 1);
      assert.equal((await receiver.verify(receiver.tokens.at(-1)!, srv.issuer, 'rp')).sid, a.claims.sid);
      await assert.rejects(client.refreshTokenGrant(config, a.tokens.refresh_token!), (e: client.ResponseBodyError) => e.error === 'invalid_grant');
      assert.equal((await client.tokenIntrospection(config, b.tokens.access_token)).active, true, 'the other session\'s tokens work');
      await assert.rejects(users.revokeSession(ADMIN, mia.id, ofA.uid), (e: unknown) => e instanceof UserAdminError && e.reason === 'session_not_found');

      const [left] = await users.grants(mia.id);
      assert.equal((await users.revokeGrant(ADMIN, mia.id, left!.id)).grants, 1);
      assert.equal((await client.tokenIntrospection(config, b.tokens.access_token)).active, false);
      await assert.rejects(client.refreshTokenGrant(config, b.tokens.refresh_token!), (e: client.ResponseBodyError) => e.error === 'invalid_grant');
      // Another user's session or grant is not this user's to revoke.
      const other = await create('ned');
      await assert.rejects(users.revokeGrant(ADMIN, other.id, left!.id), (e: unknown) => e instanceof UserAdminError && e.code === 'not_found');
    });

    it('deleting removes the account, its factors, risk history, attempt buckets, sessions, grants and tokens; its login events stay', async () => {
      const olga = await create('olga', { given_name: 'Olga' });
      await srv.addTotp(olga.id);
      await srv.storage.roles.set(olga.id, ['admin:read', 'admin:keys'], 0);
      // A sign-in (risk history, a session, tokens), then a wrong password (an attempt bucket).
      const { tokens } = await signIn('olga');
      assert.match((await refusedSignInWith('olga', 'not the password at all, sorry')).body, INCORRECT);
      const s = srv.storage;
      assert.equal((await s.attempts.get(accountKey(olga.id), Date.now(), Infinity)).count, 1);
      assert.equal((await s.factors.list(olga.id)).length, 1);
      assert.ok(await s.risk.getUser(olga.id), 'a risk history exists');
      const eventsBefore = await countEvents(olga.id);
      assert.ok(eventsBefore >= 2);
      const before = receiver.tokens.length;

      const { revoked } = await users.delete(ADMIN, olga.id);
      assert.equal(revoked.sessions, 1);
      await receiver.waitFor(before + 1);
      assert.equal(await s.accounts.findById(olga.id), undefined);
      assert.deepEqual(await s.factors.list(olga.id), []);
      assert.equal(await s.risk.getUser(olga.id), undefined);
      assert.deepEqual(await s.risk.observations({ user: olga.id }, 'password_ok', 0, 10), []);
      assert.equal((await s.attempts.get(accountKey(olga.id), Date.now(), Infinity)).count, 0);
      // A directory user's account id is derived from the entry: linked again at their next
      // sign-in, a deleted administrator must not find their admin roles waiting.
      assert.deepEqual((await s.roles.get(olga.id)).scopes, [], 'the admin roles go with the account');
      for (const model of ['Session', 'Grant', 'AccessToken', 'RefreshToken', 'LoginRecord']) {
        assert.deepEqual(await s.oidc.listByAccount(model, olga.id, Date.now()), [], model);
      }
      await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (e: client.ResponseBodyError) => e.error === 'invalid_grant');
      assert.equal(await countEvents(olga.id), eventsBefore, 'login events are the audit trail: they stay');
      await assert.rejects(users.get(olga.id), (e: unknown) => e instanceof UserAdminError && e.code === 'not_found');
      const entry = audit.find((e) => e.action === 'user.delete' && e.target?.id === olga.id)!;
      assert.equal((entry.before as UserView).username, 'olga');
      assert.deepEqual(entry.detail?.roles_removed, ['admin:keys', 'admin:read']);
      assert.ok(!JSON.stringify(entry).includes('totp'), 'no factor secret on the trail');
    });

    it('unlock clears the failed-sign-in lock; resetting second factors removes them, recorded without secrets', async () => {
      const pia = await create('pia');
      await srv.addTotp(pia.id);
      await srv.storage.attempts.reserve(accountKey(pia.id), { now: Date.now(), max: 100, windowMs: Infinity, waitMs: () => 0 });
      assert.equal((await srv.storage.attempts.get(accountKey(pia.id), Date.now(), Infinity)).count, 1);
      await users.unlock(ADMIN, pia.id);
      assert.equal((await srv.storage.attempts.get(accountKey(pia.id), Date.now(), Infinity)).count, 0);
      assert.deepEqual(await users.resetFactors(ADMIN, pia.id), { removed: 1 });
      assert.deepEqual(await srv.storage.factors.list(pia.id), []);
      const entry = audit.find((e) => e.action === 'factor.reset' && e.target?.id === pia.id)!;
      assert.equal((entry.before as { factors: { kind: string }[] }).factors[0]?.kind, 'totp');
      assert.ok(!JSON.stringify(entry).includes('secretCiphertext'));
    });

    it('lists users a page at a time with filters; a directory user\'s claims are the directory\'s, not the administrator\'s', async () => {
      for (const n of ['qa-1', 'qa-2', 'qa-3']) await create(n, { email: 'qa@example.com' });
      await users.disable(ADMIN, (await users.findByName('qa-2')).id, { reason: 'x' });
      const first = await users.list({ username_prefix: 'QA-' }, { limit: 2 });
      assert.deepEqual(first.items.map((u) => u.username), ['qa-1', 'qa-2']);
      const rest = await users.list({ username_prefix: 'qa-' }, { limit: 2, after: first.next });
      assert.deepEqual(rest.items.map((u) => u.username), ['qa-3']);
      assert.equal(rest.next, undefined);
      assert.deepEqual((await users.list({ email: 'qa@example.com', disabled: 'true' }, { limit: 10 })).items.map((u) => u.username), ['qa-2']);
      await assert.rejects(users.list({ created_after: 'yesterday' }, { limit: 10 }), z.ZodError);

      const linked = await srv.storage.accounts.create({
        id: crypto.randomUUID(), username: 'corp:0000', passwordHash: '!none', emailVerified: false,
        directory: { name: 'corp', id: '0000', dn: 'uid=x', syncedAt: new Date() }, claims: { given_name: 'Dir' },
      });
      await assert.rejects(users.update(ADMIN, linked.id, { claims: { given_name: 'Local' } }), (e: unknown) => e instanceof UserAdminError && e.reason === 'directory_managed' && e.code === 'conflict');
      assert.deepEqual((await users.list({ directory: 'corp' }, { limit: 10 })).items.map((u) => u.id), [linked.id]);
    });

    async function refusedSignInWith(username: string, password: string) {
      const browser = new Browser();
      const page = await browser.navigate(client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'login',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
      }));
      return browser.submit(page, '/login', { username, password }, REDIRECT_URI);
    }

    async function countEvents(user: string) {
      let n = 0;
      for await (const e of srv.storage.events.list({})) if (e.user === user) n += 1;
      return n;
    }
  });
}

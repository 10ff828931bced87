/**
 * Users, as an administrator manages them: the one implementation behind the `idp user …`
 * commands and the admin API's /users resources (issue 11: "where CLI and API overlap, one
 * implementation serves both").
 *
 * - Every change takes the `actor` who makes it and goes to the audit trail (`audit`) with
 *   the user before and after, as the API shows a user: never a password hash, a factor's
 *   secret or a session's cookie id. A refused change is recorded too (outcome `failure`).
 * - Changes of what the user is (claims, disabled) name the version they were made against
 *   (`ifVersion`, the API's If-Match); a stale one is refused (VersionConflictError, 412).
 *   Without one (the CLI), the change applies to the version read just before.
 * - Disabling ends the user's sessions and revokes their grants and tokens, and tells each
 *   relying party registered for back-channel logout; oidc-provider finds no disabled account
 *   (idp/tokens.ts), so a refresh token kept aside stops too, and the sign-in refuses it with
 *   the words of a wrong password (interactions/authenticate.ts).
 * - Deleting removes the account with its factors, risk history, attempt buckets, sessions,
 *   grants, tokens and admin roles; its login events stay, for the audit trail.
 *
 * Errors: UserAdminError with `code` one of the admin API's problem codes (not_found,
 * conflict, invalid_request) and a stable `reason`; z.ZodError for input that fails a schema;
 * VersionConflictError and DuplicateError from the store.
 */
import crypto from 'node:crypto';
import * as z from 'zod';
import type { Account, AccountProfile, Actor, AddressClaim, AuditInput, OidcRecord, ProfileClaims } from '../../models/types.ts';
import { NO_PASSWORD } from '../../models/types.ts';
import { ACCOUNT_PAGE_MAX, VersionConflictError, type AccountFilter, type Page, type PageRequest, type Storage } from '../../adapters/storage/port.ts';
import { PasswordError, PasswordHasher, validateUsername } from '../../interactions/methods/password.ts';
import { LoginThrottle, type ThrottleSettings } from '../../interactions/throttle.ts';
import { UserClaimsPatchSchema, UserClaimsSchema, UserClaimsViewSchema, type UserClaimsInput, type UserClaimsPatch, type UserClaimsView } from './claims.ts';
import type { LogoutNotifier, LogoutResult } from './backchannel.ts';

// ——— Errors ———

/**
 * A refusal the admin API answers as an RFC 9457 problem: `code` is the problem code (the
 * HTTP status follows from it), `reason` says which refusal it was, for scripts.
 */
export class UserAdminError extends Error {
  override name = 'UserAdminError';
  readonly code: 'not_found' | 'conflict' | 'invalid_request';
  readonly reason: string;
  constructor(code: UserAdminError['code'], reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

const notFound = (what: string) => new UserAdminError('not_found', 'user_not_found', `no user ${what}`);

// ——— Schemas (inputs validated here; the admin API publishes them) ———

const isoTime = z.iso.datetime({ offset: true });

export const CreateUserSchema = z.strictObject({
  username: z.string().min(1).max(256).describe('Sign-in name; stored under PRECIS UsernameCaseMapped (RFC 8265 §3.3: lower case, NFC). Refused when taken or when it looks like a taken one.'),
  password: z.string().min(1).max(1024).optional().describe('Initial password (write-only: stored as an argon2id hash, never returned). Without one, the user cannot sign in with a password until one is set.'),
  claims: UserClaimsSchema.optional(),
}).describe('A new local user.').meta({ id: 'UserCreate' });
export type CreateUserInput = z.input<typeof CreateUserSchema>;

export const UpdateUserSchema = z.strictObject({
  claims: UserClaimsPatchSchema,
}).describe('A change of a user\'s claims.').meta({ id: 'UserUpdate' });
export type UpdateUserInput = z.input<typeof UpdateUserSchema>;

export const DisableUserSchema = z.strictObject({
  reason: z.string().trim().min(1, 'say why (for the audit trail and other administrators)').max(512, 'at most 512 characters')
    .refine((v) => !/\p{Cc}/u.test(v), 'must not contain control characters')
    .describe('Why the user is disabled; shown to administrators only (the user sees the usual sign-in error).'),
}).meta({ id: 'UserDisable' });

/** Filters of a user listing (query parameters; pagination is the caller's `limit` and `cursor`). */
export const UserFilterSchema = z.strictObject({
  username_prefix: z.string().min(1).max(256).optional().describe('Usernames beginning with this (usernames are stored in lower case).'),
  email: z.string().min(1).max(254).optional().describe('Users with exactly this email address.'),
  disabled: z.stringbool().optional().describe('true: only disabled users; false: only enabled ones.'),
  directory: z.string().regex(/^[a-z0-9_-]{1,32}$/, 'a directory name: 1-32 of a-z 0-9 _ -').optional().describe('Users linked to the directory of this name.'),
  created_after: isoTime.optional().describe('Users created after this time (ISO 8601).'),
  created_before: isoTime.optional().describe('Users created before this time (ISO 8601).'),
});
export type UserFilter = z.input<typeof UserFilterSchema>;

export const UserSchema = z.object({
  id: z.string().describe('The user\'s `sub`: random, opaque, never reassigned.'),
  username: z.string().describe('Sign-in name; `<directory>:<id>` for a directory user (who signs in with the directory\'s name).'),
  version: z.int().min(1).describe('1 at creation, +1 per change by an administrator; send it as If-Match to change the user.'),
  claims: UserClaimsViewSchema,
  disabled: z.object({
    at: isoTime.describe('When the user was disabled.'),
    reason: z.string().describe('Why, as the administrator said.'),
    by: z.string().optional().describe('Who disabled the user (`<actor kind>:<id>`).'),
  }).nullable().describe('Set while the user is disabled: no sign-in, sessions ended, tokens revoked.'),
  directory: z.object({
    name: z.string().describe('The directory\'s configured name.'),
    id: z.string().describe('The entry\'s immutable id (entryUUID or objectGUID).'),
    dn: z.string().describe('The entry\'s DN at the last sign-in.'),
    synced_at: isoTime.describe('When the entry was last read, at a sign-in.'),
  }).nullable().describe('The directory entry a directory user is linked to; its claims come from there.'),
  created_at: isoTime.describe('When the user was created.'),
}).meta({ id: 'User' });
export type UserView = z.output<typeof UserSchema>;

export const SessionSchema = z.object({
  uid: z.string().describe('The session\'s identifier for administrators (not the cookie\'s value).'),
  login_at: isoTime.optional().describe('When the user signed in.'),
  expires_at: isoTime.optional().describe('When the session expires unless used.'),
  acr: z.string().optional().describe('The ACR of its last sign-in.'),
  amr: z.array(z.string()).optional().describe('The methods of its last sign-in (RFC 8176).'),
  clients: z.array(z.object({
    client_id: z.string(),
    sid: z.string().optional().describe('The `sid` the client got in its ID tokens (back-channel logout names it).'),
    grant_id: z.string().optional(),
  })).describe('The relying parties the user signed in to in this session.'),
}).meta({ id: 'Session' });
export type SessionView = z.output<typeof SessionSchema>;

export const GrantSchema = z.object({
  id: z.string().describe('The grant\'s id.'),
  client_id: z.string(),
  scope: z.string().describe('The OpenID Connect scopes granted.'),
  claims: z.array(z.string()).describe('Claims granted through the claims parameter.'),
  resources: z.record(z.string(), z.string()).describe('Scopes granted per resource server (RFC 8707).'),
  created_at: isoTime.optional(),
  expires_at: isoTime.optional(),
}).meta({ id: 'Grant' });
export type GrantView = z.output<typeof GrantSchema>;

/** What ending sessions did: how many, and what the relying parties were told. */
export const RevocationSchema = z.object({
  sessions: z.int().describe('Sessions ended.'),
  grants: z.int().describe('Grants revoked, with their tokens.'),
  notified: z.int().describe('Back-channel logout tokens delivered (OpenID Connect Back-Channel Logout 1.0).'),
  failed: z.int().describe('Back-channel logout tokens the relying party did not accept; the session is ended anyway.'),
}).meta({ id: 'Revocation' });
export type Revocation = z.output<typeof RevocationSchema>;

// ——— Views ———

const iso = (d: Date) => d.toISOString();
const secondsOf = (ms: number | Date) => Math.floor(+ms / 1000);

/** The claims as relying parties get them (idp/tokens.ts releases the same, by scope). */
export function claimsOf(a: Account): UserClaimsView {
  const c = a.claims ?? {};
  const out: Record<string, unknown> = {};
  if (a.email) out.email = a.email;
  out.email_verified = a.emailVerified;
  if (a.name) out.name = a.name;
  for (const [k, v] of Object.entries(c)) if (v !== undefined && v !== null) out[k] = v;
  out.updated_at = secondsOf(a.profileUpdatedAt);
  return out as UserClaimsView;
}

export function userView(a: Account): UserView {
  return {
    id: a.id,
    username: a.username,
    version: a.version,
    claims: claimsOf(a),
    disabled: a.disabled ? { at: iso(a.disabled.at), reason: a.disabled.reason, ...(a.disabled.by ? { by: a.disabled.by } : {}) } : null,
    directory: a.directory ? { name: a.directory.name, id: a.directory.id, dn: a.directory.dn, synced_at: iso(a.directory.syncedAt) } : null,
    created_at: iso(a.createdAt),
  };
}

interface SessionPayload {
  accountId?: string;
  loginTs?: number;
  exp?: number;
  acr?: string;
  amr?: string[];
  authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }>;
}

function sessionView(r: OidcRecord): SessionView {
  const p = r.payload as SessionPayload;
  return {
    uid: r.uid ?? '',
    ...(p.loginTs ? { login_at: iso(new Date(p.loginTs * 1000)) } : {}),
    ...(r.expiresAt ? { expires_at: iso(new Date(r.expiresAt)) } : {}),
    ...(p.acr ? { acr: p.acr } : {}),
    ...(p.amr ? { amr: p.amr } : {}),
    clients: Object.entries(p.authorizations ?? {}).map(([clientId, a]) => ({
      client_id: clientId, ...(a.sid ? { sid: a.sid } : {}), ...(a.grantId ? { grant_id: a.grantId } : {}),
    })),
  };
}

interface GrantPayload {
  clientId?: string;
  iat?: number;
  exp?: number;
  openid?: { scope?: string; claims?: string[] };
  resources?: Record<string, string>;
}

function grantView(r: OidcRecord): GrantView {
  const p = r.payload as GrantPayload;
  return {
    id: r.id,
    client_id: p.clientId ?? '',
    scope: p.openid?.scope ?? '',
    claims: p.openid?.claims ?? [],
    resources: p.resources ?? {},
    ...(p.iat ? { created_at: iso(new Date(p.iat * 1000)) } : {}),
    ...(r.expiresAt ? { expires_at: iso(new Date(r.expiresAt)) } : {}),
  };
}

// ——— Claims ———

/** Input claims → what the account stores (email and name beside the rest). */
function profileFrom(claims: UserClaimsInput): AccountProfile {
  const { email, email_verified, name, ...rest } = claims;
  return { email, emailVerified: email_verified ?? false, name, claims: rest as ProfileClaims };
}

/** RFC 7396 JSON merge patch of the stored profile: null removes, a value sets, absent keeps. */
function patched(a: Account, patch: UserClaimsPatch): AccountProfile {
  const { email, email_verified, name, address, ...rest } = patch;
  const claims: Record<string, unknown> = { ...(a.claims ?? {}) };
  for (const [k, v] of Object.entries(rest)) {
    if (v === null) delete claims[k];
    else if (v !== undefined) claims[k] = v;
  }
  if (address === null) {
    delete claims.address;
  } else if (address !== undefined) {
    const next: Record<string, unknown> = { ...(a.claims?.address ?? {}) };
    for (const [k, v] of Object.entries(address)) {
      if (v === null) delete next[k];
      else if (v !== undefined) next[k] = v;
    }
    if (Object.keys(next).length) claims.address = next as AddressClaim;
    else delete claims.address;
  }
  return {
    email: email === null ? undefined : (email ?? a.email),
    emailVerified: email_verified === null ? false : (email_verified ?? a.emailVerified),
    name: name === null ? undefined : (name ?? a.name),
    claims: claims as ProfileClaims,
  };
}

// ——— The service ———

export interface UserServiceDeps {
  storage: Storage;
  /** Password rules and argon2 costs (new passwords), throttle limits (unlock). */
  settings: ThrottleSettings & { argon2MemoryKib: number; argon2Iterations: number; passwordMinLength: number };
  /** Records a change on the audit trail (secrets are masked before it is called). */
  audit: (e: AuditInput) => Promise<void>;
  /** Tells relying parties registered for back-channel logout that a session ended; without it nobody is told. */
  logout?: LogoutNotifier | undefined;
}

const target = (id: string) => ({ type: 'user', id });
const actorName = (a: Actor) => `${a.kind}:${a.id}`;

export class UserService {
  readonly #d: UserServiceDeps;
  #hasher: PasswordHasher | undefined;

  constructor(deps: UserServiceDeps) {
    this.#d = deps;
  }

  /** Made at the first password set: it prepares a dummy argon2 hash, which costs a moment. */
  get #passwords(): PasswordHasher {
    const s = this.#d.settings;
    return (this.#hasher ??= new PasswordHasher({ memoryKib: s.argon2MemoryKib, iterations: s.argon2Iterations }, s.passwordMinLength));
  }

  /**
   * Runs a change and records it: on success the entry `fn` returns; on a refusal (one of
   * our typed errors) a `failure` entry with its reason, then the error goes on to the caller.
   */
  async #audited<T>(actor: Actor, action: string, id: string | undefined, fn: () => Promise<{ result: T; entry: Omit<AuditInput, 'actor' | 'action' | 'outcome'> }>): Promise<T> {
    let out;
    try {
      out = await fn();
    } catch (err) {
      const reason = err instanceof UserAdminError ? err.reason
        : err instanceof VersionConflictError ? 'version_conflict'
          : err instanceof z.ZodError ? 'invalid_input'
            : err instanceof Error && ['DuplicateError', 'PasswordError'].includes(err.name) ? err.name : undefined;
      // A refusal is recorded; a fault (the store down) is the log's, not the trail's. A
      // schema's refusal by field and message only: never the value refused (a password).
      const message = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ') : (err as Error).message;
      if (reason) await this.#d.audit({ actor, action, outcome: 'failure', ...(id ? { target: target(id) } : {}), detail: { reason, message } });
      throw err;
    }
    await this.#d.audit({ actor, action, outcome: 'success', ...out.entry });
    return out.result;
  }

  async #account(id: string): Promise<Account> {
    const a = await this.#d.storage.accounts.findById(id);
    if (!a) throw notFound(`with id "${id}"`);
    return a;
  }

  /** The user with this id. */
  async get(id: string): Promise<UserView> {
    return userView(await this.#account(id));
  }

  /**
   * The account a name given on a command line names: a local username (PRECIS-mapped as
   * `user add` stored it) or a directory user's `<directory>:<id>` as `user list` shows it.
   */
  async findByName(name: string): Promise<Account> {
    const linked = /^[a-z0-9_-]{1,32}:/.test(name);
    let username: string;
    try {
      username = linked ? name.toLowerCase() : validateUsername(name);
    } catch (err) {
      if (err instanceof PasswordError) throw new UserAdminError('not_found', 'user_not_found', `no user "${name}"`);
      throw err;
    }
    const a = await this.#d.storage.accounts.findByUsername(username);
    if (!a) throw new UserAdminError('not_found', 'user_not_found', `no user "${username}"`);
    return a;
  }

  /** One page of users matching the filter, by username. */
  async list(filter: UserFilter, page: PageRequest): Promise<Page<UserView>> {
    const f = UserFilterSchema.parse(filter);
    const storeFilter: AccountFilter = {
      usernamePrefix: f.username_prefix?.normalize('NFC').toLowerCase(),
      email: f.email,
      disabled: f.disabled,
      directory: f.directory,
      createdAfter: f.created_after ? new Date(f.created_after) : undefined,
      createdBefore: f.created_before ? new Date(f.created_before) : undefined,
    };
    const p = await this.#d.storage.accounts.page(storeFilter, { after: page.after, limit: Math.min(page.limit, ACCOUNT_PAGE_MAX) });
    return { items: p.items.map(userView), ...(p.next ? { next: p.next } : {}) };
  }

  /** Creates a local user. DuplicateError when the username (or a look-alike) is taken. */
  async create(actor: Actor, input: CreateUserInput): Promise<UserView> {
    return this.#audited(actor, 'user.create', undefined, async () => {
      const { username: raw, password, claims = {} } = CreateUserSchema.parse(input);
      let username: string;
      try {
        username = validateUsername(raw);
      } catch (err) {
        if (err instanceof PasswordError) throw new UserAdminError('invalid_request', 'invalid_username', err.message);
        throw err;
      }
      const profile = profileFrom(claims);
      let passwordHash = NO_PASSWORD;
      if (password !== undefined) {
        try {
          passwordHash = await this.#passwords.hash(password, { words: [username, profile.email?.split('@')[0], profile.name] });
        } catch (err) {
          if (err instanceof PasswordError) throw new UserAdminError('invalid_request', 'weak_password', err.message);
          throw err;
        }
      }
      const account = await this.#d.storage.accounts.create({
        id: crypto.randomUUID(), username, passwordHash, email: profile.email, emailVerified: profile.emailVerified, name: profile.name,
        ...(Object.keys(profile.claims).length ? { claims: profile.claims } : {}),
      });
      const after = userView(account);
      // The password itself is never recorded; only that one was set.
      return { result: after, entry: { target: target(account.id), after, detail: { password: password !== undefined ? 'set' : 'none' } } };
    });
  }

  /**
   * Changes claims (a JSON merge patch). `ifVersion`: the version the change was made against
   * (If-Match); without it, the version read now. A directory user's claims are the
   * directory's, refreshed at each sign-in: refused (`directory_managed`).
   */
  async update(actor: Actor, id: string, input: UpdateUserInput, ifVersion?: number): Promise<UserView> {
    return this.#audited(actor, 'user.update', id, async () => {
      const { claims: patch } = UpdateUserSchema.parse(input);
      const a = await this.#account(id);
      if (a.directory) throw new UserAdminError('conflict', 'directory_managed', `the claims of "${a.username}" come from directory ${a.directory.name} at each sign-in; change them there`);
      const before = userView(a);
      const updated = await this.#d.storage.accounts.updateProfile(id, patched(a, patch), new Date(), ifVersion ?? a.version);
      const after = userView(updated);
      return { result: after, entry: { target: target(id), before, after } };
    });
  }

  /** Disables the user and ends their sessions, grants and tokens (relying parties told). */
  async disable(actor: Actor, id: string, input: { reason: string }, ifVersion?: number): Promise<UserView & { revoked: Revocation }> {
    return this.#audited(actor, 'user.disable', id, async () => {
      const { reason } = DisableUserSchema.parse(input);
      const a = await this.#account(id);
      const before = userView(a);
      // Already disabled: nothing changes, but sessions are ended all the same (one made in the
      // moment before the disabling was stored could not be used, yet is removed here).
      const updated = a.disabled && ifVersion === undefined
        ? a
        : await this.#d.storage.accounts.setDisabled(id, { at: new Date(), reason, by: actorName(actor) }, ifVersion ?? a.version);
      const revoked = await this.#revokeAll(id);
      const after = userView(updated);
      return { result: { ...after, revoked }, entry: { target: target(id), before, after, detail: { ...revoked } } };
    });
  }

  /** Enables a disabled user (they sign in again; nothing ended is restored). */
  async enable(actor: Actor, id: string, ifVersion?: number): Promise<UserView> {
    return this.#audited(actor, 'user.enable', id, async () => {
      const a = await this.#account(id);
      const before = userView(a);
      const updated = !a.disabled && ifVersion === undefined ? a : await this.#d.storage.accounts.setDisabled(id, undefined, ifVersion ?? a.version);
      const after = userView(updated);
      return { result: after, entry: { target: target(id), before, after } };
    });
  }

  /** Clears the failed-sign-in lock (`idp user unlock`): the unrecognised-browser and second-factor buckets. */
  async unlock(actor: Actor, id: string): Promise<void> {
    await this.#audited(actor, 'user.unlock', id, async () => {
      await this.#account(id);
      await new LoginThrottle(this.#d.storage.attempts, this.#d.settings).unlock(id);
      return { result: undefined, entry: { target: target(id) } };
    });
  }

  /** Removes every second factor (`idp user mfa reset`: a lost phone); returns how many. */
  async resetFactors(actor: Actor, id: string): Promise<{ removed: number }> {
    return this.#audited(actor, 'factor.reset', id, async () => {
      await this.#account(id);
      // What they were, without their secrets (no seed, no code hash, no public key).
      const before = (await this.#d.storage.factors.list(id)).map((f) => ({ id: f.id, kind: f.kind, label: f.label, enrolled_via: f.enrolledVia }));
      const removed = await this.#d.storage.factors.removeAll(id);
      return { result: { removed }, entry: { target: target(id), before: { factors: before }, after: { factors: [] }, detail: { removed } } };
    });
  }

  /**
   * Deletes the user: sessions ended (relying parties told), then their records, the account
   * last (a failure half-way leaves a user an administrator can still find and delete again).
   * Login events stay: they are the audit trail.
   */
  async delete(actor: Actor, id: string): Promise<{ revoked: Revocation }> {
    return this.#audited(actor, 'user.delete', id, async () => {
      const a = await this.#account(id);
      const before = userView(a);
      const s = this.#d.storage;
      // A directory user's id is derived from the entry (adapters/directory directoryAccountId):
      // linked again at the next sign-in, the account would find its admin roles waiting.
      // First, so a role change made meanwhile (a version conflict) stops the deletion before
      // anything else is gone.
      const roles = await s.roles.get(id);
      if (roles.scopes.length) await s.roles.set(id, [], roles.version);
      const revoked = await this.#revokeAll(id);
      await s.oidc.removeByAccount(id);
      await s.factors.removeAll(id);
      await s.risk.forget(id);
      await new LoginThrottle(s.attempts, this.#d.settings).forget(id, a.trustedDevices);
      if (!(await s.accounts.delete(id))) throw notFound(`with id "${id}"`);
      return { result: { revoked }, entry: { target: target(id), before, detail: { ...revoked, ...(roles.scopes.length ? { roles_removed: roles.scopes } : {}) } } };
    });
  }

  // ——— Sessions and grants ———

  /** The user's live sessions. */
  async sessions(id: string): Promise<SessionView[]> {
    await this.#account(id);
    return (await this.#d.storage.oidc.listByAccount('Session', id, Date.now())).map(sessionView);
  }

  /** The user's grants (what each relying party may have tokens for). */
  async grants(id: string): Promise<GrantView[]> {
    await this.#account(id);
    return (await this.#d.storage.oidc.listByAccount('Grant', id, Date.now())).map(grantView);
  }

  /** Ends one session (by its `uid`): its grants and their tokens revoked, relying parties told. */
  async revokeSession(actor: Actor, id: string, uid: string): Promise<Revocation> {
    return this.#audited(actor, 'user.session_revoke', id, async () => {
      await this.#account(id);
      const rec = await this.#d.storage.oidc.findByUid('Session', uid, Date.now());
      if (!rec || rec.accountId !== id) throw new UserAdminError('not_found', 'session_not_found', `no session "${uid}" of this user`);
      const revoked = tally([await this.#endSession(rec, id)]);
      return { result: revoked, entry: { target: target(id), before: { session: sessionView(rec) }, detail: { ...revoked } } };
    });
  }

  /** Revokes one grant and its tokens; the relying party is told for each session that holds it. */
  async revokeGrant(actor: Actor, id: string, grantId: string): Promise<Revocation> {
    return this.#audited(actor, 'user.grant_revoke', id, async () => {
      await this.#account(id);
      const s = this.#d.storage;
      const now = Date.now();
      const rec = await s.oidc.find('Grant', grantId, now);
      if (!rec || rec.accountId !== id) throw new UserAdminError('not_found', 'grant_not_found', `no grant "${grantId}" of this user`);
      await this.#revokeGrant(grantId);
      const holders = (await s.oidc.listByAccount('Session', id, now)).flatMap((session) =>
        Object.entries((session.payload as SessionPayload).authorizations ?? {})
          .filter(([, a]) => a.grantId === grantId && a.sid)
          .map(([clientId, a]) => ({ clientId, sid: a.sid! })));
      const results = await Promise.all(holders.map((h) => this.#notify(h.clientId, id, h.sid)));
      const revoked = { sessions: 0, grants: 1, notified: count(results, 'sent'), failed: count(results, 'failed') };
      return { result: revoked, entry: { target: target(id), before: { grant: grantView(rec) }, detail: { ...revoked } } };
    });
  }

  /** Ends every session and revokes every grant of the user. */
  async revokeAll(actor: Actor, id: string): Promise<Revocation> {
    return this.#audited(actor, 'user.sessions_revoke', id, async () => {
      await this.#account(id);
      const revoked = await this.#revokeAll(id);
      return { result: revoked, entry: { target: target(id), detail: { ...revoked } } };
    });
  }

  async #revokeAll(id: string): Promise<Revocation> {
    const s = this.#d.storage;
    const now = Date.now();
    const sessions = await s.oidc.listByAccount('Session', id, now);
    const ended = await Promise.all(sessions.map((rec) => this.#endSession(rec, id)));
    // Grants no session names any more (the session expired, or its user signed out while an
    // offline grant persisted): revoked too.
    const left = await s.oidc.listByAccount('Grant', id, now);
    await Promise.all(left.map((g) => this.#revokeGrant(g.id)));
    const total = tally(ended);
    return { ...total, grants: total.grants + left.length };
  }

  /**
   * Ends a session as an administrator: removed first (nothing more is issued from it), then
   * each grant it holds is revoked with its tokens, whatever `persistsLogout` says (an
   * administrator ending a session means all of it), and each relying party registered for
   * back-channel logout gets a logout token naming the `sid` it knows (Back-Channel Logout 1.0 §2.5).
   */
  async #endSession(rec: OidcRecord, accountId: string): Promise<{ grants: number; results: LogoutResult[] }> {
    const s = this.#d.storage;
    await s.oidc.destroy('Session', rec.id);
    const auths = Object.entries((rec.payload as SessionPayload).authorizations ?? {});
    const grants = [...new Set(auths.map(([, a]) => a.grantId).filter((g): g is string => !!g))];
    await Promise.all(grants.map((g) => this.#revokeGrant(g)));
    const results = await Promise.all(auths.filter(([, a]) => a.sid).map(([clientId, a]) => this.#notify(clientId, accountId, a.sid!)));
    return { grants: grants.length, results };
  }

  async #revokeGrant(grantId: string): Promise<void> {
    await this.#d.storage.oidc.revokeByGrantId(grantId);
    await this.#d.storage.oidc.destroy('Grant', grantId);
  }

  async #notify(clientId: string, accountId: string, sid: string): Promise<LogoutResult> {
    return this.#d.logout ? this.#d.logout({ clientId, accountId, sid }) : 'none';
  }
}

const count = (results: LogoutResult[], r: LogoutResult) => results.filter((x) => x === r).length;

function tally(ended: { grants: number; results: LogoutResult[] }[]): Revocation {
  const results = ended.flatMap((e) => e.results);
  return { sessions: ended.length, grants: ended.reduce((n, e) => n + e.grants, 0), notified: count(results, 'sent'), failed: count(results, 'failed') };
}

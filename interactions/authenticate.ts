/**
 * First factor: username + password, throttled, checked locally (argon2id) or by a
 * directory (an LDAP bind). Unknown usernames and wrong passwords both take one argon2
 * verification and return the same `ok: false`, so neither the message nor the timing tells
 * them apart. Throttled attempts are answered without a verification (unknown usernames are
 * throttled exactly like real ones).
 *
 * Which checks a username: a local account of that name first (local accounts take
 * precedence, README "Directories"); otherwise the directories, in configuration order. A
 * directory user is linked to a local account at their first successful bind (just in
 * time), keyed by the entry's immutable id; their claims are refreshed at every sign-in.
 */
import crypto from 'node:crypto';
import type { Account, DirectoryProfile, ProfileClaims } from '../models/types.ts';
import type { Storage } from '../adapters/storage/port.ts';
import { DuplicateError } from '../adapters/storage/port.ts';
import {
  directoryAccountId, directoryUsername, isUnavailable, type AccountProblem, type Directories, type FoundUser,
} from '../adapters/directory/index.ts';
import { NO_PASSWORD } from '../models/types.ts';
import { normaliseUsername, type PasswordHasher } from './methods/password.ts';
import { isTicket, type LoginThrottle, type Ticket } from './throttle.ts';

export interface PasswordAttempt {
  username: string;
  password: string;
  ip: string;
  deviceId: string | undefined;
}

/**
 * `subject`: the account id, or a keyed stand-in for an unknown username (never the name
 * itself). A right password proves the first factor only: the ticket is handed on, and the
 * finish step resets counters and recognises the browser once the whole login succeeded.
 */
export type PasswordOutcome =
  | {
    ok: true; account: Account; subject: string; ticket: Ticket; method: 'password' | 'ldap';
    /** This sign-in linked the directory entry to a new local account (just in time). */
    linked?: true | undefined;
  }
  | {
    ok: false; reason: 'invalid'; account?: Account | undefined; subject: string;
    /**
     * For the log and the event only (the page says "incorrect" whatever it is): why a
     * directory refused, or that an administrator disabled the account (`account_disabled`).
     */
    refused?: { directory?: string | undefined; reason: AccountProblem | 'ambiguous' | 'directory_failures' | 'account_disabled' } | undefined;
  }
  | { ok: false; reason: 'throttled'; until: number | undefined; account?: Account | undefined; subject: string }
  /** A directory did not answer in time: nothing was decided and nothing stays counted. */
  | { ok: false; reason: 'unavailable'; directory: string; kind: string; subject: string };

/** The throttle subject of a username no account or directory entry has: `unknown:` + its keyed hash. */
const UNKNOWN_PREFIX = 'unknown:';
export const isUnknownSubject = (subject: string): boolean => subject.startsWith(UNKNOWN_PREFIX);

export class PasswordAuthenticator {
  readonly #storage: Storage;
  readonly #hasher: PasswordHasher;
  readonly #throttle: LoginThrottle;
  readonly #pepper: crypto.KeyObject;

  readonly #directories: Directories | undefined;
  readonly #signedIn: ((account: Account, readAt: number) => void) | undefined;

  /**
   * `pepper` keys the stand-in for unknown usernames; shared by all instances of a deployment.
   * `signedIn`: told of the local account a right password signed in, and of when it was read
   * (`performance.now()` when the read began; the server primes its account cache with it for
   * the requests of the same login that follow: adapters/account-cache.ts).
   */
  constructor(storage: Storage, hasher: PasswordHasher, throttle: LoginThrottle, pepper: Buffer, directories?: Directories, signedIn?: (account: Account, readAt: number) => void) {
    this.#signedIn = signedIn;
    this.#pepper = crypto.createSecretKey(pepper);
    this.#storage = storage;
    this.#hasher = hasher;
    this.#throttle = throttle;
    this.#directories = directories && directories.size > 0 ? directories : undefined;
  }

  async attempt(a: PasswordAttempt): Promise<PasswordOutcome> {
    const username = normaliseUsername(a.username);
    // On a monotonic clock, as the account cache counts (adapters/account-cache.ts).
    const readAt = performance.now();
    const local = await this.#storage.accounts.findByUsername(username);
    // A linked account's stored username is `<directory>:<id>`; typed, it signs in nothing.
    const account = local?.directory ? undefined : local;
    // A username two directory entries answer to: refused rather than guessed, like an unknown one.
    let ambiguous: string | undefined;
    if (!account && this.#directories) {
      let found: Awaited<ReturnType<Directories['find']>>;
      try {
        found = await this.#directories.find(a.username.trim());
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        return { ok: false, reason: 'unavailable', directory: err.directory, kind: err.kind, subject: this.#unknown(username) };
      }
      if (found && 'user' in found) return this.#directoryAttempt(a, found);
      ambiguous = found?.ambiguous.name;
    }
    // Unknown usernames get a bucket too (keyed by a hash, not the name), so throttling
    // behaves the same whether or not the account exists.
    const subject = account?.id ?? this.#unknown(username);
    const recognised = account && a.deviceId && account.trustedDevices.includes(a.deviceId) ? a.deviceId : undefined;

    const ticket = await this.#throttle.begin(subject, a.ip, recognised);
    // A throttled attempt is answered at once: the page says it was paused (alike for known
    // and unknown usernames), so spending an argon2 verification on it would hide nothing
    // and only hand the attacker our CPU.
    if (!isTicket(ticket)) return { ok: false, reason: 'throttled', until: ticket.until, account, subject };
    const result = account ? await this.#hasher.verify(account.passwordHash, a.password) : { ok: await this.#hasher.burn(a.password), needsRehash: false };
    // A failure stays counted in the buckets it was reserved in: nothing more to do.
    if (!account || !result.ok) {
      return { ok: false, reason: 'invalid', account, subject, ...(ambiguous ? { refused: { directory: ambiguous, reason: 'ambiguous' as const } } : {}) };
    }
    // Disabled by an administrator: refused like a wrong password (the password was checked
    // all the same, so neither the answer nor its timing tells), and counted as a failure.
    if (account.disabled) return { ok: false, reason: 'invalid', account, subject, refused: { reason: 'account_disabled' } };
    if (result.needsRehash) await this.#storage.accounts.setPasswordHash(account.id, await this.#hasher.hash(a.password));
    // Local accounts only: a directory-linked one is refreshed from its entry on the way (a
    // change, which evicts it), so its read here is not what the tokens should carry.
    this.#signedIn?.(account, readAt);
    return { ok: true, account, subject, ticket, method: 'password' };
  }

  #unknown(username: string): string {
    return `${UNKNOWN_PREFIX}${crypto.createHmac('sha256', this.#pepper).update(username).digest('base64url')}`;
  }

  /**
   * A directory user: counted first (in a bucket that stops below the directory's own
   * lockout and forgets with its window, one for all browsers, since the directory counts
   * every failed bind whatever the browser), then refused without a bind when the entry
   * says disabled or expired or the directory has counted as many failures as we allow,
   * then the bind. The password is never stored.
   */
  async #directoryAttempt(a: PasswordAttempt, found: FoundUser): Promise<PasswordOutcome> {
    const directories = this.#directories!;
    const { directory, user } = found;
    const subject = directoryAccountId(directory.name, user.id);
    const limits = { max: directory.lockout.maxFailures, windowMs: directory.lockout.windowSeconds * 1000 };
    const ticket = await this.#throttle.begin(subject, a.ip, undefined, Date.now(), limits);
    if (!isTicket(ticket)) return { ok: false, reason: 'throttled', until: ticket.until, subject };
    // Every refusal also spends one argon2 verification: an unknown username does (above), so
    // without it a directory user's wrong password would answer measurably faster and tell
    // that the username exists.
    const refused = async (reason?: AccountProblem | 'directory_failures') => {
      await this.#hasher.burn(a.password);
      return { ok: false as const, reason: 'invalid' as const, subject, ...(reason ? { refused: { directory: directory.name, reason } } : {}) };
    };
    // Refused before any bind: a bind would only add to the directory's count.
    if (user.problem === 'disabled' || user.problem === 'expired') return refused(user.problem);
    if (user.directoryFailures !== undefined && user.directoryFailures >= directory.lockout.maxFailures) return refused('directory_failures');
    let outcome;
    let groups;
    try {
      outcome = await directories.verify(found, a.password);
      if (outcome.ok) groups = await directories.groups(found);
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      // A bind that timed out may have reached the directory and been counted there as a
      // failure: refunding it would let an attacker who slows the directory down bind
      // without limit and lock the user in the directory. Only after a successful bind
      // (the group search failed) or when the bind never left is the attempt uncounted.
      await this.#throttle.cancel(ticket, { keepAccount: !outcome && err.kind === 'timeout' });
      return { ok: false, reason: 'unavailable', directory: err.directory, kind: err.kind, subject };
    }
    if (!outcome.ok) return refused(outcome.reason === 'invalid_credentials' ? undefined : outcome.reason);
    // A right password for an entry the directory flags (must change it, expired) is still refused.
    if (user.problem) return refused(user.problem);
    const { account, linked } = await this.#link(found, subject, groups);
    // The directory may let them in; this provider's administrator has disabled the account.
    if (account.disabled) return { ok: false, reason: 'invalid', subject, refused: { directory: directory.name, reason: 'account_disabled' } };
    return { ok: true, account, subject, ticket, method: 'ldap', ...(linked ? { linked } : {}) };
  }

  /** Just-in-time link on the first sign-in; afterwards the claims are refreshed. */
  async #link(found: FoundUser, id: string, groups: string[] | undefined): Promise<{ account: Account; linked?: true }> {
    const { directory, user } = found;
    // Every mapped claim but the three the account holds itself (email, its verification, name).
    const { email, email_verified, name, ...mapped } = user.claims;
    // Groups are the lookup's (`groups`), whatever the entry's memberOf said.
    const claims: ProfileClaims = { ...mapped, groups };
    if (groups === undefined) delete claims.groups;
    const existing = await this.#storage.accounts.findById(id);
    const profile: DirectoryProfile = {
      directory: { name: directory.name, id: user.id, dn: user.dn, syncedAt: new Date() },
      email, emailVerified: email_verified === true, name, claims,
    };
    // updated_at (OIDC Core §5.1) moves only when what the directory says of the user changed,
    // not at every sign-in.
    if (existing && userInformation(existing) !== userInformation(profile)) profile.profileUpdatedAt = new Date();
    if (!existing) {
      try {
        const account = await this.#storage.accounts.create({
          id, username: directoryUsername(directory.name, user.id), passwordHash: NO_PASSWORD,
          email, emailVerified: profile.emailVerified, name, directory: profile.directory, claims: profile.claims,
        });
        return { account, linked: true };
      } catch (err) {
        // Two first sign-ins at once: the other one linked it.
        if (!(err instanceof DuplicateError)) throw err;
      }
    }
    await this.#storage.accounts.syncDirectoryProfile(id, profile);
    // What the store now holds, without reading it back (the parallel first sign-in's account when it won).
    const base = existing ?? (await this.#storage.accounts.findById(id))!;
    return { account: { ...base, ...profile, updatedAt: new Date(), profileUpdatedAt: profile.profileUpdatedAt ?? base.profileUpdatedAt } };
  }
}

/** What a user's information is, as one comparable text (keys sorted, absent values left out). */
function userInformation(a: Pick<Account, 'email' | 'emailVerified' | 'name' | 'claims'>): string {
  const sorted = (v: unknown): unknown => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined && x !== null).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, sorted(x)]))
    : v);
  return JSON.stringify(sorted({ email: a.email, emailVerified: a.emailVerified, name: a.name, claims: a.claims ?? {} }));
}

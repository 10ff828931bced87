/**
 * Who is signed in on the account page, and whether they authenticated recently enough to
 * change how they sign in. The user is always the one of oidc-provider's session (its
 * cookie, read and verified by oidc-provider), never anything in the request; the session's
 * uid binds the page's CSRF tokens, its pending authenticator app and its passkey challenges.
 *
 * Adding or removing an authenticator needs a fresh authentication (issue 7; NIST SP
 * 800-63B-4 asks for an authenticated session before binding another authenticator, section
 * "Binding an Additional Authenticator"): within the last REAUTH_WINDOW_SECONDS, at the level
 * `changeLevel` says. A session that is not fresh is sent through the sign-in again with
 * `max_age` and `acr_values` (signin.ts).
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { SecretBox } from '../../adapters/crypto.ts';
import type { Storage } from '../../adapters/storage/port.ts';
import type { Directories } from '../../adapters/directory/index.ts';
import { UserError } from '../../idp/errors.ts';
import type { Events } from '../../idp/events.ts';
import type { Logger } from '../../idp/log.ts';
import type { Account, AuditInput, FactorRecord } from '../../models/types.ts';
import { sessionLevelIndex, type AssuranceLevel } from '../../policies/assurance.ts';
import type { Csrf } from '../csrf.ts';
import { readForm } from '../form.ts';
import type { WebAuthn } from '../methods/webauthn.ts';

/**
 * How recent the authentication must be to add or remove an authenticator: the `max_age`
 * of the re-authentication (OIDC Core §3.1.2.1). Five minutes: time to scan a QR code or
 * find a security key after confirming, short enough that a browser left signed in cannot
 * be used to swap the user's authenticators.
 */
export const REAUTH_WINDOW_SECONDS = 300;

export interface AccountDeps {
  provider: Provider;
  storage: Storage;
  /** The account page's own CSRF instance (its own cookie, under /account). */
  csrf: Csrf;
  events: Events;
  log: Logger;
  /** Seals the pending authenticator app's secret. */
  box: SecretBox;
  /** Keys the hashes of recovery codes (HKDF of the data key). */
  recoveryKey: Buffer;
  /** ISSUER: the callback URL derives from it. */
  issuer: string;
  /** The issuer label authenticator apps show (otpauth:// `issuer`). */
  issuerName: string;
  webauthn: WebAuthn;
  /** The policy's assurance levels now (they reload with the policy). */
  levels(): readonly AssuranceLevel[];
  /** Session TTL (s): the session's last use is its expiry minus this. */
  sessionIdleTtl: number;
  /** SESSION_MAX_AGE (s): an older authentication is no longer a signed-in user. */
  sessionMaxAge: number;
  maxFormBytes: number;
  /** Cookies get the Secure attribute (https issuer). */
  secure: boolean;
  /** The directories behind linked accounts (absent: none configured). */
  directories?: Directories | undefined;
  /** DIRECTORY_SESSION_GRACE in ms: how long a linked entry seen active rides out an outage. */
  directorySessionGraceMs?: number | undefined;
  /** The audit trail (idp/audit.ts): factors added and removed, recorded before the page answers. */
  audit: (e: AuditInput) => Promise<void>;
}

export interface SignedIn {
  /** The session's uid: stable for the session's life (oidc-provider renews its id, not its uid). */
  uid: string;
  account: Account;
  /** auth_time of the session's last authentication (epoch s). */
  authTime: number;
  /** Index of the strongest level the session meets now (reauthentication limits included); -1: none. */
  level: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The signed-in user, or undefined: no session, a session past SESSION_MAX_AGE, or an account gone. */
export async function signedIn(deps: AccountDeps, ctx: Context): Promise<SignedIn | undefined> {
  const session = await deps.provider.Session.get(ctx);
  const accountId = session.accountId;
  const authTime = session.authTime();
  if (!accountId || authTime === undefined) return undefined;
  const now = nowSeconds();
  // The login prompt's session_max_age check (idp/provider.ts) would send an RP's user to
  // sign in again; the account page does the same.
  if (now - authTime > deps.sessionMaxAge) return undefined;
  const account = await deps.storage.accounts.findById(accountId);
  if (!account) return undefined;
  // The session is read here, not through oidc-provider's findAccount (idp/tokens.ts), so a
  // linked account's entry is checked here too: a user disabled or removed in their
  // directory must not keep managing how the account signs in (issue 9: sessions stop at
  // their next use).
  if (account.directory) {
    const state = deps.directories
      ? await deps.directories.sessionState(account.directory.name, account.directory.id, deps.directorySessionGraceMs ?? 0)
      : 'ended';
    if (state === 'unavailable') throw new UserError('directory_unavailable');
    if (state === 'ended') return undefined;
  }
  const exp = typeof session.exp === 'number' ? session.exp : undefined;
  const level = sessionLevelIndex({ amr: session.amr ?? [], authTime, lastActive: exp ? exp - deps.sessionIdleTtl : undefined }, deps.levels(), now);
  return { uid: session.uid, account, authTime, level };
}

/** A second factor the account could present at a sign-in: an app, a passkey, a recovery code left. */
export function holdsSecondFactor(factors: readonly FactorRecord[]): boolean {
  return factors.some((f) => f.kind === 'totp' || f.kind === 'webauthn'
    || (f.kind === 'recovery' && (f.recovery?.hashes.length ?? 0) > (f.recovery?.used.length ?? 0)));
}

/**
 * The level at which the user re-authenticates before changing their authenticators: the
 * session's own level, and at least the lowest multi-factor level that is not
 * phishing-resistant (AAL2 by default) whenever the account holds a second factor. Without
 * that floor a session that signed in with the password alone (a low-risk login) could
 * remove the user's authenticator app or bind an attacker's own with the password only,
 * which is exactly what a second factor is there to stop. Not the phishing-resistant level:
 * a user who lost their passkey must still be able to replace it with a recovery code.
 */
export function changeLevel(levels: readonly AssuranceLevel[], sessionLevel: number, factors: readonly FactorRecord[]): number {
  const multiFactor = levels.findIndex((l) => l.factors >= 2 && !l.phishing_resistant);
  return Math.max(sessionLevel, holdsSecondFactor(factors) ? multiFactor : -1, 0);
}

/** Whether the session may change authenticators now, and if not the level to confirm at. */
export function freshness(deps: AccountDeps, s: SignedIn, factors: readonly FactorRecord[]): { fresh: boolean; level: AssuranceLevel } {
  const levels = deps.levels();
  const index = changeLevel(levels, s.level, factors);
  const fresh = nowSeconds() - s.authTime <= REAUTH_WINDOW_SECONDS && s.level >= index;
  return { fresh, level: levels[index]! };
}

/**
 * The common start of every account POST: the signed-in user (refused when signed out, before
 * the body is read), then the form and its CSRF token, bound to the session.
 */
export async function loadPost(deps: AccountDeps, ctx: Context): Promise<{ s: SignedIn; form: Map<string, string> }> {
  const s = await signedIn(deps, ctx);
  if (!s) throw new UserError('account_signed_out');
  const form = await readForm(ctx, deps.maxFormBytes);
  deps.csrf.verify(ctx, s.uid, form.get('csrf'));
  return { s, form };
}

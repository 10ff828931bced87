/**
 * Failed-attempt throttling (NIST SP 800-63B-4 §3.2.2 "Rate Limiting").
 *
 * Buckets of consecutive failures:
 * - per account, for browsers the account does not recognise: after `accountFree` failures
 *   each attempt waits (1 s, doubling, capped at `maxDelay`); at `accountMax` (≤ 100, the
 *   NIST limit) attempts stop until a successful login or `idp user unlock`;
 * - per account and recognised browser (device cookie): the same rules, but a separate
 *   counter, so an attacker hammering the account from many IPs cannot lock out its owner;
 * - per IP address, across all accounts (credential stuffing): delay after `ipFree`
 *   failures, refusal at `ipMax`, forgotten after `ipWindow` seconds without failure.
 *
 * Every attempt is counted before the password is checked, in one atomic step with the
 * limit and the delay check (AttemptStore.reserve). The delay is derived from the count and
 * the time of the newest counted attempt, so it applies the moment an attempt is
 * reserved, not after its password check: of 100 parallel attempts at most the free
 * allowance is verified, and a further one only once its delay since the newest counted
 * attempt has passed (which a burst the server takes longer than that to read may reach).
 * A refused attempt is not counted: flooding cannot extend a lockout.
 *
 * Counters are reset (and the IP's count refunded) only by `succeeded`, which the finish
 * step calls after the whole login succeeded, never on a right password alone.
 */
import type { AttemptStore } from '../adapters/storage/port.ts';

export interface ThrottleSettings {
  accountFreeFailures: number;
  accountMaxFailures: number;
  ipFreeFailures: number;
  ipMaxFailures: number;
  ipWindow: number;
  maxDelay: number;
}

/** Seconds to wait after the `count`-th consecutive failure. */
export function delayAfter(count: number, free: number, maxDelaySeconds: number): number {
  if (count < free) return 0;
  return Math.min(2 ** Math.min(count - free, 30), maxDelaySeconds);
}

/** How much later than its window a counter is swept (LoginThrottle.sweep): clock skew between instances, requests in flight. */
export const SWEEP_MARGIN_MS = 15 * 60_000;

export const accountKey = (subject: string, deviceId?: string) => (deviceId ? `acct:${subject}:dev:${deviceId}` : `acct:${subject}`);
export const ipKey = (ip: string) => `ip:${ip}`;
/** Second-factor failures of an account (one-time codes, recovery codes, passkeys). */
export const factorKey = (accountId: string) => `factor:${accountId}`;

export interface Ticket {
  readonly accountKey: string;
  readonly ipKey: string;
  /** The IP bucket's record of this attempt, refunded when the login succeeds. */
  readonly ipAttempt: string;
  /** The account bucket's record of this attempt, refunded when the attempt could not be decided (cancel). */
  readonly accountAttempt?: string | undefined;
}

/**
 * An account bucket with limits of its own: a directory account's, whose failures the
 * directory counts too, stops below the directory's lockout and forgets with its window.
 */
export interface AccountLimits {
  max: number;
  windowMs: number;
}

/** Why an attempt was refused, and until when (epoch ms; undefined: until unlocked or the window passes). */
export interface Refusal {
  readonly until: number | undefined;
}

export class LoginThrottle {
  readonly #store: AttemptStore;
  readonly #s: ThrottleSettings;
  readonly #accountWait: (count: number) => number;
  readonly #ipWait: (count: number) => number;

  constructor(store: AttemptStore, settings: ThrottleSettings) {
    this.#store = store;
    this.#s = settings;
    this.#accountWait = (n) => delayAfter(n, settings.accountFreeFailures, settings.maxDelay) * 1000;
    this.#ipWait = (n) => delayAfter(n, settings.ipFreeFailures, settings.maxDelay) * 1000;
  }

  /**
   * Counts an attempt against the IP and the account bucket, or refuses it.
   * `subject` is the account id, or a stand-in for an unknown username, so that unknown and
   * known usernames behave alike.
   */
  async begin(subject: string, ip: string, recognisedDevice: string | undefined, now = Date.now(), limits?: AccountLimits): Promise<Ticket | Refusal> {
    const ipk = ipKey(ip);
    const ipRes = await this.#store.reserve(ipk, { now, max: this.#s.ipMaxFailures, windowMs: this.#s.ipWindow * 1000, waitMs: this.#ipWait });
    if (!ipRes.allowed || !ipRes.id) return { until: ipRes.reason === 'delayed' ? ipRes.blockedUntil : now + this.#s.ipWindow * 1000 };
    const acctk = accountKey(subject, recognisedDevice);
    const acctRes = await this.#store.reserve(acctk, {
      now, max: limits?.max ?? this.#s.accountMaxFailures, windowMs: limits?.windowMs ?? Infinity, waitMs: this.#accountWait,
    });
    if (!acctRes.allowed) {
      // The IP's attempt was not made after all.
      await this.#store.refund(ipk, ipRes.id);
      // A bucket with a window opens again once the window has passed since its newest
      // attempt, which was made by now: now + window is the latest it can be.
      const windowEnd = limits && Number.isFinite(limits.windowMs) ? now + limits.windowMs : undefined;
      return { until: acctRes.reason === 'delayed' ? acctRes.blockedUntil : windowEnd };
    }
    return { accountKey: acctk, ipKey: ipk, ipAttempt: ipRes.id, accountAttempt: acctRes.id };
  }

  /**
   * The attempt could not be decided (the directory did not answer the bind): it is
   * uncounted everywhere, so an outage never adds up to a lockout. `keepAccount`: the
   * account's count stays, for an attempt that may have been counted elsewhere anyway (a
   * bind that timed out after it was sent: the directory may have counted it).
   */
  async cancel(t: Ticket, { keepAccount = false }: { keepAccount?: boolean } = {}): Promise<void> {
    await this.#store.refund(t.ipKey, t.ipAttempt);
    if (t.accountAttempt && !keepAccount) await this.#store.refund(t.accountKey, t.accountAttempt);
  }

  /**
   * Counts a second-factor attempt of the account, or refuses it: the same rules as the
   * account's password bucket (free attempts, then a doubling delay, a hard stop at the
   * limit), in its own bucket so a right password does not open more guesses at a 6-digit
   * code (NIST SP 800-63B-4 §3.2.2 applies to every authenticator that can be guessed).
   * A refusal is not counted; a counted attempt is cleared only by a finished login.
   */
  async beginFactor(accountId: string, now = Date.now()): Promise<{ ok: true } | Refusal> {
    const res = await this.#store.reserve(factorKey(accountId), { now, max: this.#s.accountMaxFailures, windowMs: Infinity, waitMs: this.#accountWait });
    if (res.allowed) return { ok: true };
    return { until: res.reason === 'delayed' ? res.blockedUntil : undefined };
  }

  /**
   * Reclaims the store's space (run periodically): address buckets once `ipWindow` has passed
   * since their newest failure, and buckets a success emptied once the longest delay has
   * passed. Neither changes a decision: both already count as empty. Account buckets with
   * failures stay until a success or an unlock, however old (they have no window).
   */
  async sweep(now = Date.now()): Promise<void> {
    // Late by a margin, since it only reclaims space: another instance's clock may run behind
    // this one's, and a request may have read its time before this sweep read its own.
    await this.#store.sweep(now, [{ prefix: ipKey(''), windowMs: this.#s.ipWindow * 1000 + SWEEP_MARGIN_MS }], this.#s.maxDelay * 1000 + SWEEP_MARGIN_MS);
  }

  /**
   * The whole login succeeded: ends the account's run of failures on every path into it.
   * Called by the finish step only: a right password that the risk engine blocked or
   * challenged stays counted (a block counts as a failure).
   */
  async succeeded(t: Ticket | undefined, subject: string): Promise<void> {
    // A step-up of an existing session presented no password: only the factor bucket.
    if (!t) return this.#store.settle([factorKey(subject)]);
    // A success does not clear the IP bucket (one valid account must not launder an IP's
    // failures) but is not held against it either: its attempt is refunded.
    await this.#store.settle([...new Set([factorKey(subject), t.accountKey, accountKey(subject)])], { key: t.ipKey, attemptId: t.ipAttempt });
  }

  /** Admin unlock: clears the account's unrecognised-browser and second-factor counters. */
  async unlock(subject: string): Promise<void> {
    await this.#store.reset(accountKey(subject));
    await this.#store.reset(factorKey(subject));
  }

  /**
   * Account deletion: every bucket of the account (its unrecognised-browser, second-factor and
   * per-browser ones, for the `devices` it recognised). The IP buckets are not the account's.
   */
  async forget(subject: string, devices: readonly string[]): Promise<void> {
    await Promise.all([accountKey(subject), factorKey(subject), ...devices.map((d) => accountKey(subject, d))].map((k) => this.#store.reset(k)));
  }

  async failures(subject: string, now = Date.now()) {
    return this.#store.get(accountKey(subject), now, Infinity, this.#accountWait);
  }
}

export const isTicket = (t: Ticket | Refusal): t is Ticket => 'accountKey' in t;

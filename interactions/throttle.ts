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
 * limit check (AttemptStore.reserve), so parallel attempts are all counted and none slip
 * past a limit. A refused attempt is not counted: flooding cannot extend a lockout.
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

export const accountKey = (subject: string, deviceId?: string) => (deviceId ? `acct:${subject}:dev:${deviceId}` : `acct:${subject}`);
export const ipKey = (ip: string) => `ip:${ip}`;

export interface Ticket {
  readonly accountKey: string;
  readonly ipKey: string;
  readonly accountCount: number;
  readonly ipCount: number;
}

export class LoginThrottle {
  readonly #store: AttemptStore;
  readonly #s: ThrottleSettings;

  constructor(store: AttemptStore, settings: ThrottleSettings) {
    this.#store = store;
    this.#s = settings;
  }

  /**
   * Counts an attempt against the IP and the account bucket, or refuses it.
   * `subject` is the account id, or a stand-in for an unknown username, so that unknown and
   * known usernames behave alike.
   */
  async begin(subject: string, ip: string, recognisedDevice: string | undefined, now = Date.now()): Promise<Ticket | undefined> {
    const ipk = ipKey(ip);
    const ipRes = await this.#store.reserve(ipk, { now, max: this.#s.ipMaxFailures, windowMs: this.#s.ipWindow * 1000 });
    if (!ipRes.allowed) return undefined;
    const acctk = accountKey(subject, recognisedDevice);
    const acctRes = await this.#store.reserve(acctk, { now, max: this.#s.accountMaxFailures, windowMs: Infinity });
    if (!acctRes.allowed) {
      // The IP's attempt was not made after all.
      await this.#store.refund(ipk);
      return undefined;
    }
    return { accountKey: acctk, ipKey: ipk, accountCount: acctRes.count, ipCount: ipRes.count };
  }

  async failed(t: Ticket, now = Date.now()): Promise<void> {
    const a = delayAfter(t.accountCount, this.#s.accountFreeFailures, this.#s.maxDelay);
    if (a > 0) await this.#store.delay(t.accountKey, now + a * 1000);
    const i = delayAfter(t.ipCount, this.#s.ipFreeFailures, this.#s.maxDelay);
    if (i > 0) await this.#store.delay(t.ipKey, now + i * 1000);
  }

  /** A success ends the account's run of consecutive failures, on every path into it. */
  async succeeded(t: Ticket, subject: string): Promise<void> {
    await this.#store.reset(t.accountKey);
    if (t.accountKey !== accountKey(subject)) await this.#store.reset(accountKey(subject));
    // A success does not clear the IP bucket (one valid account must not launder an IP's
    // failures) but is not held against it either.
    await this.#store.refund(t.ipKey);
  }

  /** Admin unlock: clears the account's unrecognised-browser counter. */
  async unlock(subject: string): Promise<void> {
    await this.#store.reset(accountKey(subject));
  }

  async failures(subject: string, now = Date.now()) {
    return this.#store.get(accountKey(subject), now, Infinity);
  }
}

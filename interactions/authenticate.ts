/**
 * First factor: username + local password, throttled. Unknown usernames and wrong
 * passwords both take one argon2 verification and return the same `ok: false`, so neither
 * the message nor the timing tells them apart. Throttled attempts are answered without a
 * verification (unknown usernames are throttled exactly like real ones).
 */
import crypto from 'node:crypto';
import type { Account } from '../models/types.ts';
import type { Storage } from '../adapters/storage/port.ts';
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
  | { ok: true; account: Account; subject: string; ticket: Ticket }
  | { ok: false; reason: 'invalid'; account?: Account | undefined; subject: string }
  | { ok: false; reason: 'throttled'; until: number | undefined; account?: Account | undefined; subject: string };

export class PasswordAuthenticator {
  readonly #storage: Storage;
  readonly #hasher: PasswordHasher;
  readonly #throttle: LoginThrottle;
  readonly #pepper: Buffer;

  /** `pepper` keys the stand-in for unknown usernames; shared by all instances of a deployment. */
  constructor(storage: Storage, hasher: PasswordHasher, throttle: LoginThrottle, pepper: Buffer) {
    this.#pepper = pepper;
    this.#storage = storage;
    this.#hasher = hasher;
    this.#throttle = throttle;
  }

  async attempt(a: PasswordAttempt): Promise<PasswordOutcome> {
    const username = normaliseUsername(a.username);
    const account = await this.#storage.accounts.findByUsername(username);
    // Unknown usernames get a bucket too (keyed by a hash, not the name), so throttling
    // behaves the same whether or not the account exists.
    const subject = account?.id ?? `unknown:${crypto.createHmac('sha256', this.#pepper).update(username).digest('base64url')}`;
    const recognised = account && a.deviceId && account.trustedDevices.includes(a.deviceId) ? a.deviceId : undefined;

    const ticket = await this.#throttle.begin(subject, a.ip, recognised);
    // A throttled attempt is answered at once: the page says it was paused (alike for known
    // and unknown usernames), so spending an argon2 verification on it would hide nothing
    // and only hand the attacker our CPU.
    if (!isTicket(ticket)) return { ok: false, reason: 'throttled', until: ticket.until, account, subject };
    const result = account ? await this.#hasher.verify(account.passwordHash, a.password) : { ok: await this.#hasher.burn(a.password), needsRehash: false };
    // A failure stays counted in the buckets it was reserved in: nothing more to do.
    if (!account || !result.ok) return { ok: false, reason: 'invalid', account, subject };
    if (result.needsRehash) await this.#storage.accounts.setPasswordHash(account.id, await this.#hasher.hash(a.password));
    return { ok: true, account, subject, ticket };
  }
}

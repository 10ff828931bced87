/**
 * First factor: username + local password, throttled. Unknown usernames, wrong passwords
 * and throttled attempts all take one argon2 verification and return the same `ok: false`,
 * so neither the message nor the timing tells them apart.
 */
import crypto from 'node:crypto';
import type { Account } from '../models/types.ts';
import type { Storage } from '../adapters/storage/port.ts';
import { normaliseUsername, type PasswordHasher } from './methods/password.ts';
import type { LoginThrottle } from './throttle.ts';

export interface PasswordAttempt {
  username: string;
  password: string;
  ip: string;
  deviceId: string | undefined;
}

/** `subject`: the account id, or a keyed stand-in for an unknown username (never the name itself). */
export type PasswordOutcome =
  | { ok: true; account: Account; subject: string }
  | { ok: false; reason: 'throttled' | 'invalid'; account?: Account | undefined; subject: string };

/** Number of recognised browsers remembered per account. */
const TRUSTED_DEVICES_KEPT = 20;

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
    if (!ticket) {
      await this.#hasher.burn(a.password);
      return { ok: false, reason: 'throttled', account, subject };
    }
    const result = account ? await this.#hasher.verify(account.passwordHash, a.password) : { ok: await this.#hasher.burn(a.password), needsRehash: false };
    if (!account || !result.ok) {
      await this.#throttle.failed(ticket);
      return { ok: false, reason: 'invalid', account, subject };
    }
    await this.#throttle.succeeded(ticket, account.id);
    if (result.needsRehash) await this.#storage.accounts.setPasswordHash(account.id, await this.#hasher.hash(a.password));
    if (a.deviceId) await this.#storage.accounts.addTrustedDevice(account.id, a.deviceId, TRUSTED_DEVICES_KEPT);
    return { ok: true, account, subject };
  }
}

/**
 * A short-lived cache of accounts for oidc-provider's findAccount (idp/tokens.ts), so that a
 * login does not read its account three times: the sign-in POST reads it (by username, with
 * its password hash) and primes this cache, and the resume of the authorization and the code
 * exchange that follow within the same second are served from it. A refresh or userinfo
 * within the life of an entry is served from it too.
 *
 * Bounded staleness, however a change is made: an entry is served for at most `lifeMs` from
 * the moment the read that produced it began. So an account disabled, deleted or edited in
 * another process or instance (`idp user disable`, the admin API of another instance, an edit
 * in the database) still gets its tokens for at most `lifeMs` (ACCOUNT_CACHE_MS, default 1 s),
 * and `lifeMs = 0` turns the cache off. A change made through this process's store is seen at
 * once: evictingAccountStore() drops the entry when the account is changed.
 *
 * What it holds: the account without its password hash and recognised browsers (findAccount
 * needs neither, and a hash has no business in a cache). Unknown ids are not cached (a flood
 * of made-up `sub`s cannot fill it), and it holds at most `maxEntries` accounts, the oldest
 * dropped first.
 */
import type { Account } from '../models/types.ts';
import type { AccountStore } from './storage/port.ts';

/** What the cache keeps of an account: everything findAccount reads, no secret. */
export type CachedAccount = Omit<Account, 'passwordHash' | 'trustedDevices'>;

export interface AccountCacheStats {
  hits: number;
  misses: number;
}

/**
 * The cache's clock: monotonic (`performance.now()`, milliseconds), not the wall clock. A step
 * of the wall clock (NTP correcting it, a VM resumed) would otherwise lengthen an entry's life
 * by the step, and let a read that began before a change made here look as if it began after.
 */
const clock = (): number => performance.now();

export class AccountCache {
  readonly #lifeMs: number;
  readonly #maxEntries: number;
  /** `at`: when the read that produced the value began, on `clock` (its life runs from there). */
  readonly #entries = new Map<string, { value: CachedAccount; at: number }>();
  /**
   * When each account was last evicted: a read that began at or before that time may hold
   * the account as it was before the change, so it is not kept (also a sign-in's read that
   * primes after its password check, tens of milliseconds later). Only evictions younger
   * than the life matter (an older read is never kept), so older ones are pruned.
   */
  readonly #evictedAt = new Map<string, number>();
  #clearedAt = -Infinity;
  readonly stats: AccountCacheStats = { hits: 0, misses: 0 };

  constructor(lifeMs: number, maxEntries = 10_000) {
    this.#lifeMs = lifeMs;
    this.#maxEntries = maxEntries;
  }

  /**
   * The account by id: from the cache while its entry is younger than the life, otherwise
   * read with `load` (and kept when found).
   */
  async get(id: string, load: (id: string) => Promise<Account | undefined>, now = clock()): Promise<CachedAccount | undefined> {
    const hit = this.#entries.get(id);
    if (hit && now - hit.at < this.#lifeMs) {
      this.stats.hits += 1;
      return hit.value;
    }
    this.stats.misses += 1;
    const account = await load(id);
    if (account) this.#keep(account, now);
    return account;
  }

  /**
   * An account just read from the store elsewhere (the sign-in POST), `readAt` being when that
   * read began, on the cache's clock (`performance.now()`): served to the requests of the same
   * login that follow.
   */
  prime(account: Account, readAt: number): void {
    this.#keep(account, readAt);
  }

  /** Drops one account (a change made by this process). */
  evict(id: string): void {
    const now = clock();
    this.#entries.delete(id);
    this.#evictedAt.delete(id);
    this.#evictedAt.set(id, now);
    if (this.#evictedAt.size > this.#maxEntries) {
      // Oldest first (insertion order); those older than the life can no longer matter.
      for (const [k, at] of this.#evictedAt) {
        if (now - at <= this.#lifeMs) break;
        this.#evictedAt.delete(k);
      }
      if (this.#evictedAt.size > this.#maxEntries) this.clear();
    }
  }

  clear(): void {
    this.#entries.clear();
    this.#evictedAt.clear();
    this.#clearedAt = clock();
  }

  #keep(account: Account, at: number): void {
    if (this.#lifeMs <= 0 || clock() - at >= this.#lifeMs) return;
    // Changed here at or after the read began: what it read may be the old account.
    if (at <= this.#clearedAt || at <= (this.#evictedAt.get(account.id) ?? -Infinity)) return;
    // Two reads at once, the account changed elsewhere between them: the older one, finishing
    // last, must not replace what the newer one saw (an account seen disabled served enabled again).
    const current = this.#entries.get(account.id);
    if (current && current.at >= at) return;
    const value: Partial<Account> = { ...account };
    delete value.passwordHash;
    delete value.trustedDevices;
    this.#entries.delete(account.id);
    if (this.#entries.size >= this.#maxEntries) {
      // Map order is insertion order: the first key is the entry kept longest ago.
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(account.id, { value: value as CachedAccount, at });
  }
}

/** The AccountStore's changes that can alter what findAccount answers. */
const CHANGES = ['updateProfile', 'setDisabled', 'delete', 'syncDirectoryProfile'] as const;

/**
 * The same store, whose changes of an account drop it from `cache` first and again once
 * made (a read under way when the change began cannot keep the old account either).
 * Changes that leave findAccount's answer as it was (a recognised browser, a new password
 * hash) do not: the login that records them is served from the cache right after.
 */
export function evictingAccountStore(store: AccountStore, cache: AccountCache): AccountStore {
  const wrapped: AccountStore = { ...store };
  for (const name of CHANGES) {
    const original = store[name] as (id: string, ...rest: unknown[]) => Promise<unknown>;
    Object.assign(wrapped, {
      [name]: async (id: string, ...rest: unknown[]) => {
        cache.evict(id);
        try {
          return await original.call(store, id, ...rest);
        } finally {
          cache.evict(id);
        }
      },
    });
  }
  return wrapped;
}

/**
 * A verified cache of client records, so that a request does not read (and decrypt) its
 * client from the store: oidc-provider looks the client up on almost every request.
 *
 * Verified: twice every `verifyMs` the cache reads the clients' change stamp (ClientStore.stamp,
 * one small read per instance, not per request); a new stamp empties it. An entry is served
 * only while the last successful check is younger than `verifyMs`: if the store stops
 * answering, the cache stops answering too, rather than serving what it can no longer check.
 * So a client changed in any process or instance sharing the store (`idp client`, another
 * instance) is served as it was for at most about `verifyMs` (plus a check under way), and
 * `verifyMs = 0` turns the cache off.
 *
 * Each entry also lives at most `verifyMs` from the moment its read began, stamp or no stamp:
 * there is no `idp client remove`, so a client is revoked (or its secret replaced) by
 * editing its record in the database, which writes no stamp. That costs one read per client
 * and interval (not per request), and bounds every change, however made, by `verifyMs`.
 *
 * What it holds: the record as oidc-provider gets it, the client secret decrypted. Held in
 * memory no longer than the process holds it anyway: oidc-provider keeps every Client
 * instance it builds, secret included, in its own cache keyed by a hash of these properties
 * (lib/models/client.js), for as long as the process lives. Unknown client ids are not
 * cached, so a flood of made-up ids cannot fill it (each is one primary-key read).
 */
import type { ClientStore } from './storage/port.ts';

export interface ClientCacheStats {
  hits: number;
  misses: number;
}

export class ClientCache<T> {
  readonly #store: Pick<ClientStore, 'stamp'>;
  readonly #verifyMs: number;
  /** `at`: when the read that produced the value began (its life runs from there). */
  readonly #entries = new Map<string, { value: T; at: number }>();
  #stamp: string | undefined;
  #verifiedAt = 0;
  /** Bumped at each emptying: a load that began before it does not store its result. */
  #generation = 0;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  readonly stats: ClientCacheStats = { hits: 0, misses: 0 };

  constructor(store: Pick<ClientStore, 'stamp'>, verifyMs: number) {
    this.#store = store;
    this.#verifyMs = verifyMs;
  }

  /** Starts the periodic check (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.#verifyMs <= 0 || this.#timer) return;
    void this.check();
    // Twice per interval: an entry stays servable between two checks however they fall.
    this.#timer = setInterval(() => void this.check(), Math.max(this.#verifyMs / 2, 1));
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Reads the stamp now; a changed one empties the cache. A failed read leaves it unverified. */
  check(): Promise<void> {
    this.#checking ??= (async () => {
      const started = Date.now();
      try {
        const stamp = await this.#store.stamp();
        if (stamp !== this.#stamp) this.clear();
        this.#stamp = stamp;
        // Verified as of when the read began: a change after that is not yet known.
        this.#verifiedAt = started;
      } catch {
        // Unverified from here on: lookups go to the store until a check succeeds.
      } finally {
        this.#checking = undefined;
      }
    })();
    return this.#checking;
  }

  /** Empties the cache (a change made by this process is known at once). */
  clear(): void {
    this.#entries.clear();
    this.#generation += 1;
  }

  async get(id: string, load: (id: string) => Promise<T | undefined>): Promise<T | undefined> {
    const now = Date.now();
    const fresh = this.#verifyMs > 0 && now - this.#verifiedAt < this.#verifyMs;
    if (fresh) {
      const hit = this.#entries.get(id);
      if (hit !== undefined && now - hit.at < this.#verifyMs) {
        this.stats.hits += 1;
        return hit.value;
      }
    }
    this.stats.misses += 1;
    const generation = this.#generation;
    const value = await load(id);
    if (fresh && value !== undefined && generation === this.#generation) this.#entries.set(id, { value, at: now });
    return value;
  }
}

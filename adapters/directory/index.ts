/**
 * The configured directories as one service: find a user by the typed username, check their
 * password by a bind, read their groups, and tell whether a linked account's entry still
 * exists and may sign in. The login step (interactions/authenticate.ts), oidc-provider's
 * account look-up (idp/tokens.ts) and `idp directory test` use it; config.ts, mapping.ts and
 * client.ts do the parts.
 */
import crypto from 'node:crypto';
import { createDirectoryConnection } from './client.ts';
import { bindOutcome, groupAttributes, groupFilter, groupNames, groupSearchIsTransitive, idFilter, mapEntry, userAttributes, userFilter } from './mapping.ts';
import {
  DirectoryUnavailableError, type AccountProblem, type BindOutcome, type DirectoryConfig, type DirectoryConnection, type DirectoryUser, type RawEntry,
} from './types.ts';

export { DirectoryUnavailableError } from './types.ts';
export type { AccountProblem, DirectoryConfig, DirectoryUser } from './types.ts';

/**
 * The local account id of a directory entry: derived from the directory's name and the
 * entry's immutable id (entryUUID / objectGUID), so it is the same on every instance and
 * for every sign-in, and a rename in the directory keeps the same `sub`. Renaming the
 * directory in the configuration would change it: the name is part of the identity.
 */
export function directoryAccountId(directory: string, id: string): string {
  return `d_${crypto.createHash('sha256').update(`${directory}\n${id.toLowerCase()}`).digest('base64url').slice(0, 32)}`;
}

/** The username a linked account is stored under: never typed at a login, unique, stable. */
export function directoryUsername(directory: string, id: string): string {
  return `${directory}:${id.toLowerCase()}`;
}

/** Deepest group nesting followed by a group search (cycles are cut anyway). */
const MAX_GROUP_DEPTH = 8;
/** Entries read for one user search: two, to tell "exactly one" from "ambiguous". */
const USER_SEARCH_LIMIT = 2;
const GROUP_SEARCH_LIMIT = 1000;

export interface FoundUser {
  directory: DirectoryConfig;
  user: DirectoryUser;
}

/** What `status` says of a linked account's entry now. */
export type EntryStatus = { state: 'active'; user: DirectoryUser } | { state: 'missing' } | { state: 'refused'; problem: AccountProblem; user: DirectoryUser };

export class Directories {
  readonly configs: readonly DirectoryConfig[];
  readonly #connections = new Map<string, DirectoryConnection>();
  /** When this process last saw each linked entry active (bounded), to ride out an outage. */
  readonly #confirmed = new Map<string, number>();

  /**
   * Told the latency of every bind and search (idp_directory_operation_duration_seconds),
   * answered or not; set by the server when metrics are on.
   */
  observer: ((directory: string, op: 'bind' | 'search', seconds: number) => void) | undefined;

  constructor(configs: readonly DirectoryConfig[], connect: (c: DirectoryConfig) => DirectoryConnection = createDirectoryConnection) {
    this.configs = configs;
    for (const c of configs) this.#connections.set(c.name, this.#timed(c.name, connect(c)));
  }

  /** The connection, its bind and search timed for the observer. */
  #timed(name: string, conn: DirectoryConnection): DirectoryConnection {
    const time = async <T>(op: 'bind' | 'search', fn: () => Promise<T>): Promise<T> => {
      const observer = this.observer;
      if (!observer) return fn();
      const start = performance.now();
      try {
        return await fn();
      } finally {
        observer(name, op, (performance.now() - start) / 1000);
      }
    };
    return Object.assign(Object.create(conn) as DirectoryConnection, {
      search: (...a: Parameters<DirectoryConnection['search']>) => time('search', () => conn.search(...a)),
      bind: (dn: string, password: string) => time('bind', () => conn.bind(dn, password)),
    });
  }

  get size(): number {
    return this.configs.length;
  }

  config(name: string): DirectoryConfig | undefined {
    return this.configs.find((c) => c.name === name);
  }

  #conn(name: string): DirectoryConnection {
    const c = this.#connections.get(name);
    if (!c) throw new Error(`no directory named ${name}`);
    return c;
  }

  /**
   * The user a typed username names, searched in every directory at once; the first
   * directory in configuration order that has them wins. A directory that could not answer
   * before the one that matched makes the whole look-up unavailable (it might hold the
   * user who should have won), as does one that matched more than one entry (ambiguous:
   * refused rather than guessed, and logged by the caller).
   */
  async find(username: string): Promise<FoundUser | { ambiguous: DirectoryConfig } | undefined> {
    const results = await Promise.allSettled(this.configs.map((c) => this.#users(c, userFilter(c, username))));
    for (const [i, r] of results.entries()) {
      const c = this.configs[i]!;
      if (r.status === 'rejected') throw r.reason;
      if (r.value.length > 1) return { ambiguous: c };
      if (r.value.length === 1) return { directory: c, user: mapEntry(c, r.value[0]!, new Date()) };
    }
    return undefined;
  }

  /** The user entries a filter finds, with the attributes mapEntry reads; two at most (one, or ambiguous). */
  #users(c: DirectoryConfig, filter: string): Promise<RawEntry[]> {
    return this.#conn(c.name).search(c.baseDn, c.scope, filter, userAttributes(c), USER_SEARCH_LIMIT);
  }

  /** Binds as the user; a failed bind is explained by the entry (locked) or AD's diagnostic. */
  async verify(found: FoundUser, password: string): Promise<BindOutcome> {
    const result = await this.#conn(found.directory.name).bind(found.user.dn, password);
    return bindOutcome(found.directory, result, found.user);
  }

  /**
   * The user's groups when the directory is configured to search for them (a memberOf
   * attribute is already mapped by mapEntry). Nested groups by repeating the search for each
   * group found, breadth first, cycles cut; Active Directory resolves nesting in one search
   * (the filter uses LDAP_MATCHING_RULE_IN_CHAIN, see mapping.ts).
   */
  async groups(found: FoundUser): Promise<string[] | undefined> {
    const c = found.directory;
    if (c.groups.source !== 'search') return found.user.claims.groups;
    const conn = this.#conn(c.name);
    const base = c.groups.base ?? c.baseDn;
    const groupEntries: RawEntry[] = [];
    const seen = new Set<string>([found.user.dn.toLowerCase()]);
    let frontier = [found.user.dn];
    // One search when the server resolves nesting itself (AD's in-chain rule) or nesting is off.
    const rounds = c.groups.nested && !groupSearchIsTransitive(c) ? MAX_GROUP_DEPTH : 1;
    for (let depth = 0; frontier.length > 0 && depth < rounds; depth += 1) {
      const next: string[] = [];
      for (const dn of frontier) {
        const entries = await conn.search(base, 'sub', groupFilter(c, dn), groupAttributes(c), GROUP_SEARCH_LIMIT);
        for (const e of entries) {
          if (seen.has(e.dn.toLowerCase())) continue;
          seen.add(e.dn.toLowerCase());
          next.push(e.dn);
          groupEntries.push(e);
        }
      }
      frontier = next;
    }
    return groupNames(c, groupEntries);
  }

  /** The entry behind a linked account now: active, refused (disabled, expired…) or missing. */
  async status(directory: string, id: string): Promise<EntryStatus> {
    const c = this.config(directory);
    // A directory removed from the configuration: its accounts can no longer be vouched for.
    if (!c) return { state: 'missing' };
    const entries = await this.#users(c, idFilter(c, id));
    if (entries.length !== 1) return { state: 'missing' };
    const user = mapEntry(c, entries[0]!, new Date());
    // The id filter matched, but compare anyway: an attribute-less match must never link.
    if (user.id !== id.toLowerCase()) return { state: 'missing' };
    return user.problem ? { state: 'refused', problem: user.problem, user } : { state: 'active', user };
  }

  /** For `idp directory test`: the service bind, and optionally a user search. */
  async test(name: string, username?: string) {
    const c = this.config(name);
    if (!c) throw new Error(`no directory named ${name}`);
    const bind = await this.#conn(name).checkServiceBind();
    if (username === undefined) return { directory: c, bind };
    const entries = await this.#users(c, userFilter(c, username));
    if (entries.length !== 1) return { directory: c, bind, matches: entries.length };
    const found = { directory: c, user: mapEntry(c, entries[0]!, new Date()) };
    const groups = await this.groups(found);
    return { directory: c, bind, matches: 1, user: { ...found.user, claims: { ...found.user.claims, groups } } };
  }

  /**
   * Whether a linked account may keep using its sessions and refresh tokens (oidc-provider's
   * account look-up, at every use). Deleted, disabled and expired entries may not. A locked
   * entry or an expired password may: those stop password sign-ins (where the directory
   * refuses the bind), and letting them end sessions would let anyone who can lock an
   * account by guessing its password sign its owner out everywhere.
   * When the directory cannot answer, an entry this process saw active within `graceMs`
   * stays usable (a directory restart must not sign everyone out); otherwise 'unavailable'.
   */
  async sessionState(directory: string, id: string, graceMs: number, now = Date.now()): Promise<'active' | 'ended' | 'unavailable'> {
    const key = `${directory}\n${id}`;
    try {
      const s = await this.status(directory, id);
      const ok = s.state === 'active' || (s.state === 'refused' && CONTINUES_SESSIONS.has(s.problem));
      if (ok) remember(this.#confirmed, key, now);
      else this.#confirmed.delete(key);
      return ok ? 'active' : 'ended';
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      const seen = this.#confirmed.get(key);
      return seen !== undefined && now - seen <= graceMs ? 'active' : 'unavailable';
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#connections.values()].map((c) => c.close()));
  }
}

/** Problems that stop password sign-ins but not existing sessions (see sessionState). */
const CONTINUES_SESSIONS: ReadonlySet<AccountProblem> = new Set(['locked', 'password_expired', 'must_change_password']);
const CONFIRMED_MAX = 100_000;

function remember(map: Map<string, number>, key: string, at: number): void {
  map.delete(key);
  map.set(key, at);
  // A Map iterates in insertion order: the first key is the longest unconfirmed.
  if (map.size > CONFIRMED_MAX) map.delete(map.keys().next().value!);
}

export const isUnavailable = (err: unknown): err is DirectoryUnavailableError => err instanceof DirectoryUnavailableError;

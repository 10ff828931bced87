/**
 * The directory contract (issue 9): what configuration a directory has once validated, what
 * the LDAP client returns, and what the preset mapping makes of it. Three modules meet here:
 * - config.ts: YAML / environment → DirectoryConfig (validated, presets applied, secrets loaded);
 * - mapping.ts: pure functions of a preset (filters with RFC 4515 escaping, entry → claims
 *   and account status, bind errors → reasons); no I/O, unit-tested for both presets;
 * - client.ts: the LDAP connections (ldapts): failover across URLs, StartTLS / LDAPS with
 *   the CA, a pool for the service bind, deadlines on every operation.
 * index.ts (the Directories service) puts them together for the login step, the account
 * look-up of oidc-provider (findAccount) and `idp directory test`.
 */

export const DIRECTORY_PRESETS = ['openldap', 'active_directory'] as const;
export type DirectoryPreset = (typeof DIRECTORY_PRESETS)[number];

/**
 * The OIDC claims a directory can supply, each from one attribute (OIDC Core §5.1; `groups`
 * is ours). The address claim (§5.1.1) is assembled from its members: `formatted_address`
 * (its `formatted`), `street_address`, `locality`, `region`, `postal_code` and `country`.
 */
export const DIRECTORY_CLAIMS = [
  'email', 'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website',
  'gender', 'birthdate', 'zoneinfo', 'locale', 'phone_number',
  'formatted_address', 'street_address', 'locality', 'region', 'postal_code', 'country',
] as const;
export type DirectoryClaimName = (typeof DIRECTORY_CLAIMS)[number];

/** The members of the address claim (OIDC Core §5.1.1), by the name they are mapped under. */
export const ADDRESS_MEMBERS = {
  formatted_address: 'formatted', street_address: 'street_address', locality: 'locality', region: 'region', postal_code: 'postal_code', country: 'country',
} as const satisfies Partial<Record<DirectoryClaimName, string>>;

export interface DirectoryClaims {
  email?: string | undefined;
  /** Only when the directory says so (`email_verified` mapping); false otherwise. */
  email_verified?: boolean | undefined;
  name?: string | undefined;
  given_name?: string | undefined;
  family_name?: string | undefined;
  middle_name?: string | undefined;
  nickname?: string | undefined;
  preferred_username?: string | undefined;
  profile?: string | undefined;
  picture?: string | undefined;
  website?: string | undefined;
  gender?: string | undefined;
  birthdate?: string | undefined;
  zoneinfo?: string | undefined;
  locale?: string | undefined;
  phone_number?: string | undefined;
  /** Only when the directory says so (`phone_number_verified` mapping) and there is a number. */
  phone_number_verified?: boolean | undefined;
  address?: {
    formatted?: string | undefined;
    street_address?: string | undefined;
    locality?: string | undefined;
    region?: string | undefined;
    postal_code?: string | undefined;
    country?: string | undefined;
  } | undefined;
  /** Group names (the `name_attribute` of each group, e.g. `cn`), sorted, without duplicates. */
  groups?: string[] | undefined;
}

export interface GroupLookup {
  /**
   * `member_of`: read the user's `attribute` (memberOf overlay of OpenLDAP, AD's memberOf);
   * `search`: search `base` with `filter` (`{dn}` replaced by the escaped user DN);
   * `none`: no groups claim.
   */
  source: 'member_of' | 'search' | 'none';
  attribute: string;
  base?: string | undefined;
  filter: string;
  /**
   * Nested groups: for `search`, repeat the search for each group found (depth ≤ 8,
   * cycles cut); for Active Directory, LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941).
   */
  nested: boolean;
  /** Attribute of a group entry giving its name (`cn`); from a memberOf DN, its first RDN value. */
  nameAttribute: string;
}

export interface DirectoryConfig {
  /** `[a-z0-9_-]{1,32}`: named in logs, metrics, events, the account link and the CLI. */
  name: string;
  preset: DirectoryPreset;
  /** Tried in order (failover); `ldaps://` or `ldap://` (then StartTLS unless `allowPlain`). */
  urls: string[];
  /** For `ldap://` URLs: upgrade with StartTLS (RFC 4513 §3). Default true. */
  startTls: boolean;
  /** Plain `ldap://` without StartTLS; refused unless this is set (passwords would cross in clear). */
  allowPlain: boolean;
  /** PEM CA bundle the server certificate must chain to (loaded from `ca_file`); system CAs when absent. */
  ca?: Buffer | undefined;
  caFile?: string | undefined;
  /** Service account DN and password (from `bind_password_file` or an environment variable; never logged). */
  bindDn: string;
  bindPassword: string;
  baseDn: string;
  /** Search scope for users. */
  scope: 'sub' | 'one';
  /**
   * User filter with `{username}` placeholders (RFC 4515 escaped before substitution), e.g.
   * `(&(objectClass=inetOrgPerson)(uid={username}))`.
   */
  userFilter: string;
  /** The immutable id: `entryUUID` (RFC 4530) or `objectGUID` (AD, binary). */
  idAttribute: 'entryUUID' | 'objectGUID';
  /**
   * Claim → attribute name, or names tried in order (the first the entry has a value for:
   * `[telephoneNumber, mobile]`). Missing claims are not mapped.
   */
  attributes: Partial<Record<DirectoryClaimName, string | readonly string[]>>;
  /**
   * The mapped email is one the organisation administers (users cannot set it), so
   * `email_verified` is true (OIDC Core §5.1); false when unset.
   */
  emailVerified?: boolean | undefined;
  /** Likewise for the mapped phone number: `phone_number_verified`. Default false. */
  phoneNumberVerified?: boolean | undefined;
  groups: GroupLookup;
  timeouts: {
    /** TCP + TLS connect, per URL. */
    connectMs: number;
    /** One LDAP operation (search, bind). The whole sign-in is bounded by connect + 3 operations. */
    operationMs: number;
  };
  /** Service-bind connections kept open per directory. */
  poolSize: number;
  /**
   * The directory's own lockout (ppolicy pwdMaxFailure / AD lockout threshold) and its
   * counting window (pwdFailureCountInterval / "reset account lockout counter after").
   * The provider stops at `maxFailures` (< threshold) within the window, so it never locks
   * anyone out of the directory.
   */
  lockout: { threshold?: number | undefined; windowSeconds: number; maxFailures: number };
  /** Where this config came from, for messages: `directories.yml` or `environment`. */
  source: string;
}

/** An entry as the client read it: attribute name (as configured, case-insensitive) → values. */
export interface RawEntry {
  dn: string;
  attributes: Record<string, (string | Buffer)[]>;
}

export type AccountProblem = 'disabled' | 'locked' | 'expired' | 'password_expired' | 'must_change_password';

/** A directory user once mapped by the preset. */
export interface DirectoryUser {
  directory: string;
  /** Canonical immutable id: entryUUID as is (lower case), objectGUID as its GUID string. */
  id: string;
  dn: string;
  claims: DirectoryClaims;
  /** What the entry itself says, before any bind (AD userAccountControl, ppolicy attributes). */
  problem?: AccountProblem | undefined;
  /** Failed binds the directory has counted for this user (ppolicy pwdFailureTime / AD badPwdCount), when readable. */
  directoryFailures?: number | undefined;
  /**
   * When the directory locked the account after failed binds (ppolicy pwdAccountLockedTime,
   * AD lockoutTime), if it still says so. Not a refusal by itself (the lock may have expired,
   * OpenLDAP does not say), but a failed bind is then explained as 'locked' (mapping.ts bindOutcome).
   */
  lockedSince?: Date | undefined;
}

/** Why a directory could not answer: the user sees "temporarily unavailable", the log says which and why. */
export type UnavailableKind = 'connect' | 'tls' | 'timeout' | 'service_bind' | 'protocol';

export class DirectoryUnavailableError extends Error {
  override name = 'DirectoryUnavailableError';
  readonly directory: string;
  readonly kind: UnavailableKind;
  /** `detail` is safe to log: never a password, never the service account's password. */
  constructor(directory: string, kind: UnavailableKind, detail: string) {
    super(`directory ${directory} unavailable (${kind}): ${detail}`);
    this.directory = directory;
    this.kind = kind;
  }
}

/** The result of binding as a user. */
export type BindOutcome =
  | { ok: true }
  | { ok: false; reason: 'invalid_credentials' | AccountProblem; detail?: string | undefined };

/**
 * The LDAP client (client.ts) as the rest of the directory code sees it. Every method
 * tries the URLs in order (a URL that failed is skipped for a while), bounds each step by
 * the configured timeouts, and throws DirectoryUnavailableError when no URL answers.
 */
export interface DirectoryConnection {
  /**
   * A search on a service-bound pooled connection. `filter` is complete and already
   * escaped (mapping.ts); `sizeLimit` bounds the entries read. Binary attributes
   * (`objectGUID`) come back as Buffers, the rest as strings.
   */
  search(base: string, scope: 'base' | 'one' | 'sub', filter: string, attributes: string[], sizeLimit: number): Promise<RawEntry[]>;
  /**
   * Simple bind (RFC 4513 §5.1.3) as `dn` with `password`, on a connection never used for
   * service searches. An empty password is refused without contacting the server: it would
   * be an unauthenticated bind, which succeeds (RFC 4513 §5.1.2). Result codes other than
   * success come back as `{ ok: false, code, diagnostic }` (49 invalidCredentials with AD's
   * `data 775`-style diagnostic); unreachable servers throw DirectoryUnavailableError.
   */
  bind(dn: string, password: string): Promise<{ ok: true } | { ok: false; code: number; diagnostic: string }>;
  /** Binds the service account on a fresh connection (for `idp directory test`). */
  checkServiceBind(): Promise<{ url: string; tls: 'ldaps' | 'starttls' | 'none' }>;
  close(): Promise<void>;
}

/**
 * Record types of the data model. Plain data only: no logic, no I/O (ARCHITECTURE.md).
 */
import type { EvaluationField, LoginEvent } from '../policies/types.ts';

/** A local account. `id` is the OIDC `sub`: random, opaque and never reassigned. */
export interface Account {
  readonly id: string;
  /**
   * Login name under PRECIS UsernameCaseMapped (RFC 8265 §3.3); unique, and so is its
   * UTS #39 skeleton, which the stores keep beside it (no two look-alike usernames).
   */
  readonly username: string;
  email?: string | undefined;
  emailVerified: boolean;
  name?: string | undefined;
  /** PHC string of an argon2id hash; never the password. */
  passwordHash: string;
  createdAt: Date;
  updatedAt: Date;
  /** Device ids (from the signed device cookie) that completed a login on this account. */
  trustedDevices: string[];
  /**
   * Set for an account linked to a directory entry (just-in-time, at its first sign-in). The
   * account's id derives from (directory, id), the entry's immutable id, never from its
   * username, so a rename keeps the same `sub`. Such an account has no local password.
   */
  directory?: DirectoryLink | undefined;
  /**
   * OIDC Core §5.1 claims beside email and name: set by an administrator (`idp user set`, the
   * admin API) for a local account, mapped from the directory at each sign-in for a linked one.
   */
  claims?: ProfileClaims | undefined;
  /**
   * Starts at 1 and grows by one with every change an administrator makes (claims, disabling):
   * a change names the version it was made against (`ifVersion`, the admin API's If-Match),
   * so of two administrators editing at once the second is refused, not silently overwritten.
   * Bookkeeping (a recognised browser, a directory refresh, a password re-hash) leaves it.
   */
  version: number;
  /** Set while the account is disabled: no sign-in, no session, no token refresh. */
  disabled?: AccountDisabled | undefined;
  /**
   * When the user's information (email, name, claims) last changed: the `updated_at` claim
   * (OIDC Core §5.1). Not moved by bookkeeping, unlike `updatedAt`.
   */
  profileUpdatedAt: Date;
}

/** Why and since when an account is disabled, and who did it. */
export interface AccountDisabled {
  at: Date;
  /** Free text for administrators; never shown to the user (who sees the generic sign-in error). */
  reason: string;
  /** `<actor kind>:<actor id>` of whoever disabled it. */
  by?: string | undefined;
}

/** The password hash of an account without a local password (directory-linked): no PHC string, so no password verifies against it. */
export const NO_PASSWORD = '!none';

export interface DirectoryLink {
  /** The directory's configured name. */
  name: string;
  /** entryUUID (RFC 4530) or objectGUID (as its GUID string). */
  id: string;
  /** DN at the last sign-in (for the log; the id is what identifies). */
  dn: string;
  /** Last time the entry was read at a sign-in. */
  syncedAt: Date;
}

/** OIDC Core §5.1.1: the address claim (every member optional). */
export interface AddressClaim {
  /** The full mailing address, formatted for display; lines separated by "\n" (or "\r\n"). */
  formatted?: string | undefined;
  /** Street, house number, … possibly on several lines. */
  street_address?: string | undefined;
  locality?: string | undefined;
  region?: string | undefined;
  postal_code?: string | undefined;
  country?: string | undefined;
}

/**
 * OIDC Core §5.1 claims other than sub, email, email_verified, name and updated_at (which
 * the account holds itself), and `groups` (ours: a directory's group names).
 */
export interface ProfileClaims {
  given_name?: string | undefined;
  family_name?: string | undefined;
  middle_name?: string | undefined;
  nickname?: string | undefined;
  preferred_username?: string | undefined;
  profile?: string | undefined;
  picture?: string | undefined;
  website?: string | undefined;
  gender?: string | undefined;
  /** YYYY-MM-DD, YYYY, or 0000-MM-DD (year withheld). */
  birthdate?: string | undefined;
  /** An IANA time zone name, e.g. Europe/Paris. */
  zoneinfo?: string | undefined;
  /** A BCP 47 language tag, e.g. fr-CA. */
  locale?: string | undefined;
  phone_number?: string | undefined;
  phone_number_verified?: boolean | undefined;
  address?: AddressClaim | undefined;
  groups?: string[] | undefined;
}

export type NewAccount = Omit<Account, 'createdAt' | 'updatedAt' | 'trustedDevices' | 'version' | 'disabled' | 'profileUpdatedAt'>;

/** What an administrator's change of a user's information replaces (AccountStore.updateProfile). */
export interface AccountProfile {
  email?: string | undefined;
  emailVerified: boolean;
  name?: string | undefined;
  claims: ProfileClaims;
}

/** What a sign-in refreshes of a directory-linked account. */
export interface DirectoryProfile {
  directory: DirectoryLink;
  email?: string | undefined;
  emailVerified: boolean;
  name?: string | undefined;
  claims: ProfileClaims;
  /** Set when the mapped information differs from what the account held: the new `updated_at`. */
  profileUpdatedAt?: Date | undefined;
}

/**
 * A registered relying party, stored as OIDC Dynamic Client Registration metadata
 * (RFC 7591 §2) so oidc-provider can read it as is. The secret is stored encrypted.
 */
export interface ClientRecord {
  readonly clientId: string;
  /** AES-256-GCM ciphertext of client_secret (see adapters/crypto.ts); absent for public clients. */
  secretCiphertext?: string | undefined;
  /** Client metadata other than client_id / client_secret. */
  metadata: Record<string, unknown>;
  createdAt: Date;
  /** Last change (the creation for a client never changed). */
  updatedAt: Date;
  /** 1 at creation, +1 per change (the admin API's ETag / If-Match). */
  version: number;
}

/** What a reservation on a bucket returned. */
export interface AttemptReservation {
  /** True when the attempt may go ahead (and was counted). */
  allowed: boolean;
  /** Identifies the counted attempt (for `refund`); absent when refused. */
  id?: string | undefined;
  /** Counted attempts in the bucket, this one included when allowed. */
  count: number;
  /** Why not allowed: still inside the progressive delay, or the bucket is full. */
  reason?: 'delayed' | 'limit';
  /** Epoch ms until which the next attempt must wait (0 = none; the limit has no end). */
  blockedUntil: number;
}

/**
 * One attempt as the risk engine remembers it: a failed password, or a first-factor
 * success (whatever the decision). Recorded one record per attempt.
 */
export interface RiskObservation {
  kind: 'password_failed' | 'password_ok';
  /** Epoch ms. */
  ts: number;
  /** Account id, or the keyed stand-in for an unknown username. */
  user: string;
  ip: string;
  country?: string | undefined;
}

/** What kind of second factor (or passwordless first factor) a record holds. */
export type FactorKind = 'totp' | 'webauthn' | 'recovery';

/**
 * One authenticator an account holds besides its password (NIST SP 800-63B-4 §3.1): an
 * authenticator app (TOTP), a passkey / security key (WebAuthn), or a set of recovery codes.
 * Secrets are never stored in the clear: the TOTP seed is encrypted (adapters/crypto.ts),
 * recovery codes are stored as keyed hashes, a passkey has only a public key.
 */
export interface FactorRecord {
  /** Random, opaque. */
  readonly id: string;
  readonly accountId: string;
  readonly kind: FactorKind;
  /** Shown to the user and in `idp user mfa list`: "Authenticator app", a passkey's name. */
  label: string;
  createdAt: Date;
  lastUsedAt?: Date | undefined;
  /**
   * Monotonic counter, advanced atomically (FactorStore.advance): the last TOTP time step
   * accepted (RFC 6238 §5.2: a code is accepted once), or the WebAuthn signature counter
   * (W3C WebAuthn L3 §6.1.1: a counter that does not grow signals a cloned authenticator).
   */
  counter: number;
  /**
   * How it was enrolled, for the audit trail: by the user (`self`), by an administrator
   * (`admin`), or during a login the policy challenged (`login`: flagged, since whoever held
   * only the password at that moment bound it).
   */
  enrolledVia: 'self' | 'admin' | 'login';
  totp?: { secretCiphertext: string; algorithm: 'SHA1'; digits: 6; period: 30 } | undefined;
  webauthn?: {
    /** base64url credential id; unique across all accounts. */
    credentialId: string;
    /** base64url COSE public key. */
    publicKey: string;
    transports: string[];
    deviceType: 'singleDevice' | 'multiDevice';
    backedUp: boolean;
    aaguid?: string | undefined;
    /** Whether registration verified the user (PIN / biometric). */
    userVerified: boolean;
  } | undefined;
  recovery?: {
    /** Keyed hashes (HMAC-SHA-256) of the codes; the codes are shown once and never stored. */
    hashes: string[];
    /** Codes used, by hash. */
    used: { hash: string; at: Date }[];
  } | undefined;
}

export type NewFactor = Omit<FactorRecord, 'createdAt' | 'lastUsedAt' | 'counter'> & { counter?: number };

/** Stored form of an oidc-provider model instance (Session, AccessToken, Grant, ...). */
export interface OidcRecord {
  readonly model: string;
  readonly id: string;
  payload: Record<string, unknown>;
  grantId?: string | undefined;
  uid?: string | undefined;
  userCode?: string | undefined;
  /** Epoch ms; undefined = no expiry. Expired records are filtered on read. */
  expiresAt?: number | undefined;
  consumed?: number | undefined;
  /**
   * The account the record belongs to (oidc-provider's `payload.accountId` of a Session, a
   * Grant, a token; ours of a login's records), kept beside the payload under an index so an
   * administrator can list and end a user's sessions and grants (OidcStore.listByAccount).
   */
  accountId?: string | undefined;
}

/**
 * One login attempt as recorded: the documented event format (policies/types.ts LoginEvent,
 * without the evaluation-only label) plus what the provider decided. `user` is the account
 * id, or `unknown:<keyed hash>` for a username that does not exist (the typed name is never
 * stored: people type passwords there).
 */
export interface LoginEventRecord extends Omit<LoginEvent, EvaluationField> {
  /** The engine's assessment and decision, when the password was right. */
  assessment?: {
    score: number;
    level: string;
    decision: 'allow' | 'step_up' | 'block';
    requiredAcr?: string | undefined;
    /** `monitor`: the part is in monitor mode; its contribution is not in `score`. */
    reasons: { factor: string; contribution: number; detail?: string | undefined; monitor?: true | undefined }[];
    confidence: number;
    policyVersion: string;
    modelVersion: string;
    errors: string[];
    /**
     * When any part of the policy is in monitor mode (policies/monitor.ts): what the policy
     * would have decided with every part enforced. Recorded and counted, not acted on.
     */
    monitor?: {
      score: number;
      level: string;
      decision: 'allow' | 'step_up' | 'block';
      requiredAcr?: string | undefined;
      errors?: string[] | undefined;
    } | undefined;
    /** Keystroke and pointer scores with their confidence (policies/types.ts Assessment). */
    behaviour?: { keystroke?: { score: number; confidence: number } | undefined; pointer?: { score: number; confidence: number } | undefined } | undefined;
  } | undefined;
}

/**
 * Who did something, for the audit trail and the admin API: an administrator signed in
 * through this provider (`user`, the account id), a client using its own credentials
 * (`client`, the client id), the `idp` CLI on the server's disk (`cli`, the OS user), or the
 * provider itself (`system`: a login decision, a policy file reload).
 */
export interface Actor {
  kind: 'user' | 'client' | 'cli' | 'system';
  id: string;
  /** The client address of the request, when there was one. */
  ip?: string | undefined;
}

/**
 * One thing to put on the audit trail. `before` / `after` hold the changed record as plain
 * JSON with secrets already masked by whoever records it (never a password, seed, key or
 * token); the trail adds the time, the sequence number and the hash chain.
 */
export interface AuditInput {
  actor: Actor;
  /** Dotted verb, e.g. `user.disable`, `policy.publish`, `auth.decision`, `factor.enrol`. */
  action: string;
  outcome: 'success' | 'failure';
  target?: { type: string; id: string } | undefined;
  before?: unknown;
  after?: unknown;
  /** Anything else worth keeping (reason, message, decision summary). */
  detail?: Record<string, unknown> | undefined;
}

// --- Audit trail (issue 11) ---------------------------------------------------------------

/**
 * One record of the audit trail as stored: an AuditInput (secrets masked) plus what the trail
 * adds. The records form a hash chain (adapters/storage/audit-chain.ts): `hash` is SHA-256 over
 * the record's canonical JSON (RFC 8785), `prevHash` included; `seal` is an HMAC of `hash` under
 * a key derived from the data key, which the database does not hold.
 */
export interface AuditRecord {
  /** Random (UUID): names the record outside the store (ECS `event.id`). */
  id: string;
  /** 1, 2, 3, …: contiguous across every instance sharing the store. */
  seq: number;
  /** ISO 8601 UTC, milliseconds: when the record was written. */
  ts: string;
  actor: Actor;
  action: string;
  outcome: 'success' | 'failure';
  target?: { type: string; id: string } | undefined;
  before?: unknown;
  after?: unknown;
  detail?: Record<string, unknown> | undefined;
  /** `hash` of record `seq - 1`; 64 zeros for the first record. */
  prevHash: string;
  /** Lowercase hex SHA-256. */
  hash: string;
  /** base64url HMAC-SHA-256 of `hash`. */
  seal: string;
}

// ---------------------------------------------------------------------------------------
// Policy lifecycle and feedback loop (issue 11): published policy versions, event labels,
// trained model candidates.
// ---------------------------------------------------------------------------------------

/** How a policy version came to be published. */
export type PolicySource = 'publish' | 'file' | 'rollback' | 'model';

/**
 * One published version of the policy (adapters/storage/port.ts PolicyStore). Versions are
 * numbered 1, 2, 3, … in the order they were published; the newest is the live one, on every
 * instance sharing the store. A rollback publishes an earlier version's files again, as a new
 * version.
 */
export interface PolicyVersion {
  readonly version: number;
  /**
   * The compiled policy's content hash (policies/policy.ts CompiledPolicy.version): what every
   * decision records as `policyVersion`, so a decision names the published version it used.
   */
  hash: string;
  /** The pinned model's version (the first 12 hex digits of its sha256). */
  modelVersion: string;
  message: string;
  actor: Actor;
  publishedAt: Date;
  source: PolicySource;
  /** For a rollback: the version whose files it publishes again. */
  rollbackOf?: number | undefined;
}

/** A version with its files' texts (policies/policy.ts PolicyFiles: risk.yml, lists.yml, assurance.yml, the model). */
export interface PolicyVersionWithFiles extends PolicyVersion {
  files: Record<string, string>;
}

export type NewPolicyVersion = Omit<PolicyVersionWithFiles, 'version' | 'publishedAt'>;

/** What an administrator says a login event was. */
export type EventLabel = 'attack' | 'legit';

/**
 * An administrator's label on one login event: one label per event, every change a new
 * version (1 at creation, +1 per change), earlier versions kept. Labels feed `idp model
 * train` (idp/admin/model.ts); they never reach the scorer.
 */
export interface LabelRecord {
  readonly eventId: string;
  readonly version: number;
  label: EventLabel;
  note?: string | undefined;
  actor: Actor;
  at: Date;
}

export type NewLabel = Omit<LabelRecord, 'version'>;

/**
 * A trained model kept until an administrator activates it (or not): the model file, and the
 * report training made of it (data used, figures on the held-out labelled events).
 */
export interface ModelCandidate {
  /** sha256 (hex) of the model file's bytes: what risk.yml pins as `model.sha256`. */
  readonly sha256: string;
  /** The model file (policies/forest.ts ModelFile as JSON). */
  text: string;
  report: Record<string, unknown>;
  actor: Actor;
  createdAt: Date;
}

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
}

export type NewAccount = Omit<Account, 'createdAt' | 'updatedAt' | 'trustedDevices'>;

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
    reasons: { factor: string; contribution: number; detail?: string | undefined }[];
    confidence: number;
    policyVersion: string;
    modelVersion: string;
    errors: string[];
  } | undefined;
}

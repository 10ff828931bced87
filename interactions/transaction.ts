/**
 * The state of a login between its steps: who has been identified, which methods have been
 * proven, what level is required, and what the finish step will need (the throttle ticket,
 * the scored context, the risk summary for the `risk` claim). Kept server-side, keyed by the
 * interaction uid (itself bound to the browser by oidc-provider's interaction cookie), in the
 * generic expiring store oidc-provider's own artefacts use, and it dies with the interaction.
 * Nothing in it is trusted from the browser; a pending TOTP secret is stored encrypted.
 */
import crypto from 'node:crypto';
import type { Storage } from '../adapters/storage/port.ts';
import { riskClaim, type RiskClaim } from './login-record.ts';
import type { RiskResult } from './risk.ts';
import type { RiskLevel } from '../policies/schema.ts';
import type { LoginContext } from '../policies/types.ts';
import type { Details } from './context.ts';
import type { AuthMethod } from './methods/method.ts';
import type { Ticket } from './throttle.ts';

const MODEL = 'LoginTransaction';

/**
 * What the assurance check (idp/assurance-check.ts) hands the interaction in
 * `prompt.details.assurance`, stored server-side with the interaction by oidc-provider.
 */
export interface AssuranceDetails {
  /** Index of the level required; -1 when only a login (any level) is needed. */
  required: number;
  because: string[];
  /** ACR values the RP listed (the assertion picks one of them). */
  accepted?: string[] | undefined;
  /** The session's methods that still count towards `required` (a step-up asks for the rest). */
  carried?: string[] | undefined;
  sessionUid?: string | undefined;
  sessionAuthTime?: number | undefined;
  /** The session's re-assessment, when there was a session. */
  risk?: (RiskClaim & { decision: string }) | undefined;
}

export interface LoginTransaction {
  v: 1;
  uid: string;
  accountId: string;
  /**
   * `login`: the first factor was presented in this interaction; `stepup`: an existing
   * session is asked for more (re-authorization), its methods carried over.
   */
  mode: 'login' | 'stepup';
  /** RFC 8176 values the session brings that still count (assurance.ts carriedAmr). */
  carried: string[];
  /**
   * Methods proven in this interaction, in order. `enrolled`: the factor was bound in this
   * very login (steps/enrol.ts), so it proves only that whoever holds the password holds it.
   */
  proven: { method: AuthMethod['id']; amr: string[]; at: number; enrolled?: true | undefined }[];
  /** Index of the assurance level required. */
  required: number;
  /** ACR values the RP listed, for the assertion (assurance.ts assertedAcr). */
  accepted?: string[] | undefined;
  /** The engine's verdict on the login: the `risk` claim's content (login-record.ts). */
  risk: RiskClaim;
  /** Monitor mode: the level the policy would have given with every part enforced (templates judge by the stricter). */
  monitorLevel?: RiskLevel | undefined;
  eventId?: string | undefined;
  /** Counted first-factor attempt, settled by the finish step. */
  ticket?: Ticket | undefined;
  deviceId: string;
  /** What was scored: joins the trusted history when the login finishes. */
  context: LoginContext;
  /**
   * Enrolment: `required` = the login needs a factor the account lacks and policy allows
   * enrolling it now (flagged in the audit trail); `offer` / `require` = the enrolment
   * prompt of a login that needed no second factor; `done` = enrolled in this interaction;
   * `skipped` = an offer declined.
   */
  enrolment?: 'required' | 'offer' | 'require' | 'done' | 'skipped' | undefined;
  /**
   * A step-up's session, as it was when the step-up began: the finish step requires the
   * browser's session to be that one still, so a step-up cannot revive a session that ended
   * (signed out, replaced by another login) meanwhile.
   */
  session?: { uid: string; authTime: number } | undefined;
  /** A TOTP secret shown on the enrolment page, sealed (SecretBox) until confirmed by a code. */
  pendingTotp?: string | undefined;
  /** The browser was the account's newest recognised one when the login began: finish writes nothing for it. */
  deviceNewest?: true | undefined;
}

export class Transactions {
  readonly #storage: Storage;
  /** The states read from or written to the store by this process (the others were never stored). */
  readonly #stored = new WeakSet<LoginTransaction>();

  constructor(storage: Storage) {
    this.#storage = storage;
  }

  async get(uid: string): Promise<LoginTransaction | undefined> {
    const rec = await this.#storage.oidc.find(MODEL, uid, Date.now());
    const tx = rec?.payload as LoginTransaction | undefined;
    if (tx?.v !== 1 || tx.uid !== uid) return undefined;
    this.#stored.add(tx);
    return tx;
  }

  /** `expiresAt`: the interaction's own expiry (epoch ms): the state never outlives it. */
  async put(tx: LoginTransaction, expiresAt: number): Promise<void> {
    // With its account id: a login under way ends when an administrator deletes the account.
    await this.#storage.oidc.upsert({ model: MODEL, id: tx.uid, payload: tx as unknown as Record<string, unknown>, expiresAt, accountId: tx.accountId });
    this.#stored.add(tx);
  }

  async delete(uid: string): Promise<void> {
    await this.#storage.oidc.destroy(MODEL, uid);
  }

  /**
   * The finished login's state is removed, if it was ever stored: a login that finishes in
   * the request that began it (no second step) wrote none. (A state an earlier attempt of the
   * same interaction stored is left to expire with the interaction: the interaction is
   * finished, so nothing can reach it.)
   */
  async discard(tx: LoginTransaction): Promise<void> {
    if (this.#stored.has(tx)) await this.delete(tx.uid);
  }
}

/** Every RFC 8176 value the login has proven: carried from the session, then this interaction's. */
export const provenAmr = (tx: LoginTransaction): string[] => [...new Set([...tx.carried, ...tx.proven.flatMap((p) => p.amr)])];

/** A marker record written with a pending TOTP secret and consumed by its one enrolment. */
export const ENROLMENT_MARKER = 'LoginTransaction';
export const enrolmentMarkerId = (tx: Pick<LoginTransaction, 'uid' | 'pendingTotp'>) =>
  `${tx.uid}:enrol:${crypto.createHash('sha256').update(tx.pendingTotp ?? '').digest('base64url').slice(0, 16)}`;

/** The sealed-secret context: binds a pending TOTP secret to its interaction and account. */
export const pendingTotpContext = (tx: Pick<LoginTransaction, 'uid' | 'accountId'>) => `pending-totp:${tx.uid}:${tx.accountId}`;

/** What the assurance check handed this interaction (idp/assurance-check.ts), if anything. */
export const assuranceOf = (details: Details): AssuranceDetails | undefined => (details.prompt.details as { assurance?: AssuranceDetails }).assurance;

/** The level the relying party's request requires, as the engine takes it (policies/assess.ts). */
export const requestedBy = (a: AssuranceDetails | undefined) => (a && a.required >= 0 ? { index: a.required, because: a.because } : undefined);

/**
 * A login whose first factor (a password, or a passkey without a username) was right and
 * scored: its state from here on, whichever factor it was.
 */
export function firstFactorTransaction(details: Details, f: {
  accountId: string; method: AuthMethod['id']; amr: readonly string[]; risk: RiskResult; ticket?: Ticket | undefined; deviceId: string;
  /** The account's recognised browsers as read at the start of this login, newest last. */
  trustedDevices?: readonly string[] | undefined;
}): LoginTransaction {
  const levels = f.risk.policy.assurance.levels;
  return {
    v: 1, uid: details.uid, accountId: f.accountId, mode: 'login', carried: [],
    proven: [{ method: f.method, amr: [...f.amr], at: Date.now() }],
    required: levels.findIndex((l) => l.name === f.risk.decision.required), accepted: assuranceOf(details)?.accepted,
    risk: riskClaim(f.risk.assessment), monitorLevel: f.risk.monitor?.assessment.level, eventId: f.risk.eventId, ticket: f.ticket, deviceId: f.deviceId, context: f.risk.context,
    ...(f.trustedDevices?.at(-1) === f.deviceId ? { deviceNewest: true } : {}),
  };
}

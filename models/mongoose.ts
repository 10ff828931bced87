/**
 * Mongoose schemas of the data model (MongoDB implementation of the storage port).
 * Shapes only; behaviour lives in adapters/storage/mongo.ts.
 */
import { Schema, type Connection } from 'mongoose';
import type { ProfileClaims } from './types.ts';

export interface AccountDoc {
  _id: string;
  username: string;
  /** UTS #39 skeleton of the username (adapters/storage/skeleton.ts); unique index. */
  skeleton?: string;
  email?: string | null;
  emailVerified: boolean;
  name?: string | null;
  passwordHash: string;
  trustedDevices: string[];
  directory?: { name: string; id: string; dn: string; syncedAt: Date } | null;
  claims?: ProfileClaims | null;
  createdAt: Date;
  updatedAt: Date;
  /** Absent on accounts made before versions (issue 11): version 1. */
  version?: number;
  disabled?: { at: Date; reason: string; by?: string | null } | null;
  /** Absent on accounts made before it was kept: `updatedAt` stands in. */
  profileUpdatedAt?: Date | null;
}

/**
 * The marker of one versioned change of an account (adapters/storage/mongo.ts versioned()):
 * its unique `_id` (`<account>:<created ms>:<version>`) lets exactly one change make each
 * version, which a conditional update cannot promise on FerretDB v1. It keeps the change, so
 * one whose writer died before applying it can be completed by the next writer.
 */
export interface AccountVersionDoc {
  _id: string;
  accountId: string;
  version: number;
  change: { set: Record<string, unknown>; unset: string[] };
  at: Date;
}

export interface ClientDoc {
  _id: string;
  secretCiphertext?: string | null;
  /** JSON text: client metadata keys may contain characters MongoDB treats specially. */
  metadata: string;
  createdAt: Date;
  updatedAt?: Date | null;
  /** Absent on documents written before versions: version 1. */
  version?: number | null;
}

export interface RoleDoc {
  /** The account id. */
  _id: string;
  scopes: string[];
  version: number;
}

/**
 * Who won version `n` of a record (`_id`: `<kind>:<id>:<n>`): the one change of a versioned
 * record that inserted this marker first (adapters/storage/mongo.ts claimVersion).
 */
export interface VersionMarkDoc {
  _id: string;
  at: Date;
}

/**
 * One counted attempt, its own document with a unique `_id`. Counting documents rather
 * than `$inc`-ing a field keeps counters exact on servers that do not apply updates
 * atomically (FerretDB v1); see adapters/storage/mongo.ts.
 */
export interface AttemptDoc {
  _id: string;
  key: string;
  kind: 'attempt';
  at: number;
}

/** Marks an oidc-provider artefact consumed; its unique `_id` makes consumption single. */
export interface ConsumedDoc {
  _id: string;
  at: number;
  expiresAt?: Date | null;
}

/** One oidc-provider artefact; each model has its own collection (`oidc_<model>`). */
export interface OidcDoc {
  _id: string;
  /** JSON text, for the same reason as ClientDoc.metadata. */
  payload: string;
  grantId?: string | null;
  uid?: string | null;
  userCode?: string | null;
  expiresAt?: Date | null;
  consumed?: number | null;
  /** payload.accountId, under an index (issue 11: a user's sessions and grants). */
  accountId?: string | null;
}

const opts = { versionKey: false, autoIndex: false, autoCreate: false } as const;

const accountSchema = new Schema<AccountDoc>(
  {
    _id: { type: String, required: true },
    username: { type: String, required: true },
    skeleton: String,
    email: String,
    emailVerified: { type: Boolean, default: false },
    name: String,
    passwordHash: { type: String, required: true },
    trustedDevices: { type: [String], default: [] },
    directory: { type: { _id: false, name: String, id: String, dn: String, syncedAt: Date }, default: undefined },
    claims: { type: Schema.Types.Mixed, default: undefined },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    version: Number,
    disabled: { type: { _id: false, at: Date, reason: String, by: String }, default: undefined },
    profileUpdatedAt: Date,
  },
  { ...opts, collection: 'accounts' },
);

const clientSchema = new Schema<ClientDoc>(
  {
    _id: { type: String, required: true },
    secretCiphertext: String,
    metadata: { type: String, required: true },
    createdAt: { type: Date, required: true },
    updatedAt: Date,
    version: Number,
  },
  { ...opts, collection: 'clients' },
);

const roleSchema = new Schema<RoleDoc>(
  {
    _id: { type: String, required: true },
    scopes: { type: [String], required: true },
    version: { type: Number, required: true },
  },
  { ...opts, collection: 'admin_roles' },
);

const versionMarkSchema = new Schema<VersionMarkDoc>(
  {
    _id: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { ...opts, collection: 'version_marks' },
);

const attemptSchema = new Schema<AttemptDoc>(
  {
    _id: { type: String, required: true },
    key: { type: String, required: true },
    kind: { type: String, required: true, enum: ['attempt'] },
    at: { type: Number, required: true },
  },
  { ...opts, collection: 'attempts' },
);

const consumedSchema = new Schema<ConsumedDoc>(
  {
    _id: { type: String, required: true },
    at: { type: Number, required: true },
    expiresAt: Date,
  },
  { ...opts, collection: 'oidc_consumed' },
);

export const oidcSchema = new Schema<OidcDoc>(
  {
    _id: { type: String, required: true },
    payload: { type: String, required: true },
    grantId: String,
    uid: String,
    userCode: String,
    expiresAt: Date,
    consumed: Number,
    accountId: String,
  },
  opts,
);

export interface EventDoc {
  _id: string;
  /** Epoch ms, for ordering and `--since`. */
  ts: number;
  user: string;
  /** The LoginEventRecord as JSON text. */
  doc: string;
  /** `ts` while `doc` holds a behavioural sample (sparse index): what the retention prune looks for. */
  behaviourTs?: number;
}

export interface RiskDoc {
  _id: string;
  doc: string;
  expiresAt?: Date | null;
}

const eventSchema = new Schema<EventDoc>(
  {
    _id: { type: String, required: true }, ts: { type: Number, required: true }, user: { type: String, required: true }, doc: { type: String, required: true },
    behaviourTs: { type: Number, required: false },
  },
  { ...opts, collection: 'login_events' },
);

/** One observed attempt (models/types.ts RiskObservation): inserted, never updated. */
export interface ObservationDoc {
  _id: string;
  kind: 'password_failed' | 'password_ok';
  ts: number;
  user: string;
  ip: string;
  country?: string | null;
  expiresAt: Date;
}

const observationSchema = new Schema<ObservationDoc>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: ['password_failed', 'password_ok'] },
    ts: { type: Number, required: true },
    user: { type: String, required: true },
    ip: { type: String, required: true },
    country: String,
    expiresAt: { type: Date, required: true },
  },
  { ...opts, collection: 'risk_observations' },
);

const riskSchema = new Schema<RiskDoc>({ _id: { type: String, required: true }, doc: { type: String, required: true }, expiresAt: Date }, opts);

/**
 * A second factor (models/types.ts FactorRecord); `recovery.used` is not kept here but in
 * factor_marks, where a unique `_id` makes each use single (see adapters/storage/mongo.ts).
 */
export interface FactorDoc {
  _id: string;
  accountId: string;
  kind: 'totp' | 'webauthn' | 'recovery';
  label: string;
  createdAt: Date;
  lastUsedAt?: Date | null;
  /** The counter as enrolled, raised after uses; the marks hold the authoritative value. */
  counter: number;
  enrolledVia: 'self' | 'admin' | 'login';
  totp?: { secretCiphertext: string; algorithm: 'SHA1'; digits: 6; period: 30 } | null;
  webauthn?: {
    credentialId: string;
    publicKey: string;
    transports: string[];
    deviceType: 'singleDevice' | 'multiDevice';
    backedUp: boolean;
    aaguid?: string | null;
    userVerified: boolean;
  } | null;
  recovery?: { hashes: string[] } | null;
}

/**
 * A single-use marker of a factor, its unique `_id` deciding who got there first: a counter
 * value accepted (`<factor>:counter:<value>`) or a recovery code used (`<factor>:recovery:<hash>`).
 */
export interface FactorMarkDoc {
  _id: string;
  factorId: string;
  kind: 'counter' | 'recovery';
  value?: number | null;
  hash?: string | null;
  at: Date;
}

const factorSchema = new Schema<FactorDoc>(
  {
    _id: { type: String, required: true },
    accountId: { type: String, required: true },
    kind: { type: String, required: true, enum: ['totp', 'webauthn', 'recovery'] },
    label: { type: String, required: true },
    createdAt: { type: Date, required: true },
    lastUsedAt: Date,
    counter: { type: Number, required: true },
    enrolledVia: { type: String, required: true, enum: ['self', 'admin', 'login'] },
    totp: {
      type: new Schema({
        secretCiphertext: { type: String, required: true },
        algorithm: { type: String, required: true, enum: ['SHA1'] },
        digits: { type: Number, required: true, enum: [6] },
        period: { type: Number, required: true, enum: [30] },
      }, { _id: false }),
      default: undefined,
    },
    webauthn: {
      type: new Schema({
        credentialId: { type: String, required: true },
        publicKey: { type: String, required: true },
        transports: { type: [String], default: [] },
        deviceType: { type: String, required: true, enum: ['singleDevice', 'multiDevice'] },
        backedUp: { type: Boolean, required: true },
        aaguid: String,
        userVerified: { type: Boolean, required: true },
      }, { _id: false }),
      default: undefined,
    },
    recovery: { type: new Schema({ hashes: { type: [String], required: true } }, { _id: false }), default: undefined },
  },
  { ...opts, collection: 'factors' },
);

const factorMarkSchema = new Schema<FactorMarkDoc>(
  {
    _id: { type: String, required: true },
    factorId: { type: String, required: true },
    kind: { type: String, required: true, enum: ['counter', 'recovery'] },
    value: Number,
    hash: String,
    at: { type: Date, required: true },
  },
  { ...opts, collection: 'factor_marks' },
);

export function registerModels(conn: Connection) {
  return {
    Account: conn.model<AccountDoc>('Account', accountSchema),
    Client: conn.model<ClientDoc>('Client', clientSchema),
    Attempt: conn.model<AttemptDoc>('Attempt', attemptSchema),
    Consumed: conn.model<ConsumedDoc>('Consumed', consumedSchema),
    Event: conn.model<EventDoc>('Event', eventSchema),
    RiskUser: conn.model<RiskDoc>('RiskUser', riskSchema.clone().set('collection', 'risk_users')),
    Observation: conn.model<ObservationDoc>('Observation', observationSchema),
    Factor: conn.model<FactorDoc>('Factor', factorSchema),
    FactorMark: conn.model<FactorMarkDoc>('FactorMark', factorMarkSchema),
    VersionMark: conn.model<VersionMarkDoc>('VersionMark', versionMarkSchema),
    Role: conn.model<RoleDoc>('Role', roleSchema),
  };
}

// --- Audit trail (issue 11) ---------------------------------------------------------------

/**
 * One audit record (models/types.ts AuditRecord) in the `audit` collection, written through the
 * driver (adapters/storage/mongo-audit.ts). `_id` is the sequence number: its unique index is
 * what keeps the numbers single across instances. before/after/detail are JSON text, like
 * ClientDoc.metadata: their keys may contain characters MongoDB treats specially.
 */
export interface AuditDoc {
  _id: number;
  id: string;
  ts: Date;
  actor: { kind: 'user' | 'client' | 'cli' | 'system'; id: string; ip?: string | null };
  action: string;
  outcome: 'success' | 'failure';
  target?: { type: string; id: string } | null;
  before?: string | null;
  after?: string | null;
  detail?: string | null;
  prevHash: string;
  hash: string;
  seal: string;
}

// ---------------------------------------------------------------------------------------
// Policy lifecycle and feedback loop (issue 11): see adapters/storage/mongo-policies.ts.
// ---------------------------------------------------------------------------------------

const actorSchema = new Schema({ kind: { type: String, required: true, enum: ['user', 'client', 'cli', 'system'] }, id: { type: String, required: true }, ip: String }, { _id: false });

/**
 * A published policy version (models/types.ts PolicyVersion). `_id` is the version number:
 * its unique index is what lets only one of several publishes with the same `ifVersion` in.
 */
export interface PolicyVersionDoc {
  _id: number;
  hash: string;
  modelVersion: string;
  message: string;
  actor: { kind: 'user' | 'client' | 'cli' | 'system'; id: string; ip?: string | null };
  publishedAt: Date;
  source: 'publish' | 'file' | 'rollback' | 'model';
  rollbackOf?: number | null;
  /** The `_id` of its files in policy_files. */
  filesId: string;
}

/** A version's files, by the sha256 of their canonical JSON (written before the version that names them). */
export interface PolicyFilesDoc {
  _id: string;
  /** JSON text: file names hold dots, which MongoDB field names should not. */
  files: string;
}

/** One version of one event's label; `_id` is `<eventId>#<version>`, unique: one writer per version. */
export interface LabelDoc {
  _id: string;
  eventId: string;
  version: number;
  label: 'attack' | 'legit';
  note?: string | null;
  actor: { kind: 'user' | 'client' | 'cli' | 'system'; id: string; ip?: string | null };
  at: Date;
}

/** A trained model kept until activated; `_id` is its sha256. */
export interface ModelCandidateDoc {
  _id: string;
  text: string;
  /** JSON text. */
  report: string;
  actor: { kind: 'user' | 'client' | 'cli' | 'system'; id: string; ip?: string | null };
  createdAt: Date;
}

const policyVersionSchema = new Schema<PolicyVersionDoc>(
  {
    _id: { type: Number, required: true },
    hash: { type: String, required: true },
    modelVersion: { type: String, required: true },
    message: { type: String, required: true },
    actor: { type: actorSchema, required: true },
    publishedAt: { type: Date, required: true },
    source: { type: String, required: true, enum: ['publish', 'file', 'rollback', 'model'] },
    rollbackOf: Number,
    filesId: { type: String, required: true },
  },
  { ...opts, collection: 'policy_versions' },
);

const policyFilesSchema = new Schema<PolicyFilesDoc>(
  { _id: { type: String, required: true }, files: { type: String, required: true } },
  { ...opts, collection: 'policy_files' },
);

const labelSchema = new Schema<LabelDoc>(
  {
    _id: { type: String, required: true },
    eventId: { type: String, required: true },
    version: { type: Number, required: true },
    label: { type: String, required: true, enum: ['attack', 'legit'] },
    note: String,
    actor: { type: actorSchema, required: true },
    at: { type: Date, required: true },
  },
  { ...opts, collection: 'labels' },
);

const modelCandidateSchema = new Schema<ModelCandidateDoc>(
  {
    _id: { type: String, required: true },
    text: { type: String, required: true },
    report: { type: String, required: true },
    actor: { type: actorSchema, required: true },
    createdAt: { type: Date, required: true },
  },
  { ...opts, collection: 'model_candidates' },
);

export function registerPolicyModels(conn: Connection) {
  return {
    PolicyVersion: conn.model<PolicyVersionDoc>('PolicyVersion', policyVersionSchema),
    PolicyFiles: conn.model<PolicyFilesDoc>('PolicyFiles', policyFilesSchema),
    Label: conn.model<LabelDoc>('Label', labelSchema),
    ModelCandidate: conn.model<ModelCandidateDoc>('ModelCandidate', modelCandidateSchema),
  };
}

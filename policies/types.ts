/**
 * The engine's plain-data vocabulary. Everything the engine needs arrives in these shapes;
 * nothing here knows about HTTP, databases or files (ARCHITECTURE.md: policies/ has no I/O
 * in its core and imports nothing from idp/, interactions/ or adapters/).
 */
import type { Behaviour } from './behaviour.ts';
import type { FactorId, RiskLevel } from './schema.ts';

export type AddressScope = 'public' | 'private' | 'loopback' | 'link-local' | 'cgnat' | 'reserved' | 'invalid';

/** Where an IP address is, as the geolocation adapter resolved it. */
export interface Place {
  scope: AddressScope;
  country?: string | undefined;
  region?: string | undefined;
  city?: string | undefined;
  lat?: number | undefined;
  lon?: number | undefined;
  asn?: number | undefined;
  asOrg?: string | undefined;
}

export interface Agent {
  browser?: string | undefined;
  browserMajor?: string | undefined;
  os?: string | undefined;
  /** Rendering engine (WebKit, Blink, Gecko): what decides how long the browser keeps site storage. */
  engine?: string | undefined;
  device: 'desktop' | 'mobile' | 'tablet' | 'other';
}

/** One login attempt whose first factor succeeded, as the engine sees it. */
export interface LoginContext {
  /** Epoch ms. */
  ts: number;
  /** Account identifier (stable). */
  user: string;
  ip: string;
  place: Place;
  agent: Agent;
  deviceId?: string | undefined;
  clientId?: string | undefined;
  /** Requested scopes: the "operations" assurance policies refer to. */
  scopes: string[];
  /**
   * A keystroke-timing anomaly score computed elsewhere (0 typical … 1 unlike the user) with
   * its confidence; when absent, the engine scores `behaviour` against the user's template.
   */
  keystroke?: { score: number; confidence: number } | undefined;
  /** How the password was typed and the pointer moved (policies/behaviour.ts); absent without the script. */
  behaviour?: Behaviour | undefined;
  /**
   * RFC 7638 thumbprint of the device key (a non-extractable WebCrypto key kept by the
   * browser) whose signature over a fresh, single-use server nonce verified for this login.
   */
  deviceKey?: string | undefined;
}

export interface Seen {
  n: number;
  last: number;
}

/**
 * A user's trusted history, capped by policy: constant memory per user. Built only from
 * logins that were let in (or passed step-up), so an attacker's success does not teach the
 * engine that the attacker is normal.
 */
export interface UserHistory {
  v: 1;
  /** Trusted logins counted. */
  trusted: number;
  /** Of those, logins from a browser never seen before (neither its cookie nor its device key). */
  newDevices?: number | undefined;
  /** Epoch ms of the first trusted login. */
  first?: number | undefined;
  ips: Record<string, Seen>;
  asns: Record<string, Seen>;
  countries: Record<string, Seen>;
  cities: Record<string, Seen>;
  devices: Record<string, Seen>;
  browsers: Record<string, Seen>;
  oses: Record<string, Seen>;
  /** Trusted logins per hour of the week (UTC), 168 buckets. */
  hours: number[];
  /** The last trusted login: where impossible travel is measured from. */
  last?: { ts: number; lat?: number | undefined; lon?: number | undefined; country?: string | undefined } | undefined;
  /** Countries of recent first-factor successes (trusted or not): country hopping. */
  recent: { ts: number; country: string }[];
  /** Recent failed passwords on this account (epoch ms). */
  failures: number[];
  /**
   * Keystroke template: vectors (policies/keystroke.ts keystrokeVector) of the newest usable
   * samples of trusted logins, all of `positions` characters; a sample of another length (a
   * new password) starts the template afresh.
   */
  keystroke?: { positions: number; samples: number[][] } | undefined;
  /** Pointer template: the newest pointer vectors of trusted logins. */
  pointer?: { samples: number[][] } | undefined;
  /**
   * Device keys proven at trusted logins, by thumbprint, with the device cookie they came with
   * and the rendering engine of the browser that proved them (WebKit's storage cap, signals.ts).
   */
  deviceKeys?: Record<string, Seen & { device?: string | undefined; engine?: string | undefined }> | undefined;
}

/** Failed passwords from one IP address (credential stuffing), capped. */
export interface IpHistory {
  v: 1;
  failures: { ts: number; user: string }[];
}

export interface Reason {
  /** `model` or a factor id. */
  factor: 'model' | FactorId | 'cold_start' | 'shared_address';
  /** How much it added to the score (negative lowers it). */
  contribution: number;
  /** What the factor saw, for people reading the decision. */
  detail?: string | undefined;
  /**
   * The part is in monitor mode (policies/monitor.ts): it fired and is shown, but its
   * contribution is not in this score.
   */
  monitor?: true | undefined;
}

/** The engine's answer (STYLE.md §3): plain data that explains itself. */
export interface Assessment {
  score: number;
  level: RiskLevel;
  reasons: Reason[];
  /** 0 … 1: how much history the judgement rests on. */
  confidence: number;
  /** P(attack) from the model, before weighting. */
  modelProbability: number;
  policyVersion: string;
  modelVersion: string;
  /** Non-empty when a rule or the model failed: the outcome is then the strictest. */
  errors: string[];
  /**
   * The behavioural scores the engine saw (0 typical … 1 unlike the user, with confidence 0
   * while the template learns), whether or not their factors fired; absent without a sample.
   */
  behaviour?: { keystroke?: { score: number; confidence: number } | undefined; pointer?: { score: number; confidence: number } | undefined } | undefined;
}

export type DecisionKind = 'allow' | 'step_up' | 'block';

export interface Decision {
  decision: DecisionKind;
  /** Assurance level name required (absent for block). */
  required?: string | undefined;
  /** The ACR value of that level. */
  requiredAcr?: string | undefined;
  /** What decided it: the default map, a client or an operation. */
  because: string[];
}

/**
 * One login attempt as JSON lines carry it (README "Login events"): the type is inferred
 * from the zod schema in policies/event.ts. `label`, `attackType` and `scenario` are for
 * metrics only and never reach the scorer; `mfa` is read only after a decision.
 */
export type { AttackType, EvaluationField, LoginEvent } from './event.ts';

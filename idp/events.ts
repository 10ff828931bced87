/**
 * Named events, emitted from one place (STYLE.md §11): each goes to the log and is counted
 * for /metrics (through the MetricsSink below). The audit trail (idp/audit.ts) is written beside them, durably, where the
 * action happens: a log line may be lost, an audit record the user was answered after may not.
 */
import type { Logger } from './log.ts';

export const EVENT_NAMES = [
  'login.failed', 'login.succeeded', 'login.blocked', 'login.throttled', 'risk.decided', 'device.proof_refused',
  'stepup.required', 'stepup.passed', 'stepup.failed', 'stepup.refused',
  'mfa.enrolled', 'mfa.enrolment_skipped', 'mfa.recovery_used', 'mfa.removed',
  'policy.reloaded', 'policy.rejected', 'policy.published', 'policy.file_skipped', 'keys.reloaded', 'keys.rejected',
  'directory.unavailable', 'directory.linked', 'directory.session_ended',
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/**
 * Counters with labels, beside the count of each event: declared here (name, help, label
 * names) so /metrics lists them in one place.
 */
export const COUNTERS = {
  idp_risk_monitor_decisions_total: {
    help: 'Decisions the risk policy would have made with its monitor-mode parts enforced (computed and recorded, not acted on), by decision and risk level.',
    labels: ['decision', 'level'],
  },
  idp_directory_errors_total: {
    help: 'Directory operations that failed for want of an answer (connect, TLS, timeout, service bind, protocol), by directory and kind.',
    labels: ['directory', 'kind'],
  },
} as const satisfies Record<string, { help: string; labels: readonly string[] }>;
export type CounterName = keyof typeof COUNTERS;
export type LabelsOf<N extends CounterName> = Record<(typeof COUNTERS)[N]['labels'][number], string>;

/** The label values of docs/metrics.md, fixed in code. */
export type LoginOutcome = 'success' | 'failure' | 'blocked' | 'throttled' | 'unavailable';
export type LoginDecision = 'allow' | 'step_up' | 'block' | 'none';
export type LoginFailureReason = 'bad_password' | 'unknown_user' | 'disabled' | 'directory_refused' | 'other';
export type StepupMethod = 'totp' | 'webauthn' | 'recovery' | 'enrolment';
export type StepupResult = 'prompted' | 'passed' | 'failed';
// No passkey: a WebAuthn assertion is single-use and bound to its challenge, so it is not throttled.
export type ThrottleFactor = 'password' | 'totp' | 'recovery';

/** One live assessment, as the metrics see it (names are bounded by the sink against the policy). */
export interface AssessmentSample {
  score: number;
  level: string;
  requiredAcr: string | undefined;
  decision: 'allow' | 'step_up' | 'block';
  reasons: readonly { factor: string; contribution: number; monitor?: true | undefined }[];
  seconds: number;
}

/**
 * Where the lower layers record what they count (docs/metrics.md). The kernel declares it;
 * idp/metrics.ts implements it with prom-client, so interactions/ and adapters/ never import
 * idp/ beyond the kernel (ARCHITECTURE.md).
 */
export interface MetricsSink {
  event(name: EventName): void;
  count<N extends CounterName>(name: N, labels: LabelsOf<N>): void;
  login(outcome: LoginOutcome, decision: LoginDecision): void;
  loginFailure(reason: LoginFailureReason): void;
  assessment(a: AssessmentSample): void;
  stepup(method: StepupMethod, result: StepupResult): void;
  stepupRefused(reason: string): void;
  throttled(factor: ThrottleFactor): void;
}

/** Metrics off (METRICS=off): every call does nothing. */
export const NO_METRICS: MetricsSink = {
  event() {}, count() {}, login() {}, loginFailure() {}, assessment() {}, stepup() {}, stepupRefused() {}, throttled() {},
};

export class Events {
  readonly #log: Logger;
  /** The metrics recorder (idp/metrics.ts), or nothing. */
  readonly metrics: MetricsSink;

  constructor(log: Logger, metrics: MetricsSink = NO_METRICS) {
    this.#log = log;
    this.metrics = metrics;
  }

  emit(name: EventName, fields: Record<string, unknown> = {}, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.metrics.event(name);
    this.#log[level](name, fields);
  }

  /** Adds one to a labelled counter (COUNTERS). */
  count<N extends CounterName>(name: N, labels: LabelsOf<N>): void {
    this.metrics.count(name, labels);
  }
}

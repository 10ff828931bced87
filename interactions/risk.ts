/**
 * The login's risk step (ARCHITECTURE.md steps 3–5 and 8): build the login context, load the
 * user's and the IP's history, let the engine score and decide with one policy snapshot,
 * record the event. What the attempt teaches the engine is stored in two parts:
 * - every failed password and every first-factor success is one observation record,
 *   inserted when it happens (parallel attempts are never lost: adapters/storage/port.ts);
 * - the trusted history (places, devices, hours) grows only in `trust`, which the finish
 *   step calls once the whole login has succeeded.
 * Together they build exactly the history the simulator's `observe` builds.
 *
 * Monitor mode (policies/monitor.ts): the decision acted on is the enforced one; what the
 * policy would have decided with every part enforced is recorded with the event
 * (`assessment.monitor`), logged with `risk.decided` and counted
 * (`idp_risk_monitor_decisions_total`).
 */
import crypto from 'node:crypto';
import type { Storage } from '../adapters/storage/port.ts';
import type { GeoLookup } from '../adapters/geoip.ts';
import type { AuditInput, LoginEventRecord } from '../models/types.ts';
import { assess } from '../policies/assess.ts';
import type { Behaviour } from '../policies/behaviour.ts';
import { emptyUserHistory, joinsTemplates, RECENT_MS, recordTrusted } from '../policies/history.ts';
import { templateLevel } from '../policies/monitor.ts';
import { findLoginRecord } from './login-record.ts';
import type { RiskLevel } from '../policies/schema.ts';
import type { CompiledPolicy } from '../policies/policy.ts';
import type { Assessment, Decision, IpHistory, LoginContext, UserHistory } from '../policies/types.ts';
import { parseAgent } from '../policies/ua.ts';
import type { PolicyRuntime } from '../policies/watcher.ts';
import type { Events } from '../idp/events.ts';

export interface AttemptInfo {
  /** Account id, or the keyed stand-in for an unknown username. */
  user: string;
  ip: string;
  userAgent: string;
  deviceId?: string | undefined;
  clientId?: string | undefined;
  scopes: string[];
  /** RFC 7638 thumbprint of the device key this attempt proved (interactions/device-key.ts). */
  deviceKey?: string | undefined;
  /** How the password was typed and the pointer moved (interactions/behaviour.ts); absent without the script. */
  behaviour?: Behaviour | undefined;
}

export interface RiskOptions {
  /**
   * The audit trail (idp/audit.ts): every decision on a login and every failed first factor
   * is recorded, durably, before the step answers.
   */
  audit: (e: AuditInput) => Promise<void>;
  /**
   * Whether first-factor successes record their raw behavioural sample in the login event
   * (BEHAVIOUR_RETENTION_DAYS > 0). Either way the sample is scored and may join the templates.
   */
  recordBehaviour?: boolean | undefined;
}

export interface AssessOptions {
  /** RFC 8176 methods proven so far (default: a password). */
  amr?: readonly string[] | undefined;
  /** The level the relying party's request requires (policies/assurance.ts requestedLevel). */
  requested?: { index: number; because: readonly string[] } | undefined;
  /** With `session`: the `auth_time` of the session's login (its device key counts, see sessionDeviceKey). */
  sessionAuthTime?: number | undefined;
}

export interface RiskResult {
  assessment: Assessment;
  decision: Decision;
  /** Monitor mode: the outcome as if every part were enforced (recorded, never acted on). */
  monitor?: { assessment: Assessment; decision: Decision } | undefined;
  policy: CompiledPolicy;
  /** The recorded login event; none for the re-assessment of a session. */
  eventId: string | undefined;
  /** What was scored: the finish step records it as trusted. */
  context: LoginContext;
}

/** What a login event records of the monitor outcome (models/types.ts LoginEventRecord). */
function monitorRecord(m: NonNullable<RiskResult['monitor']>, digits?: number): NonNullable<NonNullable<LoginEventRecord['assessment']>['monitor']> {
  return {
    score: digits === undefined ? m.assessment.score : Number(m.assessment.score.toFixed(digits)), level: m.assessment.level,
    decision: m.decision.decision, requiredAcr: m.decision.requiredAcr,
    ...(m.assessment.errors.length ? { errors: m.assessment.errors } : {}),
  };
}

/** The audit record of a login's decision (README "Audit trail": auth.decision). */
function decisionRecord(a: AttemptInfo, assessment: Assessment, decision: Decision, monitor: RiskResult['monitor'], eventId: string, amr: readonly string[]): AuditInput {
  return {
    actor: { kind: 'system', id: 'login', ip: a.ip },
    action: 'auth.decision',
    // A block refuses the login; allow and step-up let it go on (a step-up's own result is the login's).
    outcome: decision.decision === 'block' ? 'failure' : 'success',
    target: { type: 'user', id: a.user },
    detail: {
      decision: decision.decision, level: assessment.level, score: Number(assessment.score.toFixed(3)), requiredAcr: decision.requiredAcr,
      required: decision.required, amr: [...amr], client: a.clientId, event: eventId, policy: assessment.policyVersion, model: assessment.modelVersion,
      reasons: assessment.reasons.filter((r) => !r.monitor).map((r) => r.factor),
      ...(monitor ? { monitor: { decision: monitor.decision.decision, level: monitor.assessment.level } } : {}),
      ...(assessment.errors.length ? { errors: assessment.errors } : {}),
    },
  };
}

const isUserHistory = (x: unknown): x is UserHistory => typeof x === 'object' && x !== null && (x as UserHistory).v === 1 && Array.isArray((x as UserHistory).hours);

export class RiskService {
  readonly #storage: Storage;
  readonly #geo: GeoLookup;
  readonly #policies: PolicyRuntime;
  readonly #events: Events;
  readonly #recordBehaviour: boolean;
  readonly #audit: (e: AuditInput) => Promise<void>;
  /** The history document each scored context was read with, while that context lives. */
  readonly #read = new WeakMap<LoginContext, { doc: unknown }>();

  constructor(storage: Storage, geo: GeoLookup, policies: PolicyRuntime, events: Events, opts: RiskOptions) {
    this.#storage = storage;
    this.#geo = geo;
    this.#policies = policies;
    this.#events = events;
    this.#recordBehaviour = opts.recordBehaviour ?? true;
    this.#audit = opts.audit;
  }

  get policy(): CompiledPolicy {
    return this.#policies.current();
  }

  /** The login context of a request, as the engine sees it. */
  contextOf(a: AttemptInfo, ts = Date.now()): LoginContext {
    return this.#context(a, ts);
  }

  #context(a: AttemptInfo, ts: number): LoginContext {
    const ua = a.userAgent.slice(0, 512);
    return {
      ts, user: a.user, ip: a.ip, place: this.#geo.lookup(a.ip), agent: parseAgent(ua), deviceId: a.deviceId, clientId: a.clientId, scopes: a.scopes,
      behaviour: a.behaviour, deviceKey: a.deviceKey,
    };
  }

  /** Observations are kept as long as any signal looks back at them. */
  #expiry(ts: number, policy: CompiledPolicy): number {
    return ts + Math.max(policy.risk.history.failure_window_minutes * 60_000, RECENT_MS);
  }

  /** The trusted history document plus the observations, as the simulator holds them in memory. */
  async #histories(ctx: LoginContext, policy: CompiledPolicy): Promise<{ user: UserHistory; ip: IpHistory }> {
    const { failure_window_minutes: windowMin, max_failures: maxFailures, max_entries: maxEntries } = policy.risk.history;
    const since = ctx.ts - windowMin * 60_000;
    const { doc, observations: [userFailures = [], ipFailures = [], recent = []] } = await this.#storage.risk.snapshot(ctx.user, [
      { by: { user: ctx.user }, kind: 'password_failed', since, limit: maxFailures },
      { by: { ip: ctx.ip }, kind: 'password_failed', since, limit: maxFailures },
      // observe() keeps the last `max` entries of the hour, then adds one.
      { by: { user: ctx.user }, kind: 'password_ok', since: ctx.ts - RECENT_MS, limit: maxEntries + 1 },
    ]);
    // The document as read, for trust() when this login finishes in this very request (the
    // two fields filled in below are the ones trust() empties again; assess() reads only).
    this.#read.set(ctx, { doc });
    const user = isUserHistory(doc) ? doc : emptyUserHistory();
    // A trusted login ends the run of failures on the account (policies/history.ts).
    const lastTrusted = user.last?.ts ?? Number.NEGATIVE_INFINITY;
    user.failures = userFailures.filter((o) => o.ts > lastTrusted).map((o) => o.ts);
    user.recent = recent.flatMap((o) => (o.country ? [{ ts: o.ts, country: o.country }] : []));
    return { user, ip: { v: 1, failures: ipFailures.map((o) => ({ ts: o.ts, user: o.user })) } };
  }

  #record(a: AttemptInfo, ctx: LoginContext, success: boolean, extra: Partial<LoginEventRecord> = {}): LoginEventRecord {
    return {
      id: crypto.randomUUID(), ts: new Date(ctx.ts).toISOString(), user: a.user, ip: a.ip, userAgent: a.userAgent.slice(0, 512),
      deviceId: a.deviceId, deviceKey: a.deviceKey, success, clientId: a.clientId, scope: a.scopes.join(' ') || undefined, ...extra,
    };
  }

  /** A wrong password: remembered for the account and the IP (failures, credential stuffing). */
  async passwordFailed(a: AttemptInfo, ts = Date.now()): Promise<void> {
    const policy = this.#policies.current();
    const event = this.#record(a, this.#context(a, ts), false);
    // All three in parallel: on the embedded store they share one commit (its group commit).
    await Promise.all([
      this.#storage.risk.observe({ kind: 'password_failed', ts, user: a.user, ip: a.ip }, this.#expiry(ts, policy)),
      this.#storage.events.append(event),
      this.#audit({
        actor: { kind: 'system', id: 'login', ip: a.ip }, action: 'auth.first_factor', outcome: 'failure',
        target: { type: 'user', id: a.user }, detail: { event: event.id, client: a.clientId },
      }),
    ]);
  }

  /**
   * The first factor was right: score, decide, record. One policy snapshot for all of it.
   * `amr`: what the login has proven so far; `requested`: the level the RP's request requires.
   */
  async passwordSucceeded(a: AttemptInfo, opts: AssessOptions = {}, ts = Date.now()): Promise<RiskResult> {
    const started = performance.now();
    const policy = this.#policies.current();
    const ctx = this.#context(a, ts);
    const h = await this.#histories(ctx, policy);
    const { assessment, decision, monitor } = assess({ context: ctx, user: h.user, ip: h.ip, policy, amr: opts.amr ?? ['pwd'], requested: opts.requested });
    const seconds = (performance.now() - started) / 1000;
    const event = this.#record(a, ctx, true, {
      assessment: {
        score: assessment.score, level: assessment.level, decision: decision.decision, requiredAcr: decision.requiredAcr,
        reasons: assessment.reasons, confidence: assessment.confidence, policyVersion: assessment.policyVersion,
        modelVersion: assessment.modelVersion, errors: assessment.errors, behaviour: assessment.behaviour,
        ...(monitor ? { monitor: monitorRecord(monitor) } : {}),
      },
      // Only here: a wrong password's timings are those of another string, worth nothing to
      // the templates and one more thing to keep. Replayed by the simulator (README "Login events").
      behaviour: this.#recordBehaviour ? a.behaviour : undefined,
    });
    // Whatever the decision: country hopping counts first-factor successes, trusted or not.
    // The decision's audit record in the same round (one commit on the embedded store): durable
    // before the step answers, so no user sees a decision the trail could lose.
    await Promise.all([
      this.#storage.risk.observe({ kind: 'password_ok', ts, user: a.user, ip: a.ip, country: ctx.place.country }, this.#expiry(ts, policy)),
      this.#storage.events.append(event),
      this.#audit(decisionRecord(a, assessment, decision, monitor, event.id, opts.amr ?? ['pwd'])),
    ]);
    this.#decided(a, assessment, decision, monitor, event.id, seconds);
    return { assessment, decision, monitor, policy, eventId: event.id, context: ctx };
  }

  /**
   * A new authorization on an existing session (ARCHITECTURE.md "Re-authorization"): the
   * same engine, in the request's context (address, network, browser may have changed since
   * the session began), against what the session has proven. Nothing is recorded as a login
   * attempt: no factor was presented, so the simulator's input stays what users typed.
   */
  async session(a: AttemptInfo, opts: AssessOptions, ts = Date.now()): Promise<RiskResult> {
    const started = performance.now();
    const policy = this.#policies.current();
    // The histories are read by account and address only: in parallel with the login record.
    const base = this.#context(a, ts);
    const [deviceKey, h] = await Promise.all([
      a.deviceKey ?? (opts.sessionAuthTime !== undefined ? this.sessionDeviceKey(a.user, opts.sessionAuthTime, a.deviceId) : undefined),
      this.#histories(base, policy),
    ]);
    const ctx = { ...base, deviceKey };
    const { assessment, decision, monitor } = assess({ context: ctx, user: h.user, ip: h.ip, policy, amr: opts.amr ?? [], requested: opts.requested });
    this.#decided(a, assessment, decision, monitor, undefined, (performance.now() - started) / 1000);
    return { assessment, decision, monitor, policy, eventId: undefined, context: ctx };
  }

  /**
   * The device key the session's login proved, if this request comes with the device cookie
   * that login had. A request on a session posts no form, so its browser cannot prove the key
   * again; without this its device cookie would look copied (`device_unproven`) at every
   * re-authorization. Whoever holds the session cookie holds the session anyway.
   */
  async sessionDeviceKey(user: string, authTime: number, deviceId: string | undefined): Promise<string | undefined> {
    if (deviceId === undefined) return undefined;
    const device = (await findLoginRecord(this.#storage, user, authTime))?.device;
    return device?.id === deviceId ? device.key : undefined;
  }

  #decided(a: AttemptInfo, assessment: Assessment, decision: Decision, monitor: RiskResult['monitor'], eventId: string | undefined, seconds: number) {
    this.#events.metrics.assessment({
      score: assessment.score, level: assessment.level, requiredAcr: decision.requiredAcr, decision: decision.decision, reasons: assessment.reasons, seconds,
    });
    const errors = [...assessment.errors, ...(monitor?.assessment.errors ?? []).map((e) => `monitor: ${e}`)];
    if (monitor) this.#events.count('idp_risk_monitor_decisions_total', { decision: monitor.decision.decision, level: monitor.assessment.level });
    this.#events.emit('risk.decided', {
      account: a.user, client: a.clientId, score: Number(assessment.score.toFixed(3)), riskLevel: assessment.level, decision: decision.decision,
      required: decision.required, reasons: assessment.reasons.filter((r) => !r.monitor).map((r) => r.factor), policy: assessment.policyVersion,
      ...(monitor ? { monitor: { ...monitorRecord(monitor, 3), reasons: assessment.reasons.filter((r) => r.monitor).map((r) => r.factor) } } : {}),
      ...(eventId ? { event: eventId } : { on: 'session' }),
      ...(errors.length ? { errors } : {}),
    }, errors.length ? 'error' : 'info');
  }

  /**
   * The login fully succeeded: its context joins the user's trusted history, and its
   * behavioural samples the templates when it was low risk or `steppedUp` (a second factor
   * was proven in it). Read fresh (or in this request), so a concurrent finish of the same user
   * loses at most its own entry (port.ts RiskStateStore).
   */
  async trust(context: LoginContext, how: { level: RiskLevel; monitorLevel?: RiskLevel | undefined; steppedUp: boolean }): Promise<void> {
    const policy = this.#policies.current();
    // Scored and finished in one request: the document read to score it, milliseconds ago.
    // A login that took a second step reads it again (its context was stored and reloaded).
    const read = this.#read.get(context);
    const doc = read ? read.doc : await this.#storage.risk.getUser(context.user);
    const user = isUserHistory(doc) ? doc : emptyUserHistory();
    const level = templateLevel(how.level, how.monitorLevel);
    const learn = joinsTemplates(how.steppedUp ? { decision: 'step_up', mfa: 'pass' } : { decision: 'allow', level }, policy.risk);
    recordTrusted(user, context, policy.risk, learn);
    // Failures and recent successes live in observation records, not in this document.
    user.failures = [];
    user.recent = [];
    await this.#storage.risk.putUser(context.user, user);
  }
}

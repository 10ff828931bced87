/**
 * The login's risk step (ARCHITECTURE.md steps 3–5 and 8): build the login context, load the
 * user's and the IP's history, let the engine score and decide with one policy snapshot,
 * record the event and what it taught the histories.
 */
import crypto from 'node:crypto';
import type { Storage } from '../adapters/storage/port.ts';
import type { GeoLookup } from '../adapters/geoip.ts';
import type { LoginEventRecord } from '../models/types.ts';
import { decide } from '../policies/decision.ts';
import { emptyIpHistory, emptyUserHistory, observe, type Outcome } from '../policies/history.ts';
import type { CompiledPolicy } from '../policies/policy.ts';
import { scoreLogin } from '../policies/score.ts';
import { computeSignals } from '../policies/signals.ts';
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
}

export interface RiskResult {
  assessment: Assessment;
  decision: Decision;
  policy: CompiledPolicy;
  eventId: string;
}

const isUserHistory = (x: unknown): x is UserHistory => typeof x === 'object' && x !== null && (x as UserHistory).v === 1 && Array.isArray((x as UserHistory).hours);
const isIpHistory = (x: unknown): x is IpHistory => typeof x === 'object' && x !== null && (x as IpHistory).v === 1 && Array.isArray((x as IpHistory).failures);

export class RiskService {
  readonly #storage: Storage;
  readonly #geo: GeoLookup;
  readonly #policies: PolicyRuntime;
  readonly #events: Events;

  constructor(storage: Storage, geo: GeoLookup, policies: PolicyRuntime, events: Events) {
    this.#storage = storage;
    this.#geo = geo;
    this.#policies = policies;
    this.#events = events;
  }

  get policy(): CompiledPolicy {
    return this.#policies.current();
  }

  #context(a: AttemptInfo, ts: number): LoginContext {
    const ua = a.userAgent.slice(0, 512);
    return { ts, user: a.user, ip: a.ip, place: this.#geo.lookup(a.ip), agent: parseAgent(ua), deviceId: a.deviceId, clientId: a.clientId, scopes: a.scopes };
  }

  async #histories(ctx: LoginContext): Promise<{ user: UserHistory; ip: IpHistory }> {
    const [u, i] = await Promise.all([this.#storage.risk.getUser(ctx.user), this.#storage.risk.getIp(ctx.ip)]);
    return { user: isUserHistory(u) ? u : emptyUserHistory(), ip: isIpHistory(i) ? i : emptyIpHistory() };
  }

  async #save(ctx: LoginContext, h: { user: UserHistory; ip: IpHistory }, policy: CompiledPolicy, ipChanged: boolean) {
    const ipExpires = ctx.ts + policy.risk.history.failure_window_minutes * 60_000;
    await Promise.all([
      this.#storage.risk.putUser(ctx.user, h.user),
      ipChanged ? this.#storage.risk.putIp(ctx.ip, h.ip, ipExpires) : Promise.resolve(),
    ]);
  }

  #record(a: AttemptInfo, ctx: LoginContext, success: boolean, extra: Partial<LoginEventRecord> = {}): LoginEventRecord {
    return {
      id: crypto.randomUUID(), ts: new Date(ctx.ts).toISOString(), user: a.user, ip: a.ip, userAgent: a.userAgent.slice(0, 512),
      deviceId: a.deviceId, success, clientId: a.clientId, scope: a.scopes.join(' ') || undefined, ...extra,
    };
  }

  /** A wrong password: remembered for the account and the IP (failures, credential stuffing). */
  async passwordFailed(a: AttemptInfo, ts = Date.now()): Promise<void> {
    const policy = this.#policies.current();
    const ctx = this.#context(a, ts);
    const h = await this.#histories(ctx);
    observe(h.user, h.ip, ctx, { kind: 'password_failed' }, policy.risk);
    await this.#save(ctx, h, policy, true);
    await this.#storage.events.append(this.#record(a, ctx, false));
  }

  /** The password was right: score, decide, record. One policy snapshot for all of it. */
  async passwordSucceeded(a: AttemptInfo, ts = Date.now()): Promise<RiskResult> {
    const policy = this.#policies.current();
    // A password alone reaches the weakest assurance level the policy defines.
    const achieved = policy.assurance.levels[0]!.name;
    const ctx = this.#context(a, ts);
    const h = await this.#histories(ctx);
    const signals = computeSignals(ctx, h.user, h.ip, policy.risk, policy.lists);
    const assessment = scoreLogin(ctx, signals, policy);
    const decision = decide({ level: assessment.level, clientId: ctx.clientId, scopes: ctx.scopes, achieved }, policy);
    // Until step-up methods exist, a challenged login has no mfa outcome and stays out of
    // the trusted history (policies/history.ts).
    const outcome: Outcome = { kind: 'password_ok', decision: decision.decision };
    observe(h.user, h.ip, ctx, outcome, policy.risk);
    await this.#save(ctx, h, policy, false);
    const event = this.#record(a, ctx, true, {
      assessment: {
        score: assessment.score, level: assessment.level, decision: decision.decision, requiredAcr: decision.requiredAcr,
        reasons: assessment.reasons, confidence: assessment.confidence, policyVersion: assessment.policyVersion,
        modelVersion: assessment.modelVersion, errors: assessment.errors,
      },
    });
    await this.#storage.events.append(event);
    this.#events.emit('risk.decided', {
      account: a.user, client: a.clientId, score: Number(assessment.score.toFixed(3)), riskLevel: assessment.level, decision: decision.decision,
      reasons: assessment.reasons.map((r) => r.factor), policy: assessment.policyVersion, event: event.id,
      ...(assessment.errors.length ? { errors: assessment.errors } : {}),
    }, assessment.errors.length ? 'error' : 'info');
    return { assessment, decision, policy, eventId: event.id };
  }
}

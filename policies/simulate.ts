/**
 * Replaying login events through a policy: each user's history is built exactly as live
 * operation builds it (policies/history.ts), events in time order, one event at a time, in
 * constant memory per user. Labels are read only for metrics and never reach the scorer.
 */
import { assess } from './assess.ts';
import { emptyIpHistory, emptyUserHistory, observe, type Outcome } from './history.ts';
import { rocAuc, tprAtFpr } from './metrics.ts';
import { templateLevel } from './monitor.ts';
import type { CompiledPolicy } from './policy.ts';
import { EventError, type LoginEvent } from './event.ts';
import type { Assessment, Decision, IpHistory, LoginContext, Place, UserHistory } from './types.ts';
import { parseAgent } from './ua.ts';
import { RISK_LEVELS } from './schema.ts';

const PASSWORD_AMR = ['pwd'] as const;

export interface ScoredEvent {
  id: string;
  assessment: Assessment;
  decision: Decision;
  /** With a policy (part) in monitor mode: the outcome as if every part were enforced (assess.ts). */
  monitor?: { assessment: Assessment; decision: Decision } | undefined;
  features?: Float64Array | undefined;
  label?: 'legit' | 'attack' | undefined;
  attackType?: string | undefined;
  scenario?: string | undefined;
}

/**
 * How histories grow: `decisions` as live (trusted when allowed, or challenged and passed);
 * `mfa` as if every login had been challenged (trusted when `mfa` is pass), which is how
 * training data is built, independent of any model.
 */
export type HistoryMode = 'decisions' | 'mfa';

/**
 * The scorer's view of an event: only these fields are copied, so the evaluation-only ones
 * (`label`, `attackType`, `scenario`) and `mfa` cannot influence a decision.
 */
export function contextOf(e: LoginEvent, place: Place, ts = Date.parse(e.ts)): LoginContext {
  return {
    ts, user: e.user, ip: e.ip, place, agent: parseAgent(e.userAgent), deviceId: e.deviceId, clientId: e.clientId,
    scopes: e.scope ? e.scope.split(' ').filter(Boolean) : [], keystroke: e.keystroke,
    behaviour: e.behaviour, deviceKey: e.deviceKey,
  };
}

export class Replayer {
  readonly users = new Map<string, UserHistory>();
  readonly ips = new Map<string, IpHistory>();
  readonly #policy: CompiledPolicy;
  readonly #placeOf: (ip: string) => Place;
  readonly #mode: HistoryMode;
  readonly #keepFeatures: boolean;
  #lastTs = -Infinity;
  #processed = 0;

  constructor(policy: CompiledPolicy, placeOf: (ip: string) => Place, opts: { mode?: HistoryMode; keepFeatures?: boolean } = {}) {
    this.#policy = policy;
    const cache = new Map<string, Place>();
    this.#placeOf = (ip) => {
      let p = cache.get(ip);
      if (!p) {
        if (cache.size > 200_000) cache.clear();
        p = placeOf(ip);
        cache.set(ip, p);
      }
      return p;
    };
    this.#mode = opts.mode ?? 'decisions';
    this.#keepFeatures = opts.keepFeatures ?? false;
  }

  /** Feeds one event; returns its scoring when the password was right (the live path). */
  process(e: LoginEvent): ScoredEvent | undefined {
    const ts = Date.parse(e.ts);
    if (ts < this.#lastTs) throw new EventError(`events must be in time order (${e.ts} comes after ${new Date(this.#lastTs).toISOString()})`);
    this.#lastTs = ts;
    if ((this.#processed += 1) % 100_000 === 0) this.#sweepIps(ts);
    const ctx = contextOf(e, this.#placeOf(e.ip), ts);
    let user = this.users.get(e.user);
    if (!user) {
      user = emptyUserHistory();
      this.users.set(e.user, user);
    }
    let ip = this.ips.get(ctx.ip);
    const policy = this.#policy;
    if (!e.success) {
      if (!ip) {
        ip = emptyIpHistory();
        this.ips.set(ctx.ip, ip);
      }
      observe(user, ip, ctx, { kind: 'password_failed' }, policy.risk);
      return undefined;
    }
    const ipHist = ip ?? emptyIpHistory();
    // The recorded login proved a password (the live path's state at the risk step).
    const { assessment, decision, monitor, features } = assess({ context: ctx, user, ip: ipHist, policy, amr: PASSWORD_AMR, keepFeatures: this.#keepFeatures });
    // The enforced decision grows the history, as live; the templates judge by the stricter
    // of the enforced and the monitored level (monitor.ts templateLevel), as the finish step does.
    const outcome: Outcome = this.#mode === 'mfa'
      ? { kind: 'password_ok', decision: 'step_up', mfa: e.mfa }
      : { kind: 'password_ok', decision: decision.decision, level: templateLevel(assessment.level, monitor?.assessment.level), mfa: e.mfa };
    observe(user, ipHist, ctx, outcome, policy.risk);
    return {
      id: e.id, assessment, decision, label: e.label, attackType: e.attackType, scenario: e.scenario,
      ...(monitor ? { monitor } : {}),
      ...(features ? { features } : {}),
    };
  }

  #sweepIps(now: number) {
    const since = now - this.#policy.risk.history.failure_window_minutes * 60_000;
    for (const [k, v] of this.ips) if (!v.failures.some((f) => f.ts > since)) this.ips.delete(k);
  }
}

/** Running totals for summary.json. */
export class Summary {
  events = 0;
  scored = 0;
  failures = 0;
  readonly decisions = { allow: 0, step_up: 0, block: 0 };
  readonly levels: Record<string, number> = Object.fromEntries(RISK_LEVELS.map((l) => [l, 0]));
  readonly #byType = new Map<string, { n: number; flagged: number; blocked: number; scores: number[]; model: number[] }>();
  readonly #legit = { n: 0, flagged: 0, blocked: 0, scores: [] as number[], model: [] as number[] };
  /** Legitimate logins per named scenario (e.g. shared_nat): how many were challenged or blocked. */
  readonly #scenarios = new Map<string, { n: number; flagged: number; blocked: number }>();
  changed = 0;
  readonly transitions: Record<string, number> = {};
  /**
   * With a policy (part) in monitor mode: the decisions and levels it would have given were
   * every part enforced, and how many of them differ from the decision enforced.
   */
  monitor: {
    scored: number; decisions: Record<'allow' | 'step_up' | 'block', number>; levels: Record<string, number>; differs: number;
    /** Labelled events only: how many would have been challenged or blocked (`flagged`), and blocked. */
    legit: { n: number; flagged: number; blocked: number }; attack: { n: number; flagged: number; blocked: number };
  } | undefined;

  add(s: ScoredEvent | undefined, success: boolean) {
    this.events += 1;
    if (!success) this.failures += 1;
    if (!s) return;
    this.scored += 1;
    this.decisions[s.decision.decision] += 1;
    this.levels[s.assessment.level] = (this.levels[s.assessment.level] ?? 0) + 1;
    if (s.monitor) {
      const m = this.monitor ??= {
        scored: 0, decisions: { allow: 0, step_up: 0, block: 0 }, levels: Object.fromEntries(RISK_LEVELS.map((l) => [l, 0])), differs: 0,
        legit: { n: 0, flagged: 0, blocked: 0 }, attack: { n: 0, flagged: 0, blocked: 0 },
      };
      const would = s.monitor.decision.decision;
      m.scored += 1;
      m.decisions[would] += 1;
      m.levels[s.monitor.assessment.level] = (m.levels[s.monitor.assessment.level] ?? 0) + 1;
      if (would !== s.decision.decision) m.differs += 1;
      if (s.label) {
        const c = m[s.label];
        c.n += 1; c.flagged += would !== 'allow' ? 1 : 0; c.blocked += would === 'block' ? 1 : 0;
      }
    }
    const flagged = s.decision.decision !== 'allow' ? 1 : 0;
    const blocked = s.decision.decision === 'block' ? 1 : 0;
    if (s.label === 'legit') {
      this.#legit.n += 1; this.#legit.flagged += flagged; this.#legit.blocked += blocked;
      this.#legit.scores.push(s.assessment.score); this.#legit.model.push(s.assessment.modelProbability);
      if (s.scenario !== undefined) {
        const c = this.#scenarios.get(s.scenario) ?? { n: 0, flagged: 0, blocked: 0 };
        c.n += 1; c.flagged += flagged; c.blocked += blocked;
        this.#scenarios.set(s.scenario, c);
      }
    } else if (s.label === 'attack') {
      const t = s.attackType ?? 'unspecified';
      const b = this.#byType.get(t) ?? { n: 0, flagged: 0, blocked: 0, scores: [], model: [] };
      b.n += 1; b.flagged += flagged; b.blocked += blocked;
      b.scores.push(s.assessment.score); b.model.push(s.assessment.modelProbability);
      this.#byType.set(t, b);
    }
  }

  change(from: string, to: string) {
    this.changed += 1;
    const k = `${from}->${to}`;
    this.transitions[k] = (this.transitions[k] ?? 0) + 1;
  }

  /** Detection metrics per attack type: of the policy's score and of the model alone. */
  detection() {
    const legit = this.#legit;
    const perType = (pos: { scores: number[]; model: number[] }) => ({
      score: { auc: rocAuc(pos.scores, legit.scores), tprAt1pctFpr: tprAtFpr(pos.scores, legit.scores, 0.01), tprAt5pctFpr: tprAtFpr(pos.scores, legit.scores, 0.05) },
      model: { auc: rocAuc(pos.model, legit.model), tprAt1pctFpr: tprAtFpr(pos.model, legit.model, 0.01), tprAt5pctFpr: tprAtFpr(pos.model, legit.model, 0.05) },
    });
    const allAttacks = { scores: [...this.#byType.values()].flatMap((b) => b.scores), model: [...this.#byType.values()].flatMap((b) => b.model) };
    return {
      legit: {
        n: legit.n, challengedOrBlocked: legit.flagged / (legit.n || 1), blocked: legit.blocked / (legit.n || 1),
        scenarios: Object.fromEntries([...this.#scenarios].sort().map(([k, c]) => [k, { n: c.n, challengedOrBlocked: c.flagged / c.n, blocked: c.blocked / c.n }])),
      },
      attacks: Object.fromEntries([...this.#byType].sort().map(([t, b]) => [t, {
        n: b.n, caught: b.flagged / (b.n || 1), blocked: b.blocked / (b.n || 1), ...perType(b),
      }])),
      all: { n: allAttacks.scores.length, ...perType(allAttacks) },
    };
  }

  toJSON(extra: Record<string, unknown> = {}) {
    const labelled = this.#legit.n > 0 && this.#byType.size > 0;
    return {
      events: this.events, scored: this.scored, failedPasswords: this.failures, decisions: this.decisions, levels: this.levels,
      ...(this.monitor ? { monitor: this.monitor } : {}),
      ...(labelled ? { detection: this.detection() } : {}),
      ...extra,
    };
  }
}


/**
 * The engine's one entry point (ARCHITECTURE.md): signals → score → assurance decision for
 * one login context. Live logins (interactions/risk.ts, the re-authorization check), the
 * simulator (simulate.ts) and the benchmark all call it, so a replay scores and decides
 * exactly as the live provider does, by construction. Plain data in, plain data out.
 *
 * Monitor mode (policies/monitor.ts) is decided here too, so a replay of a policy in monitor
 * mode shows what it would have done exactly as live logins record it.
 */
import { levelIndexOf } from './assurance.ts';
import { decide } from './decision.ts';
import { monitorPlan } from './monitor.ts';
import type { CompiledPolicy } from './policy.ts';
import { scoreLogin } from './score.ts';
import { computeSignals, featureVector } from './signals.ts';
import type { Assessment, Decision, IpHistory, LoginContext, UserHistory } from './types.ts';

export interface AssessInput {
  context: LoginContext;
  user: UserHistory;
  ip: IpHistory;
  policy: CompiledPolicy;
  /** RFC 8176 methods the login or session has already proven (a password: ["pwd"]). */
  amr: readonly string[];
  /** The level the relying party's request requires (assurance.ts requestedLevel). */
  requested?: { index: number; because: readonly string[] } | undefined;
  /** Keep the model's feature vector in the result (the simulator's --features). */
  keepFeatures?: boolean;
}

export interface AssessResult {
  /** What is enforced: monitored parts listed (`monitor: true`) but not counted. */
  assessment: Assessment;
  /** The decision acted on. */
  decision: Decision;
  /**
   * Present when any part of the policy is in monitor mode: the same login scored and
   * decided as if every part were enforced. Recorded and counted, never acted on.
   */
  monitor?: { assessment: Assessment; decision: Decision } | undefined;
  features?: Float64Array | undefined;
}

export function assess(input: AssessInput): AssessResult {
  const { context, policy } = input;
  const signals = computeSignals(context, input.user, input.ip, policy.risk, policy.lists);
  const features = featureVector(signals, context);
  const achieved = levelIndexOf(input.amr, policy.assurance.levels);
  const decideAt = (level: Assessment['level']) => decide({
    level, clientId: context.clientId, scopes: context.scopes, achieved, requested: input.requested,
  }, policy);
  const extra = input.keepFeatures ? { features } : {};
  // As if every part were enforced: what the policy says with monitor mode switched off.
  const full = scoreLogin(context, signals, policy, features);
  // Recorded with the event: a behavioural factor enters the reasons only when it fires.
  if (signals.keystroke || signals.pointer) full.behaviour = { keystroke: signals.keystroke, pointer: signals.pointer };
  const plan = monitorPlan(policy.risk);
  if (!plan.any) return { assessment: full, decision: decideAt(full.level), ...extra };

  const monitor = { assessment: full, decision: decideAt(full.level) };
  const assessment: Assessment = plan.policy
    // The whole policy is a trial: no risk is counted, so the level is `low` and the decision
    // is the `low` column of assurance.yml together with what the RP asked for (schema.ts).
    // An error is recorded in the monitor outcome, not acted on.
    ? { ...full, score: 0, level: 'low', reasons: full.reasons.map((r) => ({ ...r, monitor: true as const })), errors: [] }
    : { ...scoreLogin(context, signals, policy, features, plan.parts), ...(full.behaviour ? { behaviour: full.behaviour } : {}) };
  return { assessment, decision: decideAt(assessment.level), monitor, ...extra };
}

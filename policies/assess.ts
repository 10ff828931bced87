/**
 * The engine's one entry point (ARCHITECTURE.md): signals → score → assurance decision for
 * one login context. Live logins (interactions/risk.ts, the re-authorization check), the
 * simulator (simulate.ts) and the benchmark all call it, so a replay scores and decides
 * exactly as the live provider does, by construction. Plain data in, plain data out.
 */
import { levelIndexOf } from './assurance.ts';
import { decide } from './decision.ts';
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
  assessment: Assessment;
  decision: Decision;
  features?: Float64Array | undefined;
}

export function assess(input: AssessInput): AssessResult {
  const { context, policy } = input;
  const signals = computeSignals(context, input.user, input.ip, policy.risk, policy.lists);
  const features = featureVector(signals, context);
  const assessment = scoreLogin(context, signals, policy, features);
  // Recorded with the event: a behavioural factor enters the reasons only when it fires.
  if (signals.keystroke || signals.pointer) assessment.behaviour = { keystroke: signals.keystroke, pointer: signals.pointer };
  const decision = decide({
    level: assessment.level, clientId: context.clientId, scopes: context.scopes,
    achieved: levelIndexOf(input.amr, policy.assurance.levels), requested: input.requested,
  }, policy);
  return { assessment, decision, ...(input.keepFeatures ? { features } : {}) };
}

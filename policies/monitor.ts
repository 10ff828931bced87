/**
 * Monitor mode (risk.yml `mode`, and `mode` of the model and of each factor): which parts of a
 * policy are a trial, computed and recorded but not acted on. assess.ts scores a login twice
 * when anything is monitored: as enforced (monitored contributions left out; for a monitored
 * policy, the `low` level) and as if every part were enforced, the "monitor" outcome that is
 * recorded with the login event and counted, so an administrator sees what the policy would
 * do on live traffic before it does it.
 */
import type { RiskPolicy, FactorId, RiskLevel } from './schema.ts';
import { FACTOR_IDS, RISK_LEVELS } from './schema.ts';

/** A part of the score that can be monitored: the model or a rule factor. */
export type ScorePart = 'model' | FactorId;

export interface MonitorPlan {
  /** The whole policy is in monitor mode: no risk is acted on. */
  readonly policy: boolean;
  /** Parts (model, factors) in monitor mode on their own. */
  readonly parts: ReadonlySet<ScorePart>;
  /** Anything at all is monitored: a second, "as if enforced" outcome is computed. */
  readonly any: boolean;
}

// Computed once per compiled policy (policies are immutable: watcher.ts swaps whole ones).
const plans = new WeakMap<RiskPolicy, MonitorPlan>();

export function monitorPlan(risk: RiskPolicy): MonitorPlan {
  let plan = plans.get(risk);
  if (!plan) {
    const parts = new Set<ScorePart>();
    if (risk.model.mode === 'monitor') parts.add('model');
    for (const id of FACTOR_IDS) if (risk.factors[id].mode === 'monitor') parts.add(id);
    const policy = risk.mode === 'monitor';
    plan = { policy, parts, any: policy || parts.size > 0 };
    plans.set(risk, plan);
  }
  return plan;
}

/** One line saying what is in monitor mode, or undefined when everything is enforced (`idp policy check`, the start log). */
export function describeMonitor(risk: RiskPolicy): string | undefined {
  const plan = monitorPlan(risk);
  const parts = [...plan.parts].join(', ');
  if (plan.policy) {
    return `the whole policy is in monitor mode: risk is assessed and recorded, never acted on (every login gets the assurance of level low)${parts ? `; also marked monitor: ${parts}` : ''}`;
  }
  return parts ? `in monitor mode (scored and recorded, not counted in the decision): ${parts}` : undefined;
}

/**
 * The risk level a trusted login's behavioural samples are judged by (history.ts
 * joinsTemplates): the stricter of the enforced level and the monitored one. Monitor mode
 * relaxes what is enforced, and must not let whoever holds a password train the templates
 * meanwhile; the trusted history itself follows the enforced decision, as live logins do.
 */
export function templateLevel(enforced: RiskLevel, monitored?: RiskLevel): RiskLevel {
  if (monitored === undefined) return enforced;
  return RISK_LEVELS.indexOf(monitored) > RISK_LEVELS.indexOf(enforced) ? monitored : enforced;
}

/**
 * The assurance decision: from the risk level, the client, the requested scopes
 * ("operations") and what the relying party asked for (acr_values, an essential acr, the
 * client's minimum) to the assurance level required, or a block. Each applicable source is
 * consulted and the strictest answer wins. A risk check may raise the required assurance;
 * it never awards a factor (NIST SP 800-63B-4): what the user proved is an input here.
 */
import type { CompiledPolicy } from './policy.ts';
import type { RiskLevel } from './schema.ts';
import type { Decision } from './types.ts';

export interface DecisionRequest {
  level: RiskLevel;
  clientId?: string | undefined;
  scopes: readonly string[];
  /** Index of the assurance level the login has already reached (-1: none yet). */
  achieved: number;
  /** The level the relying party's request requires (assurance.ts requestedLevel), if any. */
  requested?: { index: number; because: readonly string[] } | undefined;
}

export function decide(req: DecisionRequest, policy: Pick<CompiledPolicy, 'assurance'>): Decision {
  const { assurance } = policy;
  const order = assurance.levels.map((l) => l.name);
  const strength = (name: string) => (name === 'block' ? Number.POSITIVE_INFINITY : order.indexOf(name));
  let required = assurance.default[req.level];
  const because = [`default.${req.level}`];
  const consider = (value: string | undefined, source: string) => {
    if (value === undefined) return;
    if (strength(value) > strength(required)) {
      required = value;
      because.length = 0;
    }
    if (strength(value) === strength(required)) because.push(source);
  };
  if (req.clientId) consider(assurance.clients[req.clientId]?.[req.level], `clients.${req.clientId}.${req.level}`);
  for (const scope of req.scopes) consider(assurance.operations[scope]?.[req.level], `operations.${scope}.${req.level}`);
  if (req.requested && req.requested.index >= 0) {
    for (const source of req.requested.because) consider(order[req.requested.index], source);
  }
  if (required === 'block') return { decision: 'block', because };
  const acr = assurance.levels.find((l) => l.name === required)?.acr;
  return {
    decision: strength(required) <= req.achieved ? 'allow' : 'step_up',
    required,
    requiredAcr: acr,
    because,
  };
}

/**
 * Scoring: the forest's P(attack), weighted, plus the contribution of every rule that
 * fires, clamped to [0, 1]; then the level from the policy's thresholds and the cold-start
 * floor. Every assessment lists its reasons and the policy and model versions it used.
 * An error in a rule or in the model gives the strictest outcome and is reported
 * (STYLE.md §3: deny on evaluation error).
 */
import type { ScorePart } from './monitor.ts';
import type { CompiledPolicy } from './policy.ts';
import { RISK_LEVELS, type FactorId, type RiskLevel } from './schema.ts';
import { featureVector, type Signals } from './signals.ts';
import type { Assessment, LoginContext, Reason } from './types.ts';

type Rule = (s: Signals, p: CompiledPolicy['risk']['factors']) => string | false;

const novelty = (kind: keyof Signals['novel'], label: string): Rule => (s) => s.novel[kind] === true && `first login from this ${label}`;
const round = (x: number) => Math.round(x);

/** When each factor fires, and what it saw. Gated by confidence where history matters. */
const RULES: Record<FactorId, Rule> = {
  new_device: (s, f) => s.novel.device === true
    && !(f.new_device.habitual_churn < 1 && s.trusted >= f.new_device.habitual_after && s.deviceChurn !== undefined
      && s.deviceChurn >= f.new_device.habitual_churn)
    && 'first login from this browser (device cookie)',
  new_ip: novelty('ip', 'IP address'),
  new_asn: novelty('asn', 'network (AS)'),
  new_country: novelty('country', 'country'),
  new_city: novelty('city', 'city'),
  new_browser: novelty('browser', 'browser family'),
  new_os: novelty('os', 'operating system'),
  unusual_hour: (s, f) => s.hourFraction !== undefined && s.hourFraction < f.unusual_hour.below_fraction
    && `${(s.hourFraction * 100).toFixed(1)}% of past logins within an hour of this time of day`,
  impossible_travel: (s, f) => s.speedKmh !== undefined && s.distanceKm !== undefined
    && s.distanceKm >= f.impossible_travel.min_distance_km && s.speedKmh > f.impossible_travel.max_speed_kmh
    && !(f.impossible_travel.except_known_city && s.novel.city === false)
    && `${round(s.distanceKm)} km in ${(s.hoursSinceLast ?? 0).toFixed(2)} h (${round(s.speedKmh)} km/h)`,
  country_hopping: (s, f) => s.countriesLastHour >= f.country_hopping.countries_per_hour && `${s.countriesLastHour} countries in the last hour`,
  account_failures: (s, f) => s.accountFailures >= f.account_failures.at_least && `${s.accountFailures} recent failed passwords on the account`,
  ip_failures: (s, f) => s.ipFailures >= f.ip_failures.at_least && `${s.ipFailures} recent failed passwords from this IP`,
  credential_stuffing: (s, f) => s.ipDistinctAccounts >= f.credential_stuffing.distinct_accounts
    && `failures on ${s.ipDistinctAccounts} different accounts from this IP`,
  tor_exit: (s) => s.tor && 'Tor exit address',
  vpn_proxy: (s) => s.vpn && 'known VPN / proxy network',
  hosting_network: (s) => s.hosting && 'hosting / datacentre network',
  trusted_network: (s) => s.trustedNetwork && 'trusted corporate network',
  keystroke_anomaly: (s, f) => s.keystroke !== undefined && s.keystroke.confidence >= f.keystroke_anomaly.min_confidence
    && s.keystroke.score > f.keystroke_anomaly.above && `keystroke timing unlike the user (${s.keystroke.score.toFixed(2)})`,
  unknown_location: (s) => s.scope === 'public' && !s.located && 'public address the geolocation database cannot place',
  keystroke_match: (s, f) => s.keystroke !== undefined && s.keystroke.confidence >= f.keystroke_match.min_confidence
    && s.keystroke.score <= f.keystroke_match.at_most && `keystroke timing like the user's (${s.keystroke.score.toFixed(2)})`,
  pointer_anomaly: (s, f) => s.pointer !== undefined && s.pointer.confidence >= f.pointer_anomaly.min_confidence
    && s.pointer.score > f.pointer_anomaly.above && `pointer movement unlike the user (${s.pointer.score.toFixed(2)})`,
  device_proven: (s) => s.device.proven && `browser proved its device key (seen at ${s.device.provenLogins} trusted logins)`,
  device_unproven: (s) => s.device.unprovenCookie && 'device cookie of a browser that proves a device key, without the key (a copied cookie?)',
};

const NOVELTY: ReadonlySet<FactorId> = new Set(['new_device', 'new_ip', 'new_asn', 'new_country', 'new_city', 'new_browser', 'new_os', 'unusual_hour']);

export function levelOf(score: number, t: CompiledPolicy['risk']['levels']): RiskLevel {
  if (score >= t.critical) return 'critical';
  if (score >= t.high) return 'high';
  if (score >= t.medium) return 'medium';
  return 'low';
}

const rank = (l: RiskLevel) => RISK_LEVELS.indexOf(l);

/** Rules whose evidence is about the address, not the account (schema.ts `shared_address`). */
const ADDRESS_FACTORS: ReadonlySet<FactorId> = new Set(['ip_failures', 'credential_stuffing']);

interface Evaluation {
  reasons: Reason[];
  errors: string[];
  modelProbability: number;
  /** Unclamped sum of the contributions (of the enforced parts). */
  sum: number;
}

/**
 * `monitored` parts (policies/monitor.ts) are evaluated and listed with `monitor: true`, but
 * add nothing to the sum, and their errors do not make this outcome the strictest: they
 * show in the "as if enforced" outcome, which scores the same login without `monitored`.
 */
function evaluate(s: Signals, ctx: LoginContext, policy: CompiledPolicy, features: Float64Array | undefined, skip?: ReadonlySet<FactorId>, monitored?: ReadonlySet<ScorePart>): Evaluation {
  const { risk } = policy;
  const reasons: Reason[] = [];
  const errors: string[] = [];
  const mark = (part: ScorePart) => (monitored?.has(part) ? { monitor: true as const } : {});
  const fail = (part: ScorePart, message: string) => { if (!monitored?.has(part)) errors.push(`${part}: ${message}`); };
  let modelProbability = 1;
  try {
    // Inside the try: a signal that cannot be read is an error of the model's input too.
    modelProbability = policy.forest.probability(features ?? featureVector(s, ctx));
    if (!(modelProbability >= 0 && modelProbability <= 1)) throw new Error(`model returned ${modelProbability}`);
    reasons.push({ factor: 'model', contribution: risk.model.weight * modelProbability, detail: `P(attack) ${modelProbability.toFixed(3)}`, ...mark('model') });
  } catch (err) {
    fail('model', (err as Error).message);
  }
  for (const id of Object.keys(RULES) as FactorId[]) {
    const f = risk.factors[id];
    if (!f.enabled || f.weight === 0 || skip?.has(id)) continue;
    if (NOVELTY.has(id) && risk.cold_start.novelty_needs_confidence && s.lowConfidence) continue;
    try {
      const fired = RULES[id](s, risk.factors);
      if (fired) reasons.push({ factor: id, contribution: f.weight, detail: fired, ...mark(id) });
    } catch (err) {
      fail(id, (err as Error).message);
    }
  }
  return { reasons, errors, modelProbability, sum: reasons.reduce((sum, r) => sum + (r.monitor ? 0 : r.contribution), 0) };
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** The highest score that is still at most `level`. */
function ceilingOf(level: RiskLevel, t: CompiledPolicy['risk']['levels']): number {
  const next = RISK_LEVELS[rank(level) + 1];
  if (!next) return 1;
  // Just under the next level's bound (scores are shown to 3 decimals; 1e-6 is invisible).
  return t[next as Exclude<RiskLevel, 'low'>] - 1e-6;
}

/** `monitored`: parts listed but left out of the score (policies/monitor.ts; assess.ts passes them). */
export function scoreLogin(ctx: LoginContext, s: Signals, policy: CompiledPolicy, features?: Float64Array, monitored?: ReadonlySet<ScorePart>): Assessment {
  const { risk } = policy;
  const full = evaluate(s, ctx, policy, features, undefined, monitored);
  const base = { confidence: s.confidence, modelProbability: full.modelProbability, policyVersion: policy.version, modelVersion: policy.forest.version };
  if (full.errors.length > 0) {
    return { ...base, reasons: full.reasons.sort((a, b) => b.contribution - a.contribution), errors: full.errors, score: 1, level: 'critical' };
  }
  const reasons = full.reasons;
  let score = clamp01(full.sum);
  // Evidence about the address may raise the level at most to shared_address.max_level;
  // only the account's own evidence, scored without it, may take it higher.
  const recognised = s.novel.device === false && (s.novel.asn === false || s.novel.ip === false);
  const cap = recognised ? risk.shared_address.recognised_max_level : risk.shared_address.max_level;
  if ((s.ipFailures > 0 || s.ipDistinctAccounts > 0) && rank(levelOf(score, risk.levels)) > rank(cap)) {
    const ownSignals: Signals = { ...s, ipFailures: 0, ipDistinctAccounts: 0 };
    const own = evaluate(ownSignals, ctx, policy, undefined, ADDRESS_FACTORS, monitored);
    if (own.errors.length > 0) return { ...base, reasons, errors: own.errors, score: 1, level: 'critical' };
    const capped = Math.max(clamp01(own.sum), ceilingOf(cap, risk.levels));
    if (capped < score) {
      reasons.push({
        // Against the unclamped sum, so the reasons still add up to the score.
        factor: 'shared_address', contribution: capped - full.sum,
        detail: `failures from this address by others raise the level at most to ${cap}${recognised ? ' for a recognised browser on a known network' : ''} (own evidence alone: ${levelOf(clamp01(own.sum), risk.levels)})`,
      });
      score = capped;
    }
  }
  reasons.sort((a, b) => b.contribution - a.contribution);
  let level = levelOf(score, risk.levels);
  if (s.lowConfidence && rank(level) < rank(risk.cold_start.minimum_level)) {
    level = risk.cold_start.minimum_level;
    reasons.push({ factor: 'cold_start', contribution: 0, detail: `little history (confidence ${s.confidence.toFixed(2)}): at least ${level}` });
  }
  return { ...base, reasons, errors: [], score, level };
}

/**
 * Building a user's history from outcomes. The same function serves live logins and the
 * simulator, so a replay builds exactly the history live operation would have.
 *
 * What joins the trusted history: a first-factor success that was allowed, or that was
 * challenged and passed step-up (`mfa: pass`). A blocked login, or a challenge failed or
 * never answered, does not: an attacker's success must not teach the engine that the
 * attacker is normal.
 */
import { isReplayed, keystrokeVector, pointerVector } from './keystroke.ts';
import { RISK_LEVELS, type RiskLevel, type RiskPolicy } from './schema.ts';
import type { DecisionKind, IpHistory, LoginContext, Seen, UserHistory } from './types.ts';

const HOURS_PER_WEEK = 168;
/** How far back first-factor successes count for country hopping. */
export const RECENT_MS = 3_600_000;

export function emptyUserHistory(): UserHistory {
  return {
    v: 1, trusted: 0, ips: {}, asns: {}, countries: {}, cities: {}, devices: {}, browsers: {}, oses: {},
    hours: new Array<number>(HOURS_PER_WEEK).fill(0), recent: [], failures: [],
  };
}

export function emptyIpHistory(): IpHistory {
  return { v: 1, failures: [] };
}

/** Hour of the week in UTC, Monday 00:00 = 0. */
export function hourOfWeek(ts: number): number {
  const d = new Date(ts);
  return ((d.getUTCDay() + 6) % 7) * 24 + d.getUTCHours();
}

const cityKey = (ctx: Pick<LoginContext, 'place'>) =>
  ctx.place.city ? `${ctx.place.country ?? '?'}/${ctx.place.region ?? '?'}/${ctx.place.city}` : undefined;

/** The keys a login is recorded under, per kind; undefined where the login has no value. */
export function keysOf(ctx: LoginContext) {
  return {
    ips: ctx.ip,
    asns: ctx.place.asn !== undefined ? String(ctx.place.asn) : undefined,
    countries: ctx.place.country,
    cities: cityKey(ctx),
    devices: ctx.deviceId,
    browsers: ctx.agent.browser,
    oses: ctx.agent.os,
  } as const;
}

function touch(map: Record<string, Seen>, key: string | undefined, ts: number, max: number): void {
  if (key === undefined) return;
  const e = map[key];
  if (e) {
    e.n += 1;
    e.last = ts;
    return;
  }
  map[key] = { n: 1, last: ts };
  const keys = Object.keys(map);
  if (keys.length <= max) return;
  // Evict the least recently seen entry: constant memory per user.
  let oldest = keys[0]!;
  for (const k of keys) if (map[k]!.last < map[oldest]!.last) oldest = k;
  delete map[oldest];
}

function trimTimes(list: number[], since: number, max: number): number[] {
  const kept = list.filter((t) => t > since);
  return kept.length > max ? kept.slice(-max) : kept;
}

export type Outcome =
  | { kind: 'password_failed' }
  /**
   * First factor succeeded; `decision` is what the engine decided, `level` the risk level it
   * saw (absent: as if low); `mfa` what step-up gave.
   */
  | { kind: 'password_ok'; decision: DecisionKind; level?: RiskLevel | undefined; mfa?: 'pass' | 'fail' | undefined };

/** Whether an outcome joins the trusted history. */
function isTrusted(o: Outcome): boolean {
  return o.kind === 'password_ok' && (o.decision === 'allow' || (o.decision === 'step_up' && o.mfa === 'pass'));
}

/**
 * Whether a trusted login's behavioural samples may join the user's templates: it passed a
 * step-up, or it was let in at a risk level of at most `behaviour.join_max_level`. A login
 * let in at a higher level on the password alone (a lenient policy) must not teach the
 * templates whoever typed it.
 */
export function joinsTemplates(o: { decision: DecisionKind; level?: RiskLevel | undefined; mfa?: 'pass' | 'fail' | undefined }, policy: RiskPolicy): boolean {
  if (o.decision === 'step_up') return o.mfa === 'pass';
  return o.decision === 'allow' && RISK_LEVELS.indexOf(o.level ?? 'low') <= RISK_LEVELS.indexOf(policy.behaviour.join_max_level);
}

/**
 * Records one outcome into the user's and the IP's history (in place): what the simulator
 * does for every event. Live operation stores the same in two parts (interactions/risk.ts):
 * failures and first-factor successes as one record each when they happen, and
 * `recordTrusted` when a login has fully succeeded.
 */
export function observe(user: UserHistory, ip: IpHistory, ctx: LoginContext, outcome: Outcome, policy: RiskPolicy): void {
  const { max_entries: max, failure_window_minutes: windowMin, max_failures: maxFailures } = policy.history;
  const since = ctx.ts - windowMin * 60_000;
  if (outcome.kind === 'password_failed') {
    user.failures = trimTimes([...user.failures, ctx.ts], since, maxFailures);
    const kept = ip.failures.filter((f) => f.ts > since);
    kept.push({ ts: ctx.ts, user: ctx.user });
    ip.failures = kept.length > maxFailures ? kept.slice(-maxFailures) : kept;
    return;
  }
  if (ctx.place.country) {
    user.recent = user.recent.filter((r) => r.ts > ctx.ts - RECENT_MS).slice(-max);
    user.recent.push({ ts: ctx.ts, country: ctx.place.country });
  }
  if (isTrusted(outcome)) recordTrusted(user, ctx, policy, outcome.kind === 'password_ok' && joinsTemplates(outcome, policy));
}

/** The newest `keep` samples, this one last (the oldest is replaced). */
function pushSample(samples: readonly number[][], v: number[], keep: number): number[][] {
  return [...samples, v].slice(-keep);
}

/**
 * A login that fully succeeded joins the user's trusted history; its device key and its
 * behavioural samples join the user's proven keys and templates only when `learn`
 * (history.ts joinsTemplates).
 */
export function recordTrusted(user: UserHistory, ctx: LoginContext, policy: RiskPolicy, learn: boolean): void {
  const max = policy.history.max_entries;
  const keys = keysOf(ctx);
  const knownBrowser = (ctx.deviceId !== undefined && user.devices[ctx.deviceId] !== undefined)
    || (ctx.deviceKey !== undefined && user.deviceKeys?.[ctx.deviceKey] !== undefined);
  if (!knownBrowser) user.newDevices = (user.newDevices ?? 0) + 1;
  touch(user.ips, keys.ips, ctx.ts, max);
  touch(user.asns, keys.asns, ctx.ts, max);
  touch(user.countries, keys.countries, ctx.ts, max);
  touch(user.cities, keys.cities, ctx.ts, max);
  touch(user.devices, keys.devices, ctx.ts, max);
  touch(user.browsers, keys.browsers, ctx.ts, max);
  touch(user.oses, keys.oses, ctx.ts, max);
  user.hours[hourOfWeek(ctx.ts)] = (user.hours[hourOfWeek(ctx.ts)] ?? 0) + 1;
  user.trusted += 1;
  user.first ??= ctx.ts;
  user.last = { ts: ctx.ts, lat: ctx.place.lat, lon: ctx.place.lon, country: ctx.place.country };
  // A trusted login ends the run of failures on the account.
  user.failures = [];
  // The device key and the behavioural samples follow the same rule (`learn`): a key that
  // joined here weighs against the risk (device_proven) and recognises the browser, so a
  // login let in on the password alone at a higher level, or under monitor mode, must not
  // add its key either.
  if (!learn) return;
  if (ctx.deviceKey !== undefined) {
    const keys = (user.deviceKeys ??= {});
    touch(keys, ctx.deviceKey, ctx.ts, max);
    const key = keys[ctx.deviceKey] as Seen & { device?: string; engine?: string };
    if (ctx.deviceId !== undefined) key.device = ctx.deviceId;
    if (ctx.agent.engine !== undefined) key.engine = ctx.agent.engine;
  }
  const b = ctx.behaviour;
  if (!b) return;
  const cfg = policy.behaviour;
  if (b.keystroke) {
    const positions = b.keystroke.hold.length;
    // Another length is another password: its template starts afresh.
    const samples = user.keystroke?.positions === positions ? user.keystroke.samples : [];
    const v = keystrokeVector(b.keystroke);
    // A copy of a learnt sample is a replay (keystroke.ts isReplayed): it never joins.
    if (!isReplayed(samples, v)) user.keystroke = { positions, samples: pushSample(samples, v, cfg.keystroke.keep) };
  }
  if (b.pointer) user.pointer = { samples: pushSample(user.pointer?.samples ?? [], pointerVector(b.pointer), cfg.pointer.keep) };
}

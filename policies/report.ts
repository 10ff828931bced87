/**
 * The figures behind the HTML reports (`idp simulate --report`, `idp report efficacy`),
 * gathered one event at a time in memory bounded by the number of groups (hours or days,
 * clients, countries, factors), never by the number of events: the simulator reads files
 * larger than memory. Plain data in, plain data out; the commands (idp/cli-report.ts) read
 * the files and idp/report-html.ts draws the page.
 *
 * Rates carry Wilson score intervals (Wilson 1927; Brown, Cai & DasGupta 2001 recommend
 * it over the normal approximation for small groups and rates near 0), so a group of 12
 * logins with 3 challenges is not read as firmly as one of 12 000.
 */
import net from 'node:net';
import type { LoginEvent } from './event.ts';
import type { ScoredEvent } from './simulate.ts';
import type { CompiledLists } from './signals.ts';
import type { Agent, Place } from './types.ts';
import { RISK_LEVELS } from './schema.ts';

export const DECISIONS = ['allow', 'step_up', 'block'] as const;
export type DecisionName = (typeof DECISIONS)[number];

/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

/** A rate k/n with its Wilson score interval; n = 0 gives rate 0 and the interval [0, 1]. */
export interface Rate { k: number; n: number; rate: number; lo: number; hi: number }

export function wilson(k: number, n: number, z = Z95): Rate {
  if (!(n > 0)) return { k: 0, n: 0, rate: 0, lo: 0, hi: 1 };
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // Clamped: rounding can put the bounds a hair outside [0, 1] at k = 0 or k = n.
  return { k, n, rate: p, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}

/**
 * "Far above": a group whose false-challenge rate is at least `ratio` times the overall rate
 * AND whose interval's lower bound is above the overall rate (so it is not chance), among
 * groups of at least `minN` logins (smaller ones are shown, marked small, never named).
 */
export interface FarAboveRule { ratio: number; minN: number }
export const DEFAULT_FAR_ABOVE: FarAboveRule = { ratio: 2, minN: 30 };

export function isFarAbove(group: Rate, overall: Rate, rule: FarAboveRule = DEFAULT_FAR_ABOVE): boolean {
  return group.n >= rule.minN && group.rate >= rule.ratio * overall.rate && group.lo > overall.rate && group.k > 0;
}

/**
 * The kind of network an address belongs to, as the risk signals see it: the policy's Tor,
 * VPN/proxy and hosting lists (signals.ts), a mobile carrier by its AS organisation (the
 * names policies/synth.ts uses), otherwise residential/business; private and unlocated
 * addresses apart.
 */
export const NETWORK_KINDS = ['residential_or_business', 'mobile', 'hosting', 'vpn_proxy', 'tor', 'private', 'unknown'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];
// Whole words only: as substrings, "mobile" named State Farm Mutual Automobile Insurance a
// carrier, and "three", "vivo", "mts" and "o2" matched inside unrelated names. (synth.ts picks
// its phones' networks with the substring form; the few it picks by a part of a word are
// counted here as what their names say they are.)
const MOBILE_ORG = /(?<![\w&-])(?:mobile|wireless|cellular|cellco|t-mobile|vodafone|orange|telefonica|movistar|airtel|jio|tim|verizon|at&t|sprint|ee limited|three|o2|softbank|kddi|ntt docomo|telstra|claro|vivo|mts|megafon|beeline|turkcell)(?![\w&-])/i;

export function networkKind(ip: string, place: Place, lists: CompiledLists): NetworkKind {
  const family = net.isIP(ip);
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (family !== 0 && lists.tor.check(ip, type)) return 'tor';
  if (family !== 0 && lists.vpn.check(ip, type)) return 'vpn_proxy';
  if (place.scope !== 'public') return 'private';
  if (place.asn === undefined) return 'unknown';
  if (lists.hostingAsns.has(place.asn)) return 'hosting';
  if (place.asOrg && MOBILE_ORG.test(place.asOrg)) return 'mobile';
  return 'residential_or_business';
}

/** Challenge counts of one group. */
export interface Tally { n: number; step_up: number; block: number }
const tally = (): Tally => ({ n: 0, step_up: 0, block: 0 });
function count(m: Map<string, Tally>, key: string, d: DecisionName) {
  let t = m.get(key);
  if (!t) m.set(key, (t = tally()));
  t.n += 1;
  if (d !== 'allow') t[d] += 1;
}

/** A group's row: its counts, its challenge (step_up + block) rate, and whether it is small. */
export interface GroupRow { group: string; n: number; step_up: number; block: number; challenge: Rate; small: boolean }

function rows(m: Map<string, Tally>, top: number, small: number): { rows: GroupRow[]; others: number } {
  const all = [...m].sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : 1));
  return {
    rows: all.slice(0, top).map(([group, t]) => ({ group, ...t, challenge: wilson(t.step_up + t.block, t.n), small: t.n < small })),
    others: all.slice(top).reduce((s, [, t]) => s + t.n, 0),
  };
}

const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Spans up to this long are drawn by the hour, longer ones by the day. */
export const HOURLY_UP_TO_MS = 3 * DAY;
/**
 * At most this many buckets on the time axis: beyond as many days, a bucket is several days.
 * Without a bound, one event stamped years away (a wrong clock, a hostile file) would make
 * a bucket, a bar and a table row for every day between: millions of them.
 */
export const MAX_BUCKETS = 1000;
export const SCORE_BINS = 20;

export interface SimulationReportOptions {
  /** Rows in the per-client and per-country tables. */
  top?: number;
  /** Groups with fewer scored logins than this are marked small. */
  smallGroup?: number;
  /** Changed events listed by id (the first ones, in time order). */
  sample?: number;
}

interface Bucket { decisions: Record<DecisionName, number>; levels: Record<string, number> }

/**
 * Gathers what `idp simulate --report` draws. `add` takes each event with where its address
 * is, the candidate policy's scoring and (with a baseline) the baseline's.
 */
export class SimulationReport {
  events = 0;
  scored = 0;
  first = Infinity;
  last = -Infinity;
  readonly #hours = new Map<number, Bucket>();
  readonly #scores = { legit: new Array<number>(SCORE_BINS).fill(0), attack: new Array<number>(SCORE_BINS).fill(0), unlabelled: new Array<number>(SCORE_BINS).fill(0) };
  readonly #factors = new Map<string, { fired: number; sum: number; monitor: number }>();
  readonly #clients = new Map<string, Tally>();
  readonly #countries = new Map<string, Tally>();
  readonly #labels = { legit: tally(), attack: tally() };
  readonly #baseline = {
    used: false,
    matrix: Object.fromEntries(DECISIONS.map((a) => [a, Object.fromEntries(DECISIONS.map((b) => [b, 0]))])) as Record<DecisionName, Record<DecisionName, number>>,
    clients: new Map<string, number>(), countries: new Map<string, number>(),
    sample: [] as { id: string; ts: string; client: string; country: string; baseline: DecisionName; candidate: DecisionName; baselineScore: number; candidateScore: number }[],
  };
  readonly #opts: Required<SimulationReportOptions>;

  constructor(opts: SimulationReportOptions = {}) {
    this.#opts = { top: 15, smallGroup: 30, sample: 25, ...opts };
  }

  add(e: LoginEvent, place: Place | undefined, r: ScoredEvent | undefined, base?: ScoredEvent): void {
    this.events += 1;
    const ts = Date.parse(e.ts);
    if (ts < this.first) this.first = ts;
    if (ts > this.last) this.last = ts;
    if (!r) return;
    this.scored += 1;
    const d = r.decision.decision;
    const hour = Math.floor(ts / HOUR) * HOUR;
    let b = this.#hours.get(hour);
    if (!b) this.#hours.set(hour, (b = { decisions: { allow: 0, step_up: 0, block: 0 }, levels: Object.fromEntries(RISK_LEVELS.map((l) => [l, 0])) }));
    b.decisions[d] += 1;
    b.levels[r.assessment.level] = (b.levels[r.assessment.level] ?? 0) + 1;
    const bin = Math.min(SCORE_BINS - 1, Math.max(0, Math.floor(r.assessment.score * SCORE_BINS)));
    this.#scores[r.label ?? 'unlabelled'][bin]! += 1;
    if (r.label) {
      const t = this.#labels[r.label];
      t.n += 1;
      if (d !== 'allow') t[d] += 1;
    }
    for (const x of r.assessment.reasons) {
      const f = this.#factors.get(x.factor) ?? { fired: 0, sum: 0, monitor: 0 };
      f.fired += 1;
      f.sum += x.contribution;
      if (x.monitor) f.monitor += 1;
      this.#factors.set(x.factor, f);
    }
    const client = e.clientId ?? '(none)';
    const country = place?.country ?? '(unknown)';
    count(this.#clients, client, d);
    count(this.#countries, country, d);
    if (base) {
      const bd = base.decision.decision;
      const bl = this.#baseline;
      bl.used = true;
      bl.matrix[bd][d] += 1;
      if (bd !== d) {
        bl.clients.set(client, (bl.clients.get(client) ?? 0) + 1);
        bl.countries.set(country, (bl.countries.get(country) ?? 0) + 1);
        if (bl.sample.length < this.#opts.sample) {
          bl.sample.push({ id: e.id, ts: e.ts, client, country, baseline: bd, candidate: d, baselineScore: round(base.assessment.score), candidateScore: round(r.assessment.score) });
        }
      }
    }
  }

  toJSON() {
    const { top, smallGroup } = this.#opts;
    const span = this.last - this.first;
    const days = Math.max(1, Math.ceil(span / DAY / (MAX_BUCKETS - 1)));
    const step = span > HOURLY_UP_TO_MS ? days * DAY : HOUR;
    // Every bucket from the first to the last, empty ones included, so the time axis is true.
    const buckets = new Map<number, Bucket>();
    if (this.#hours.size) {
      // A loop, not Math.min(...keys): years of hours would overflow the argument list.
      let lo = Infinity;
      let hi = -Infinity;
      for (const h of this.#hours.keys()) {
        if (h < lo) lo = h;
        if (h > hi) hi = h;
      }
      const from = Math.floor(lo / step) * step;
      const to = Math.floor(hi / step) * step;
      for (let t = from; t <= to; t += step) buckets.set(t, { decisions: { allow: 0, step_up: 0, block: 0 }, levels: Object.fromEntries(RISK_LEVELS.map((l) => [l, 0])) });
      for (const [h, b] of this.#hours) {
        const into = buckets.get(Math.floor(h / step) * step)!;
        for (const k of DECISIONS) into.decisions[k] += b.decisions[k];
        for (const [k, v] of Object.entries(b.levels)) into.levels[k] = (into.levels[k] ?? 0) + v;
      }
    }
    const bl = this.#baseline;
    const topOf = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top).map(([group, changed]) => ({ group, changed }));
    const changed = DECISIONS.reduce((s, a) => s + DECISIONS.reduce((t, b) => t + (a === b ? 0 : bl.matrix[a][b]), 0), 0);
    return {
      events: this.events,
      scored: this.scored,
      span: this.events ? { from: new Date(this.first).toISOString(), to: new Date(this.last).toISOString() } : null,
      /** `hour`, `day` or `N days`. */
      bucket: step === HOUR ? 'hour' : step === DAY ? 'day' : `${days} days`,
      timeline: [...buckets].map(([t, b]) => ({ start: new Date(t).toISOString(), ...b.decisions, levels: b.levels })),
      scores: { bins: SCORE_BINS, ...this.#scores },
      labelled: { legit: this.#labels.legit, attack: this.#labels.attack },
      factors: [...this.#factors].sort((a, b) => b[1].fired - a[1].fired || (a[0] < b[0] ? -1 : 1))
        .map(([factor, f]) => ({ factor, fired: f.fired, share: this.scored ? f.fired / this.scored : 0, averageContribution: f.sum / f.fired, monitor: f.monitor })),
      clients: rows(this.#clients, top, smallGroup),
      countries: rows(this.#countries, top, smallGroup),
      smallGroup,
      baseline: bl.used ? { matrix: bl.matrix, changed, clients: topOf(bl.clients), countries: topOf(bl.countries), sample: bl.sample } : null,
    };
  }
}

export type SimulationReportData = ReturnType<SimulationReport['toJSON']>;

const round = (x: number) => Math.round(x * 10_000) / 10_000;

/** The breakdowns of the efficacy report. */
export const DIMENSIONS = ['country', 'network', 'device', 'platform'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export function groupsOf(ip: string, place: Place, agent: Agent, lists: CompiledLists): Record<Dimension, string> {
  return {
    country: place.country ?? '(unknown)',
    network: networkKind(ip, place, lists),
    device: agent.device,
    platform: agent.os ?? '(unknown)',
  };
}

interface Cell { legit: number; legitFlagged: number; legitBlocked: number; attack: number; attackFlagged: number; attackBlocked: number }
const cell = (): Cell => ({ legit: 0, legitFlagged: 0, legitBlocked: 0, attack: 0, attackFlagged: 0, attackBlocked: 0 });
function addTo(c: Cell, label: 'legit' | 'attack', d: DecisionName) {
  const flagged = d !== 'allow' ? 1 : 0;
  const blocked = d === 'block' ? 1 : 0;
  if (label === 'legit') { c.legit += 1; c.legitFlagged += flagged; c.legitBlocked += blocked; } else { c.attack += 1; c.attackFlagged += flagged; c.attackBlocked += blocked; }
}

export interface EfficacyGroup {
  group: string;
  /** Legitimate logins challenged or blocked (false challenges). */
  falseChallenge: Rate;
  legitBlocked: number;
  /** Attacks challenged or blocked (detections). */
  detection: Rate;
  attackBlocked: number;
  small: boolean;
  farAbove: boolean;
}

/**
 * Detection and false-challenge rates of labelled decided logins, overall and by group.
 * `add` takes one decided login: its groups, its label and the decision it got.
 */
export class Efficacy {
  readonly #overall = cell();
  readonly #by = Object.fromEntries(DIMENSIONS.map((d) => [d, new Map<string, Cell>()])) as Record<Dimension, Map<string, Cell>>;
  readonly #rule: FarAboveRule;
  unlabelled = 0;

  constructor(rule: FarAboveRule = DEFAULT_FAR_ABOVE) {
    this.#rule = rule;
  }

  add(groups: Record<Dimension, string>, label: 'legit' | 'attack' | undefined, d: DecisionName): void {
    if (!label) {
      this.unlabelled += 1;
      return;
    }
    addTo(this.#overall, label, d);
    for (const dim of DIMENSIONS) {
      const m = this.#by[dim];
      let c = m.get(groups[dim]);
      if (!c) m.set(groups[dim], (c = cell()));
      addTo(c, label, d);
    }
  }

  toJSON() {
    const o = this.#overall;
    const overall = { falseChallenge: wilson(o.legitFlagged, o.legit), legitBlocked: o.legitBlocked, detection: wilson(o.attackFlagged, o.attack), attackBlocked: o.attackBlocked };
    const dimensions = Object.fromEntries(DIMENSIONS.map((dim) => [dim, [...this.#by[dim]]
      .sort((a, b) => (b[1].legit + b[1].attack) - (a[1].legit + a[1].attack) || (a[0] < b[0] ? -1 : 1))
      .map(([group, c]): EfficacyGroup => {
        const falseChallenge = wilson(c.legitFlagged, c.legit);
        return {
          group, falseChallenge, legitBlocked: c.legitBlocked, detection: wilson(c.attackFlagged, c.attack), attackBlocked: c.attackBlocked,
          small: c.legit < this.#rule.minN, farAbove: isFarAbove(falseChallenge, overall.falseChallenge, this.#rule),
        };
      })])) as Record<Dimension, EfficacyGroup[]>;
    const farAbove = DIMENSIONS.flatMap((dim) => dimensions[dim].filter((g) => g.farAbove).map((g) => ({ dimension: dim, group: g.group, falseChallenge: g.falseChallenge })));
    return { overall, rule: this.#rule, dimensions, farAbove, unlabelled: this.unlabelled };
  }
}

export type EfficacyData = ReturnType<Efficacy['toJSON']>;

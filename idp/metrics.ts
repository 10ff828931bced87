/**
 * The metrics of docs/metrics.md through prom-client: one Registry per server (tests run
 * several servers in one process, so never the global one), every metric created once here,
 * and the recording methods the lower layers call through `Events.metrics` (idp/events.ts,
 * the kernel they may import). Label values are bounded by construction: fixed sets in code,
 * or names from the live policy with anything else counted as `other`; never a user, an
 * address, a session, a client id or a secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Context, Next } from 'koa';
import type { CompiledPolicy } from '../policies/policy.ts';
import { RISK_LEVELS } from '../policies/schema.ts';
import type { StoreObserver } from '../adapters/storage/port.ts';
import {
  EVENT_NAMES, type AssessmentSample, type CounterName, type EventName, type LabelsOf, type LoginDecision,
  type LoginFailureReason, type LoginOutcome, type MetricsSink, type StepupMethod, type StepupResult, type ThrottleFactor,
} from './events.ts';

/** What the collectors read at scrape time; the rest is pushed as it happens. */
export interface MetricsSources {
  storeKind: 'embedded' | 'mongodb';
  /** The store's operation counts (StoreStats.ops): counted there, since before the server existed. */
  storeOps: () => ReadonlyMap<string, number>;
  policy: () => CompiledPolicy;
  policyStats: () => { version: string; published?: number | undefined };
  clientLookups: () => { hits: number; misses: number };
  accountLookups: () => { hits: number; misses: number };
}

/** `idp_risk_score` (docs/metrics.md): a bucket per tenth. */
const SCORE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
/** Latencies from a cached SQLite read (tens of µs) to a slow directory (seconds). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `route` of idp_http_request_duration_seconds: exact paths first, then prefixes. */
const EXACT_ROUTES = new Map<string, string>([
  ['/auth', 'authorization'], ['/token', 'token'], ['/me', 'userinfo'], ['/token/introspection', 'introspection'],
  ['/token/revocation', 'revocation'], ['/jwks', 'jwks'], ['/.well-known/openid-configuration', 'discovery'],
  ['/backchannel', 'backchannel'], ['/metrics', 'metrics'], ['/account', 'account'],
]);
const PREFIX_ROUTES: readonly (readonly [string, string])[] = [
  ['/auth/', 'authorization'], ['/session/end', 'end_session'], ['/interaction/', 'interaction'], ['/account/', 'account'],
  ['/admin/api', 'admin_api'], ['/assets/', 'asset'],
];
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** The route label of a request path (a fixed set: docs/metrics.md). */
export function routeOf(p: string): string {
  const lower = p.toLowerCase();
  const exact = EXACT_ROUTES.get(lower);
  if (exact) return exact;
  for (const [prefix, route] of PREFIX_ROUTES) if (lower.startsWith(prefix)) return route;
  return 'other';
}

function buildVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // idp/ when run from source, dist/idp/ when built.
  for (const file of [path.join(here, '..', 'package.json'), path.join(here, '..', '..', 'package.json')]) {
    try {
      return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version ?? 'unknown');
    } catch { /* try the next */ }
  }
  return 'unknown';
}

/** The risk levels (fixed by the policy schema). */
const LEVELS: ReadonlySet<string> = new Set(RISK_LEVELS);

/** The label values a policy allows, computed once per policy version. */
interface Allowed {
  version: string;
  acrs: Set<string>;
  factors: Set<string>;
}

export class Metrics implements MetricsSink {
  readonly registry = new Registry();
  #sources: MetricsSources | undefined;
  #allowed: Allowed | undefined;

  readonly #events: Counter<'event'>;
  readonly #eventChildren = new Map<string, Counter.Internal>();
  readonly #counters: { [N in CounterName]: Counter<string> };
  readonly #logins: Counter<'outcome' | 'decision'>;
  readonly #loginFailures: Counter<'reason'>;
  readonly #riskScore: Histogram;
  readonly #assessments: Counter<'level' | 'required_acr' | 'decision'>;
  readonly #factorFired: Counter<'factor'>;
  readonly #factorContribution: Counter<'factor'>;
  readonly #assessmentDuration: Histogram;
  readonly #stepup: Counter<'method' | 'result'>;
  readonly #stepupRefused: Counter<'reason'>;
  readonly #throttle: Counter<'factor'>;
  readonly #policyReloads: Counter<'result' | 'source'>;
  readonly #http: Histogram<'route' | 'method' | 'status'>;
  readonly #storeDuration: Histogram<'store' | 'op'>;
  readonly #storeErrors: Counter<'store' | 'op'>;
  readonly #directoryDuration: Histogram<'directory' | 'op'>;

  /**
   * The registry's metrics, all created here. What they read at scrape time comes later
   * (attach): the events are counted from the start, before the store and the policy exist.
   */
  constructor() {
    // The collectors' `this` is their metric; they read the sources through this.
    const attached = () => this.#sources;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#events = new Counter({ name: 'idp_events_total', help: 'Named events emitted (each is also a log line), by name.', labelNames: ['event'], registers });
    // Every event shown from the start, at 0: a rate needs the series before its first event.
    for (const name of EVENT_NAMES) this.#eventChildren.set(name, this.#events.labels(name));
    for (const c of this.#eventChildren.values()) c.inc(0);
    this.#counters = {
      idp_risk_monitor_decisions_total: new Counter({
        name: 'idp_risk_monitor_decisions_total', labelNames: ['decision', 'level'], registers,
        help: 'Decisions the risk policy would have made with its monitor-mode parts enforced (computed and recorded, not acted on), by decision and risk level.',
      }),
      idp_directory_errors_total: new Counter({
        name: 'idp_directory_errors_total', labelNames: ['directory', 'kind'], registers,
        help: 'Directory operations that failed for want of an answer (connect, TLS, timeout, service bind, protocol), by directory and kind.',
      }),
    };
    this.#logins = new Counter({ name: 'idp_logins_total', help: 'Login attempts by how they ended and the risk decision.', labelNames: ['outcome', 'decision'], registers });
    this.#loginFailures = new Counter({ name: 'idp_login_failures_total', help: 'First-factor refusals by reason (the page always says "incorrect").', labelNames: ['reason'], registers });
    this.#riskScore = new Histogram({ name: 'idp_risk_score', help: 'Risk score of each assessment.', buckets: SCORE_BUCKETS, registers });
    this.#assessments = new Counter({ name: 'idp_risk_assessments_total', help: 'Assessments of live logins by level, required ACR and decision.', labelNames: ['level', 'required_acr', 'decision'], registers });
    this.#factorFired = new Counter({ name: 'idp_risk_factor_fired_total', help: 'Assessments in which the factor contributed a non-zero weight.', labelNames: ['factor'], registers });
    this.#factorContribution = new Counter({ name: 'idp_risk_factor_contribution_total', help: 'Sum of the factor\'s contributions to scores.', labelNames: ['factor'], registers });
    this.#assessmentDuration = new Histogram({ name: 'idp_risk_assessment_duration_seconds', help: 'Time to assess one login (context, history, model, rules).', buckets: LATENCY_BUCKETS, registers });
    this.#stepup = new Counter({ name: 'idp_stepup_total', help: 'The step-up funnel: prompted, passed, failed, by method.', labelNames: ['method', 'result'], registers });
    this.#stepupRefused = new Counter({ name: 'idp_stepup_refused_total', help: 'Step-ups that could not be offered, by reason.', labelNames: ['reason'], registers });
    this.#throttle = new Counter({ name: 'idp_throttle_refusals_total', help: 'Attempts refused by the throttle, by factor.', labelNames: ['factor'], registers });
    this.#policyReloads = new Counter({ name: 'idp_policy_reloads_total', help: 'Policy changes accepted or rejected (the last good policy kept serving), by source.', labelNames: ['result', 'source'], registers });
    for (const result of ['ok', 'rejected']) for (const source of ['file', 'store']) this.#policyReloads.labels(result, source).inc(0);
    this.#http = new Histogram({ name: 'idp_http_request_duration_seconds', help: 'HTTP requests from arrival to response, by route, method and status class.', labelNames: ['route', 'method', 'status'], buckets: LATENCY_BUCKETS, registers });
    this.#storeDuration = new Histogram({ name: 'idp_store_operation_duration_seconds', help: 'Latency of the operations sent to the store.', labelNames: ['store', 'op'], buckets: LATENCY_BUCKETS, registers });
    this.#storeErrors = new Counter({ name: 'idp_store_errors_total', help: 'Store operations that failed (the store or its connection, not "not found" or a conflict).', labelNames: ['store', 'op'], registers });
    this.#directoryDuration = new Histogram({ name: 'idp_directory_operation_duration_seconds', help: 'LDAP/AD operations\' latency.', labelNames: ['directory', 'op'], buckets: LATENCY_BUCKETS, registers });

    new Counter({
      name: 'idp_store_operations_total', help: 'Operations sent to the store since start: SQL statements (embedded) or commands (MongoDB), by name.',
      labelNames: ['store', 'op'], registers,
      collect() {
        this.reset();
        const s = attached();
        if (s) for (const [op, n] of s.storeOps()) this.inc({ store: s.storeKind, op }, n);
      },
    });
    // A cache's look-ups, answered from it or read from the store (clients, accounts).
    const lookups = (name: string, help: string, stats: (s: MetricsSources) => { hits: number; misses: number }) => new Counter({
      name, help, labelNames: ['source'], registers,
      collect() {
        this.reset();
        const s = attached();
        if (!s) return;
        const { hits, misses } = stats(s);
        this.inc({ source: 'cache' }, hits);
        this.inc({ source: 'store' }, misses);
      },
    });
    lookups('idp_client_lookups_total', 'Client look-ups by oidc-provider: answered from the verified cache, or read from the store.', (s) => s.clientLookups());
    lookups('idp_account_lookups_total', 'Account look-ups of findAccount (resume, code exchange, refresh, userinfo): answered from the short-lived account cache, or read from the store.', (s) => s.accountLookups());
    new Gauge({
      name: 'idp_policy_info', help: 'The policy in force: its content hash (what decisions record) and its version number in the store.',
      labelNames: ['version', 'published'], registers,
      collect() {
        this.reset();
        const s = attached()?.policyStats();
        if (s) this.set({ version: s.version, published: s.published === undefined ? '' : String(s.published) }, 1);
      },
    });
    new Gauge({
      name: 'idp_model_info', help: 'The risk model in force.', labelNames: ['version'], registers,
      collect() {
        this.reset();
        const p = attached()?.policy();
        if (p) this.set({ version: p.forest.version }, 1);
      },
    });
    new Gauge({ name: 'idp_build_info', help: 'The running build.', labelNames: ['version', 'node_version'], registers })
      .set({ version: buildVersion(), node_version: process.version }, 1);
  }

  /** What the scrape-time metrics read, once the server has made it. */
  attach(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** The exposition text and its content type (the registry's). */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  #policyLabels(): Allowed {
    const p = this.#sources?.policy();
    if (!p) return { version: '', acrs: new Set(), factors: new Set() };
    if (this.#allowed?.version !== p.version) {
      this.#allowed = {
        version: p.version,
        acrs: new Set(p.assurance.levels.map((l) => l.acr)),
        // The factors of the policy, and the engine's own parts that appear in reasons.
        factors: new Set([...Object.keys(p.risk.factors), 'model', 'cold_start', 'shared_address']),
      };
    }
    return this.#allowed;
  }

  event(name: EventName): void {
    this.#eventChildren.get(name)?.inc();
  }

  count<N extends CounterName>(name: N, labels: LabelsOf<N>): void {
    if (name === 'idp_risk_monitor_decisions_total') {
      const l = labels as LabelsOf<'idp_risk_monitor_decisions_total'>;
      this.#counters[name].inc({ decision: l.decision, level: LEVELS.has(l.level) ? l.level : 'other' });
    } else {
      this.#counters[name].inc(labels as Record<string, string>);
    }
  }

  login(outcome: LoginOutcome, decision: LoginDecision): void {
    this.#logins.inc({ outcome, decision });
  }

  loginFailure(reason: LoginFailureReason): void {
    this.#loginFailures.inc({ reason });
  }

  assessment(a: AssessmentSample): void {
    const allowed = this.#policyLabels();
    this.#riskScore.observe(a.score);
    this.#assessmentDuration.observe(a.seconds);
    this.#assessments.inc({
      level: LEVELS.has(a.level) ? a.level : 'other',
      required_acr: a.requiredAcr === undefined ? 'none' : allowed.acrs.has(a.requiredAcr) ? a.requiredAcr : 'other',
      decision: a.decision,
    });
    for (const r of a.reasons) {
      // Monitor-mode parts are not in the score (policies/monitor.ts).
      if (r.monitor || r.contribution === 0) continue;
      const factor = allowed.factors.has(r.factor) ? r.factor : 'other';
      this.#factorFired.inc({ factor });
      this.#factorContribution.inc({ factor }, Math.abs(r.contribution));
    }
  }

  stepup(method: StepupMethod, result: StepupResult): void {
    this.#stepup.inc({ method, result });
  }

  stepupRefused(reason: string): void {
    this.#stepupRefused.inc({ reason });
  }

  throttled(factor: ThrottleFactor): void {
    this.#throttle.inc({ factor });
  }

  policyReload(result: 'ok' | 'rejected', source: 'file' | 'store'): void {
    this.#policyReloads.inc({ result, source });
  }

  /** The store's timings and failures (adapters/storage/port.ts StoreObserver). */
  readonly store: StoreObserver = {
    op: (op, seconds, failed) => {
      // One child per operation name (a fixed set in the stores' code), made at its first use.
      let c = this.#storeChildren.get(op);
      if (!c) {
        const labels = { store: this.#sources?.storeKind ?? 'embedded', op };
        c = { duration: this.#storeDuration.labels(labels), errors: this.#storeErrors.labels(labels) };
        this.#storeChildren.set(op, c);
      }
      c.duration.observe(seconds);
      if (failed) c.errors.inc();
    },
  };
  readonly #storeChildren = new Map<string, { duration: Histogram.Internal<'store' | 'op'>; errors: Counter.Internal }>();

  /** A directory operation's latency (adapters/directory/index.ts observer). */
  directoryOp(directory: string, op: 'bind' | 'search', seconds: number): void {
    this.#directoryDuration.observe({ directory, op }, seconds);
  }

  /** Koa middleware timing every request, first in the chain. */
  http() {
    const children = new Map<string, Histogram.Internal<'route' | 'method' | 'status'>>();
    const child = (route: string, method: string, status: string) => {
      const key = `${route} ${method} ${status}`;
      let c = children.get(key);
      if (!c) {
        c = this.#http.labels(route, method, status);
        children.set(key, c);
      }
      return c;
    };
    return async (ctx: Context, next: Next) => {
      // performance.now(), not hrtime.bigint(): no BigInt allocated per request.
      const start = performance.now();
      let status = 500;
      try {
        await next();
        status = ctx.status;
      } finally {
        const seconds = (performance.now() - start) / 1000;
        const method = METHODS.has(ctx.method) ? ctx.method : 'other';
        child(routeOf(ctx.path), method, STATUS_CLASSES[Math.floor(status / 100) - 1] ?? '5xx').observe(seconds);
      }
    };
  }
}

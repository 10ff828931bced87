/**
 * Named events, emitted from one place (STYLE.md §11): each goes to the log and is counted
 * for /metrics. The audit trail (idp/audit.ts) is written beside them, durably, where the
 * action happens: a log line may be lost, an audit record the user was answered after may not.
 */
import type { Logger } from './log.ts';

export const EVENT_NAMES = [
  'login.failed', 'login.succeeded', 'login.blocked', 'login.throttled', 'risk.decided', 'device.proof_refused',
  'stepup.required', 'stepup.passed', 'stepup.failed', 'stepup.refused',
  'mfa.enrolled', 'mfa.enrolment_skipped', 'mfa.recovery_used', 'mfa.removed',
  'policy.reloaded', 'policy.rejected', 'policy.published', 'policy.file_skipped', 'keys.reloaded', 'keys.rejected',
  'directory.unavailable', 'directory.linked', 'directory.session_ended',
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/**
 * Counters with labels, beside the count of each event: declared here (name, help, label
 * names) so /metrics lists them in one place.
 */
export const COUNTERS = {
  idp_risk_monitor_decisions_total: {
    help: 'Decisions the risk policy would have made with its monitor-mode parts enforced (computed and recorded, not acted on), by decision and risk level.',
    labels: ['decision', 'level'],
  },
  idp_directory_errors_total: {
    help: 'Directory operations that failed for want of an answer (connect, TLS, timeout, service bind, protocol), by directory and kind.',
    labels: ['directory', 'kind'],
  },
} as const satisfies Record<string, { help: string; labels: readonly string[] }>;
export type CounterName = keyof typeof COUNTERS;
type LabelsOf<N extends CounterName> = Record<(typeof COUNTERS)[N]['labels'][number], string>;

export class Events {
  readonly #log: Logger;
  readonly counts = new Map<string, number>();
  /** Per counter: the series by their rendered label set. */
  readonly counters = new Map<CounterName, Map<string, number>>();

  constructor(log: Logger) {
    this.#log = log;
  }

  emit(name: EventName, fields: Record<string, unknown> = {}, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    this.#log[level](name, fields);
  }

  /** Adds one to a labelled counter (COUNTERS). */
  count<N extends CounterName>(name: N, labels: LabelsOf<N>): void {
    const series = this.counters.get(name) ?? new Map<string, number>();
    const key = renderLabels(COUNTERS[name].labels.map((l) => [l, (labels as Record<string, string>)[l] ?? '']));
    series.set(key, (series.get(key) ?? 0) + 1);
    this.counters.set(name, series);
  }
}

/** `{a="x",b="y"}`; values with quotes, backslashes or newlines are made safe. */
function renderLabels(pairs: readonly (readonly [string, string])[]): string {
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}` : '';
}

/** Prometheus text exposition (version 0.0.4). */
export type Gauge = { help: string; value: number; labels?: Record<string, string> } | { help: string; samples: { labels: Record<string, string>; value: number }[] };

export function renderMetrics(events: Events, gauges: Record<string, Gauge>): string {
  const lines = ['# HELP idp_events_total Events emitted, by name.', '# TYPE idp_events_total counter'];
  for (const name of EVENT_NAMES) lines.push(`idp_events_total{event="${name}"} ${events.counts.get(name) ?? 0}`);
  for (const [metric, c] of Object.entries(COUNTERS) as [CounterName, (typeof COUNTERS)[CounterName]][]) {
    lines.push(`# HELP ${metric} ${c.help}`, `# TYPE ${metric} counter`);
    for (const [labels, value] of events.counters.get(metric) ?? []) lines.push(`${metric}${labels} ${value}`);
  }
  for (const [metric, g] of Object.entries(gauges)) {
    lines.push(`# HELP ${metric} ${g.help}`, `# TYPE ${metric} ${metric.endsWith('_total') ? 'counter' : 'gauge'}`);
    const samples = 'samples' in g ? g.samples : [{ labels: g.labels ?? {}, value: g.value }];
    for (const s of samples) lines.push(`${metric}${renderLabels(Object.entries(s.labels))} ${s.value}`);
  }
  return `${lines.join('\n')}\n`;
}

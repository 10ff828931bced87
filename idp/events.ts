/**
 * Named events, emitted from one place (STYLE.md §11): each goes to the log and is counted
 * for /metrics. The audit trail of logins is the login-event store (see interactions/risk.ts).
 */
import type { Logger } from './log.ts';

export const EVENT_NAMES = [
  'login.failed', 'login.succeeded', 'login.blocked', 'login.throttled', 'risk.decided', 'device.proof_refused',
  'stepup.required', 'stepup.passed', 'stepup.failed', 'stepup.refused',
  'mfa.enrolled', 'mfa.enrolment_skipped', 'mfa.recovery_used', 'mfa.removed',
  'policy.reloaded', 'policy.rejected', 'keys.reloaded', 'keys.rejected',
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

export class Events {
  readonly #log: Logger;
  readonly counts = new Map<string, number>();

  constructor(log: Logger) {
    this.#log = log;
  }

  emit(name: EventName, fields: Record<string, unknown> = {}, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    this.#log[level](name, fields);
  }
}

/** Prometheus text exposition (version 0.0.4). */
export function renderMetrics(events: Events, gauges: Record<string, { help: string; value: number; labels?: Record<string, string> }>): string {
  const lines = ['# HELP idp_events_total Events emitted, by name.', '# TYPE idp_events_total counter'];
  for (const name of EVENT_NAMES) lines.push(`idp_events_total{event="${name}"} ${events.counts.get(name) ?? 0}`);
  for (const [metric, g] of Object.entries(gauges)) {
    const labels = g.labels ? `{${Object.entries(g.labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}` : '';
    lines.push(`# HELP ${metric} ${g.help}`, `# TYPE ${metric} ${metric.endsWith('_total') ? 'counter' : 'gauge'}`, `${metric}${labels} ${g.value}`);
  }
  return `${lines.join('\n')}\n`;
}

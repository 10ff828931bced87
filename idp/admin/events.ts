/**
 * Login events and the decisions taken on them, as an administrator looks for them: by user,
 * IP, time, risk level, decision or outcome, newest first, and exported as JSON lines (the
 * documented event format, README "Event format"). The store narrows by user and time; the
 * other filters are applied here while paging through what it returns, with a budget of
 * events examined per page so one request never walks the whole history: a page may then
 * come back short, with a cursor to go on from where it stopped.
 *
 * The raw behavioural sample (`behaviour`: keystroke timings) is left out of what the API
 * returns and exports: it is kept only for the simulator's replays, and `idp events export`
 * (on the server's disk) remains the way to take it out.
 */
import * as z from 'zod';
import type { LoginEventRecord } from '../../models/types.ts';
import { encodeCursor, type Page, type Storage } from '../../adapters/storage/port.ts';

/** Events examined for one page at most. */
export const SCAN_BUDGET = 5000;
const BATCH = 200;

export const EventFilter = z.object({
  user: z.string().min(1).max(200).optional().describe('Account id (the `sub`), or `unknown:<hash>` for an unknown username.'),
  ip: z.string().min(1).max(64).optional().describe('Client IP address, exactly as recorded.'),
  from: z.iso.datetime({ offset: true }).optional().describe('From this time on (inclusive).'),
  to: z.iso.datetime({ offset: true }).optional().describe('Before this time (exclusive).'),
  level: z.enum(['low', 'medium', 'high', 'critical']).optional().describe('Risk level of the assessment.'),
  decision: z.enum(['allow', 'step_up', 'block']).optional().describe('What the risk engine decided.'),
  outcome: z.enum(['success', 'failure']).optional().describe('Whether the login succeeded.'),
  client: z.string().min(1).max(128).optional().describe('Client id the login was for.'),
});
export type EventFilter = z.output<typeof EventFilter>;

export const EventView = z.looseObject({
  id: z.string(),
  ts: z.string(),
  user: z.string(),
  ip: z.string(),
  userAgent: z.string(),
  success: z.boolean(),
  clientId: z.string().optional(),
  assessment: z.looseObject({
    score: z.number(),
    level: z.string(),
    decision: z.enum(['allow', 'step_up', 'block']),
    requiredAcr: z.string().optional(),
    policyVersion: z.string(),
    modelVersion: z.string(),
  }).optional(),
}).meta({ id: 'LoginEvent', description: 'A login event as recorded (README "Event format"), without the raw behavioural sample.' });

function matches(e: LoginEventRecord, f: EventFilter): boolean {
  if (f.ip !== undefined && e.ip !== f.ip) return false;
  if (f.level !== undefined && e.assessment?.level !== f.level) return false;
  if (f.decision !== undefined && e.assessment?.decision !== f.decision) return false;
  if (f.outcome !== undefined && e.success !== (f.outcome === 'success')) return false;
  if (f.client !== undefined && e.clientId !== f.client) return false;
  return true;
}

function view(e: LoginEventRecord): LoginEventRecord {
  const rest = { ...e };
  delete rest.behaviour;
  return rest;
}

export class EventAdmin {
  readonly #storage: Storage;
  constructor(storage: Storage) {
    this.#storage = storage;
  }

  #range(f: EventFilter) {
    return { user: f.user, from: f.from ? Date.parse(f.from) : undefined, to: f.to ? Date.parse(f.to) : undefined };
  }

  async query(f: EventFilter, req: { limit: number; after?: string | undefined }): Promise<Page<LoginEventRecord>> {
    const items: LoginEventRecord[] = [];
    let after = req.after;
    let scanned = 0;
    for (;;) {
      const page = await this.#storage.events.query(this.#range(f), { after, limit: Math.min(BATCH, SCAN_BUDGET - scanned) });
      for (const e of page.items) {
        scanned += 1;
        after = encodeCursor([Date.parse(e.ts), e.id]);
        if (matches(e, f)) {
          items.push(view(e));
          if (items.length === req.limit) return { items, next: after };
        }
      }
      if (!page.next) return { items };
      if (scanned >= SCAN_BUDGET) return { items, next: after };
    }
  }

  async get(id: string): Promise<LoginEventRecord | undefined> {
    const e = await this.#storage.events.findById(id);
    return e && view(e);
  }

  /** Every matching event as JSON lines, newest first. */
  async *export(f: EventFilter): AsyncGenerator<string> {
    let after: string | undefined;
    for (;;) {
      const page = await this.#storage.events.query(this.#range(f), { after, limit: 500 });
      for (const e of page.items) if (matches(e, f)) yield `${JSON.stringify(view(e))}\n`;
      if (!page.next) return;
      after = page.next;
    }
  }
}

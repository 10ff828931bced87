/**
 * Labels on login events: an administrator says a login was an attack or legitimate, with
 * a note. One label per event; every change is a new version (the API's If-Match), earlier
 * versions are kept, and each change is recorded on the audit trail. Labels feed model
 * training (idp/admin/model.ts) and the dry run's figures (idp/admin/policies.ts); they never
 * reach the scorer. One implementation for `idp label` and the admin API.
 */
import { z } from 'zod';
import type { EventStore, LabelStore, Page } from '../../adapters/storage/port.ts';
import type { Actor, AuditInput, LabelRecord } from '../../models/types.ts';
import { NotFoundError, parseInput } from './errors.ts';
import { pageSchema, type PageInput } from './page.ts';

export interface LabelDeps {
  storage: { events: EventStore; labels: LabelStore };
  audit: (e: AuditInput) => Promise<void>;
}

export const eventIdSchema = z.string().min(1).max(200).describe('The login event\'s id (`id` in the event format)');

export const setLabelSchema = z.strictObject({
  label: z.enum(['attack', 'legit']).describe('`attack`: not the account\'s owner; `legit`: the owner'),
  note: z.string().trim().min(1).max(2000).optional().describe('Why, for whoever reads the label later'),
  ifVersion: z.number().int().min(0).optional().describe('The label version this change is based on (If-Match; 0: the event has no label yet). Left out: whatever the label is now'),
}).describe('Label a login event');

export type SetLabelInput = z.input<typeof setLabelSchema>;

const view = (l: LabelRecord | undefined) => (l ? { label: l.label, note: l.note ?? null, version: l.version } : null);

/**
 * Sets the event's label (a new version). NotFoundError `event_not_found` when no such event
 * is stored; VersionConflictError when the label changed since `ifVersion`.
 */
export async function setLabel(deps: LabelDeps, eventId: string, input: SetLabelInput, actor: Actor): Promise<LabelRecord> {
  const id = parseInput(eventIdSchema, eventId);
  const p = parseInput(setLabelSchema, input);
  const target = { type: 'login_event', id };
  if (!(await deps.storage.events.findById(id))) {
    await deps.audit({ actor, action: 'label.set', outcome: 'failure', target, detail: { reason: 'event_not_found', label: p.label } });
    throw new NotFoundError('event_not_found', `no login event ${id}`);
  }
  const before = await deps.storage.labels.get(id);
  const ifVersion = p.ifVersion ?? before?.version ?? 0;
  try {
    const after = await deps.storage.labels.set({ eventId: id, label: p.label, ...(p.note !== undefined ? { note: p.note } : {}), actor, at: new Date() }, ifVersion);
    await deps.audit({ actor, action: 'label.set', outcome: 'success', target, before: view(before), after: view(after) });
    return after;
  } catch (e) {
    await deps.audit({ actor, action: 'label.set', outcome: 'failure', target, before: view(before), detail: { reason: (e as Error).name === 'VersionConflictError' ? 'version_conflict' : 'error', label: p.label, ifVersion } });
    throw e;
  }
}

/** The event's label now. NotFoundError `label_not_found`. */
export async function getLabel(deps: Pick<LabelDeps, 'storage'>, eventId: string): Promise<LabelRecord> {
  const l = await deps.storage.labels.get(parseInput(eventIdSchema, eventId));
  if (!l) throw new NotFoundError('label_not_found', `event ${eventId} has no label`);
  return l;
}

/** Every version of the event's label, oldest first (empty: never labelled). */
export async function labelHistory(deps: Pick<LabelDeps, 'storage'>, eventId: string): Promise<LabelRecord[]> {
  return deps.storage.labels.history(parseInput(eventIdSchema, eventId));
}

/** Labels now, by event id, in pages. */
export async function listLabels(deps: Pick<LabelDeps, 'storage'>, page: PageInput = {}): Promise<Page<LabelRecord>> {
  return deps.storage.labels.list(parseInput(pageSchema, page));
}

/** Every label now, as a map (training, the dry run). */
export async function allLabels(labels: LabelStore): Promise<Map<string, LabelRecord>> {
  const out = new Map<string, LabelRecord>();
  let after: string | undefined;
  do {
    const page = await labels.list({ ...(after ? { after } : {}), limit: 1000 });
    for (const l of page.items) out.set(l.eventId, l);
    after = page.next;
  } while (after);
  return out;
}

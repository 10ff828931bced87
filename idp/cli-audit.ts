/**
 * `idp audit verify | export | list`, and how the other `idp` commands put what they change on
 * the audit trail (actor: the OS user running the command). One service does the work
 * (idp/audit.ts), the same the admin API calls.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import type { Writable } from 'node:stream';
import { loadOrCreateKeys } from '../adapters/keys.ts';
import type { Storage } from '../adapters/storage/port.ts';
import type { Actor, AuditInput, AuditRecord } from '../models/types.ts';
import { AuditTrail, type AuditQuery } from './audit.ts';
import type { Settings } from './settings.ts';
import { CliError } from './cli-risk.ts';
import { NO_PROGRESS, progressBar, progressCount } from './progress.ts';

/** Who runs this command: the OS user (`cli`, README "Audit trail"). */
export function cliActor(): Actor {
  let name: string | undefined;
  try {
    name = os.userInfo().username;
  } catch {
    // A uid without a passwd entry (some containers): the number is still who it was.
  }
  return { kind: 'cli', id: name || process.env.USER || `uid:${process.getuid?.() ?? 'unknown'}` };
}

/**
 * The trail on an open store, sealed with the key file's data key. Reading it (`verify`,
 * `export`, `list`) never creates a key file: a new key would call every seal forged.
 */
export function cliTrail(settings: Settings, storage: Storage, opts: { create?: boolean } = {}): AuditTrail {
  if (!opts.create && !fs.existsSync(settings.keysFile)) throw new CliError(`no key file at ${settings.keysFile} (KEYS_FILE): the audit trail's seals are checked with its data key`);
  return new AuditTrail({ storage, dataKey: loadOrCreateKeys(settings.keysFile).dataKey });
}

/** Records something this command did (secrets masked by the trail). */
export async function recordCli(settings: Settings, storage: Storage, e: Omit<AuditInput, 'actor'>): Promise<void> {
  await cliTrail(settings, storage, { create: true }).record({ actor: cliActor(), ...e });
}

/** `idp audit verify`: true when the whole chain is intact. */
export async function auditVerifyCommand(trail: AuditTrail, json: boolean, out: Writable): Promise<boolean> {
  const bar = progressBar('audit verify', await trail.size(), { unit: 'records' });
  const v = await trail.verify(bar.update).finally(() => bar.done());
  if (json) {
    out.write(`${JSON.stringify(v, null, 2)}\n`);
  } else if (v.ok) {
    out.write(`audit trail intact: ${v.checked} record${v.checked === 1 ? '' : 's'} checked, seals included${v.head ? `; head #${v.head.seq} ${v.head.hash}` : ''}\n`);
  } else {
    out.write(`audit trail BROKEN at record ${v.broken!.seq} (${v.broken!.problem}): ${v.broken!.message}; ${v.checked} record${v.checked === 1 ? '' : 's'} checked\n`);
  }
  return v.ok;
}

/** `idp audit export`: ECS JSON lines; returns how many. */
export async function auditExportCommand(trail: AuditTrail, range: { since?: number | undefined; until?: number | undefined }, out: Writable): Promise<number> {
  let n = 0;
  // The whole trail's size is known; a time range's is not. None when the lines go to the terminal.
  const bar = (out as { isTTY?: boolean }).isTTY ? NO_PROGRESS : range.since === undefined && range.until === undefined
    ? progressBar('audit export', await trail.size(), { unit: 'records' })
    : progressCount('audit export', { unit: 'records' });
  try {
    for await (const e of trail.export(range)) {
      if (!out.write(`${JSON.stringify(e)}\n`)) await once(out, 'drain');
      bar.update((n += 1));
    }
  } finally {
    bar.done();
  }
  return n;
}

const cell = (r: AuditRecord) => ({
  seq: r.seq, time: r.ts, actor: `${r.actor.kind}:${r.actor.id}${r.actor.ip ? `@${r.actor.ip}` : ''}`, action: r.action, outcome: r.outcome,
  target: r.target ? `${r.target.type}:${r.target.id}` : '',
});

/** `idp audit list`: one page; the cursor of the next one goes to stderr. */
export async function auditListCommand(trail: AuditTrail, q: AuditQuery, json: boolean, out: Writable, note: Writable, table: (rows: Record<string, unknown>[], cols: string[]) => string): Promise<void> {
  const page = await trail.query(q);
  out.write(json ? `${JSON.stringify(page, null, 2)}\n` : `${table(page.items.map(cell), ['seq', 'time', 'actor', 'action', 'outcome', 'target'])}\n`);
  if (!json && page.next) note.write(`more: --after ${page.next}\n`);
}

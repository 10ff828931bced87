/**
 * `idp report efficacy`: how well the risk check tells attacks from the accounts' owners, and
 * whom its challenges fall on (NIST SP 800-63-4 §3: evaluate the controls' performance and
 * their effect on the people using the service), as an HTML page and as JSON
 * (README "Reports"). Decisions are the ones recorded in exported events (`assessment`), or,
 * with --policy, the ones that policy gives when the events are replayed through it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadPolicy } from '../policies/policy.ts';
import { DECISIONS, DEFAULT_FAR_ABOVE, Efficacy, groupsOf, type DecisionName } from '../policies/report.ts';
import { Replayer } from '../policies/simulate.ts';
import { parseAgent } from '../policies/ua.ts';
import { cachedPlaces, checkWritable, CliError, forEachEvent, geo, inputSize, policyOrExit, type GeoSettings } from './cli-risk.ts';
import { progressBar } from './progress.ts';
import { chartSource, efficacyReportHtml, type EfficacyMeta } from './report-html.ts';
import { DEFAULT_POLICY_DIR } from './settings.ts';

const labelSchema = z.object({ eventId: z.string().min(1), label: z.enum(['attack', 'legit']) });

/**
 * Labels by event id from a file in the formats `idp label list --json` and the admin API's
 * label listing give (a page `{ items: [...] }`), a JSON array of the same records, or one
 * record per line (JSONL). Only `eventId` and `label` are read.
 */
export function readLabels(file: string): Map<string, 'attack' | 'legit'> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`--labels: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const out = new Map<string, 'attack' | 'legit'>();
  const take = (x: unknown, where: string) => {
    const r = labelSchema.safeParse(x);
    if (!r.success) throw new CliError(`--labels ${file}: ${where}: a label needs "eventId" (text) and "label" ("attack" or "legit")`);
    out.set(r.data.eventId, r.data.label);
  };
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    whole = undefined;
  }
  const items = Array.isArray(whole) ? whole : whole && typeof whole === 'object' && Array.isArray((whole as { items?: unknown }).items) ? (whole as { items: unknown[] }).items : undefined;
  const next = whole && typeof whole === 'object' ? (whole as { next?: unknown }).next : undefined;
  if (items && typeof next === 'string' && next) {
    // The rates would be measured on the first page's labels alone, with nothing to say so.
    throw new CliError(`--labels ${file}: one page of a longer listing (more after ${next}); write every label with \`idp label list --all --json\``);
  }
  if (items) {
    items.forEach((x, i) => take(x, `item ${i + 1}`));
    return out;
  }
  if (whole !== undefined && (typeof whole !== 'object' || whole === null || !('eventId' in whole))) {
    throw new CliError(`--labels ${file}: expected a JSON array of labels, a page ({ "items": [...] }) or one label per line`);
  }
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let x: unknown;
    try {
      x = JSON.parse(line);
    } catch {
      throw new CliError(`--labels ${file}:${i + 1}: not valid JSON`);
    }
    take(x, `line ${i + 1}`);
  });
  return out;
}

const recordedSchema = z.object({ assessment: z.object({ decision: z.enum(DECISIONS) }).optional() });

export async function efficacyCommand(s: GeoSettings & { policyDir?: string | undefined }, o: {
  events: string; labels?: string | undefined; policy?: string | undefined; out?: string | undefined; json?: string | undefined;
  minGroup?: number | undefined; ratio?: number | undefined;
}) {
  const size = inputSize(o.events);
  for (const f of [o.out, o.json]) if (f) checkWritable(f);
  if (o.out) chartSource();
  const rule = { minN: o.minGroup ?? DEFAULT_FAR_ABOVE.minN, ratio: o.ratio ?? DEFAULT_FAR_ABOVE.ratio };
  if (!Number.isInteger(rule.minN) || rule.minN < 1) throw new CliError('--min-group: a whole number of at least 1');
  if (!Number.isFinite(rule.ratio) || rule.ratio <= 1) throw new CliError('--ratio: a number above 1');
  const fileLabels = o.labels ? readLabels(o.labels) : undefined;
  // The network lists come from the policy replayed, or the configured one for recorded decisions.
  const policy = o.policy ? policyOrExit(o.policy) : loadPolicy(s.policyDir ?? DEFAULT_POLICY_DIR, { withoutModel: true });
  const lookup = await geo(s);
  const placeOf = cachedPlaces(lookup);
  const replay = o.policy ? new Replayer(policy, placeOf) : undefined;
  const efficacy = new Efficacy(rule);
  let events = 0;
  let decided = 0;
  let undecided = 0;
  let first = Infinity;
  let last = -Infinity;
  const labels = { fromEvents: 0, fromFile: 0 };
  const bar = progressBar('efficacy', size, { unit: 'bytes' });
  await forEachEvent(o.events, (e, raw) => {
    events += 1;
    const ts = Date.parse(e.ts);
    first = Math.min(first, ts);
    last = Math.max(last, ts);
    let decision: DecisionName | undefined;
    if (replay) decision = replay.process(e)?.decision.decision;
    else if (e.success) {
      const r = recordedSchema.safeParse(raw);
      decision = r.success ? r.data.assessment?.decision : undefined;
      if (!decision) undecided += 1;
    }
    if (!decision) return;
    decided += 1;
    const fromFile = fileLabels?.get(e.id);
    const label = fromFile ?? e.label;
    if (fromFile) labels.fromFile += 1;
    else if (e.label) labels.fromEvents += 1;
    efficacy.add(groupsOf(e.ip, placeOf(e.ip), parseAgent(e.userAgent), policy.lists), label, decision);
  }, bar.update);
  bar.done();
  if (!replay && decided === 0) {
    throw new CliError(`${o.events} carries no recorded decisions (no "assessment" on logins with a correct password): replay the events with --policy <dir>`);
  }
  const data = efficacy.toJSON();
  if (data.overall.falseChallenge.n === 0 && data.overall.detection.n === 0) {
    throw new CliError('none of the decided logins has a label ("label" in the events or --labels): nothing to measure');
  }
  const meta: EfficacyMeta = {
    input: path.basename(o.events), generated: new Date().toISOString(),
    decisions: replay ? { kind: 'replayed', policyVersion: policy.version, modelVersion: policy.forest.version, policyDir: o.policy ?? '' } : { kind: 'recorded' },
    labels: { ...labels, ...(o.labels ? { file: path.basename(o.labels) } : {}) },
    events, decided, undecided, span: events ? { from: new Date(first).toISOString(), to: new Date(last).toISOString() } : null,
  };
  const json = { ...meta, ...data };
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(json, null, 2)}\n`);
  if (o.out) fs.writeFileSync(o.out, efficacyReportHtml(data, meta));
  if (!o.out && !o.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else {
    const pct = (x: number, n: number) => (n ? `${(x * 100).toFixed(1)}%` : 'n/a');
    const ov = data.overall;
    process.stdout.write(`detection ${pct(ov.detection.rate, ov.detection.n)} of ${ov.detection.n} attacks; false challenges ${pct(ov.falseChallenge.rate, ov.falseChallenge.n)} of ${ov.falseChallenge.n} legitimate logins; `
      + `${data.farAbove.length} group(s) far above${data.farAbove.length ? `: ${data.farAbove.map((g) => `${g.dimension}=${g.group}`).join(', ')}` : ''}\n`);
  }
  return json;
}

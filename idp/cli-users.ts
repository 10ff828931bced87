/**
 * `idp user …`, the administration part (issue 11): show, set claims, disable, enable,
 * delete, list with filters, sessions and their revocation, and the service behind `add`,
 * `unlock` and `mfa reset`. Everything goes through idp/admin/users.ts, the implementation the
 * admin API uses too; this file only turns arguments into its inputs and its answers into
 * lines. Claim options are OIDC Core §5.1's names in kebab case (`--given-name`,
 * `--address-locality`); `--claims <file>` takes the API's JSON merge patch.
 */
import { cliActor, cliTrail } from './cli-audit.ts';
import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as z from 'zod';
import { openStorage, type Storage } from '../adapters/storage/index.ts';
import { SecretBox } from '../adapters/crypto.ts';
import { loadOrCreateKeys } from '../adapters/keys.ts';
import { createLogger } from './log.ts';
import { buildProvider } from './provider.ts';
import { resourceScopeNames } from './tokens.ts';
import { policyOrExit } from './cli-risk.ts';
import type { Settings } from './settings.ts';
import { backchannelNotifier, type LogoutNotifier } from './admin/backchannel.ts';
import { UserService, type Revocation, type UserView } from './admin/users.ts';

/** Option → claim (OIDC Core §5.1), for `user add` and `user set`. */
export const STRING_CLAIM_OPTIONS = {
  email: 'email', name: 'name', 'given-name': 'given_name', 'family-name': 'family_name', 'middle-name': 'middle_name', nickname: 'nickname',
  'preferred-username': 'preferred_username', profile: 'profile', picture: 'picture', website: 'website', gender: 'gender', birthdate: 'birthdate',
  zoneinfo: 'zoneinfo', locale: 'locale', 'phone-number': 'phone_number',
} as const;
/** Boolean claims: `--email-verified` sets true, `--no-email-verified` false. */
export const BOOLEAN_CLAIM_OPTIONS = { 'email-verified': 'email_verified', 'phone-number-verified': 'phone_number_verified' } as const;
/** Option → member of the address claim (OIDC Core §5.1.1). */
export const ADDRESS_CLAIM_OPTIONS = {
  'address-formatted': 'formatted', 'address-street': 'street_address', 'address-locality': 'locality', 'address-region': 'region',
  'address-postal-code': 'postal_code', 'address-country': 'country',
} as const;

/** Bad arguments: exit 2, like the rest of `idp` (cli.ts). */
export class UserUsageError extends Error {
  readonly usage = true;
}



export async function withUsers<T>(settings: Settings, fn: (users: UserService, s: Storage) => Promise<T>, logout?: (s: Storage) => LogoutNotifier): Promise<T> {
  const storage = await openStorage({ mongodbUri: settings.mongodbUri, dataDir: settings.dataDir });
  try {
    // What the command changes goes on the audit trail, by the OS user (idp/cli-audit.ts).
    return await fn(new UserService({ storage, settings, audit: cliTrail(settings, storage, { create: true }).audit, logout: logout?.(storage) }), storage);
  } finally {
    await storage.close();
  }
}

/**
 * Back-channel logout away from a running server (the CLI): a provider built as `idp client
 * add` builds one (same keys, same clients), never served, whose client model signs and
 * sends the logout tokens (idp/admin/backchannel.ts).
 */
export function standaloneLogoutNotifier(settings: Settings, s: Storage, onError?: Parameters<typeof backchannelNotifier>[1]): LogoutNotifier {
  const policy = policyOrExit(settings.policyDir, { withoutModel: true });
  const keys = loadOrCreateKeys(settings.keysFile);
  const provider = buildProvider(settings, s, keys, new SecretBox(keys.dataKey), createLogger('silent'), policy.assurance.levels.map((l) => l.acr),
    resourceScopeNames(Object.keys(policy.assurance.operations), settings.resourceScopes));
  return backchannelNotifier(provider, onError);
}

function cliLogout(settings: Settings): (s: Storage) => LogoutNotifier {
  return (s) => standaloneLogoutNotifier(settings, s, (n, err) => process.stderr.write(`back-channel logout to ${n.clientId} failed: ${err.message}\n`));
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, allowNegative: true, strict: true });
  } catch (err) {
    throw new UserUsageError((err as Error).message.split('\n')[0]);
  }
  if (parsed.positionals.length !== positionals) {
    throw new UserUsageError(positionals === 0 ? `unexpected argument "${parsed.positionals[0]}"` : `expected ${positionals} argument(s)`);
  }
  return parsed;
}

const CLAIM_OPTIONS = {
  ...Object.fromEntries([...Object.keys(STRING_CLAIM_OPTIONS), ...Object.keys(ADDRESS_CLAIM_OPTIONS)].map((o) => [o, { type: 'string' as const }])),
  ...Object.fromEntries(Object.keys(BOOLEAN_CLAIM_OPTIONS).map((o) => [o, { type: 'boolean' as const }])),
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** Claim options → the claims object (a merge patch for `set`; `unset` names claims to remove). */
export function claimsFromOptions(values: Record<string, unknown>, unset: readonly string[] = [], file?: string): Record<string, unknown> {
  let claims: Record<string, unknown> = {};
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file === '-' ? 0 : file, 'utf8'));
    } catch (err) {
      throw new UserUsageError(`--claims: cannot read ${file === '-' ? 'standard input' : file} as JSON (${(err as Error).message.split('\n')[0]})`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UserUsageError('--claims: the file must hold one JSON object of claims');
    claims = parsed as Record<string, unknown>;
  }
  for (const [option, claim] of Object.entries(STRING_CLAIM_OPTIONS)) if (typeof values[option] === 'string') claims[claim] = values[option];
  for (const [option, claim] of Object.entries(BOOLEAN_CLAIM_OPTIONS)) if (typeof values[option] === 'boolean') claims[claim] = values[option];
  for (const [option, member] of Object.entries(ADDRESS_CLAIM_OPTIONS)) {
    if (typeof values[option] !== 'string') continue;
    const address = (claims.address && typeof claims.address === 'object' ? claims.address : {}) as Record<string, unknown>;
    claims.address = { ...address, [member]: values[option] };
  }
  for (const name of unset) {
    const [claim, member] = name.split('.');
    if (member !== undefined && claim === 'address') {
      const address = (claims.address && typeof claims.address === 'object' ? claims.address : {}) as Record<string, unknown>;
      claims.address = { ...address, [member]: null };
    } else {
      claims[name] = null;
    }
  }
  return claims;
}

/** The option a claim path comes from, for messages: claims.address.locality → --address-locality. */
function optionOf(path: readonly PropertyKey[], names: Readonly<Record<string, string>>): string {
  const [first, second, third] = path.map(String);
  if (first !== undefined && Object.hasOwn(names, first)) return names[first]!;
  const [claim, member] = first === 'claims' ? [second, third] : [first, second];
  if (claim === 'address' && member) {
    const option = Object.entries(ADDRESS_CLAIM_OPTIONS).find(([, m]) => m === member)?.[0];
    if (option) return `--${option}`;
  }
  const option = Object.entries({ ...STRING_CLAIM_OPTIONS, ...BOOLEAN_CLAIM_OPTIONS }).find(([, c]) => c === claim)?.[0];
  return option ? `--${option}` : `claim ${[claim, member].filter(Boolean).join('.')}`;
}

/**
 * A schema's refusal as one usage line, naming the option: `--birthdate: must be YYYY-MM-DD, …`.
 * `names`: options of the top-level fields other than claims (`reason` → `--reason`).
 */
export function usageFromZod(err: z.ZodError, names: Readonly<Record<string, string>> = {}): UserUsageError {
  const issue = err.issues[0]!;
  const where = issue.path.length ? optionOf(issue.path, names) : 'claims';
  const unknownKeys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
  return new UserUsageError(`${where}: ${issue.message}${unknownKeys}`);
}

/** Runs `fn`, turning a schema's refusal of the arguments into a usage error (see usageFromZod). */
async function checked<T>(fn: () => Promise<T>, names: Readonly<Record<string, string>> = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof z.ZodError) throw usageFromZod(err, names);
    throw err;
  }
}

/** `user list`'s options by the filter fields they set. */
const LIST_OPTIONS = {
  username_prefix: '--prefix', email: '--email', disabled: '--disabled', directory: '--directory', created_after: '--created-after', created_before: '--created-before',
};

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function revocationLine(r: Revocation): string {
  return `${r.sessions} session${r.sessions === 1 ? '' : 's'} ended, ${r.grants} grant${r.grants === 1 ? '' : 's'} revoked`
    + `${r.notified || r.failed ? `, ${r.notified} relying part${r.notified === 1 ? 'y' : 'ies'} told by back-channel logout${r.failed ? ` (${r.failed} did not accept it)` : ''}` : ''}`;
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), ...cells.map(line)].join('\n');
}

/** `idp user list` rows (no hashes, no secrets). */
function listRow(u: UserView) {
  return {
    username: u.username, id: u.id, email: u.claims.email, name: u.claims.name, created: u.created_at,
    // A linked account: its directory and the name its user signs in with.
    directory: u.directory ? `${u.directory.name} (${u.claims.preferred_username ?? u.directory.dn})` : '',
    disabled: u.disabled ? `since ${u.disabled.at}: ${u.disabled.reason}` : '',
  };
}

/** `idp user list [filters] [--json]`: every matching user, read a page at a time. */
export async function listUsers(settings: Settings, args: string[]): Promise<void> {
  const { values } = parse(args, {
    json: { type: 'boolean' }, prefix: { type: 'string' }, email: { type: 'string' }, disabled: { type: 'boolean' },
    directory: { type: 'string' }, 'created-after': { type: 'string' }, 'created-before': { type: 'string' },
  }, 0);
  const rows = await withUsers(settings, (users) => checked(async () => {
    const out: ReturnType<typeof listRow>[] = [];
    const filter = {
      username_prefix: values.prefix, email: values.email, disabled: values.disabled === undefined ? undefined : String(values.disabled),
      directory: values.directory, created_after: values['created-after'], created_before: values['created-before'],
    };
    for (let after: string | undefined; ;) {
      const page = await users.list(filter, { after, limit: 500 });
      out.push(...page.items.map(listRow));
      if (!page.next) return out;
      after = page.next;
    }
  }, LIST_OPTIONS));
  process.stdout.write(values.json ? json(rows) : `${table(rows, ['username', 'id', 'email', 'name', 'directory', 'created', 'disabled'])}\n`);
}

/** The administration subcommands of `idp user`; false when `sub` is not one of them. */
export async function userAdminCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<boolean> {
  const actor = cliActor();
  switch (sub) {
    case 'show': {
      const { positionals } = parse(args, {}, 1);
      const view = await withUsers(settings, async (users) => users.get((await users.findByName(positionals[0]!)).id));
      process.stdout.write(json(view));
      return true;
    }
    case 'set': {
      const { values, positionals } = parse(args, {
        ...CLAIM_OPTIONS, claims: { type: 'string' }, unset: { type: 'string', multiple: true }, 'if-version': { type: 'string' },
      }, 1);
      const claims = claimsFromOptions(values, values.unset ?? [], values.claims);
      const ifVersion = versionOption(values['if-version']);
      const view = await withUsers(settings, async (users) => {
        const a = await users.findByName(positionals[0]!);
        return checked(() => users.update(actor, a.id, { claims }, ifVersion));
      });
      process.stdout.write(json(view));
      return true;
    }
    case 'disable': {
      const { values, positionals } = parse(args, { reason: { type: 'string' }, 'if-version': { type: 'string' } }, 1);
      if (values.reason === undefined) throw new UserUsageError('--reason is required (it goes on the audit trail)');
      const ifVersion = versionOption(values['if-version']);
      const result = await withUsers(settings, async (users) => {
        const a = await users.findByName(positionals[0]!);
        return checked(() => users.disable(actor, a.id, { reason: values.reason! }, ifVersion), { reason: '--reason' });
      }, cliLogout(settings));
      process.stdout.write(`disabled ${result.username}; ${revocationLine(result.revoked)}\n`);
      return true;
    }
    case 'enable': {
      const { values, positionals } = parse(args, { 'if-version': { type: 'string' } }, 1);
      const ifVersion = versionOption(values['if-version']);
      const view = await withUsers(settings, async (users) => users.enable(actor, (await users.findByName(positionals[0]!)).id, ifVersion));
      process.stdout.write(`enabled ${view.username}\n`);
      return true;
    }
    case 'delete': {
      const { positionals } = parse(args, {}, 1);
      const { username, revoked } = await withUsers(settings, async (users) => {
        const a = await users.findByName(positionals[0]!);
        return { username: a.username, ...(await users.delete(actor, a.id)) };
      }, cliLogout(settings));
      process.stdout.write(`deleted ${username}; ${revocationLine(revoked)}; login events kept\n`);
      return true;
    }
    case 'sessions': {
      const { values, positionals } = parse(args, { json: { type: 'boolean' } }, 1);
      const { sessions, grants } = await withUsers(settings, async (users) => {
        const a = await users.findByName(positionals[0]!);
        return { sessions: await users.sessions(a.id), grants: await users.grants(a.id) };
      });
      if (values.json) {
        process.stdout.write(json({ sessions, grants }));
        return true;
      }
      const sessionRows = sessions.map((s) => ({ ...s, clients: s.clients.map((c) => c.client_id).join(' '), amr: s.amr?.join(' ') }));
      const grantRows = grants.map((g) => ({ ...g, resources: Object.keys(g.resources).join(' ') }));
      process.stdout.write(`sessions:\n${table(sessionRows, ['uid', 'login_at', 'expires_at', 'acr', 'amr', 'clients'])}\n`
        + `grants:\n${table(grantRows, ['id', 'client_id', 'scope', 'created_at', 'expires_at', 'resources'])}\n`);
      return true;
    }
    case 'revoke': {
      const { values, positionals } = parse(args, { session: { type: 'string' }, grant: { type: 'string' }, all: { type: 'boolean' } }, 1);
      const given = [values.session !== undefined, values.grant !== undefined, values.all === true].filter(Boolean).length;
      if (given !== 1) throw new UserUsageError('give one of --session <uid>, --grant <id> or --all');
      const revoked = await withUsers(settings, async (users) => {
        const a = await users.findByName(positionals[0]!);
        if (values.session !== undefined) return users.revokeSession(actor, a.id, values.session);
        if (values.grant !== undefined) return users.revokeGrant(actor, a.id, values.grant);
        return users.revokeAll(actor, a.id);
      }, cliLogout(settings));
      process.stdout.write(`${revocationLine(revoked)}\n`);
      return true;
    }
    default:
      return false;
  }
}

function versionOption(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9]\d{0,9}$/.test(v)) throw new UserUsageError(`--if-version: expected the user's version (a positive integer), got "${v}"`);
  return Number(v);
}

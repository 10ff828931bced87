#!/usr/bin/env node
/**
 * The `idp` command. Works on the same store as a running server (embedded or MongoDB), so
 * what it adds is usable at once, without a restart.
 *
 * Errors are one line on stderr and a non-zero exit: 2 for usage, 1 for refusals.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { openStorage, DuplicateError, type Storage } from '../adapters/storage/index.ts';
import { InvalidCursorError, VersionConflictError } from '../adapters/storage/port.ts';
import { UserClaimsSchema } from './admin/claims.ts';
import type { Account } from '../models/types.ts';
import { activateKeys, deriveKey, describeKeys, KeyFileError, keyTimings, loadOrCreateKeys, retireKeys, rotateKeys } from '../adapters/keys.ts';
import { SecretBox } from '../adapters/crypto.ts';
import { PasswordError, PasswordHasher, validateUsername } from '../interactions/methods/password.ts';
import { signInName } from '../interactions/methods/ldap.ts';
import { newTotpFactor, otpauthUri, totpIssuerName } from '../interactions/methods/totp.ts';
import { replaceRecoveryCodes } from '../interactions/methods/recovery.ts';
import { ConfigError, loadSettings, settingsMarkdown, type Settings } from './settings.ts';
import { createLogger } from './log.ts';
import { buildProvider } from './provider.ts';
import { OIDC_SCOPES, resourceScopeNames } from './tokens.ts';
import { checkConfiguration } from './config-check.ts';
import { ensureAsnMmdb, type AsnBuild } from '../adapters/geo/asn-mmdb.ts';
import { directoryTestCommand } from './cli-directory.ts';
import { DirectoryConfigError } from '../adapters/directory/config.ts';
import { loadDirectories } from './directories.ts';
import { keystrokeEvalCommand } from './cli-keystroke.ts';
import * as z from 'zod';
import { ClientAdmin, ClientAdminError } from './admin/clients.ts';
import { RoleAdmin } from './admin/roles.ts';
import { ADMIN_SCOPE_NAMES } from './admin/route.ts';
import { auditExportCommand, auditListCommand, auditVerifyCommand, cliActor, cliTrail, recordCli } from './cli-audit.ts';
import { AuditError } from './audit.ts';
import { CliError, evalCommand, policyOrExit, eventsExportCommand, policyCheckCommand, simulateCommand, synthCommand, trainCommand } from './cli-risk.ts';
import { UserAdminError } from './admin/users.ts';
import { claimsFromOptions, listUsers, userAdminCommand, UserUsageError, withUsers, STRING_CLAIM_OPTIONS, BOOLEAN_CLAIM_OPTIONS, ADDRESS_CLAIM_OPTIONS, usageFromZod } from './cli-users.ts';
import { efficacyCommand } from './cli-report.ts';
import { labelCommand, modelStoreCommand, policyCommand, PolicyUsageError } from './cli-policy.ts';
import { AdminError } from './admin/errors.ts';

class UsageError extends Error {}


/** `risk` is left out: an operator opts a client into seeing risk assessments. */
const DEFAULT_CLIENT_SCOPE = 'openid offline_access profile email';
class Refused extends Error {}

const HELP = `Usage: idp <command> [options]

  idp start                                   run the provider (same as npm start)
  idp user add <username> --password-stdin [--email E] [--email-verified] [--name N] [<claim options>]
  idp user passwd <username> --password-stdin set a new password
  idp user list [--prefix P] [--email E] [--disabled | --no-disabled] [--directory D]
                [--created-after ISO] [--created-before ISO] [--json]
  idp user show <username>                    the user as JSON: claims, version, disabled, directory link
  idp user set <username> [<claim options>] [--unset <claim>]... [--claims <file.json>] [--if-version N]
                claim options: --given-name --family-name --middle-name --nickname --preferred-username
                --name --email --[no-]email-verified --profile --picture --website --gender --birthdate
                --zoneinfo --locale --phone-number --[no-]phone-number-verified --address-formatted
                --address-street --address-locality --address-region --address-postal-code --address-country
  idp user disable <username> --reason "<why>" [--if-version N]   no sign-in; sessions and tokens ended
  idp user enable <username> [--if-version N]
  idp user delete <username>                  the account, its factors, sessions, tokens (login events stay)
  idp user sessions <username> [--json]       sessions and grants
  idp user revoke <username> (--session <uid> | --grant <id> | --all)
  idp user unlock <username>                  clear the failed-login lock of an account
  idp user roles <username> [--set "<admin scopes>"]  show or set the admin API roles of an account
  idp user mfa add <username> --totp [--label L]   add an authenticator app; prints its otpauth:// URI
  idp user mfa add <username> --recovery-codes     replace the recovery codes; prints the 10 new codes
  idp user mfa list <username> [--json]            second factors (no secrets)
  idp user mfa reset <username>                    remove all second factors of an account
  idp client add --id <id> [--secret <s> | --public] --redirect-uri <uri>...
                 [--post-logout-redirect-uri <uri>]... [--backchannel-logout-uri <uri>]
                 [--scope "<scopes>"] [--name <name>] [--grant-type <type>]... [--min-acr <acr>] [--first-party]
  idp client list [--json]
  idp keys list | rotate | activate | retire [--kid <kid>]
  idp config docs | check
  idp geo build [--force]                     convert the @ip-location-db/asn ranges into the ASN MMDB file a start
                                              would otherwise convert (README: Geolocation data)
  idp directory test [<name>] [--user <username>] [--json]
                                              connect and bind as the service account; with --user, search
                                              the user and print the mapped claims (README: Directories)
  idp policy check [<dir>]                    validate a policy directory (default: POLICY_DIR or the shipped one)
  idp policy validate [<dir>] [--json]        validate it as a candidate for the store (also against the live version)
  idp policy publish [<dir>] --message M [--if-version N]   publish it as the next version (live on every instance)
  idp policy history [--limit N] [--after C] [--json]       published versions, newest first
  idp policy show [<version>] [--json]        the live version (or another one)
  idp policy pull [<version>] --out <dir>     write a published version's files into a directory
  idp policy rollback <version> --message M [--if-version N]   publish an earlier version's files again
  idp policy dry-run [<dir>] [--days N] [--warmup-days N] [--examples N] [--json]
                                              replay the stored events of the last N days through it and the live policy
  idp label set <event-id> attack|legit [--note N] [--if-version N]
  idp label show <event-id> [--json]          a label's versions
  idp label list [--limit N] [--after C] [--all] [--json]
  idp model synth [--seed N] [--users N] [--days N] [--start ISO] [--victim-rate X] [--stuffing-per-day X]
                  [--shared-nat-rate X] [--password-manager-rate X] [--private-rate X] [--attack-mix type=w,...]
                  [--keystrokes <cmu.csv> [--keystroke-subjects s002-s036,...]] [--out F]
  idp model train --events <jsonl> --out <file> [--policy <dir>] [--trees N] [--max-depth N] [--seed N] [--max-rows N]
  idp model train --labels [--events <synthetic.jsonl>] [--label-weight N] [--holdout X] [--days N] [--trees N]
                  [--max-depth N] [--seed N] [--max-rows N] [--out <file>] [--json]
                  retrain from the stored events and their labels; reports on held-out labels; activates nothing
  idp model activate <sha256> [--message M] [--if-version N]   publish the live policy with that model pinned
  idp model list [--json]                     trained models kept in the store
  idp model eval --events <jsonl> [--policy <dir>]
  idp keystroke eval --data <csv> [--detectors a,b] [--split protocol|cv] [--above X] [--calibrate] [--json]
                  keystroke detectors on the CMU benchmark (README: Keystroke dynamics)
  idp events export [--since <ISO time>] [--out <file>]   login events as JSON lines (README: event format)
  idp simulate --events <jsonl> [--policy <dir>] [--baseline-policy <dir>] [--out <dir>] [--report <file.html>]
                  replay events through a policy: decisions.jsonl + summary.json in --out, a self-contained HTML report
  idp report efficacy --events <jsonl> [--labels <file>] [--policy <dir>] [--out <file.html>] [--json <file.json>]
                  [--min-group N] [--ratio X]   detection and false-challenge rates by country, network, device, platform
  idp audit verify [--json]                   check the audit trail's hash chain and seals; names the first broken record
  idp audit export [--since ISO] [--until ISO] [--out <file>]   the audit trail as ECS JSON lines (README: Audit trail)
  idp audit list [--actor ID] [--actor-kind K] [--action PREFIX] [--target ID] [--target-type T] [--outcome O]
                 [--since ISO] [--until ISO] [--order asc|desc] [--limit N] [--after CURSOR] [--json]

Configuration comes from the environment (see README, or: idp config docs).`;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Password (input is visible; end with Enter): ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(c);
    if (process.stdin.isTTY && c.includes(10)) break;
  }
  // Only the one line-ending a shell `echo` or a terminal adds is stripped.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  if (parsed.positionals.length !== positionals) {
    throw new UsageError(positionals === 0 ? `unexpected argument "${parsed.positionals[0]}"` : `expected ${positionals} argument(s)`);
  }
  return parsed;
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), ...cells.map(line)].join('\n');
}

async function withStorage<T>(settings: Settings, fn: (s: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage({ mongodbUri: settings.mongodbUri, dataDir: settings.dataDir });
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

/**
 * The account a command names: a local username (PRECIS-enforced, as `user add` stored it),
 * or a directory-linked account's key `<directory>:<id>` as `user list` shows it.
 */
async function findUser(s: Storage, name: string): Promise<Account> {
  const linked = /^[a-z0-9_-]{1,32}:/.test(name);
  const username = linked ? name.toLowerCase() : validateUsername(name);
  const a = await s.accounts.findByUsername(username);
  if (!a) throw new Refused(`no user "${username}"`);
  return a;
}

async function userCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<void> {
  const hasher = () => new PasswordHasher({ memoryKib: settings.argon2MemoryKib, iterations: settings.argon2Iterations }, settings.passwordMinLength);
  switch (sub) {
    case 'add': {
      const claimOptions = Object.fromEntries([...Object.keys(STRING_CLAIM_OPTIONS), ...Object.keys(ADDRESS_CLAIM_OPTIONS)].map((o) => [o, { type: 'string' as const }]));
      const { values, positionals } = parse(args, {
        'password-stdin': { type: 'boolean' }, ...claimOptions, ...Object.fromEntries(Object.keys(BOOLEAN_CLAIM_OPTIONS).map((o) => [o, { type: 'boolean' as const }])),
      }, 1);
      if (!values['password-stdin']) throw new UsageError('--password-stdin is required (passwords are never taken as arguments)');
      const claims = claimsFromOptions(values);
      // The claims are checked before the password is asked for (a typo costs no retyping).
      const parsed = UserClaimsSchema.safeParse(claims);
      if (!parsed.success) throw usageFromZod(parsed.error);
      const password = await readStdin();
      const user = await withUsers(settings, (users) => users.create(cliActor(), { username: positionals[0]!, password, claims }));
      process.stdout.write(`${JSON.stringify({ id: user.id, username: user.username, email: user.claims.email, name: user.claims.name })}\n`);
      return;
    }
    case 'passwd': {
      const { values, positionals } = parse(args, { 'password-stdin': { type: 'boolean' } }, 1);
      if (!values['password-stdin']) throw new UsageError('--password-stdin is required');
      const username = positionals[0]!;
      const password = await readStdin();
      await withStorage(settings, async (s) => {
        const a = await findUser(s, username);
        if (a.directory) throw new Refused(`"${username}" signs in with the password of directory ${a.directory.name}; change it there`);
        await s.accounts.setPasswordHash(a.id, await hasher().hash(password, { words: [a.username, a.email?.split('@')[0], a.name] }));
        // The keystroke template is the old password's typing: a new password of the same
        // length would be scored against it as someone else's (policies/history.ts starts a
        // template afresh only for another length).
        const history = await s.risk.getUser(a.id);
        if (typeof history === 'object' && history !== null && 'keystroke' in history) {
          delete (history as { keystroke?: unknown }).keystroke;
          await s.risk.putUser(a.id, history);
        }
        await recordCli(settings, s, { action: 'user.password', outcome: 'success', target: { type: 'user', id: a.id }, detail: { username: a.username } });
      });
      process.stdout.write(`password changed for ${username}\n`);
      return;
    }
    case 'list':
      return listUsers(settings, args);
    case 'roles': {
      const { positionals, values } = parse(args, { set: { type: 'string' } }, 1);
      const result = await withStorage(settings, async (s) => {
        const a = await findUser(s, positionals[0]!);
        const roles = new RoleAdmin(s, cliTrail(settings, s, { create: true }).audit);
        if (values.set === undefined) return roles.get(a.id);
        const scopes = values.set.split(/[\s,]+/).filter(Boolean);
        const unknown = scopes.filter((x) => !(ADMIN_SCOPE_NAMES as string[]).includes(x));
        if (unknown.length) throw new UsageError(`--set: not admin scopes: ${unknown.join(', ')} (admin scopes: ${ADMIN_SCOPE_NAMES.join(' ')})`);
        // The CLI runs on the server's disk with its keys: it may grant every role (how the first administrator is made).
        return roles.set(a.id, { scopes }, (await s.roles.get(a.id)).version, cliActor(), 'all');
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    case 'unlock': {
      const { positionals } = parse(args, {}, 1);
      const username = positionals[0]!;
      await withUsers(settings, async (users) => users.unlock(cliActor(), (await users.findByName(username)).id));
      process.stdout.write(`unlocked ${username}\n`);
      return;
    }
    case 'mfa': {
      const [action, ...rest] = args;
      return mfaCommand(settings, action, rest);
    }
    default:
      if (await userAdminCommand(settings, sub, args)) return;
      throw new UsageError(`unknown command "user ${sub ?? ''}"`);
  }
}

/** Longest factor label: a name people give a phone or a key, not a document. */
const LABEL_MAX = 64;

/**
 * `idp user mfa …`: an administrator's view of an account's second factors. Secrets are
 * printed once, on stdout alone (a script can capture them; notes go to stderr), and stored
 * only encrypted (TOTP seed) or hashed (recovery codes).
 */
async function mfaCommand(settings: Settings, action: string | undefined, args: string[]): Promise<void> {
  const account = findUser;
  switch (action) {
    case 'add': {
      const { values, positionals } = parse(args, { totp: { type: 'boolean' }, 'recovery-codes': { type: 'boolean' }, label: { type: 'string' } }, 1);
      if (Boolean(values.totp) === Boolean(values['recovery-codes'])) throw new UsageError('give one of --totp or --recovery-codes');
      if (values.label !== undefined && values['recovery-codes']) throw new UsageError('--label goes with --totp');
      const label = (values.label ?? 'Authenticator app').normalize('NFC').trim();
      // No control characters: the label is shown on pages and in terminal listings.
      if (!label || [...label].length > LABEL_MAX || /\p{Cc}/u.test(label)) throw new UsageError(`--label: 1-${LABEL_MAX} characters, no control characters`);
      const keys = loadOrCreateKeys(settings.keysFile);
      await withStorage(settings, async (s) => {
        const a = await account(s, positionals[0]!);
        if (values.totp) {
          const { factor, secret } = newTotpFactor(new SecretBox(keys.dataKey), { id: crypto.randomUUID(), accountId: a.id, label, enrolledVia: 'admin' });
          await s.factors.add(factor);
          await recordCli(settings, s, {
            action: 'factor.enrol', outcome: 'success', target: { type: 'user', id: a.id },
            after: { id: factor.id, kind: factor.kind, label: factor.label, enrolledVia: factor.enrolledVia }, detail: { via: 'admin' },
          });
          process.stdout.write(`${otpauthUri(secret, { issuer: totpIssuerName(settings.issuer), account: signInName(a) || a.username })}\n`);
          process.stderr.write(`added TOTP factor ${factor.id} ("${label}") to ${a.username}; the URI holds its secret and is not shown again: hand it over privately (e.g. as a QR code)\n`);
        } else {
          const before = (await s.factors.list(a.id)).filter((f) => f.kind === 'recovery').length;
          const { factor, codes } = await replaceRecoveryCodes(s.factors, deriveKey(keys.dataKey, 'recovery'), { id: crypto.randomUUID(), accountId: a.id, enrolledVia: 'admin' });
          await recordCli(settings, s, {
            action: 'factor.enrol', outcome: 'success', target: { type: 'user', id: a.id },
            after: { id: factor.id, kind: factor.kind, label: factor.label, enrolledVia: factor.enrolledVia }, detail: { via: 'admin', replaced: before > 0 },
          });
          process.stdout.write(`${codes.join('\n')}\n`);
          process.stderr.write(`${codes.length} recovery codes for ${a.username}, each usable once and not shown again${before ? '; the earlier codes no longer work' : ''}\n`);
        }
      });
      return;
    }
    case 'list': {
      const { values, positionals } = parse(args, { json: { type: 'boolean' } }, 1);
      const rows = await withStorage(settings, async (s) => {
        const a = await account(s, positionals[0]!);
        return (await s.factors.list(a.id)).map((f) => ({
          id: f.id,
          kind: f.kind,
          label: f.label,
          created: f.createdAt.toISOString(),
          last_used: f.lastUsedAt?.toISOString() ?? null,
          enrolled_via: f.enrolledVia,
          ...(f.recovery ? { codes_left: f.recovery.hashes.length - f.recovery.used.length } : {}),
        }));
      });
      process.stdout.write(values.json
        ? `${JSON.stringify(rows, null, 2)}\n`
        : `${table(rows.map((r) => ({ ...r, last_used: r.last_used ?? '-', codes_left: r.codes_left ?? '' })), ['id', 'kind', 'label', 'created', 'last_used', 'enrolled_via', 'codes_left'])}\n`);
      return;
    }
    case 'reset': {
      const { positionals } = parse(args, {}, 1);
      const { username, removed } = await withUsers(settings, async (users) => {
        const a = await users.findByName(positionals[0]!);
        return { username: a.username, ...(await users.resetFactors(cliActor(), a.id)) };
      });
      process.stdout.write(`removed ${removed} second factor${removed === 1 ? '' : 's'} of ${username}\n`);
      return;
    }
    default:
      throw new UsageError(`unknown command "user mfa ${action ?? ''}" (add, list or reset)`);
  }
}

async function clientCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<void> {
  switch (sub) {
    case 'add': {
      const { values } = parse(args, {
        id: { type: 'string' }, secret: { type: 'string' }, public: { type: 'boolean' },
        'redirect-uri': { type: 'string', multiple: true }, 'post-logout-redirect-uri': { type: 'string', multiple: true },
        'backchannel-logout-uri': { type: 'string' }, scope: { type: 'string' }, name: { type: 'string' },
        'grant-type': { type: 'string', multiple: true }, 'min-acr': { type: 'string' }, 'first-party': { type: 'boolean' },
      }, 0);
      if (!values.id) throw new UsageError('--id is required');
      if (values.public && values.secret !== undefined) throw new UsageError('--public and --secret exclude each other');
      const grantTypes = values['grant-type'] ?? ['authorization_code', 'refresh_token'];
      if (grantTypes.includes('authorization_code') && !values['redirect-uri']) throw new UsageError('--redirect-uri is required');
      const input = {
        client_id: values.id,
        redirect_uris: values['redirect-uri'] ?? [],
        grant_types: grantTypes,
        token_endpoint_auth_method: values.public ? 'none' : 'client_secret_basic',
        scope: values.scope ?? DEFAULT_CLIENT_SCOPE,
        ...(values.name ? { client_name: values.name } : {}),
        ...(values['post-logout-redirect-uri'] ? { post_logout_redirect_uris: values['post-logout-redirect-uri'] } : {}),
        ...(values['backchannel-logout-uri'] ? { backchannel_logout_uri: values['backchannel-logout-uri'] } : {}),
        ...(values['min-acr'] ? { min_acr: values['min-acr'] } : {}),
        ...(values['first-party'] ? { first_party: true } : {}),
      };
      // The scopes the server accepts: OIDC scopes, the policy's operations, RESOURCE_SCOPES
      // and the admin scopes; min_acr is checked against the policy's levels.
      const policy = policyOrExit(settings.policyDir, { withoutModel: true });
      const resourceScopes = resourceScopeNames(Object.keys(policy.assurance.operations), settings.resourceScopes);
      const acrValues = policy.assurance.levels.map((l) => l.acr);
      const keys = loadOrCreateKeys(settings.keysFile);
      const box = new SecretBox(keys.dataKey);
      const created = await withStorage(settings, async (s) => {
        // Validated with oidc-provider's own client schema too, so what is stored is what it accepts.
        const provider = buildProvider(settings, s, keys, box, createLogger('silent'), acrValues, resourceScopes);
        const clients = new ClientAdmin({
          storage: s, box, supportedScopes: new Set<string>([...OIDC_SCOPES, ...resourceScopes]), acrValues,
          validate: async (m) => { await provider.Client.validate(m as never); },
          // The client view it records has no secret (nor its ciphertext): only the client type.
          audit: cliTrail(settings, s, { create: true }).audit,
        });
        try {
          return await clients.create(input, cliActor(), { secret: values.secret, held: 'all' });
        } catch (err) {
          if (err instanceof z.ZodError) throw new UsageError(`invalid client: ${err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
          if (err instanceof ClientAdminError) throw err.code === 'invalid_request' ? new UsageError(err.message) : new Refused(err.message);
          throw err;
        }
      });
      // The secret is shown once, here; it is stored encrypted.
      process.stdout.write(`${JSON.stringify({ client_id: created.client.client_id, ...(created.secret ? { client_secret: created.secret } : {}), ...created.metadata }, null, 2)}\n`);
      return;
    }
    case 'list': {
      const { values } = parse(args, { json: { type: 'boolean' } }, 0);
      const clients = await withStorage(settings, (s) => s.clients.list());
      const rows = clients.map((c) => ({
        client_id: c.clientId,
        type: c.secretCiphertext ? 'confidential' : 'public',
        name: c.metadata.client_name,
        // An array, as in the client's metadata (RFC 7591 §2); joined only for the table.
        redirect_uris: (c.metadata.redirect_uris as string[] | undefined) ?? [],
        created: c.createdAt.toISOString(),
      }));
      process.stdout.write(values.json
        ? `${JSON.stringify(rows, null, 2)}\n`
        : `${table(rows.map((r) => ({ ...r, redirect_uris: r.redirect_uris.join(' ') })), ['client_id', 'type', 'name', 'redirect_uris', 'created'])}\n`);
      return;
    }
    default:
      throw new UsageError(`unknown command "client ${sub ?? ''}"`);
  }
}

async function keysCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<void> {
  const timings = keyTimings(settings.keysReloadInterval, settings.idTokenTtl);
  // The key file is changed first: the trail records what was done (kids only, never a key).
  const record = (action: string, detail: Record<string, unknown>) =>
    withStorage(settings, (s) => recordCli(settings, s, { action, outcome: 'success', target: { type: 'keys', id: 'signing' }, detail }));
  switch (sub) {
    case 'list':
      parse(args, {}, 0);
      process.stdout.write(`${JSON.stringify(describeKeys(loadOrCreateKeys(settings.keysFile)), null, 2)}\n`);
      return;
    case 'rotate': {
      parse(args, {}, 0);
      const r = rotateKeys(settings.keysFile, timings);
      await record('keys.rotate', r);
      process.stdout.write(`${JSON.stringify({ ...r, note: 'staged: every instance publishes them within KEYS_RELOAD_INTERVAL; run `idp keys activate` after activateAfter to make them sign' }, null, 2)}\n`);
      return;
    }
    case 'activate': {
      parse(args, {}, 0);
      const r = activateKeys(settings.keysFile, timings);
      await record('keys.activate', r);
      process.stdout.write(`${JSON.stringify({ ...r, note: 'instances sign with the activated keys within KEYS_RELOAD_INTERVAL; previous keys stay published until `idp keys retire` after retireAfter' }, null, 2)}\n`);
      return;
    }
    case 'retire': {
      const { values } = parse(args, { kid: { type: 'string' } }, 0);
      const r = retireKeys(settings.keysFile, timings, { kid: values.kid });
      await record('keys.retire', r);
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      return;
    }
    default:
      throw new UsageError(`unknown command "keys ${sub ?? ''}"`);
  }
}

const num = (name: string, v: string | undefined, int = true): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n))) throw new UsageError(`--${name}: expected a${int ? 'n integer' : ' number'}, got "${v}"`);
  return n;
};

async function modelCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<void> {
  switch (sub) {
    case 'synth': {
      const { values } = parse(args, {
        seed: { type: 'string' }, users: { type: 'string' }, days: { type: 'string' }, start: { type: 'string' },
        'victim-rate': { type: 'string' }, 'stuffing-per-day': { type: 'string' }, 'shared-nat-rate': { type: 'string' }, out: { type: 'string' },
        'password-manager-rate': { type: 'string' }, 'private-rate': { type: 'string' }, 'attack-mix': { type: 'string' },
        keystrokes: { type: 'string' }, 'keystroke-subjects': { type: 'string' },
      }, 0);
      return synthCommand(settings, {
        seed: num('seed', values.seed), users: num('users', values.users), days: num('days', values.days), start: values.start,
        victimRate: num('victim-rate', values['victim-rate'], false), stuffingPerDay: num('stuffing-per-day', values['stuffing-per-day'], false),
        sharedNatRate: num('shared-nat-rate', values['shared-nat-rate'], false), out: values.out,
        passwordManagerRate: num('password-manager-rate', values['password-manager-rate'], false), privateRate: num('private-rate', values['private-rate'], false),
        attackMix: values['attack-mix'], keystrokes: values.keystrokes, keystrokeSubjects: values['keystroke-subjects'],
      });
    }
    case 'train': {
      // Retraining from labelled stored events (idp/cli-policy.ts); without --labels, from a file as before.
      if (args.includes('--labels')) return modelStoreCommand(settings, 'train', args);
      const { values } = parse(args, {
        events: { type: 'string' }, out: { type: 'string' }, policy: { type: 'string' }, trees: { type: 'string' },
        'max-depth': { type: 'string' }, seed: { type: 'string' }, 'max-rows': { type: 'string' },
      }, 0);
      if (!values.events || !values.out) throw new UsageError('--events and --out are required');
      return trainCommand(settings, {
        events: values.events, out: values.out, policy: values.policy ?? settings.policyDir, trees: num('trees', values.trees),
        maxDepth: num('max-depth', values['max-depth']), seed: num('seed', values.seed), maxRows: num('max-rows', values['max-rows']),
      });
    }
    case 'eval': {
      const { values } = parse(args, { events: { type: 'string' }, policy: { type: 'string' } }, 0);
      if (!values.events) throw new UsageError('--events is required');
      await evalCommand(settings, { events: values.events, policy: values.policy ?? settings.policyDir });
      return;
    }
    case 'activate':
    case 'list':
      return modelStoreCommand(settings, sub, args);
    default:
      throw new UsageError(`unknown command "model ${sub ?? ''}"`);
  }
}

/** `idp audit …` (idp/cli-audit.ts). */
async function auditCommand(settings: Settings, sub: string | undefined, args: string[]): Promise<void> {
  const time = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const t = Date.parse(v);
    if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(v)) throw new UsageError(`--${name}: not an ISO 8601 time: "${v}"`);
    return t;
  };
  switch (sub) {
    case 'verify': {
      const { values } = parse(args, { json: { type: 'boolean' } }, 0);
      if (!(await withStorage(settings, (s) => auditVerifyCommand(cliTrail(settings, s), Boolean(values.json), process.stdout)))) process.exitCode = 1;
      return;
    }
    case 'export': {
      const { values } = parse(args, { since: { type: 'string' }, until: { type: 'string' }, out: { type: 'string' } }, 0);
      const range = { since: time('since', values.since), until: time('until', values.until) };
      const out = values.out ? fs.createWriteStream(values.out, { mode: 0o600 }) : process.stdout;
      const n = await withStorage(settings, (s) => auditExportCommand(cliTrail(settings, s), range, out));
      if (values.out) {
        await new Promise<void>((r) => (out as fs.WriteStream).end(() => r()));
        process.stderr.write(`${n} audit record${n === 1 ? '' : 's'} written to ${values.out}\n`);
      }
      return;
    }
    case 'list': {
      const { values } = parse(args, {
        actor: { type: 'string' }, 'actor-kind': { type: 'string' }, action: { type: 'string' }, target: { type: 'string' }, 'target-type': { type: 'string' },
        outcome: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, order: { type: 'string' }, limit: { type: 'string' },
        after: { type: 'string' }, json: { type: 'boolean' },
      }, 0);
      const iso = (name: string, v: string | undefined) => (v === undefined ? undefined : new Date(time(name, v)!).toISOString());
      const q = {
        actorId: values.actor, actorKind: values['actor-kind'] as never, action: values.action, targetId: values.target, targetType: values['target-type'],
        outcome: values.outcome as never, since: iso('since', values.since), until: iso('until', values.until), order: values.order as never,
        limit: num('limit', values.limit), after: values.after,
      };
      await withStorage(settings, (s) => auditListCommand(cliTrail(settings, s), q, Boolean(values.json), process.stdout, process.stderr, table));
      return;
    }
    default:
      throw new UsageError(`unknown command "audit ${sub ?? ''}" (verify, export or list)`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, sub, ...rest] = argv;
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  // No command is bad usage (exit 2): a script that forgot its arguments must not pass.
  if (!cmd) {
    process.stderr.write(`${HELP}\n`);
    process.exitCode = 2;
    return;
  }
  if (cmd === 'config' && sub === 'docs') {
    process.stdout.write(`${settingsMarkdown()}\n`);
    return;
  }
  // Before loadSettings: config check reports every invalid setting, not the first.
  if (cmd === 'config' && sub === 'check') {
    parse(rest, {}, 0);
    const { facts, problems } = await checkConfiguration();
    if (problems.length) {
      for (const p of problems) process.stderr.write(`idp: ${p}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`configuration OK\n${facts.map((f) => `  ${f}\n`).join('')}`);
    return;
  }
  const settings = loadSettings();
  switch (cmd) {
    case 'start':
      await import('./main.ts');
      return;
    case 'user':
      return userCommand(settings, sub, rest);
    case 'client':
      return clientCommand(settings, sub, rest);
    case 'keys':
      return keysCommand(settings, sub, rest);
    case 'policy': {
      if (sub !== 'check') return policyCommand(settings, sub, rest);
      const { positionals } = parse(rest, {}, rest.length ? 1 : 0);
      if (!policyCheckCommand(positionals[0] ?? settings.policyDir)) process.exitCode = 1;
      return;
    }
    case 'label':
      return labelCommand(settings, sub, rest);
    case 'model':
      return modelCommand(settings, sub, rest);
    case 'keystroke': {
      if (sub !== 'eval') throw new UsageError(`unknown command "keystroke ${sub ?? ''}"`);
      const { values } = parse(rest, {
        data: { type: 'string' }, detectors: { type: 'string' }, split: { type: 'string' }, above: { type: 'string' },
        calibrate: { type: 'boolean' }, json: { type: 'boolean' },
      }, 0);
      if (!values.data) throw new UsageError('--data is required (the CMU keystroke CSV, DSL-StrongPasswordData.csv)');
      // By default the threshold of the policy in use (risk.yml keystroke_anomaly.above).
      const above = num('above', values.above, false) ?? policyOrExit(settings.policyDir, { withoutModel: true }).risk.factors.keystroke_anomaly.above;
      keystrokeEvalCommand({ data: values.data, detectors: values.detectors?.split(','), split: values.split, above, calibrate: values.calibrate, json: values.json });
      return;
    }
    case 'events': {
      if (sub !== 'export') throw new UsageError(`unknown command "events ${sub ?? ''}"`);
      const { values } = parse(rest, { since: { type: 'string' }, out: { type: 'string' } }, 0);
      const since = values.since === undefined ? undefined : Date.parse(values.since);
      if (since !== undefined && Number.isNaN(since)) throw new UsageError(`--since: not an ISO 8601 time: "${values.since}"`);
      const out = values.out ? fs.createWriteStream(values.out) : process.stdout;
      await withStorage(settings, (s) => eventsExportCommand(s.events.list({ since }), out));
      if (values.out) await new Promise<void>((r) => (out as fs.WriteStream).end(() => r()));
      return;
    }
    case 'audit':
      return auditCommand(settings, sub, rest);
    case 'simulate': {
      const { values } = parse(sub === undefined ? [] : [sub, ...rest], {
        events: { type: 'string' }, policy: { type: 'string' }, 'baseline-policy': { type: 'string' }, out: { type: 'string' }, report: { type: 'string' },
      }, 0);
      if (!values.events || (!values.out && !values.report)) throw new UsageError('--events and --out <dir> and/or --report <file.html> are required');
      return simulateCommand(settings, { events: values.events, out: values.out, report: values.report, policy: values.policy ?? settings.policyDir, baseline: values['baseline-policy'] });
    }
    case 'report': {
      if (sub !== 'efficacy') throw new UsageError(`unknown command "report ${sub ?? ''}" (try: report efficacy)`);
      const { values } = parse(rest, {
        events: { type: 'string' }, labels: { type: 'string' }, policy: { type: 'string' }, out: { type: 'string' }, json: { type: 'string' },
        'min-group': { type: 'string' }, ratio: { type: 'string' },
      }, 0);
      if (!values.events) throw new UsageError('--events is required');
      const num = (flag: string, v: string | undefined) => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag}: not a number: "${v}"`);
        return n;
      };
      await efficacyCommand(settings, {
        events: values.events, labels: values.labels, policy: values.policy, out: values.out, json: values.json,
        minGroup: num('min-group', values['min-group']), ratio: num('ratio', values.ratio),
      });
      return;
    }
    case 'directory': {
      if (sub !== 'test') throw new UsageError(`unknown command "directory ${sub ?? ''}" (try: directory test)`);
      const options = { user: { type: 'string' }, json: { type: 'boolean' } } as const;
      // The directory's name is optional: one positional at most.
      const given = parseArgs({ args: rest, options, allowPositionals: true, strict: false }).positionals.length;
      const { values, positionals } = parse(rest, options, Math.min(given, 1));
      if (!(await directoryTestCommand(loadDirectories(settings), { name: positionals[0], user: values.user, json: values.json }))) process.exitCode = 1;
      return;
    }
    case 'geo': {
      if (sub !== 'build') throw new UsageError(`unknown command "geo ${sub ?? ''}" (try: geo build)`);
      const { values } = parse(rest, { force: { type: 'boolean' } }, 0);
      if (settings.geoipAsnDb) process.stderr.write(`note: GEOIP_ASN_DB is set (${settings.geoipAsnDb}): the provider reads that file, not this one\n`);
      let built: AsnBuild | undefined;
      const file = await ensureAsnMmdb({ cacheDir: settings.geoipCacheDir, dataDir: settings.dataDir }, (b) => { built = b; }, values.force === true);
      const b = built as AsnBuild | undefined;
      process.stdout.write(b
        ? `converted ${b.rows.toLocaleString('en')} ranges into ${b.file} (${b.networks.toLocaleString('en')} networks, ${(b.bytes / 2 ** 20).toFixed(1)} MiB) in ${(b.ms / 1000).toFixed(1)} s\n`
        : `${file} is up to date (--force converts again)\n`);
      return;
    }
    case 'config':
      throw new UsageError(`unknown command "config ${sub ?? ''}"`);
    default:
      throw new UsageError(`unknown command "${cmd}" (try: idp --help)`);
  }
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  const known = err instanceof UsageError || err instanceof Refused || err instanceof DuplicateError || err instanceof CliError
    || err instanceof AuditError || err instanceof PasswordError || err instanceof ConfigError || err instanceof KeyFileError || err instanceof DirectoryConfigError
    || err instanceof UserAdminError || err instanceof UserUsageError || err instanceof PolicyUsageError || err instanceof AdminError
    || err instanceof VersionConflictError || err instanceof InvalidCursorError;
  const message = err instanceof z.ZodError ? usageFromZod(err).message : known ? (err as Error).message : `unexpected error: ${(err as Error).message}`;
  process.stderr.write(`idp: ${message}\n`);
  process.exitCode = err instanceof UsageError || err instanceof UserUsageError || err instanceof PolicyUsageError || err instanceof z.ZodError ? 2 : 1;
}

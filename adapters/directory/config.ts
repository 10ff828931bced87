/**
 * The directories' configuration: a YAML file (`directories.yml` beside the policies) or, for
 * one directory, environment variables → validated DirectoryConfig[] with the preset's
 * defaults applied and the secrets loaded. Every problem is reported at once with its file,
 * line and key path, like the policy files (policies/yaml-file.ts), or with the variable's
 * name; a password never appears in a message.
 *
 * Every option is documented here, where its default is set (STYLE.md §12); the complete
 * examples are docs/examples/directories-*.yml (loaded by the unit tests).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { errorAt, formatFileError, parseYamlFile, type FileError, type ParsedYaml } from '../../policies/yaml-file.ts';
import { DnError, filterTemplateProblem, MATCHING_RULE_IN_CHAIN, parseDn } from './mapping.ts';
import { DIRECTORY_CLAIMS, DIRECTORY_PRESETS, type DirectoryClaimName, type DirectoryConfig, type DirectoryPreset, type GroupLookup } from './types.ts';

export type DirectoryConfigProblem = FileError;

export class DirectoryConfigError extends Error {
  override name = 'DirectoryConfigError';
  readonly errors: DirectoryConfigProblem[];
  constructor(errors: DirectoryConfigProblem[]) {
    super(`directory configuration rejected:\n${errors.map(formatFileError).join('\n')}`);
    this.errors = errors;
  }
}

// ——— Presets ———

/** How an Active Directory user may type their name. */
export const AD_LOGIN_NAMES = ['either', 'sAMAccountName', 'userPrincipalName'] as const;
export type AdLoginName = (typeof AD_LOGIN_NAMES)[number];

const AD_USER_FILTERS: Record<AdLoginName, string> = {
  either: '(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))',
  sAMAccountName: '(&(objectCategory=person)(objectClass=user)(sAMAccountName={username}))',
  userPrincipalName: '(&(objectCategory=person)(objectClass=user)(userPrincipalName={username}))',
};

interface Preset {
  userFilter: string;
  idAttribute: DirectoryConfig['idAttribute'];
  attributes: Partial<Record<DirectoryClaimName, string | readonly string[]>>;
  groups: { source: GroupLookup['source']; attribute: string; nested: boolean; nameAttribute: string; filter: (nested: boolean) => string };
  /** The directory's failure-counting window when not configured. */
  windowSeconds: number;
}

export const PRESETS: Readonly<Record<DirectoryPreset, Preset>> = {
  openldap: {
    userFilter: '(&(objectClass=inetOrgPerson)(uid={username}))',
    // RFC 4530: every entry has one, and a rename (modrdn) keeps it.
    idAttribute: 'entryUUID',
    // inetOrgPerson (RFC 2798) and the organizationalPerson attributes it inherits (RFC 4519):
    // labeledURI is "URI label" (RFC 2079), postalAddress lines joined by `$` (RFC 4517
    // §3.3.28), preferredLanguage an Accept-Language value. `c` is not an inetOrgPerson
    // attribute; entries with an auxiliary class that allows it (or extensibleObject) have it.
    attributes: {
      email: 'mail', name: 'cn', given_name: 'givenName', family_name: 'sn', preferred_username: 'uid', website: 'labeledURI',
      locale: 'preferredLanguage', phone_number: ['telephoneNumber', 'mobile'], formatted_address: 'postalAddress', street_address: 'street',
      locality: 'l', region: 'st', postal_code: 'postalCode', country: 'c',
    },
    // The memberOf overlay; `search` uses the groupOfNames filter instead.
    groups: { source: 'member_of', attribute: 'memberOf', nested: false, nameAttribute: 'cn', filter: () => '(&(objectClass=groupOfNames)(member={dn}))' },
    // ppolicy's pwdFailureCountInterval as commonly set.
    windowSeconds: 300,
  },
  active_directory: {
    userFilter: AD_USER_FILTERS.either,
    idAttribute: 'objectGUID',
    // The user class's attributes as Active Directory Users and Computers fills them: the
    // General tab (middle name: "Initials" is `initials`, the full one `middleName`; web page
    // `wWWHomePage`; telephone), the Address tab (`streetAddress`, `l`, `st`, `postalCode`, `c`).
    attributes: {
      email: 'mail', name: 'displayName', given_name: 'givenName', family_name: 'sn', middle_name: 'middleName', preferred_username: 'sAMAccountName',
      website: 'wWWHomePage', locale: 'preferredLanguage', phone_number: ['telephoneNumber', 'mobile'], street_address: 'streetAddress',
      locality: 'l', region: 'st', postal_code: 'postalCode', country: 'c',
    },
    // memberOf in AD lists direct groups only; the in-chain rule returns nested ones too.
    groups: {
      source: 'search', attribute: 'memberOf', nested: true, nameAttribute: 'cn',
      filter: (nested) => (nested ? `(&(objectClass=group)(member:${MATCHING_RULE_IN_CHAIN}:={dn}))` : '(&(objectClass=group)(member={dn}))'),
    },
    // "Reset account lockout counter after": set it to the domain's value.
    windowSeconds: 600,
  },
};

/** Without a known directory threshold, the provider stops after this many failures in the window. */
export const DEFAULT_MAX_FAILURES = 5;

// ——— The file's schema ———

const NAME = /^[a-z0-9_-]{1,32}$/;
/** An attribute description: a name or a numeric OID (RFC 4512 §2.5). */
const attributeName = z.string().regex(/^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/, 'must be an LDAP attribute name');
/** One attribute, or several tried in order. */
const attributeNames = z.union([attributeName, z.array(attributeName).min(1, 'list at least one attribute').max(8)]);
const seconds = (min: number, max: number) => z.number().min(min).max(max);

export const directorySchema = z.strictObject({
  /** Named in logs, metrics, events, the account link and `idp directory test <name>`. */
  name: z.string().regex(NAME, 'must be 1 to 32 of a-z, 0-9, _ and -'),
  preset: z.enum(DIRECTORY_PRESETS),
  /** Tried in order: the next when one is down (failover). `ldaps://host[:port]` or `ldap://host[:port]`. */
  urls: z.array(z.string()).min(1, 'must list at least one URL'),
  /** For `ldap://` URLs: upgrade with StartTLS (RFC 4513 §3). Default true. */
  start_tls: z.boolean().optional(),
  /** `ldap://` without StartTLS sends passwords in clear: refused unless this is true. */
  allow_plain: z.boolean().optional(),
  /** PEM file of the CA(s) the server certificate must chain to; the system's CAs when absent. */
  ca_file: z.string().min(1).optional(),
  /** The service account: a DN, or for Active Directory also `user@domain` / `DOMAIN\user`. */
  bind_dn: z.string().min(1),
  /** File holding the service password (trailing newline ignored); relative to this file. */
  bind_password_file: z.string().min(1).optional(),
  /** Name of the environment variable holding the service password. */
  bind_password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
  /** Refused with a message: a password does not belong in this file. */
  bind_password: z.unknown().optional(),
  /** Where users are searched. */
  base_dn: z.string().min(1),
  /** `sub` (the whole subtree, default) or `one` (direct children of base_dn). */
  scope: z.enum(['sub', 'one']).optional(),
  /** Overrides the preset's filter; must contain {username} (RFC 4515-escaped before use). */
  user_filter: z.string().min(1).optional(),
  /** Active Directory: what users type: `either` (default), `sAMAccountName` or `userPrincipalName`. */
  login_name: z.enum(AD_LOGIN_NAMES).optional(),
  /** The immutable id; the preset's (entryUUID / objectGUID) by default. */
  id_attribute: z.enum(['entryUUID', 'objectGUID']).optional(),
  /** Claim → attribute (or attributes, the first with a value wins), merged over the preset's; `null` leaves a claim unmapped. */
  attributes: z.strictObject(Object.fromEntries(DIRECTORY_CLAIMS.map((c) => [c, attributeNames.nullable().optional()])) as Record<DirectoryClaimName, z.ZodOptional<z.ZodNullable<typeof attributeNames>>>).optional(),
  /** The directory's mail is administered (users cannot change it): `email_verified` is true. Default false. */
  email_verified: z.boolean().optional(),
  /** Likewise for phone numbers: `phone_number_verified` is true. Default false. */
  phone_number_verified: z.boolean().optional(),
  groups: z.strictObject({
    /** `member_of` (read the user's attribute), `search` (search base with filter) or `none`. */
    source: z.enum(['member_of', 'search', 'none']).optional(),
    /** For `member_of`: the attribute listing the user's group DNs. Default memberOf. */
    attribute: attributeName.optional(),
    /** For `search`: where groups are searched. Default base_dn. */
    base: z.string().min(1).optional(),
    /** For `search`: with {dn} (the user's DN) and/or {username}. */
    filter: z.string().min(1).optional(),
    /** Include groups of groups (see GroupLookup.nested). */
    nested: z.boolean().optional(),
    /** Attribute of a group entry giving its name. Default cn. */
    name_attribute: attributeName.optional(),
  }).optional(),
  timeouts: z.strictObject({
    /** TCP + TLS connect, per URL. Default 3. */
    connect_seconds: seconds(0.1, 30).optional(),
    /** One LDAP operation. Default 5. */
    operation_seconds: seconds(0.1, 60).optional(),
  }).optional(),
  /** Service-bind connections kept open. Default 4. */
  pool_size: z.int().min(1).max(64).optional(),
  lockout: z.strictObject({
    /** The directory's own lockout threshold (ppolicy pwdMaxFailure, AD "account lockout threshold"). */
    threshold: z.int().min(2).max(10_000).optional(),
    /** Its counting window (pwdFailureCountInterval, "reset account lockout counter after"). */
    window_seconds: z.int().min(1).max(31 * 86_400).optional(),
    /** The provider stops here, below threshold. Default threshold − 2 (at least 1), or 5. */
    max_failures: z.int().min(1).max(10_000).optional(),
  }).optional(),
});
export type DirectoryEntryInput = z.infer<typeof directorySchema>;

export const directoriesFileSchema = z.strictObject({
  directories: z.array(directorySchema),
});

// ——— Resolution: defaults, secrets, cross-key checks ———

type Problem = (keyPath: (string | number)[], message: string) => void;

/** Where relative paths and environment variables are looked up, and how keys are named in messages. */
interface Context {
  baseDir: string;
  env: Readonly<Record<string, string | undefined>>;
  source: string;
  /** A key as the admin wrote it: `allow_plain` in the file, `LDAP_ALLOW_PLAIN` in the environment. */
  key: (k: keyof DirectoryEntryInput) => string;
}

const USER_PLACEHOLDERS = ['username'] as const;
const GROUP_PLACEHOLDERS = ['dn', 'username'] as const;

function readFileFor(file: string, ctx: Context, key: string[], problem: Problem): Buffer | undefined {
  const full = path.resolve(ctx.baseDir, file);
  try {
    return fs.readFileSync(full);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problem(key, `cannot read ${full} (${code === 'ENOENT' ? 'no such file' : code ?? 'error'})`);
    return undefined;
  }
}

/** A CA bundle: at least one PEM certificate, each one parseable. */
function readCa(file: string, ctx: Context, key: string[], problem: Problem): Buffer | undefined {
  const pem = readFileFor(file, ctx, key, problem);
  if (!pem) return undefined;
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return void problem(key, `${path.resolve(ctx.baseDir, file)} contains no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const [i, block] of blocks.entries()) {
    try {
      new crypto.X509Certificate(block);
    } catch {
      return void problem(key, `certificate ${i + 1} of ${path.resolve(ctx.baseDir, file)} does not parse`);
    }
  }
  return pem;
}

function checkDn(value: string, key: (string | number)[], problem: Problem, allowAdNames = false): void {
  // Active Directory also accepts a simple bind as user@domain or DOMAIN\user.
  if (allowAdNames && (/^[^@\s]+@[^@\s]+$/.test(value) || /^[^\\\s]+\\[^\\\s]+$/.test(value))) return;
  try {
    if (parseDn(value).length === 0) problem(key, 'must not be empty');
  } catch (e) {
    if (!(e instanceof DnError)) throw e;
    problem(key, `is not a DN (RFC 4514): ${e.message}`);
  }
}

/**
 * URL checks: scheme, host, nothing after the port (an LDAP URL's DN or filter would be
 * ignored). Messages do not repeat the URL: one written with credentials would leak them.
 */
function checkUrl(raw: string, key: (string | number)[], problem: Problem): 'ldap' | 'ldaps' | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return void problem(key, 'is not a URL (ldaps://host[:port] or ldap://host[:port])');
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'ldap' && scheme !== 'ldaps') return void problem(key, `the scheme must be ldaps:// or ldap://, not ${url.protocol}//`);
  if (!url.hostname) return void problem(key, 'has no host');
  if (url.username || url.password) return void problem(key, 'must not carry credentials: use bind_dn and bind_password_file');
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) return void problem(key, 'give only scheme, host and port (base_dn and user_filter are separate keys)');
  return scheme;
}

/**
 * One schema-valid directory entry → DirectoryConfig with the preset's defaults and its
 * secrets, or undefined with its problems reported (key paths relative to the entry).
 */
function resolve(input: DirectoryEntryInput, ctx: Context, report: Problem): DirectoryConfig | undefined {
  const preset = PRESETS[input.preset];
  const { key } = ctx;
  let problems = 0;
  const problem: Problem = (keyPath, message) => {
    problems += 1;
    report(keyPath, message);
  };
  const isAd = input.preset === 'active_directory';

  const schemes = input.urls.map((u, i) => checkUrl(u, ['urls', i], problem));
  const startTls = input.start_tls ?? true;
  const allowPlain = input.allow_plain ?? false;
  if (!startTls && !allowPlain && schemes.includes('ldap')) {
    problem(['start_tls'], `ldap:// without StartTLS would send passwords in clear: use ldaps:// or StartTLS, or set ${key('allow_plain')} to true (a test bed only)`);
  }

  if (input.bind_password !== undefined) {
    problem(['bind_password'], 'a password does not belong in this file (it is copied, versioned and shown in diffs): use bind_password_file or bind_password_env');
  }
  let bindPassword: string | undefined;
  if (input.bind_password_file !== undefined && input.bind_password_env !== undefined) {
    problem(['bind_password_env'], `give either ${key('bind_password_file')} or ${key('bind_password_env')}, not both`);
  } else if (input.bind_password_file !== undefined) {
    const content = readFileFor(input.bind_password_file, ctx, ['bind_password_file'], problem);
    if (content) {
      bindPassword = content.toString('utf8').replace(/(?:\r?\n)+$/, '');
      // An empty password would make the bind unauthenticated, which succeeds (RFC 4513 §5.1.2).
      if (bindPassword === '') problem(['bind_password_file'], `${path.resolve(ctx.baseDir, input.bind_password_file)} is empty`);
    }
  } else if (input.bind_password_env !== undefined) {
    bindPassword = ctx.env[input.bind_password_env];
    if (!bindPassword) problem(['bind_password_env'], `the environment variable ${input.bind_password_env} is not set or empty`);
  } else if (input.bind_password === undefined) {
    problem(['bind_dn'], `the service password is missing: set ${key('bind_password_file')} or ${key('bind_password_env')}`);
  }

  checkDn(input.bind_dn, ['bind_dn'], problem, isAd);
  checkDn(input.base_dn, ['base_dn'], problem);

  if (input.login_name !== undefined && !isAd) problem(['login_name'], 'only for the active_directory preset (write user_filter instead)');
  if (input.login_name !== undefined && input.user_filter !== undefined) problem(['login_name'], `give either login_name or ${key('user_filter')}, not both`);
  const userFilter = input.user_filter ?? (isAd ? AD_USER_FILTERS[input.login_name ?? 'either'] : preset.userFilter);
  const userFilterProblem = filterTemplateProblem(userFilter, USER_PLACEHOLDERS, USER_PLACEHOLDERS);
  if (userFilterProblem) problem(['user_filter'], userFilterProblem);

  const attributes: Partial<Record<DirectoryClaimName, string | readonly string[]>> = { ...preset.attributes };
  for (const [claim, attribute] of Object.entries(input.attributes ?? {}) as [DirectoryClaimName, string | string[] | null | undefined][]) {
    if (attribute === null) delete attributes[claim];
    else if (attribute !== undefined) attributes[claim] = attribute;
  }

  const g = input.groups ?? {};
  const source = g.source ?? preset.groups.source;
  const nested = g.nested ?? preset.groups.nested;
  const groups: GroupLookup = {
    source,
    attribute: g.attribute ?? preset.groups.attribute,
    base: g.base ?? input.base_dn,
    filter: g.filter ?? preset.groups.filter(nested),
    nested,
    nameAttribute: g.name_attribute ?? preset.groups.nameAttribute,
  };
  if (g.base !== undefined) checkDn(g.base, ['groups', 'base'], problem);
  if (source === 'search') {
    const p = filterTemplateProblem(groups.filter, GROUP_PLACEHOLDERS, GROUP_PLACEHOLDERS);
    if (p) problem(['groups', 'filter'], p);
  } else if (g.filter !== undefined || g.base !== undefined) {
    problem(['groups', g.filter !== undefined ? 'filter' : 'base'], `only used with source: search (source is ${source})`);
  }

  let ca: Buffer | undefined;
  if (input.ca_file !== undefined) ca = readCa(input.ca_file, ctx, ['ca_file'], problem);

  const threshold = input.lockout?.threshold;
  const maxFailures = input.lockout?.max_failures ?? (threshold !== undefined ? Math.max(1, threshold - 2) : DEFAULT_MAX_FAILURES);
  if (threshold !== undefined && maxFailures >= threshold) {
    problem(['lockout', input.lockout?.max_failures !== undefined ? 'max_failures' : 'threshold'],
      `max_failures (${maxFailures}) must be below the directory's threshold (${threshold}), or the provider would lock people out of the directory`);
  }

  if (problems > 0 || bindPassword === undefined) return undefined;
  return {
    name: input.name,
    preset: input.preset,
    urls: input.urls,
    startTls,
    allowPlain,
    ca,
    caFile: input.ca_file === undefined ? undefined : path.resolve(ctx.baseDir, input.ca_file),
    bindDn: input.bind_dn,
    bindPassword,
    baseDn: input.base_dn,
    scope: input.scope ?? 'sub',
    userFilter,
    idAttribute: input.id_attribute ?? preset.idAttribute,
    attributes,
    emailVerified: input.email_verified ?? false,
    phoneNumberVerified: input.phone_number_verified ?? false,
    groups,
    timeouts: {
      connectMs: Math.round((input.timeouts?.connect_seconds ?? 3) * 1000),
      operationMs: Math.round((input.timeouts?.operation_seconds ?? 5) * 1000),
    },
    poolSize: input.pool_size ?? 4,
    lockout: { threshold, windowSeconds: input.lockout?.window_seconds ?? preset.windowSeconds, maxFailures },
    source: ctx.source,
  };
}

function resolveAll(inputs: DirectoryEntryInput[], ctx: Context, problemAt: Problem): DirectoryConfig[] {
  const configs: DirectoryConfig[] = [];
  const names = new Set<string>();
  inputs.forEach((input, i) => {
    const problem: Problem = (keyPath, message) => problemAt([i, ...keyPath], message);
    if (names.has(input.name)) problem(['name'], `duplicate directory name "${input.name}"`);
    names.add(input.name);
    const config = resolve(input, ctx, problem);
    if (config) configs.push(config);
  });
  return configs;
}

function fromFile(file: string, env: Context['env'], errors: FileError[]): DirectoryConfig[] {
  const parsed: ParsedYaml<z.infer<typeof directoriesFileSchema>> = parseYamlFile(file, file, directoriesFileSchema, errors);
  if (!parsed.value) return [];
  const ctx: Context = { baseDir: path.dirname(path.resolve(file)), env, source: file, key: (k) => k };
  return resolveAll(parsed.value.directories, ctx, (keyPath, message) => errors.push(errorAt(parsed, ['directories', ...keyPath], message)));
}

// ——— Environment (one directory) ———

/** The variables of the simple case, each mapped to the file's key it stands for. */
export const LDAP_ENV = {
  LDAP_NAME: 'name',
  LDAP_PRESET: 'preset',
  LDAP_URL: 'urls',
  LDAP_BIND_DN: 'bind_dn',
  LDAP_BIND_PASSWORD_FILE: 'bind_password_file',
  LDAP_BIND_PASSWORD: 'bind_password_env',
  LDAP_BASE_DN: 'base_dn',
  LDAP_USER_FILTER: 'user_filter',
  LDAP_CA_FILE: 'ca_file',
  LDAP_START_TLS: 'start_tls',
  LDAP_ALLOW_PLAIN: 'allow_plain',
} as const;
type LdapVariable = keyof typeof LDAP_ENV;
const VARIABLE_OF: Record<string, LdapVariable> = Object.fromEntries(Object.entries(LDAP_ENV).map(([v, k]) => [k, v as LdapVariable]));

const ENV_SOURCE = 'environment';

function fromEnv(env: Context['env'], errors: FileError[]): DirectoryConfig[] {
  const envError = (variable: string, message: string) => errors.push({ file: ENV_SOURCE, path: variable, message });
  const value = (v: LdapVariable) => (env[v] === undefined || env[v] === '' ? undefined : env[v]);
  // A misspelt variable must not silently do nothing (STYLE.md §5).
  for (const name of Object.keys(env)) {
    if (name.startsWith('LDAP_') && !(name in LDAP_ENV) && env[name] !== undefined) {
      envError(name, `not a directory setting (known: ${Object.keys(LDAP_ENV).join(', ')})`);
    }
  }
  const flag = (v: LdapVariable): boolean | undefined => {
    const raw = value(v);
    if (raw === undefined) return undefined;
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    return void envError(v, 'must be true or false');
  };
  if (value('LDAP_BIND_PASSWORD_FILE') !== undefined && value('LDAP_BIND_PASSWORD') !== undefined) {
    envError('LDAP_BIND_PASSWORD', 'give either LDAP_BIND_PASSWORD_FILE or LDAP_BIND_PASSWORD, not both');
    return [];
  }
  const candidate = {
    name: value('LDAP_NAME') ?? 'ldap',
    preset: value('LDAP_PRESET') ?? 'openldap',
    urls: (value('LDAP_URL') ?? '').split(/\s+/).filter(Boolean),
    bind_dn: value('LDAP_BIND_DN'),
    bind_password_file: value('LDAP_BIND_PASSWORD_FILE'),
    // The password itself is in LDAP_BIND_PASSWORD: read it as the file's bind_password_env would.
    bind_password_env: value('LDAP_BIND_PASSWORD') !== undefined ? 'LDAP_BIND_PASSWORD' : undefined,
    base_dn: value('LDAP_BASE_DN'),
    user_filter: value('LDAP_USER_FILTER'),
    ca_file: value('LDAP_CA_FILE'),
    start_tls: flag('LDAP_START_TLS'),
    allow_plain: flag('LDAP_ALLOW_PLAIN'),
  };
  const result = directorySchema.safeParse(candidate);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? '');
      const variable = VARIABLE_OF[key] ?? key;
      envError(variable, candidate[key as keyof typeof candidate] === undefined ? 'is required' : issue.message);
    }
    return [];
  }
  const ctx: Context = { baseDir: process.cwd(), env, source: ENV_SOURCE, key: (k) => VARIABLE_OF[k] ?? k };
  return resolveAll([result.data], ctx, (keyPath, message) => {
    const key = String(keyPath[1] ?? '');
    // Keys without a variable of their own (lockout, timeouts…) keep their defaults; a
    // problem with them can only come from a variable that set their neighbour.
    envError(VARIABLE_OF[key] ?? (key === 'urls' ? 'LDAP_URL' : key), message);
  });
}

// ——— Entry points ———

export interface DirectoryConfigSource {
  /** The YAML file (default `directories.yml` in the policy directory). */
  file?: string | undefined;
  /** Process environment: LDAP_* for the simple case, and the variables bind_password_env names. */
  env: Readonly<Record<string, string | undefined>>;
  /** The file must exist (it was named explicitly); otherwise a missing file means "no directories". */
  required?: boolean | undefined;
}

/** Every problem of the configured directories, none when valid (`idp config check`). */
export function checkDirectoryConfig(source: DirectoryConfigSource): DirectoryConfigProblem[] {
  return load(source).errors;
}

/** The configured directories (none when nothing configures one); throws DirectoryConfigError listing every problem. */
export function loadDirectoryConfig(source: DirectoryConfigSource): DirectoryConfig[] {
  const { configs, errors } = load(source);
  if (errors.length) throw new DirectoryConfigError(errors);
  return configs;
}

function load({ file, env, required }: DirectoryConfigSource): { configs: DirectoryConfig[]; errors: DirectoryConfigProblem[] } {
  const errors: DirectoryConfigProblem[] = [];
  const fileExists = file !== undefined && fs.existsSync(file);
  const configs: DirectoryConfig[] = [];
  if (file !== undefined && (fileExists || required)) configs.push(...fromFile(file, env, errors));
  const envConfigured = !!env.LDAP_URL;
  // Two sources would leave it unclear which one is meant, or lead an admin to edit the one
  // not in use: refuse, and say which.
  if (envConfigured && fileExists) {
    errors.push({ file: ENV_SOURCE, path: 'LDAP_URL', message: `directories are configured in ${file}: configure them there, or remove the file to use LDAP_* variables` });
  } else if (envConfigured) {
    configs.push(...fromEnv(env, errors));
  } else if (!fileExists) {
    // (With a file, an LDAP_* variable may be one its bind_password_env names.)
    const stray = Object.keys(env).filter((k) => k in LDAP_ENV && env[k]);
    if (stray.length) errors.push({ file: ENV_SOURCE, path: stray[0]!, message: `set without LDAP_URL: no directory is configured from the environment (${stray.join(', ')})` });
  }
  return { configs: errors.length ? [] : configs, errors };
}

/**
 * What a preset knows, as pure functions (no I/O): the search filters with their values
 * escaped (RFC 4515), the attributes to read, an entry → the user's claims, immutable id and
 * account status, and a failed bind → why. OpenLDAP (ppolicy) and Active Directory
 * (userAccountControl and friends) differ only here; the rest of the directory code does
 * not look at the preset. Active Directory cannot run in the tests, so the unit tests of
 * this file are its coverage (test/unit/directory-mapping.test.ts).
 */
import {
  ADDRESS_MEMBERS,
  DIRECTORY_CLAIMS,
  DirectoryUnavailableError,
  type AccountProblem,
  type DirectoryClaimName,
  type BindOutcome,
  type DirectoryClaims,
  type DirectoryConfig,
  type DirectoryPreset,
  type DirectoryUser,
  type RawEntry,
} from './types.ts';

// ——— Filters (RFC 4515) ———

/**
 * A value escaped for an LDAP filter, so it can only ever match itself. RFC 4515 §3 requires
 * `*`, `(`, `)`, `\` and NUL to be written `\2a`, `\28`, `\29`, `\5c`, `\00`; we also escape
 * every byte outside printable ASCII (as its UTF-8 bytes), which the RFC permits and which
 * leaves no server any character to interpret.
 */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const printable = byte >= 0x20 && byte <= 0x7e && byte !== 0x2a && byte !== 0x28 && byte !== 0x29 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Every byte as `\xx`: a binary assertion value (objectGUID), RFC 4515 §3. */
export function escapeFilterBytes(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += `\\${byte.toString(16).padStart(2, '0')}`;
  return out;
}

export class FilterTemplateError extends Error {
  override name = 'FilterTemplateError';
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

/** The placeholder names of a template, in order of appearance. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/**
 * `template` with each `{name}` replaced by `values[name]`, escaped (RFC 4515). A placeholder
 * without a value is refused rather than left in the filter or replaced by nothing, either of
 * which would make the filter match what it was not meant to.
 */
export function fillFilter(template: string, values: Readonly<Record<string, string | undefined>>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = Object.hasOwn(values, name) ? values[name] : undefined;
    if (value === undefined) throw new FilterTemplateError(`unknown placeholder {${name}} in filter ${template}`);
    return escapeFilterValue(value);
  });
}

/**
 * Why a filter template is not usable, or undefined: one parenthesised filter (RFC 4515 §2:
 * `filter = LPAREN filtercomp RPAREN`) with balanced parentheses, only `allowed` placeholders
 * and at least one of `needed`. Checked at configuration load, so a broken filter never
 * reaches a server.
 */
export function filterTemplateProblem(template: string, allowed: readonly string[], needed: readonly string[]): string | undefined {
  const names = placeholders(template);
  const unknown = names.filter((n) => !allowed.includes(n));
  if (unknown.length) return `unknown placeholder {${unknown[0]}} (allowed: ${allowed.map((a) => `{${a}}`).join(', ')})`;
  if (!names.some((n) => needed.includes(n))) return `must contain ${needed.map((n) => `{${n}}`).join(' or ')}`;
  const bare = template.replace(PLACEHOLDER, 'x');
  if (/[{}]/.test(bare)) return 'has an unmatched { or }';
  if (!bare.startsWith('(') || !bare.endsWith(')')) return 'must be one filter in parentheses, e.g. (uid={username})';
  let depth = 0;
  for (let i = 0; i < bare.length; i += 1) {
    const c = bare[i];
    if (c === '\\') {
      // RFC 4515 §3: a backslash is always followed by two hex digits.
      if (!/^[0-9a-fA-F]{2}$/.test(bare.slice(i + 1, i + 3))) return `has a backslash not followed by two hex digits at character ${i + 1}`;
      i += 2;
    } else if (c === '(') {
      depth += 1;
    } else if (c === ')') {
      depth -= 1;
      if (depth === 0 && bare[i + 1] === ')') return `has an unmatched ) at character ${i + 2}`;
      if (depth === 0 && i !== bare.length - 1) return 'must be one filter: combine several with (&…) or (|…)';
    }
  }
  return depth === 0 ? undefined : 'has an unmatched (';
}

/** The search for a user by the name they typed. */
export function userFilter(config: DirectoryConfig, username: string): string {
  return fillFilter(config.userFilter, { username });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The search for a user by the immutable id stored in the account link (findAccount). */
export function idFilter(config: DirectoryConfig, id: string): string {
  if (!UUID.test(id)) throw new TypeError(`not a ${config.idAttribute} value`);
  // entryUUID is compared as its string form (RFC 4530 §2.1, UUIDMatch); objectGUID is an
  // octet string, so the assertion is its 16 bytes in the order AD stores them.
  return config.idAttribute === 'entryUUID'
    ? `(entryUUID=${escapeFilterValue(id.toLowerCase())})`
    : `(objectGUID=${escapeFilterBytes(guidToBytes(id))})`;
}

/**
 * The search for the groups of the user at `userDn` (source `search`). With the Active
 * Directory preset and nested groups, the filter uses LDAP_MATCHING_RULE_IN_CHAIN, so the
 * server returns every group the user is in, directly or not, in one search.
 */
export function groupFilter(config: DirectoryConfig, userDn: string, username?: string): string {
  return fillFilter(config.groups.filter, { dn: userDn, username });
}

/** The in-chain matching rule of Active Directory ([MS-ADTS] §3.1.1.3.4.4.3). */
export const MATCHING_RULE_IN_CHAIN = '1.2.840.113556.1.4.1941';

/** The group search already returns nested groups: no need to repeat it for each group found. */
export function groupSearchIsTransitive(config: DirectoryConfig): boolean {
  return config.groups.filter.includes(`:${MATCHING_RULE_IN_CHAIN}:`);
}

// ——— Attributes ———

/**
 * What each preset reads to know an account's status before any bind.
 * OpenLDAP ppolicy (draft-behera-ldap-password-policy §5.3): pwdAccountLockedTime,
 * pwdFailureTime, pwdReset, pwdChangedTime: operational, so they must be asked for by name.
 * Active Directory ([MS-ADTS] §2.2.16 userAccountControl; [MS-ADA2]/[MS-ADA3] for the rest):
 * msDS-User-Account-Control-Computed carries LOCKOUT and PASSWORD_EXPIRED, which AD computes
 * and never stores in userAccountControl; badPasswordTime tells whether badPwdCount is stale.
 */
export const STATUS_ATTRIBUTES: Readonly<Record<DirectoryPreset, readonly string[]>> = {
  openldap: ['pwdAccountLockedTime', 'pwdFailureTime', 'pwdReset', 'pwdChangedTime'],
  active_directory: [
    'userAccountControl', 'msDS-User-Account-Control-Computed', 'accountExpires', 'lockoutTime', 'pwdLastSet',
    'badPwdCount', 'badPasswordTime',
  ],
};

/** The attributes a user search asks for: the id, the mapped claims, memberOf when used, the status. */
export function userAttributes(config: DirectoryConfig): string[] {
  const wanted = [
    config.idAttribute,
    ...DIRECTORY_CLAIMS.flatMap((c) => attributesOf(config, c)),
    ...(config.groups.source === 'member_of' ? [config.groups.attribute] : []),
    ...STATUS_ATTRIBUTES[config.preset],
  ];
  // Attribute descriptions are case-insensitive (RFC 4512 §2.5): ask for each once.
  const seen = new Set<string>();
  return wanted.filter((a) => !seen.has(a.toLowerCase()) && !!seen.add(a.toLowerCase()));
}

/** The attribute(s) a claim is mapped from, in the order they are tried. */
export function attributesOf(config: DirectoryConfig, claim: DirectoryClaimName): readonly string[] {
  const a = config.attributes[claim];
  return a === undefined ? [] : typeof a === 'string' ? [a] : a;
}

/** The attributes a group search asks for. */
export function groupAttributes(config: DirectoryConfig): string[] {
  return [config.groups.nameAttribute];
}

// ——— Entry → user ———

type Values = (string | Buffer)[];

/** Case-insensitive access to an entry's attributes (RFC 4512 §2.5). */
function reader(entry: RawEntry): (name: string) => Values {
  const byName = new Map<string, Values>();
  for (const [name, values] of Object.entries(entry.attributes)) {
    const key = name.toLowerCase();
    byName.set(key, [...(byName.get(key) ?? []), ...values]);
  }
  return (name) => byName.get(name.toLowerCase()) ?? [];
}

const text = (v: string | Buffer): string => (typeof v === 'string' ? v : v.toString('utf8'));
const firstText = (values: Values): string | undefined => (values.length ? text(values[0]!) : undefined);

/**
 * Maps an entry read by a user search. Throws DirectoryUnavailableError ('protocol') when the
 * entry has no readable immutable id: that is the directory's configuration (an ACL hiding
 * entryUUID / objectGUID from the service account), and no user could be linked safely.
 */
export function mapEntry(config: DirectoryConfig, entry: RawEntry, now: Date): DirectoryUser {
  const get = reader(entry);
  const id = mapId(config, entry.dn, get(config.idAttribute));
  const claims: DirectoryClaims = {};
  const address: NonNullable<DirectoryClaims['address']> = {};
  for (const claim of DIRECTORY_CLAIMS) {
    const raw = attributesOf(config, claim).map((a) => firstText(get(a))?.trim()).find((v) => v !== undefined && v !== '');
    if (raw === undefined) continue;
    const value = claimValue(claim, raw);
    if (value === undefined) continue;
    if (Object.hasOwn(ADDRESS_MEMBERS, claim)) address[ADDRESS_MEMBERS[claim as keyof typeof ADDRESS_MEMBERS]] = value;
    else claims[claim as Exclude<DirectoryClaimName, keyof typeof ADDRESS_MEMBERS>] = value;
  }
  if (Object.keys(address).length) claims.address = address;
  if (claims.email !== undefined) claims.email_verified = config.emailVerified === true;
  if (claims.phone_number !== undefined) claims.phone_number_verified = config.phoneNumberVerified === true;
  if (config.groups.source === 'member_of') claims.groups = groupNamesFromDns(get(config.groups.attribute).map(text));
  const status = config.preset === 'openldap' ? openldapStatus(config, get, now) : activeDirectoryStatus(config, get, now);
  return { directory: config.name, id, dn: entry.dn, claims, ...status };
}

/**
 * An attribute's value as the claim wants it. URLs: the first word (labeledURI is "URI label",
 * RFC 2079) and only http(s), as OIDC Core §5.1 has them; postalAddress: its lines, joined by
 * `$` with `\24` / `\5C` escapes (RFC 4517 §3.3.28), as lines; preferredLanguage: the first
 * language of an Accept-Language value (RFC 2798 §2.7), a BCP 47 tag as §5.1's locale.
 */
export function claimValue(claim: DirectoryClaimName, value: string): string | undefined {
  switch (claim) {
    case 'profile':
    case 'picture':
    case 'website': {
      const uri = value.split(/\s+/)[0]!;
      return URL.canParse(uri) && ['http:', 'https:'].includes(new URL(uri).protocol) ? uri : undefined;
    }
    case 'formatted_address':
      return postalAddressLines(value).join('\n') || undefined;
    case 'locale':
      return value.split(/[,;]/)[0]!.trim() || undefined;
    default:
      return value;
  }
}

/** RFC 4517 §3.3.28 PostalAddress: lines separated by `$`; `\24` is a `$` and `\5C` a `\` within a line. */
export function postalAddressLines(value: string): string[] {
  return value.split('$')
    .map((line) => line.replace(/\\(24|5c)/gi, (_, hex: string) => (hex === '24' ? '$' : '\\')).trim())
    .filter((line) => line !== '');
}

function mapId(config: DirectoryConfig, dn: string, values: Values): string {
  const value = values[0];
  if (config.idAttribute === 'objectGUID') {
    if (Buffer.isBuffer(value) && value.length === 16) return guidFromBytes(value);
    if (typeof value === 'string' && UUID.test(value)) return value.toLowerCase();
  } else if (value !== undefined && UUID.test(text(value))) {
    return text(value).toLowerCase();
  }
  throw new DirectoryUnavailableError(config.name, 'protocol',
    `entry ${dn} has no readable ${config.idAttribute}${value === undefined ? '' : ' in the expected form'}: can the service account read it?`);
}

/**
 * An objectGUID's 16 bytes → its string form. A GUID's first three fields are little-endian
 * integers (Data1 of 4 bytes, Data2 and Data3 of 2), the last 8 bytes are in order
 * ([MS-DTYP] §2.3.4.2), so bytes 78 56 34 12 … read as 12345678-….
 */
export function guidFromBytes(b: Uint8Array): string {
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = [...b.subarray(from, to)].map((x) => x.toString(16).padStart(2, '0'));
    return (reverse ? part.reverse() : part).join('');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/** The inverse of guidFromBytes. */
export function guidToBytes(guid: string): Buffer {
  if (!UUID.test(guid)) throw new TypeError('not a GUID');
  const h = guid.replace(/-/g, '');
  const bytes = Buffer.from(h, 'hex');
  bytes.subarray(0, 4).reverse();
  bytes.subarray(4, 6).reverse();
  bytes.subarray(6, 8).reverse();
  return bytes;
}

/** Group names from the DNs of a memberOf attribute: each DN's first RDN value, sorted, once each. */
export function groupNamesFromDns(dns: string[]): string[] {
  const names = new Set<string>();
  for (const dn of dns) {
    try {
      const value = parseDn(dn)[0]?.[0]?.value;
      if (value) names.add(value);
    } catch {
      // A value that is not a DN names no group we could show; the others still count.
    }
  }
  return [...names].sort();
}

/** Group names from the entries of a group search (source `search`): the name attribute, or the first RDN value. */
export function groupNames(config: DirectoryConfig, entries: RawEntry[]): string[] {
  const names = new Set<string>();
  for (const entry of entries) {
    const name = firstText(reader(entry)(config.groups.nameAttribute)) ?? groupNamesFromDns([entry.dn])[0];
    if (name) names.add(name);
  }
  return [...names].sort();
}

type Status = Pick<DirectoryUser, 'problem' | 'directoryFailures' | 'lockedSince'>;

/** ppolicy's value of pwdAccountLockedTime for a lock only an administrator lifts (draft-behera §5.3.3). */
const PERMANENT_LOCK = '000001010000Z';

function openldapStatus(config: DirectoryConfig, get: (n: string) => Values, now: Date): Status {
  const status: Status = {};
  const locked = firstText(get('pwdAccountLockedTime'));
  if (locked === PERMANENT_LOCK) {
    status.problem = 'disabled';
  } else if (locked !== undefined) {
    // A lockout after failed binds: it may have expired (pwdLockoutDuration lives in the
    // policy entry, not here), so it is not a refusal by itself; a failed bind is 'locked'.
    status.lockedSince = parseGeneralizedTime(locked) ?? new Date(0);
  }
  if (!status.problem && firstText(get('pwdReset'))?.toUpperCase() === 'TRUE') status.problem = 'must_change_password';
  const since = now.getTime() - config.lockout.windowSeconds * 1000;
  status.directoryFailures = get('pwdFailureTime')
    .map((v) => parseGeneralizedTime(text(v))?.getTime())
    .filter((t) => t !== undefined && t > since).length;
  return status;
}

/** userAccountControl flags ([MS-ADTS] §2.2.16). */
const UF_ACCOUNTDISABLE = 0x2;
const UF_LOCKOUT = 0x10;
const UF_PASSWORD_EXPIRED = 0x800000;

function activeDirectoryStatus(config: DirectoryConfig, get: (n: string) => Values, now: Date): Status {
  const status: Status = {};
  const uac = integer(firstText(get('userAccountControl')));
  const computed = integer(firstText(get('msDS-User-Account-Control-Computed')));
  const lockoutTime = fileTime(firstText(get('lockoutTime')));
  const expires = fileTime(firstText(get('accountExpires')));
  const windowStart = now.getTime() - config.lockout.windowSeconds * 1000;
  if (lockoutTime) status.lockedSince = lockoutTime;
  // The computed attribute is AD's own answer, with the domain's lockout duration applied;
  // lockoutTime stays set after a lock expires (until the next logon), so without the
  // computed attribute only a recent lockoutTime counts.
  const locked = computed !== undefined
    ? (computed & UF_LOCKOUT) !== 0
    : lockoutTime !== undefined && lockoutTime.getTime() > windowStart;
  if (uac !== undefined && (uac & UF_ACCOUNTDISABLE) !== 0) status.problem = 'disabled';
  else if (expires && expires.getTime() <= now.getTime()) status.problem = 'expired';
  else if (locked) status.problem = 'locked';
  else if (computed !== undefined && (computed & UF_PASSWORD_EXPIRED) !== 0) status.problem = 'password_expired';
  // pwdLastSet 0: "User must change password at next logon" ([MS-ADA3] Pwd-Last-Set).
  else if (firstText(get('pwdLastSet')) === '0') status.problem = 'must_change_password';
  const bad = integer(firstText(get('badPwdCount')));
  if (bad !== undefined) {
    // AD resets badPwdCount only at the next attempt after the observation window; a count
    // whose last failure is older than the window no longer counts.
    const last = fileTime(firstText(get('badPasswordTime')));
    status.directoryFailures = last && last.getTime() <= windowStart ? 0 : bad;
  }
  return status;
}

function integer(v: string | undefined): number | undefined {
  return v !== undefined && /^-?\d{1,12}$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

/** 100 ns intervals between 1601-01-01 and 1970-01-01. */
const FILETIME_EPOCH_MS = 11_644_473_600_000n;
const FILETIME_NEVER = 0x7fffffffffffffffn;

/**
 * An AD FILETIME (100 ns since 1601-01-01 UTC, [MS-DTYP] §2.3.3) → a Date; undefined for 0
 * and 0x7FFFFFFFFFFFFFFF, which mean "never" (accountExpires, lockoutTime).
 */
export function fileTime(v: string | undefined): Date | undefined {
  if (v === undefined || !/^\d{1,20}$/.test(v.trim())) return undefined;
  const t = BigInt(v.trim());
  if (t === 0n || t >= FILETIME_NEVER) return undefined;
  const d = new Date(Number(t / 10_000n - FILETIME_EPOCH_MS));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * GeneralizedTime (RFC 4517 §3.3.13): YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|±HH[MM]).
 * The fraction applies to the last unit given.
 */
export function parseGeneralizedTime(v: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)$/.exec(v.trim());
  if (!m) return undefined;
  const [y, mo, d, h] = m.slice(1, 5).map(Number);
  const mi = m[5] !== undefined ? Number(m[5]) : undefined;
  const s = m[6] !== undefined ? Number(m[6]) : undefined;
  const civil = new Date(Date.UTC(y!, mo! - 1, d!));
  // Date.UTC would roll 2024-02-30 over to March 1st: refuse such values instead.
  if (civil.getUTCMonth() !== mo! - 1 || civil.getUTCDate() !== d || h! > 23 || (mi ?? 0) > 59 || (s ?? 0) > 60) return undefined;
  const unitMs = m[6] !== undefined ? 1000 : m[5] !== undefined ? 60_000 : 3_600_000;
  const fraction = m[7] ? Number(`0.${m[7]}`) * unitMs : 0;
  let ms = civil.getTime() + (h! * 60 + (mi ?? 0)) * 60_000 + (s ?? 0) * 1000 + Math.round(fraction);
  const zoneText = m[8]!;
  if (zoneText !== 'Z') {
    const sign = zoneText.startsWith('-') ? -1 : 1;
    ms -= sign * (Number(zoneText.slice(1, 3)) * 60 + Number(zoneText.slice(3, 5) || 0)) * 60_000;
  }
  return new Date(ms);
}

// ——— Bind results ———

/**
 * AD's reason for an invalidCredentials (49) result, the `data NNN` of its diagnostic message
 * (the Win32 error of the logon, e.g. "80090308: LdapErr: DSID-0C09044E, comment:
 * AcceptSecurityContext error, data 775, v4563").
 */
const AD_BIND_DATA: Readonly<Record<string, BindReason>> = {
  '52e': 'invalid_credentials', // ERROR_LOGON_FAILURE
  // ERROR_NO_SUCH_USER: said as a wrong password, so a bind does not reveal who exists.
  '525': 'invalid_credentials',
  '530': 'disabled', // ERROR_INVALID_LOGON_HOURS: not permitted at this time
  '531': 'disabled', // ERROR_INVALID_WORKSTATION: not permitted from this workstation
  '532': 'password_expired', // ERROR_PASSWORD_EXPIRED
  '533': 'disabled', // ERROR_ACCOUNT_DISABLED
  '701': 'expired', // ERROR_ACCOUNT_EXPIRED
  '773': 'must_change_password', // ERROR_PASSWORD_MUST_CHANGE
  '775': 'locked', // ERROR_ACCOUNT_LOCKED_OUT
};

type BindReason = Extract<BindOutcome, { ok: false }>['reason'];

/** LDAP result code invalidCredentials (RFC 4511 §4.1.9, Appendix A.2). */
const INVALID_CREDENTIALS = 49;

/**
 * A user bind's result → why it failed. OpenLDAP's ppolicy answers a locked account with
 * plain invalidCredentials (so as not to tell an attacker), so 49 for a user the entry showed
 * locked (`lockedSince`) is explained as 'locked'. `detail` is for the log: the result code
 * and the server's diagnostic message, which never contain the password.
 */
export function bindOutcome(
  config: DirectoryConfig,
  result: { ok: true } | { ok: false; code: number; diagnostic: string },
  user: Pick<DirectoryUser, 'lockedSince'> | undefined,
): BindOutcome {
  if (result.ok) return { ok: true };
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  const diagnostic = result.diagnostic.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, 200);
  const detail = `LDAP result ${result.code}${diagnostic ? `: ${diagnostic}` : ''}`;
  if (config.preset === 'active_directory') {
    const data = /\bdata ([0-9a-f]{3,8})\b/i.exec(diagnostic)?.[1]?.toLowerCase();
    return { ok: false, reason: (data && AD_BIND_DATA[data]) || 'invalid_credentials', detail };
  }
  const reason: BindReason = result.code === INVALID_CREDENTIALS && user?.lockedSince ? 'locked' : 'invalid_credentials';
  return { ok: false, reason, detail };
}

/** Whether a reason is an account problem (refused with the neutral message, logged precisely). */
export function isAccountProblem(reason: BindReason): reason is AccountProblem {
  return reason !== 'invalid_credentials';
}

// ——— Distinguished names (RFC 4514) ———

export interface Ava {
  /** Attribute type as written (a name or a numeric OID). */
  type: string;
  /** The value, unescaped; a `#`-hex (BER) value is kept as written. */
  value: string;
}

export class DnError extends Error {
  override name = 'DnError';
}

/**
 * Parses a DN (RFC 4514 §3) into its RDNs, each a list of attribute-value pairs, unescaping
 * `\,`-style and `\xx` (UTF-8) escapes. Spaces around `,`, `+` and `=` are tolerated (RFC
 * 2253 and most servers accept them). The empty DN is the empty list.
 */
export function parseDn(dn: string): Ava[][] {
  const rdns: Ava[][] = [];
  let i = 0;
  const skipSpaces = () => { while (dn[i] === ' ') i += 1; };
  skipSpaces();
  if (i === dn.length) return rdns;
  let rdn: Ava[] = [];
  for (;;) {
    skipSpaces();
    const type = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)/.exec(dn.slice(i))?.[0];
    if (!type) throw new DnError(`expected an attribute type at character ${i + 1}`);
    i += type.length;
    skipSpaces();
    if (dn[i] !== '=') throw new DnError(`expected = after the attribute type at character ${i + 1}`);
    i += 1;
    skipSpaces();
    let value: string;
    if (dn[i] === '#') {
      const hex = /^#(?:[0-9a-fA-F]{2})+/.exec(dn.slice(i))?.[0];
      if (!hex) throw new DnError(`expected hex pairs after # at character ${i + 1}`);
      value = hex;
      i += hex.length;
      skipSpaces();
    } else {
      const bytes: number[] = [];
      let trailingSpaces = 0;
      while (i < dn.length && dn[i] !== ',' && dn[i] !== '+') {
        const c = dn[i]!;
        if (c === '\\') {
          const pair = dn.slice(i + 1, i + 3);
          if (/^[0-9a-fA-F]{2}$/.test(pair)) {
            bytes.push(parseInt(pair, 16));
            i += 3;
          } else if (i + 1 < dn.length && ' "#+,;<=>\\'.includes(dn[i + 1]!)) {
            bytes.push(dn.charCodeAt(i + 1));
            i += 2;
          } else {
            throw new DnError(`invalid escape at character ${i + 1}`);
          }
          trailingSpaces = 0;
        } else if ('";<>'.includes(c) || c === '\u0000') {
          throw new DnError(`${c === '\u0000' ? 'NUL' : c} must be escaped at character ${i + 1}`);
        } else {
          bytes.push(...Buffer.from(c, 'utf8'));
          trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
          i += 1;
        }
      }
      const decoded = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces));
      try {
        value = new TextDecoder('utf-8', { fatal: true }).decode(decoded);
      } catch {
        throw new DnError('a value is not valid UTF-8');
      }
    }
    rdn.push({ type, value });
    if (i === dn.length) break;
    const sep = dn[i];
    i += 1;
    if (sep === ',') {
      rdns.push(rdn);
      rdn = [];
    } else if (sep !== '+') {
      throw new DnError(`unexpected ${sep} at character ${i}`);
    }
  }
  rdns.push(rdn);
  return rdns;
}

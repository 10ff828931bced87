/**
 * The presets' pure functions (adapters/directory/mapping.ts): filter escaping against
 * injection (checked with an independent parser, ldapts'), filters by name, id and group,
 * the attributes asked for, entries → claims and account status, bind results → reasons.
 * Active Directory cannot run here: the AD cases below, with attribute values as a domain
 * controller returns them, are its coverage.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FilterParser } from 'ldapts';
import {
  bindOutcome, escapeFilterBytes, escapeFilterValue, fileTime, fillFilter, filterTemplateProblem, groupFilter,
  groupNames, groupNamesFromDns, groupSearchIsTransitive, guidFromBytes, guidToBytes, idFilter, mapEntry,
  parseDn, parseGeneralizedTime, userAttributes, userFilter, FilterTemplateError, DnError, claimValue, postalAddressLines,
} from '../../adapters/directory/mapping.ts';
import { PRESETS } from '../../adapters/directory/config.ts';
import { DirectoryUnavailableError, type DirectoryConfig, type RawEntry } from '../../adapters/directory/types.ts';

const base = {
  urls: ['ldaps://ldap.example.org'], startTls: true, allowPlain: false, bindDn: 'cn=idp,dc=example,dc=org',
  bindPassword: 'service-secret', baseDn: 'dc=example,dc=org', scope: 'sub' as const, emailVerified: false,
  timeouts: { connectMs: 3000, operationMs: 5000 }, poolSize: 4, source: 'test',
};

/** The OpenLDAP preset's defaults (config.ts PRESETS), as loadDirectoryConfig resolves them. */
function openldap(over: Partial<DirectoryConfig> = {}): DirectoryConfig {
  return {
    ...base, name: 'corp', preset: 'openldap',
    userFilter: '(&(objectClass=inetOrgPerson)(uid={username}))',
    idAttribute: 'entryUUID',
    attributes: { email: 'mail', name: 'cn', given_name: 'givenName', family_name: 'sn', preferred_username: 'uid' },
    groups: { source: 'member_of', attribute: 'memberOf', base: 'dc=example,dc=org', filter: '(&(objectClass=groupOfNames)(member={dn}))', nested: false, nameAttribute: 'cn' },
    lockout: { threshold: 5, windowSeconds: 300, maxFailures: 3 },
    ...over,
  };
}

/** The Active Directory preset's defaults. */
function ad(over: Partial<DirectoryConfig> = {}): DirectoryConfig {
  return {
    ...base, name: 'ad', preset: 'active_directory',
    userFilter: '(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))',
    idAttribute: 'objectGUID',
    attributes: { email: 'mail', name: 'displayName', given_name: 'givenName', family_name: 'sn', preferred_username: 'sAMAccountName' },
    groups: { source: 'search', attribute: 'memberOf', base: 'DC=corp,DC=example,DC=com', filter: '(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))', nested: true, nameAttribute: 'cn' },
    lockout: { threshold: 10, windowSeconds: 900, maxFailures: 8 },
    ...over,
  };
}

const NOW = new Date('2026-03-10T12:00:00Z');
/** AD FILETIME of a date: 100 ns since 1601-01-01. */
const ft = (d: Date) => String((BigInt(d.getTime()) + 11_644_473_600_000n) * 10_000n);
/** A GeneralizedTime as ppolicy writes it. */
const gt = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').replace(/\.(\d{3})Z$/, '.$1000Z')}`;
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

describe('RFC 4515 escaping', () => {
  it('escapes the five characters of §3 and leaves printable ASCII alone', () => {
    assert.equal(escapeFilterValue('*'), '\\2a');
    assert.equal(escapeFilterValue('('), '\\28');
    assert.equal(escapeFilterValue(')'), '\\29');
    assert.equal(escapeFilterValue('\\'), '\\5c');
    assert.equal(escapeFilterValue('\0'), '\\00');
    assert.equal(escapeFilterValue('alice.smith-2@example.org'), 'alice.smith-2@example.org');
  });

  it('escapes everything outside printable ASCII as its UTF-8 bytes', () => {
    assert.equal(escapeFilterValue('café'), 'caf\\c3\\a9');
    assert.equal(escapeFilterValue('a\tb\nc\u007f'), 'a\\09b\\0ac\\7f');
    assert.equal(escapeFilterValue('😀'), '\\f0\\9f\\98\\80');
  });

  it('turns injection strings into literal values: the filled filter matches only an entry with exactly that value', () => {
    const config = openldap();
    const alice = { objectClass: 'inetOrgPerson', uid: 'alice' };
    for (const attack of ['*)(uid=*', 'admin)(|(uid=*', '*', 'alice)(objectClass=*', '\\2a', 'a\0b', '*)(|(objectClass=*))(uid=*', `${'x'.repeat(5000)}*`]) {
      const filter = userFilter(config, attack);
      // An independent parser (ldapts') reads one AND of two equality assertions …
      const parsed = FilterParser.parseString(filter) as unknown as { filters: { attribute: string; value: string }[] };
      assert.deepEqual(parsed.filters.map((f) => [f.attribute, f.value]), [['objectClass', 'inetOrgPerson'], ['uid', attack]], attack);
      // … which matches the attacker's literal string, never a real user.
      assert.equal(FilterParser.parseString(filter).matches(alice), false, attack);
      assert.equal(FilterParser.parseString(filter).matches({ ...alice, uid: attack }), true, attack);
    }
  });

  it('keeps long input whole', () => {
    const long = 'a'.repeat(100_000);
    assert.equal(userFilter(openldap(), long), `(&(objectClass=inetOrgPerson)(uid=${long}))`);
  });

  it('escapes every byte of a binary value', () => {
    assert.equal(escapeFilterBytes(Buffer.from([0x41, 0x00, 0xff])), '\\41\\00\\ff');
  });
});

describe('filter templates', () => {
  it('fills each placeholder with its escaped value', () => {
    assert.equal(fillFilter('(|(uid={username})(mail={username}))', { username: 'a*' }), '(|(uid=a\\2a)(mail=a\\2a))');
    assert.equal(fillFilter('(member={dn})', { dn: 'cn=O\\2C Brien,dc=x' }), '(member=cn=O\\5c2C Brien,dc=x)');
  });

  it('refuses a placeholder it has no value for', () => {
    assert.throws(() => fillFilter('(uid={user})', { username: 'alice' }), FilterTemplateError);
    assert.throws(() => fillFilter('(uid={constructor})', { username: 'alice' }), /unknown placeholder \{constructor\}/);
    assert.throws(() => groupFilter(openldap({ groups: { ...openldap().groups, source: 'search', filter: '(memberUid={username})' } }), 'cn=a'), FilterTemplateError);
  });

  it('checks templates: one filter, balanced, known placeholders, the one needed', () => {
    const check = (t: string) => filterTemplateProblem(t, ['username'], ['username']);
    assert.equal(check('(&(objectClass=inetOrgPerson)(uid={username}))'), undefined);
    assert.equal(check('(uid=\\2a{username})'), undefined);
    assert.match(check('(uid=alice)')!, /must contain \{username\}/);
    assert.match(check('(uid={user})')!, /unknown placeholder \{user\}/);
    assert.match(check('(&(uid={username})')!, /unmatched \(/);
    assert.match(check('(uid={username}))')!, /unmatched \)/);
    assert.match(check('uid={username}')!, /one filter in parentheses/);
    assert.match(check('(uid={username})(cn=x)')!, /must be one filter/);
    assert.match(check('(uid={username}\\zz)')!, /backslash/);
    assert.match(check('(uid={username}})')!, /unmatched \{ or \}/);
  });
});

describe('filters by id and group', () => {
  it('looks up an entryUUID as its lower-case string', () => {
    assert.equal(idFilter(openldap(), '5F3A9C1E-0B7D-4E2A-9C3B-1A2B3C4D5E6F'), '(entryUUID=5f3a9c1e-0b7d-4e2a-9c3b-1a2b3c4d5e6f)');
    assert.throws(() => idFilter(openldap(), '*)(uid=*'), /not a entryUUID value/);
  });

  it('looks up an objectGUID as its 16 bytes in AD order', () => {
    assert.equal(
      idFilter(ad(), '12345678-9abc-def0-1122-334455667788'),
      '(objectGUID=\\78\\56\\34\\12\\bc\\9a\\f0\\de\\11\\22\\33\\44\\55\\66\\77\\88)',
    );
    assert.throws(() => idFilter(ad(), 'alice'), TypeError);
  });

  it('searches groups with the escaped DN; in chain for Active Directory', () => {
    const dn = 'CN=Smith\\, John,OU=Staff,DC=corp,DC=example,DC=com';
    assert.equal(groupFilter(ad(), dn), '(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Smith\\5c, John,OU=Staff,DC=corp,DC=example,DC=com))');
    assert.equal(groupSearchIsTransitive(ad()), true);
    const ol = openldap({ groups: { ...openldap().groups, source: 'search' } });
    assert.equal(groupFilter(ol, 'uid=a*,dc=x'), '(&(objectClass=groupOfNames)(member=uid=a\\2a,dc=x))');
    assert.equal(groupSearchIsTransitive(ol), false);
    const posix = openldap({ groups: { ...openldap().groups, source: 'search', filter: '(&(objectClass=posixGroup)(memberUid={username}))' } });
    assert.equal(groupFilter(posix, 'uid=bob,dc=x', 'bob'), '(&(objectClass=posixGroup)(memberUid=bob))');
  });
});

describe('attributes to read', () => {
  it('OpenLDAP: id, mapped claims, memberOf and the ppolicy attributes, each once', () => {
    assert.deepEqual(userAttributes(openldap({ attributes: { email: 'mail', name: 'cn', preferred_username: 'UID', given_name: 'uid' } })), [
      'entryUUID', 'mail', 'cn', 'uid', 'memberOf', 'pwdAccountLockedTime', 'pwdFailureTime', 'pwdReset', 'pwdChangedTime',
    ]);
  });

  it('Active Directory: objectGUID and the account-control attributes; no memberOf when groups are searched', () => {
    assert.deepEqual(userAttributes(ad()), [
      'objectGUID', 'mail', 'displayName', 'givenName', 'sn', 'sAMAccountName', 'userAccountControl',
      'msDS-User-Account-Control-Computed', 'accountExpires', 'lockoutTime', 'pwdLastSet', 'badPwdCount', 'badPasswordTime',
    ]);
  });
});

describe('OpenLDAP entries', () => {
  const entry = (attributes: RawEntry['attributes']): RawEntry => ({
    dn: 'uid=alice,ou=people,dc=example,dc=org',
    attributes: { entryUUID: ['5F3A9C1E-0B7D-4E2A-9C3B-1A2B3C4D5E6F'], ...attributes },
  });

  it('maps claims (attribute names in any case, first value) and groups from memberOf', () => {
    const user = mapEntry(openldap(), entry({
      MAIL: ['alice@example.org', 'alice.smith@example.org'], cn: ['Alice Smith'], givenname: ['Alice'], sn: ['Smith'], uid: ['alice'],
      memberOf: ['cn=staff,ou=groups,dc=example,dc=org', 'cn=admins,ou=groups,dc=example,dc=org', 'CN=staff,ou=groups,dc=example,dc=org', 'cn=R\\26D\\2C Lab,ou=groups,dc=example,dc=org', 'not a dn'],
    }), NOW);
    assert.deepEqual(user, {
      directory: 'corp', id: '5f3a9c1e-0b7d-4e2a-9c3b-1a2b3c4d5e6f', dn: 'uid=alice,ou=people,dc=example,dc=org',
      claims: {
        email: 'alice@example.org', email_verified: false, name: 'Alice Smith', given_name: 'Alice', family_name: 'Smith',
        preferred_username: 'alice', groups: ['R&D, Lab', 'admins', 'staff'],
      },
      directoryFailures: 0,
    });
  });

  it('says email_verified only when configured, and leaves out empty or unmapped claims', () => {
    const user = mapEntry(openldap({ emailVerified: true, attributes: { email: 'mail', name: 'cn' }, groups: { ...openldap().groups, source: 'none' } }), entry({ mail: ['a@example.org'], cn: [''], sn: ['Smith'] }), NOW);
    assert.deepEqual(user.claims, { email: 'a@example.org', email_verified: true });
  });

  it('reads a Buffer value as UTF-8', () => {
    assert.equal(mapEntry(openldap(), entry({ cn: [Buffer.from('Zoë', 'utf8')] }), NOW).claims.name, 'Zoë');
  });

  it('refuses an entry without a readable entryUUID as a directory problem, not a user', () => {
    assert.throws(() => mapEntry(openldap(), { dn: 'uid=x,dc=example,dc=org', attributes: { uid: ['x'] } }, NOW),
      (e: unknown) => e instanceof DirectoryUnavailableError && e.kind === 'protocol' && /no readable entryUUID/.test(e.message));
    assert.throws(() => mapEntry(openldap(), entry({ entryUUID: ['not-a-uuid'] }), NOW), DirectoryUnavailableError);
  });

  it('an administrative lock (000001010000Z) is "disabled"', () => {
    assert.equal(mapEntry(openldap(), entry({ pwdAccountLockedTime: ['000001010000Z'] }), NOW).problem, 'disabled');
  });

  it('a lockout after failures is remembered, not a refusal by itself', () => {
    const user = mapEntry(openldap(), entry({ pwdAccountLockedTime: ['20260310115500Z'] }), NOW);
    assert.equal(user.problem, undefined);
    assert.deepEqual(user.lockedSince, new Date('2026-03-10T11:55:00Z'));
  });

  it('pwdReset TRUE means the password must be changed', () => {
    assert.equal(mapEntry(openldap(), entry({ pwdReset: ['TRUE'] }), NOW).problem, 'must_change_password');
    assert.equal(mapEntry(openldap(), entry({ pwdReset: ['FALSE'] }), NOW).problem, undefined);
    // An administrative lock wins.
    assert.equal(mapEntry(openldap(), entry({ pwdReset: ['TRUE'], pwdAccountLockedTime: ['000001010000Z'] }), NOW).problem, 'disabled');
  });

  it('counts the failure times inside the lockout window only', () => {
    const failures = [ago(10), ago(299), ago(301), ago(3600)].map(gt);
    assert.equal(failures[0], gt(ago(10)));
    assert.match(failures[0]!, /^\d{14}\.\d{6}Z$/);
    assert.equal(mapEntry(openldap(), entry({ pwdFailureTime: failures }), NOW).directoryFailures, 2);
    assert.equal(mapEntry(openldap({ lockout: { windowSeconds: 7200, maxFailures: 5 } }), entry({ pwdFailureTime: failures }), NOW).directoryFailures, 4);
  });
});

describe('Active Directory entries', () => {
  // objectGUID as AD returns it: the first three fields little-endian.
  const guid = Buffer.from([0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
  /** A normal enabled user as a DC returns it (userAccountControl 512 = NORMAL_ACCOUNT). */
  const entry = (attributes: RawEntry['attributes'] = {}): RawEntry => ({
    dn: 'CN=Smith\\, John,OU=Staff,DC=corp,DC=example,DC=com',
    attributes: {
      objectGUID: [guid], mail: ['john.smith@corp.example.com'], displayName: ['John Smith'], givenName: ['John'], sn: ['Smith'],
      sAMAccountName: ['jsmith'], userAccountControl: ['512'], 'msDS-User-Account-Control-Computed': ['0'],
      accountExpires: ['9223372036854775807'], lockoutTime: ['0'], pwdLastSet: [ft(new Date('2026-01-05T08:00:00Z'))],
      badPwdCount: ['0'], badPasswordTime: ['0'],
      ...attributes,
    },
  });
  const problem = (attributes: RawEntry['attributes'], config = ad()) => mapEntry(config, entry(attributes), NOW).problem;

  it('maps the id from objectGUID bytes and the claims', () => {
    const user = mapEntry(ad(), entry(), NOW);
    assert.deepEqual(user, {
      directory: 'ad', id: '12345678-9abc-def0-1122-334455667788', dn: 'CN=Smith\\, John,OU=Staff,DC=corp,DC=example,DC=com',
      claims: { email: 'john.smith@corp.example.com', email_verified: false, name: 'John Smith', given_name: 'John', family_name: 'Smith', preferred_username: 'jsmith' },
      directoryFailures: 0,
    });
    assert.equal(guidFromBytes(guidToBytes(user.id)), user.id);
    assert.deepEqual(guidToBytes(user.id), guid);
  });

  it('groups from memberOf when configured so', () => {
    const config = ad({ groups: { ...ad().groups, source: 'member_of' } });
    const user = mapEntry(config, entry({ memberOf: ['CN=VPN Users,OU=Groups,DC=corp,DC=example,DC=com', 'CN=Domain Admins,CN=Users,DC=corp,DC=example,DC=com'] }), NOW);
    assert.deepEqual(user.claims.groups, ['Domain Admins', 'VPN Users']);
  });

  it('refuses an objectGUID that is not 16 bytes', () => {
    assert.throws(() => mapEntry(ad(), entry({ objectGUID: [Buffer.alloc(15)] }), NOW), DirectoryUnavailableError);
  });

  it('ACCOUNTDISABLE (0x2) is "disabled"', () => {
    assert.equal(problem({ userAccountControl: ['514'] }), 'disabled'); // 512 | 2
    assert.equal(problem({ userAccountControl: ['66050'] }), 'disabled'); // DONT_EXPIRE_PASSWD | NORMAL | DISABLE
    assert.equal(problem({ userAccountControl: ['66048'] }), undefined);
  });

  it('LOCKOUT in the computed attribute is "locked"; a lockoutTime alone only within the window', () => {
    assert.equal(problem({ 'msDS-User-Account-Control-Computed': ['16'], lockoutTime: [ft(ago(60))] }), 'locked');
    // The DC says the lock is over (its lockout duration has passed): not locked, though lockoutTime is still set.
    assert.equal(problem({ 'msDS-User-Account-Control-Computed': ['0'], lockoutTime: [ft(ago(60))] }), undefined);
    const noComputed = { 'msDS-User-Account-Control-Computed': [] };
    assert.equal(problem({ ...noComputed, lockoutTime: [ft(ago(60))] }), 'locked');
    assert.equal(problem({ ...noComputed, lockoutTime: [ft(ago(901))] }), undefined);
    assert.equal(problem({ ...noComputed, lockoutTime: ['0'] }), undefined);
    assert.deepEqual(mapEntry(ad(), entry({ lockoutTime: [ft(ago(60))] }), NOW).lockedSince, ago(60));
  });

  it('PASSWORD_EXPIRED (0x800000 computed) is "password_expired"', () => {
    assert.equal(problem({ 'msDS-User-Account-Control-Computed': [String(0x800000)] }), 'password_expired');
  });

  it('accountExpires in the past is "expired"; 0 and 0x7FFFFFFFFFFFFFFF mean never', () => {
    assert.equal(problem({ accountExpires: [ft(new Date('2026-03-01T00:00:00Z'))] }), 'expired');
    assert.equal(problem({ accountExpires: [ft(new Date('2027-01-01T00:00:00Z'))] }), undefined);
    assert.equal(problem({ accountExpires: ['0'] }), undefined);
    assert.equal(problem({ accountExpires: ['9223372036854775807'] }), undefined);
  });

  it('pwdLastSet 0 means the password must be changed', () => {
    assert.equal(problem({ pwdLastSet: ['0'] }), 'must_change_password');
  });

  it('the most definite problem wins: disabled, expired, locked, password expired, must change', () => {
    const all = { userAccountControl: ['514'], accountExpires: [ft(ago(10))], 'msDS-User-Account-Control-Computed': [String(0x800010)], pwdLastSet: ['0'] };
    assert.equal(problem(all), 'disabled');
    assert.equal(problem({ ...all, userAccountControl: ['512'] }), 'expired');
    assert.equal(problem({ ...all, userAccountControl: ['512'], accountExpires: ['0'] }), 'locked');
    assert.equal(problem({ ...all, userAccountControl: ['512'], accountExpires: ['0'], 'msDS-User-Account-Control-Computed': [String(0x800000)] }), 'password_expired');
  });

  it('badPwdCount counts unless its last failure is older than the window', () => {
    assert.equal(mapEntry(ad(), entry({ badPwdCount: ['3'], badPasswordTime: [ft(ago(120))] }), NOW).directoryFailures, 3);
    assert.equal(mapEntry(ad(), entry({ badPwdCount: ['3'], badPasswordTime: [ft(ago(901))] }), NOW).directoryFailures, 0);
    assert.equal(mapEntry(ad(), entry({ badPwdCount: [] }), NOW).directoryFailures, undefined);
  });
});

describe('bind results', () => {
  const adFail = (data: string) => ({ ok: false as const, code: 49, diagnostic: `80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data ${data}, v4563\u0000` });

  it('Active Directory: the data code of the diagnostic says why', () => {
    const expected = {
      '52e': 'invalid_credentials', '525': 'invalid_credentials', '530': 'disabled', '531': 'disabled', '532': 'password_expired',
      '533': 'disabled', '701': 'expired', '773': 'must_change_password', '775': 'locked', '999': 'invalid_credentials',
    };
    for (const [data, reason] of Object.entries(expected)) {
      const outcome = bindOutcome(ad(), adFail(data), undefined);
      assert.equal(outcome.ok ? 'ok' : outcome.reason, reason, data);
    }
    const outcome = bindOutcome(ad(), adFail('775'), undefined);
    assert.deepEqual(outcome, { ok: false, reason: 'locked', detail: 'LDAP result 49: 80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563' });
  });

  it('OpenLDAP: invalidCredentials is "locked" for a user the entry showed locked, otherwise a wrong password', () => {
    const fail = { ok: false as const, code: 49, diagnostic: '' };
    assert.deepEqual(bindOutcome(openldap(), fail, { lockedSince: new Date() }), { ok: false, reason: 'locked', detail: 'LDAP result 49' });
    assert.deepEqual(bindOutcome(openldap(), fail, {}), { ok: false, reason: 'invalid_credentials', detail: 'LDAP result 49' });
    assert.equal((bindOutcome(openldap(), { ok: false, code: 53, diagnostic: 'unwilling' }, { lockedSince: new Date() }) as { reason: string }).reason, 'invalid_credentials');
    assert.deepEqual(bindOutcome(openldap(), { ok: true }, undefined), { ok: true });
  });
});

describe('DNs and times', () => {
  it('parses DNs with RFC 4514 escapes', () => {
    assert.deepEqual(parseDn('cn=Smith\\, John+uid=js , ou=R\\26D,dc=example'), [
      [{ type: 'cn', value: 'Smith, John' }, { type: 'uid', value: 'js' }], [{ type: 'ou', value: 'R&D' }], [{ type: 'dc', value: 'example' }],
    ]);
    assert.deepEqual(parseDn('cn=caf\\C3\\A9\\ ,2.5.4.3=#04024869'), [[{ type: 'cn', value: 'café ' }], [{ type: '2.5.4.3', value: '#04024869' }]]);
    assert.deepEqual(parseDn(''), []);
    for (const bad of ['cn', 'cn=a,', '=a', 'cn=a;b', 'cn=\\zz', 'cn=\\ff', 'cn=a,,dc=b']) assert.throws(() => parseDn(bad), DnError, bad);
  });

  it('names groups from DNs and from group entries', () => {
    assert.deepEqual(groupNamesFromDns(['cn=b,dc=x', 'cn=a,dc=x', 'cn=b,dc=x']), ['a', 'b']);
    assert.deepEqual(groupNames(openldap(), [
      { dn: 'cn=ops,dc=x', attributes: { CN: ['Operations'] } }, { dn: 'cn=dev,dc=x', attributes: {} }, { dn: 'cn=dev2,dc=x', attributes: { cn: ['dev'] } },
    ]), ['Operations', 'dev']);
  });

  it('reads GeneralizedTime in its forms (RFC 4517 §3.3.13)', () => {
    assert.deepEqual(parseGeneralizedTime('20260310115500Z'), new Date('2026-03-10T11:55:00Z'));
    assert.deepEqual(parseGeneralizedTime('20260310115500.123456Z'), new Date('2026-03-10T11:55:00.123Z'));
    assert.deepEqual(parseGeneralizedTime('202603101155Z'), new Date('2026-03-10T11:55:00Z'));
    assert.deepEqual(parseGeneralizedTime('2026031011.5Z'), new Date('2026-03-10T11:30:00Z'));
    assert.deepEqual(parseGeneralizedTime('20260310135500+0200'), new Date('2026-03-10T11:55:00Z'));
    assert.equal(parseGeneralizedTime('20260230115500Z'), undefined);
    assert.equal(parseGeneralizedTime('yesterday'), undefined);
  });

  it('reads FILETIME; 0 and the maximum are "never"', () => {
    assert.deepEqual(fileTime('116444736000000000'), new Date(0));
    assert.deepEqual(fileTime(ft(NOW)), NOW);
    assert.equal(fileTime('0'), undefined);
    assert.equal(fileTime('9223372036854775807'), undefined);
    assert.equal(fileTime('-1'), undefined);
  });
});

describe('OIDC Core §5.1 claims from the presets\' default attributes (issue 11)', () => {
  const withPreset = (config: DirectoryConfig) => ({ ...config, attributes: PRESETS[config.preset].attributes });

  it('OpenLDAP inetOrgPerson: phone (telephoneNumber, else mobile), the address from postalAddress and its parts, website from labeledURI, locale', () => {
    const user = mapEntry(withPreset(openldap()), {
      dn: 'uid=alice,ou=people,dc=example,dc=org',
      attributes: {
        entryUUID: ['5F3A9C1E-0B7D-4E2A-9C3B-1A2B3C4D5E6F'], mail: ['alice@example.org'], cn: ['Alice Smith'], uid: ['alice'],
        mobile: ['+44 20 7946 0001'], postalAddress: ['Flat 2$10 Downing Street\\24 rear$London SW1A 2AA'], street: ['10 Downing Street'],
        l: ['London'], st: ['Greater London'], postalCode: ['SW1A 2AA'], c: ['GB'], labeledURI: ['https://alice.example.org/ My home page'],
        preferredLanguage: ['en-GB, en;q=0.8'],
      },
    }, NOW);
    assert.deepEqual(user.claims, {
      email: 'alice@example.org', email_verified: false, name: 'Alice Smith', preferred_username: 'alice',
      website: 'https://alice.example.org/', locale: 'en-GB', phone_number: '+44 20 7946 0001', phone_number_verified: false,
      address: {
        formatted: 'Flat 2\n10 Downing Street$ rear\nLondon SW1A 2AA', street_address: '10 Downing Street', locality: 'London', region: 'Greater London',
        postal_code: 'SW1A 2AA', country: 'GB',
      },
      groups: [],
    });
    // telephoneNumber is tried before mobile.
    assert.equal(mapEntry(withPreset(openldap()), { dn: 'uid=a,dc=x', attributes: { entryUUID: ['5F3A9C1E-0B7D-4E2A-9C3B-1A2B3C4D5E6F'], telephoneNumber: ['+1 512 315 0280'], mobile: ['+1 512 000 0000'] } }, NOW).claims.phone_number, '+1 512 315 0280');
  });

  it('Active Directory user class: middleName, wWWHomePage, streetAddress, l, st, postalCode, c; phone_number_verified when configured', () => {
    const guid = Buffer.from([0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    const user = mapEntry({ ...withPreset(ad()), phoneNumberVerified: true }, {
      dn: 'CN=Bob,OU=Staff,DC=corp,DC=example,DC=com',
      attributes: {
        objectGUID: [guid], sAMAccountName: ['bob'], displayName: ['Bob Jones'], givenName: ['Bob'], sn: ['Jones'], middleName: ['Quincy'],
        wWWHomePage: ['http://bob.example.com'], telephoneNumber: ['+1 (425) 555-1212;ext=5678'], streetAddress: ['1 Microsoft Way'], l: ['Redmond'],
        st: ['WA'], postalCode: ['98052'], c: ['US'], co: ['United States'], userAccountControl: ['512'],
      },
    }, NOW);
    assert.deepEqual(user.claims, {
      name: 'Bob Jones', given_name: 'Bob', family_name: 'Jones', middle_name: 'Quincy', preferred_username: 'bob', website: 'http://bob.example.com',
      phone_number: '+1 (425) 555-1212;ext=5678', phone_number_verified: true,
      address: { street_address: '1 Microsoft Way', locality: 'Redmond', region: 'WA', postal_code: '98052', country: 'US' },
    });
  });

  it('a URL claim takes only http(s); an empty or unmapped attribute leaves the claim out', () => {
    assert.equal(claimValue('website', 'javascript:alert(1) x'), undefined);
    assert.equal(claimValue('picture', 'ftp://example.org/me.jpg'), undefined);
    assert.equal(claimValue('formatted_address', '$ $'), undefined);
    assert.deepEqual(postalAddressLines('1 Main St$Springfield\\5C\\24x'), ['1 Main St', 'Springfield\\$x']);
    const user = mapEntry(openldap({ attributes: { phone_number: ['telephoneNumber', 'mobile'], locality: 'l' } }), {
      dn: 'uid=a,dc=x', attributes: { entryUUID: ['5F3A9C1E-0B7D-4E2A-9C3B-1A2B3C4D5E6F'], telephoneNumber: ['  '], mobile: ['+33 1 23 45 67 89'], l: [''] },
    }, NOW);
    assert.deepEqual(user.claims, { phone_number: '+33 1 23 45 67 89', phone_number_verified: false, groups: [] });
  });

  it('asks for every mapped attribute once, a list\'s too', () => {
    const attrs = userAttributes(withPreset(openldap()));
    for (const a of ['telephoneNumber', 'mobile', 'postalAddress', 'street', 'l', 'st', 'postalCode', 'c', 'labeledURI', 'preferredLanguage']) assert.ok(attrs.includes(a), a);
    assert.equal(new Set(attrs.map((a) => a.toLowerCase())).size, attrs.length);
  });
});

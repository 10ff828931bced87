/**
 * The directories' configuration (adapters/directory/config.ts): the complete examples of
 * docs/examples load (so the README's copies stay true), presets fill what is left out,
 * each kind of mistake is named with its file, line and key (or its environment variable),
 * all at once, and the service password never appears in a message.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import {
  checkDirectoryConfig, DirectoryConfigError, loadDirectoryConfig, type DirectoryConfigProblem,
} from '../../adapters/directory/config.ts';
import { formatFileError } from '../../policies/yaml-file.ts';
import { tempDir } from '../helpers/env.ts';

/** docs/examples of the repository (this file runs from dist/test/unit/). */
const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'examples');
const PASSWORD = 'S3cr3t-b1nd-Pa55';

let caPem: string;
before(() => {
  // A real certificate, as an admin's CA file would hold.
  const dir = tempDir('idp-ca-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=Test CA',
    '-days', '2', '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem')], { stdio: 'ignore' });
  caPem = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
});

/** A directory with directories.yml (`yaml`), the CA and password files beside it. */
function setup(yaml: string): { dir: string; file: string } {
  const dir = tempDir('idp-dirs-');
  fs.writeFileSync(path.join(dir, 'ldap-ca.pem'), caPem);
  fs.writeFileSync(path.join(dir, 'corp-root-ca.pem'), caPem);
  fs.writeFileSync(path.join(dir, 'ldap-bind-password'), `${PASSWORD}\n`);
  const file = path.join(dir, 'directories.yml');
  fs.writeFileSync(file, yaml);
  return { dir, file };
}

const MINIMAL = `directories:
  - name: corp
    preset: openldap
    urls: [ldaps://ldap.example.org]
    bind_dn: cn=idp,ou=services,dc=example,dc=org
    bind_password_file: ldap-bind-password
    base_dn: ou=people,dc=example,dc=org
`;

/** The minimal file with `extra` lines added to its entry (indented as its keys), or edited. */
const minimal = (extra = '', edit: (t: string) => string = (t) => t) => edit(`${MINIMAL}${extra.split('\n').filter(Boolean).map((l) => `    ${l}\n`).join('')}`);

function check(yaml: string, env: Record<string, string | undefined> = {}): { errors: DirectoryConfigProblem[]; file: string } {
  const { file } = setup(yaml);
  return { errors: checkDirectoryConfig({ file, env }), file };
}

function lineOf(file: string, needle: string): number {
  const idx = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(needle));
  assert.ok(idx >= 0, `"${needle}" not in ${file}`);
  return idx + 1;
}

/** The one error of `yaml`, checked to sit at the line containing `needle`, at key `keyPath`. */
function onlyError(yaml: string, keyPath: string, needle: string, env: Record<string, string | undefined> = {}): DirectoryConfigProblem {
  const { errors, file } = check(yaml, env);
  assert.equal(errors.length, 1, errors.map(formatFileError).join('\n'));
  const e = errors[0]!;
  assert.equal(e.file, file);
  assert.equal(e.path, keyPath);
  assert.equal(e.line, lineOf(file, needle), formatFileError(e));
  assert.ok(!formatFileError(e).includes(PASSWORD));
  return e;
}

describe('directory configuration: the examples', () => {
  it('docs/examples/directories-openldap.yml loads as written', () => {
    const { file } = setup(fs.readFileSync(path.join(EXAMPLES, 'directories-openldap.yml'), 'utf8'));
    const [corp, ...rest] = loadDirectoryConfig({ file, env: {} });
    assert.equal(rest.length, 0);
    assert.ok(corp);
    assert.equal(corp.ca?.toString(), caPem);
    assert.deepEqual({ ...corp, ca: undefined }, {
      name: 'corp', preset: 'openldap', urls: ['ldap://ldap1.example.org', 'ldap://ldap2.example.org:389'], startTls: true, allowPlain: false,
      ca: undefined, caFile: path.join(path.dirname(file), 'ldap-ca.pem'),
      bindDn: 'cn=idp,ou=services,dc=example,dc=org', bindPassword: PASSWORD, baseDn: 'ou=people,dc=example,dc=org', scope: 'sub',
      userFilter: '(&(objectClass=inetOrgPerson)(uid={username}))', idAttribute: 'entryUUID',
      attributes: {
        email: 'mail', name: 'cn', given_name: 'givenName', family_name: 'sn', preferred_username: 'uid', website: 'labeledURI', locale: 'preferredLanguage',
        phone_number: ['telephoneNumber', 'mobile'], formatted_address: 'postalAddress', street_address: 'street', locality: 'l', region: 'st',
        postal_code: 'postalCode', country: 'c',
      },
      emailVerified: true, phoneNumberVerified: false,
      groups: { source: 'member_of', attribute: 'memberOf', base: 'ou=people,dc=example,dc=org', filter: '(&(objectClass=groupOfNames)(member={dn}))', nested: false, nameAttribute: 'cn' },
      timeouts: { connectMs: 3000, operationMs: 5000 }, poolSize: 4, lockout: { threshold: 5, windowSeconds: 300, maxFailures: 3 }, source: file,
    });
  });

  it('docs/examples/directories-active-directory.yml loads as written', () => {
    const { file } = setup(fs.readFileSync(path.join(EXAMPLES, 'directories-active-directory.yml'), 'utf8'));
    const [ad] = loadDirectoryConfig({ file, env: { AD_BIND_PASSWORD: PASSWORD } });
    assert.ok(ad);
    assert.deepEqual({ ...ad, ca: undefined, caFile: undefined }, {
      name: 'ad', preset: 'active_directory', urls: ['ldaps://dc1.corp.example.com', 'ldaps://dc2.corp.example.com:636'], startTls: true, allowPlain: false,
      ca: undefined, caFile: undefined,
      bindDn: 'CN=svc-idp,OU=Service Accounts,DC=corp,DC=example,DC=com', bindPassword: PASSWORD, baseDn: 'OU=Staff,DC=corp,DC=example,DC=com', scope: 'sub',
      userFilter: '(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))', idAttribute: 'objectGUID',
      attributes: {
        email: 'mail', name: 'displayName', given_name: 'givenName', family_name: 'sn', middle_name: 'middleName', preferred_username: 'sAMAccountName',
        website: 'wWWHomePage', locale: 'preferredLanguage', phone_number: ['telephoneNumber', 'mobile'], street_address: 'streetAddress', locality: 'l',
        region: 'st', postal_code: 'postalCode', country: 'c',
      },
      emailVerified: true, phoneNumberVerified: false,
      groups: { source: 'search', attribute: 'memberOf', base: 'OU=Groups,DC=corp,DC=example,DC=com', filter: '(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))', nested: true, nameAttribute: 'cn' },
      timeouts: { connectMs: 3000, operationMs: 5000 }, poolSize: 4, lockout: { threshold: 10, windowSeconds: 900, maxFailures: 8 }, source: file,
    });
  });
});

describe('directory configuration: presets and defaults', () => {
  it('fills an OpenLDAP directory from the preset, overridable key by key', () => {
    const { file } = setup(minimal('attributes: { name: displayName, given_name: null, phone_number: mobile, country: null, nickname: [displayName, cn] }\ngroups: { source: search, nested: true }\nlockout: { threshold: 2 }'));
    const [c] = loadDirectoryConfig({ file, env: {} });
    assert.deepEqual(c?.attributes, {
      email: 'mail', name: 'displayName', family_name: 'sn', preferred_username: 'uid', website: 'labeledURI', locale: 'preferredLanguage',
      phone_number: 'mobile', formatted_address: 'postalAddress', street_address: 'street', locality: 'l', region: 'st', postal_code: 'postalCode',
      nickname: ['displayName', 'cn'],
    });
    assert.deepEqual(c?.groups, { source: 'search', attribute: 'memberOf', base: 'ou=people,dc=example,dc=org', filter: '(&(objectClass=groupOfNames)(member={dn}))', nested: true, nameAttribute: 'cn' });
    // The provider stops one failure before a threshold of 2.
    assert.deepEqual(c?.lockout, { threshold: 2, windowSeconds: 300, maxFailures: 1 });
    assert.equal(c?.emailVerified, false);
  });

  it('without a threshold the provider stops after 5 failures', () => {
    const { file } = setup(MINIMAL);
    assert.deepEqual(loadDirectoryConfig({ file, env: {} })[0]?.lockout, { threshold: undefined, windowSeconds: 300, maxFailures: 5 });
  });

  it('Active Directory: login_name chooses the attribute users type; without nesting, direct groups', () => {
    const yaml = (extra: string) => minimal(`login_name: ${extra}\ngroups: { nested: false }`, (t) => t.replace('preset: openldap', 'preset: active_directory').replace('bind_dn: cn=idp,ou=services,dc=example,dc=org', 'bind_dn: svc-idp@corp.example.com'));
    const sam = loadDirectoryConfig({ file: setup(yaml('sAMAccountName')).file, env: {} })[0];
    assert.equal(sam?.userFilter, '(&(objectCategory=person)(objectClass=user)(sAMAccountName={username}))');
    assert.equal(sam?.groups.filter, '(&(objectClass=group)(member={dn}))');
    assert.equal(sam?.lockout.windowSeconds, 600);
    assert.equal(loadDirectoryConfig({ file: setup(yaml('userPrincipalName')).file, env: {} })[0]?.userFilter,
      '(&(objectCategory=person)(objectClass=user)(userPrincipalName={username}))');
    // DOMAIN\user is a bind name AD accepts.
    assert.deepEqual(check(yaml('either').replace('svc-idp@corp.example.com', 'CORP\\svc-idp')).errors, []);
  });

  it('allows plain ldap:// only when said so; timeouts and pool size as set', () => {
    const { file } = setup(minimal('start_tls: false\nallow_plain: true\ntimeouts: { connect_seconds: 0.5, operation_seconds: 2 }\npool_size: 1\nscope: one', (t) => t.replace('ldaps://', 'ldap://')));
    const [c] = loadDirectoryConfig({ file, env: {} });
    assert.deepEqual([c?.startTls, c?.allowPlain, c?.timeouts, c?.poolSize, c?.scope], [false, true, { connectMs: 500, operationMs: 2000 }, 1, 'one']);
  });

  it('several directories, and none when there is no file', () => {
    const second = MINIMAL.replace('directories:\n', '').replace('name: corp', 'name: lab-2');
    const { file } = setup(`${MINIMAL}${second}`);
    assert.deepEqual(loadDirectoryConfig({ file, env: {} }).map((c) => c.name), ['corp', 'lab-2']);
    assert.deepEqual(loadDirectoryConfig({ file: path.join(tempDir(), 'directories.yml'), env: {} }), []);
    assert.deepEqual(loadDirectoryConfig({ env: {} }), []);
    assert.deepEqual(loadDirectoryConfig({ file: setup('directories: []\n').file, env: {} }), []);
  });
});

describe('directory configuration: errors name file, line and key', () => {
  it('a misspelt key', () => {
    const e = onlyError(minimal('user_fliter: "(uid={username})"'), 'directories.0.user_fliter', 'user_fliter');
    assert.match(e.message, /Unrecognized key/);
  });

  it('an unknown preset, a bad name, a duplicate name', () => {
    assert.match(onlyError(MINIMAL.replace('openldap', 'openldapp'), 'directories.0.preset', 'preset:').message, /openldap/);
    assert.match(onlyError(MINIMAL.replace('name: corp', 'name: Corp Dir'), 'directories.0.name', 'name:').message, /a-z, 0-9/);
    const { errors, file } = check(`${MINIMAL}${MINIMAL.replace('directories:\n', '')}`);
    assert.equal(errors.length, 1);
    assert.deepEqual([errors[0]?.path, errors[0]?.line, errors[0]?.message], ['directories.1.name', 8, 'duplicate directory name "corp"']);
    assert.equal(lineOf(file, 'name: corp'), 2);
  });

  it('a password written in the file is refused, saying why, without repeating it', () => {
    const e = onlyError(minimal(`bind_password: ${PASSWORD}`), 'directories.0.bind_password', 'bind_password:');
    assert.match(e.message, /does not belong in this file.*bind_password_file or bind_password_env/);
  });

  it('password sources: both, none, unreadable, empty, unset variable', () => {
    assert.match(onlyError(minimal('bind_password_env: LDAP_PW'), 'directories.0.bind_password_env', 'bind_password_env').message, /either bind_password_file or bind_password_env/);
    assert.match(onlyError(MINIMAL.replace('    bind_password_file: ldap-bind-password\n', ''), 'directories.0.bind_dn', 'bind_dn').message, /password is missing/);
    assert.match(onlyError(MINIMAL.replace('ldap-bind-password', 'nope.txt'), 'directories.0.bind_password_file', 'bind_password_file').message, /cannot read .*nope\.txt \(no such file\)/);
    const { dir, file } = setup(MINIMAL);
    fs.writeFileSync(path.join(dir, 'ldap-bind-password'), '\n');
    assert.match(checkDirectoryConfig({ file, env: {} })[0]?.message ?? '', /ldap-bind-password is empty/);
    const unset = minimal('bind_password_env: CORP_LDAP_PASSWORD', (t) => t.replace('    bind_password_file: ldap-bind-password\n', ''));
    assert.match(onlyError(unset, 'directories.0.bind_password_env', 'bind_password_env').message, /CORP_LDAP_PASSWORD is not set/);
    assert.deepEqual(check(unset, { CORP_LDAP_PASSWORD: PASSWORD }).errors, []);
  });

  it('plain ldap:// without StartTLS is refused, saying why', () => {
    const e = onlyError(minimal('start_tls: false', (t) => t.replace('ldaps://', 'ldap://')), 'directories.0.start_tls', 'start_tls');
    assert.match(e.message, /passwords in clear.*allow_plain/);
    // StartTLS on ldap:// is the default, and fine.
    assert.deepEqual(check(MINIMAL.replace('ldaps://', 'ldap://')).errors, []);
  });

  it('URLs: scheme, host only', () => {
    assert.match(onlyError(MINIMAL.replace('ldaps://ldap.example.org', 'https://ldap.example.org'), 'directories.0.urls.0', 'urls').message, /ldaps:\/\/ or ldap:\/\//);
    assert.match(onlyError(MINIMAL.replace('ldaps://ldap.example.org', '"ldaps://ldap.example.org/dc=example,dc=org"'), 'directories.0.urls.0', 'urls').message, /only scheme, host and port/);
    assert.match(onlyError(MINIMAL.replace('ldaps://ldap.example.org', 'ldap.example.org'), 'directories.0.urls.0', 'urls').message, /not a URL/);
    assert.match(onlyError(MINIMAL.replace('[ldaps://ldap.example.org]', '[]'), 'directories.0.urls', 'urls').message, /at least one URL/);
  });

  it('a CA file that holds no certificate, or a broken one', () => {
    const { dir, file } = setup(minimal('ca_file: ca.pem'));
    fs.writeFileSync(path.join(dir, 'ca.pem'), 'not a certificate\n');
    const [e] = checkDirectoryConfig({ file, env: {} });
    assert.deepEqual([e?.path, e?.line], ['directories.0.ca_file', lineOf(file, 'ca_file')]);
    assert.match(e?.message ?? '', /contains no PEM certificate/);
    fs.writeFileSync(path.join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    assert.match(checkDirectoryConfig({ file, env: {} })[0]?.message ?? '', /certificate 1 of .* does not parse/);
  });

  it('timeouts and pool size within bounds', () => {
    assert.match(onlyError(minimal('timeouts: { connect_seconds: 0 }'), 'directories.0.timeouts.connect_seconds', 'timeouts').message, /Too small/);
    assert.match(onlyError(minimal('timeouts: { operation_seconds: 600 }'), 'directories.0.timeouts.operation_seconds', 'timeouts').message, /Too big/);
    assert.match(onlyError(minimal('pool_size: 0'), 'directories.0.pool_size', 'pool_size').message, /Too small/);
  });

  it('max_failures must stay below the directory threshold', () => {
    assert.match(onlyError(minimal('lockout:\n  threshold: 5\n  max_failures: 5'), 'directories.0.lockout.max_failures', 'max_failures').message,
      /max_failures \(5\) must be below the directory's threshold \(5\)/);
    assert.match(onlyError(minimal('lockout: { threshold: 1 }'), 'directories.0.lockout.threshold', 'lockout').message, /Too small/);
  });

  it('filters: {username} required, balanced, known placeholders', () => {
    assert.match(onlyError(minimal('user_filter: "(uid=alice)"'), 'directories.0.user_filter', 'user_filter').message, /must contain \{username\}/);
    assert.match(onlyError(minimal('user_filter: "(&(uid={username})"'), 'directories.0.user_filter', 'user_filter').message, /unmatched \(/);
    assert.match(onlyError(minimal('user_filter: "(uid={user})"'), 'directories.0.user_filter', 'user_filter').message, /unknown placeholder/);
    assert.match(onlyError(minimal('groups:\n  source: search\n  filter: "(objectClass=groupOfNames)"'), 'directories.0.groups.filter', 'filter:').message, /must contain \{dn\} or \{username\}/);
    assert.match(onlyError(minimal('groups:\n  filter: "(member={dn})"'), 'directories.0.groups.filter', 'filter:').message, /only used with source: search/);
  });

  it('DNs must parse; login_name is for Active Directory', () => {
    assert.match(onlyError(MINIMAL.replace('base_dn: ou=people,dc=example,dc=org', 'base_dn: ou=people;dc=example'), 'directories.0.base_dn', 'base_dn').message, /not a DN \(RFC 4514\)/);
    // A UPN is a bind name for AD only.
    assert.match(onlyError(MINIMAL.replace('bind_dn: cn=idp,ou=services,dc=example,dc=org', 'bind_dn: idp@example.org'), 'directories.0.bind_dn', 'bind_dn').message, /not a DN/);
    assert.match(onlyError(minimal('login_name: sAMAccountName'), 'directories.0.login_name', 'login_name').message, /only for the active_directory preset/);
  });

  it('YAML syntax errors, with their line', () => {
    const { errors, file } = check(`${MINIMAL}    scope: [sub\n`);
    assert.ok(errors.length >= 1);
    assert.equal(errors[0]?.file, file);
    assert.match(errors[0]?.message ?? '', /^YAML: /);
    assert.ok(errors[0]?.line !== undefined && errors[0].line >= 8);
  });

  it('a missing file is an error when it was named explicitly', () => {
    const file = path.join(tempDir(), 'directories.yml');
    assert.deepEqual(checkDirectoryConfig({ file, env: {}, required: true }), [{ file, path: '', message: 'file is missing' }]);
    assert.deepEqual(checkDirectoryConfig({ file, env: {} }), []);
  });

  it('reports every problem at once, and loadDirectoryConfig throws them', () => {
    const yaml = minimal(`bind_password: ${PASSWORD}\nuser_filter: "(uid=x)"\npool_size: 1000`, (t) => t.replace('name: corp', 'name: CORP'));
    const { errors, file } = check(yaml);
    assert.deepEqual(errors.map((e) => e.path).sort(), ['directories.0.name', 'directories.0.pool_size']);
    // Schema errors first; the rest once the schema passes.
    const { errors: second } = check(yaml.replace('name: CORP', 'name: corp').replace('pool_size: 1000', 'pool_size: 10'));
    assert.deepEqual(second.map((e) => e.path), ['directories.0.bind_password', 'directories.0.user_filter']);
    assert.throws(() => loadDirectoryConfig({ file, env: {} }), (e: unknown) =>
      e instanceof DirectoryConfigError && e.errors.length === 2 && /directories\.yml:\d+:\d+: directories\.0\.name/.test(e.message));
  });
});

describe('directory configuration: environment', () => {
  const ENV = {
    LDAP_URL: 'ldaps://ldap1.example.org ldaps://ldap2.example.org',
    LDAP_BIND_DN: 'cn=idp,ou=services,dc=example,dc=org',
    LDAP_BIND_PASSWORD: PASSWORD,
    LDAP_BASE_DN: 'ou=people,dc=example,dc=org',
  };
  const envErrors = (env: Record<string, string | undefined>) => checkDirectoryConfig({ env }).map((e) => `${e.file}: ${e.path}: ${e.message}`);

  it('configures one directory, with failover URLs and the preset defaults', () => {
    const [c, ...rest] = loadDirectoryConfig({ env: ENV });
    assert.equal(rest.length, 0);
    assert.deepEqual([c?.name, c?.preset, c?.urls, c?.bindPassword, c?.source, c?.userFilter, c?.idAttribute],
      ['ldap', 'openldap', ['ldaps://ldap1.example.org', 'ldaps://ldap2.example.org'], PASSWORD, 'environment', '(&(objectClass=inetOrgPerson)(uid={username}))', 'entryUUID']);
  });

  it('reads every variable', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'pw'), `${PASSWORD}\r\n`);
    fs.writeFileSync(path.join(dir, 'ca.pem'), caPem);
    const [c] = loadDirectoryConfig({ env: {
      ...ENV, LDAP_BIND_PASSWORD: undefined, LDAP_BIND_PASSWORD_FILE: path.join(dir, 'pw'), LDAP_NAME: 'ad', LDAP_PRESET: 'active_directory',
      LDAP_URL: 'ldap://dc1.corp.example.com', LDAP_START_TLS: 'false', LDAP_ALLOW_PLAIN: 'true', LDAP_CA_FILE: path.join(dir, 'ca.pem'),
      LDAP_USER_FILTER: '(sAMAccountName={username})', LDAP_BIND_DN: 'svc@corp.example.com',
    } });
    assert.deepEqual([c?.name, c?.preset, c?.bindPassword, c?.startTls, c?.allowPlain, c?.userFilter, c?.idAttribute, c?.ca?.toString()],
      ['ad', 'active_directory', PASSWORD, false, true, '(sAMAccountName={username})', 'objectGUID', caPem]);
  });

  it('errors name the variable', () => {
    assert.deepEqual(envErrors({ ...ENV, LDAP_BASE_DN: undefined }), ['environment: LDAP_BASE_DN: is required']);
    assert.deepEqual(envErrors({ ...ENV, LDAP_PRESET: 'novell' }), ['environment: LDAP_PRESET: Invalid option: expected one of "openldap"|"active_directory"']);
    assert.deepEqual(envErrors({ ...ENV, LDAP_START_TLS: 'maybe' }), ['environment: LDAP_START_TLS: must be true or false']);
    assert.match(envErrors({ ...ENV, LDAP_URL: 'ldap://h', LDAP_START_TLS: 'false' })[0] ?? '', /^environment: LDAP_START_TLS: .*set LDAP_ALLOW_PLAIN to true/);
    assert.match(envErrors({ ...ENV, LDAP_USER_FILTER: '(uid=*)' })[0] ?? '', /^environment: LDAP_USER_FILTER: must contain \{username\}/);
    assert.match(envErrors({ ...ENV, LDAP_BASE_DN: 'people' })[0] ?? '', /^environment: LDAP_BASE_DN: is not a DN/);
    assert.deepEqual(envErrors({ ...ENV, LDAP_BIND_PASSWORD_FILE: '/x' }), ['environment: LDAP_BIND_PASSWORD: give either LDAP_BIND_PASSWORD_FILE or LDAP_BIND_PASSWORD, not both']);
    assert.match(envErrors({ ...ENV, LDAP_BIND_PASSWORD: undefined })[0] ?? '', /^environment: LDAP_BIND_DN: the service password is missing: set LDAP_BIND_PASSWORD_FILE or LDAP_BIND_PASSWORD$/);
    assert.match(envErrors({ ...ENV, LDAP_BSAE_DN: 'x' })[0] ?? '', /^environment: LDAP_BSAE_DN: not a directory setting \(known: /);
    assert.deepEqual(envErrors({ LDAP_BASE_DN: 'dc=x' }), ['environment: LDAP_BASE_DN: set without LDAP_URL: no directory is configured from the environment (LDAP_BASE_DN)']);
  });

  it('a file and LDAP_URL together are refused', () => {
    const { file } = setup(MINIMAL);
    const errors = checkDirectoryConfig({ file, env: ENV });
    assert.deepEqual(errors.map((e) => [e.file, e.path]), [['environment', 'LDAP_URL']]);
    assert.match(errors[0]?.message ?? '', /configured in .*directories\.yml/);
    // With a file, an LDAP_* variable may hold the password its bind_password_env names.
    const viaEnv = MINIMAL.replace('bind_password_file: ldap-bind-password', 'bind_password_env: LDAP_BIND_PASSWORD');
    assert.equal(loadDirectoryConfig({ file: setup(viaEnv).file, env: { LDAP_BIND_PASSWORD: PASSWORD } })[0]?.bindPassword, PASSWORD);
  });
});

describe('directory configuration: the password is never in a message', () => {
  it('whatever goes wrong around it', () => {
    const broken = [
      minimal(`bind_password: ${PASSWORD}`),
      minimal(`bind_password: { value: ${PASSWORD} }`),
      minimal(`bind_password: [${PASSWORD}]`),
      minimal(`bind_pasword: ${PASSWORD}`),
      minimal(`urls: ["ldaps://idp:${PASSWORD}@ldap.example.org"]`, (t) => t.replace(/ {4}urls: .*\n/, '')),
      minimal('start_tls: false\nuser_filter: "(uid=x)"\nlockout: { threshold: 3, max_failures: 3 }', (t) => t.replace('ldaps:', 'ldap:')),
      `directories:\n  - ${PASSWORD}\n`,
      `directories: [${PASSWORD}`,
      minimal(`bind_password_env: ${PASSWORD}`),
      minimal(`name: ${PASSWORD}`),
      minimal(`bind_dn: "${PASSWORD}"`, (t) => t.replace(/ {4}bind_dn: cn=.*\n/, '')),
    ];
    for (const yaml of broken) {
      const { file } = setup(yaml);
      let thrown: unknown;
      try {
        loadDirectoryConfig({ file, env: {} });
      } catch (e) {
        thrown = e;
      }
      assert.ok(thrown instanceof DirectoryConfigError, yaml);
      assert.ok(thrown.errors.length > 0);
      assert.ok(!thrown.message.includes(PASSWORD), thrown.message);
      assert.ok(!thrown.message.includes('b1nd'), thrown.message);
    }
    for (const env of [
      { LDAP_URL: 'ldap://h', LDAP_START_TLS: 'false', LDAP_BIND_PASSWORD: PASSWORD, LDAP_BIND_DN: 'x', LDAP_BASE_DN: 'y' },
      { LDAP_URL: 'ldaps://h', LDAP_BIND_PASSWORD: PASSWORD, LDAP_BIND_PASSWORD_FILE: '/nonexistent' },
      { LDAP_URL: 'ldaps://h', LDAP_BIND_PASSWORD: PASSWORD, LDAP_PRESET: PASSWORD },
    ]) {
      const errors = checkDirectoryConfig({ env });
      assert.ok(errors.length > 0);
      assert.ok(!errors.map(formatFileError).join('\n').includes(PASSWORD));
    }
  });
});

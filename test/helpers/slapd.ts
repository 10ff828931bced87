/**
 * A real OpenLDAP server for the directory tests (issue 9): Debian's /usr/sbin/slapd, run as
 * the current user from a fresh temp dir, on loopback ports of its own. Nothing is mocked:
 * StartTLS on the ldap:// port and LDAPS on a second port with a CA generated per test
 * process, the memberOf / refint / ppolicy overlays, ACLs like a production tree.
 *
 * The tree (dc=example,dc=test):
 * - ou=people: inetOrgPerson users, passwords stored as {ARGON2} hashes (slapd's argon2
 *   module), and the cases a sign-in must tell apart: alice (engineering → staff), bob (no
 *   group), carol (locked by ppolicy a moment ago), dave (disabled by an administrator:
 *   pwdAccountLockedTime 000001010000Z), erin (pwdReset: must change her password), zoë
 *   (non-ASCII) and `a*b(c)` (filter metacharacters, RFC 4515 §3);
 * - ou=groups: groupOfNames; the memberOf overlay keeps memberOf on members, refint keeps
 *   member values right when a user is renamed or deleted; `engineering` is a member of `staff`;
 * - ou=services: the provider's service account, which may read people and groups with the
 *   operational attributes a sign-in needs (entryUUID, memberOf, the ppolicy state);
 * - ou=policies: the default password policy (pwdMaxFailure 5, lockout 300 s, window 300 s).
 * Users may bind and read themselves; anonymous may only bind.
 *
 * Helpers change the tree the way an administrator would (ldapmodify as the rootdn over
 * ldapi://, with ldap-utils, never through the client under test). Every slapd started here
 * is killed when the test file ends, pass or fail (a root `after` hook, and SIGKILL on exit).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import argon2 from 'argon2';
import type { DirectoryConfig } from '../../adapters/directory/types.ts';
import { freePort } from './env.ts';

export const SLAPD_PATH = process.env.SLAPD_PATH ?? '/usr/sbin/slapd';
const MODULE_PATH = '/usr/lib/ldap';
const SETPRIV = '/usr/bin/setpriv';
const SCHEMA_DIR = '/etc/ldap/schema';

/** Why the LDAP tests cannot run here, or false. For describeOrSkip (CI=true fails instead). */
export const slapdMissing: string | false = (() => {
  for (const f of [SLAPD_PATH, '/usr/sbin/slapadd', '/usr/bin/ldapmodify', '/usr/bin/openssl', `${MODULE_PATH}/ppolicy.so`, `${MODULE_PATH}/argon2.so`]) {
    if (!fs.existsSync(f)) return `${f} is missing (apt-get install slapd ldap-utils openssl)`;
  }
  return false;
})();

export const BASE_DN = 'dc=example,dc=test';
export const PEOPLE_DN = `ou=people,${BASE_DN}`;
export const GROUPS_DN = `ou=groups,${BASE_DN}`;
export const SERVICE_DN = `cn=idp,ou=services,${BASE_DN}`;
export const POLICY_DN = `cn=default,ou=policies,${BASE_DN}`;
const ADMIN_DN = `cn=admin,${BASE_DN}`;

export interface SlapdUser {
  uid: string;
  dn: string;
  password: string;
  cn: string;
  givenName: string;
  sn: string;
  mail: string;
}

const USERS = {
  alice: { uid: 'alice', password: 'Alice-pw-1', givenName: 'Alice', sn: 'Liddell', mail: 'alice@example.test' },
  bob: { uid: 'bob', password: 'Bob-pw-1', givenName: 'Bob', sn: 'Builder', mail: 'bob@example.test' },
  /** Locked by ppolicy (pwdAccountLockedTime = start time; unlocks after pwdLockoutDuration). */
  locked: { uid: 'carol', password: 'Carol-pw-1', givenName: 'Carol', sn: 'Locked', mail: 'carol@example.test' },
  /** Locked by an administrator: 000001010000Z never expires (ppolicy, draft-behera §5.3.3). */
  disabled: { uid: 'dave', password: 'Dave-pw-1', givenName: 'Dave', sn: 'Disabled', mail: 'dave@example.test' },
  /** pwdReset TRUE: must change the password at the next bind (pwdMustChange). */
  mustChange: { uid: 'erin', password: 'Erin-pw-1', givenName: 'Erin', sn: 'Reset', mail: 'erin@example.test' },
  zoe: { uid: 'zoë', password: 'Zoë-pässwörd-1', givenName: 'Zoë', sn: 'Ångström', mail: 'zoe@example.test' },
  /** A uid made of RFC 4515 filter metacharacters: `*`, `(`, `)`. */
  meta: { uid: 'a*b(c)', password: 'Meta-pw-1', givenName: 'Meta', sn: 'Chars', mail: 'meta@example.test' },
} as const;
export type UserKey = keyof typeof USERS;

export const GROUPS = ['engineering', 'staff', 'admins'] as const;
export type GroupName = (typeof GROUPS)[number];

export interface PasswordPolicy {
  maxFailure: number;
  lockoutDuration: number;
  failureCountInterval: number;
}

export interface SlapdOptions {
  /** The default password policy (defaults: 5 failures, 300 s lockout, 300 s window). */
  policy?: Partial<PasswordPolicy>;
}

export interface Slapd {
  /** ldap:// (StartTLS offered; plain allowed by the server, refused by our client unless allowPlain). */
  ldapUrl: string;
  /** The same port by name: the certificate is for `localhost` and IP 127.0.0.1. */
  ldapUrlLocalhost: string;
  ldapsUrl: string;
  /**
   * LDAPS on 127.0.0.2 (same port number): a name the certificate does not cover, for the
   * hostname verification test (RFC 6125; the certificate is for localhost and 127.0.0.1).
   */
  ldapsUrlWrongName: string;
  port: number;
  ldapsPort: number;
  /** The CA the server certificate chains to, and an unrelated CA (a wrong `ca_file`). */
  caFile: string;
  caPem: Buffer;
  wrongCaFile: string;
  wrongCaPem: Buffer;
  baseDn: string;
  peopleDn: string;
  groupsDn: string;
  serviceDn: string;
  servicePassword: string;
  policy: PasswordPolicy;
  users: Record<UserKey, SlapdUser>;
  groupDn(name: GroupName): string;
  /** A DirectoryConfig (openldap preset) for this server; `overrides` replace top-level keys. */
  directoryConfig(overrides?: Partial<DirectoryConfig>): DirectoryConfig;
  /** The pid of the running slapd (undefined when stopped). */
  readonly pid: number | undefined;
  /** SIGTERM and wait for the exit. The data stays; restart() brings it back. */
  stop(): Promise<void>;
  /** SIGKILL (a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** Starts again on the same ports with the same data (after stop() or kill(); stops first if running). */
  restart(): Promise<void>;
  /** Stops the server and removes its directory. */
  close(): Promise<void>;
  /** Applies an LDIF change record (ldapmodify as the rootdn). */
  modify(ldif: string): Promise<void>;
  /** Reads one entry as the rootdn: attribute (lower case) → values; operational attributes included. */
  read(dn: string, attributes?: string[]): Promise<Record<string, string[]> | undefined>;
  /** modrdn uid=old → uid=new (entryUUID stays; refint and memberOf follow). Returns the new DN. */
  renameUser(uid: string, newUid: string): Promise<string>;
  deleteUser(uid: string): Promise<void>;
  /** Locks as an administrator would: pwdAccountLockedTime 000001010000Z. */
  disableUser(uid: string): Promise<void>;
  /** Locks as ppolicy does after too many failures: pwdAccountLockedTime = now. */
  lockUser(uid: string): Promise<void>;
  /** Removes pwdAccountLockedTime and pwdFailureTime. */
  unlockUser(uid: string): Promise<void>;
  setPassword(uid: string, password: string): Promise<void>;
  addToGroup(memberDn: string, group: GroupName): Promise<void>;
  removeFromGroup(memberDn: string, group: GroupName): Promise<void>;
  /** How many failed binds ppolicy has recorded for this user (pwdFailureTime values). */
  failureCount(uid: string): Promise<number>;
  /** Total connections slapd has accepted since it started (cn=monitor). */
  connectionsAccepted(): Promise<number>;
  /** Connections currently open (cn=monitor; the monitor query's own connection excluded). */
  connectionsOpen(): Promise<number>;
  /** slapd's stderr (run at `-d 0`: start-up errors only), the last 20 kB. */
  readonly log: string;
  dir: string;
}

export function userDn(uid: string): string {
  return `uid=${escapeDnValue(uid)},${PEOPLE_DN}`;
}

/** RFC 4514 §2.4 escaping of an attribute value inside a DN. */
export function escapeDnValue(v: string): string {
  return v
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

// --- the CA, generated once per test process (the openssl runs cost ~50 ms) ----------

interface Pki { dir: string; caFile: string; certFile: string; keyFile: string; wrongCaFile: string }
let pki: Promise<Pki> | undefined;

function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.filter((a) => !a.includes('secret')).join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
    // A child that exits without reading its input (openssl, a failed command) closes the
    // pipe first: the write's EPIPE says nothing its exit status does not, and unhandled it
    // would surface as an uncaught exception in whatever test runs next.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

function makePki(): Promise<Pki> {
  pki ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-ldap-pki-'));
    cleanupDirs.add(dir);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const ca = (name: string) => run('openssl', ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2',
      '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { cwd: dir });
    await Promise.all([ca('idp-test-ca'), ca('unrelated-ca'),
      run('openssl', ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], { cwd: dir })]);
    fs.writeFileSync(path.join(dir, 'server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
    await run('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'idp-test-ca.pem', '-CAkey', 'idp-test-ca.key', '-CAcreateserial',
      '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], { cwd: dir });
    return {
      dir,
      caFile: path.join(dir, 'idp-test-ca.pem'),
      certFile: path.join(dir, 'server.pem'),
      keyFile: path.join(dir, 'server.key'),
      wrongCaFile: path.join(dir, 'unrelated-ca.pem'),
    };
  })();
  return pki;
}

// --- cleanup: every slapd dies with the test file -----------------------------------

const live = new Set<ChildProcess>();
const cleanupDirs = new Set<string>();
after(async () => {
  await Promise.all([...live].map((c) => terminate(c, 'SIGTERM')));
  for (const d of cleanupDirs) fs.rmSync(d, { recursive: true, force: true });
  cleanupDirs.clear();
});
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
  for (const d of cleanupDirs) fs.rmSync(d, { recursive: true, force: true });
});

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), 10_000); });
  if ((await Promise.race([exited, late])) === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}

// --- the configuration and the tree -------------------------------------------------

/** {SSHA} (RFC 2307 style, salted SHA-1): only for the rootdn, which the ACLs never see. */
function ssha(password: string): string {
  const salt = crypto.randomBytes(8);
  return `{SSHA}${Buffer.concat([crypto.createHash('sha1').update(password).update(salt).digest(), salt]).toString('base64')}`;
}

/** {ARGON2}: argon2id in PHC form, verified by slapd's argon2 module. Small costs: tests bind a lot. */
async function argon2Hash(password: string): Promise<string> {
  const phc = await argon2.hash(password, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
  // node-argon2 writes the parameters sorted (m, p, t); slapd's module (libsodium) reads
  // them only in the reference order m, t, p.
  return `{ARGON2}${phc.replace(/\$m=(\d+),p=(\d+),t=(\d+)\$/, '$m=$1,t=$3,p=$2$')}`;
}

function generalizedTime(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '')}Z`;
}

/** An LDIF line `attr: value`, base64 (`attr:: …`) when the value is not a SAFE-STRING (RFC 2849). */
function ldifLine(attr: string, value: string): string {
  // A conservative SAFE-STRING: printable ASCII, not starting with space, ':' or '<'.
  return /^[\w=,.@*()'+\-{}$/][\w=,.@*()' +\-{}$/:]*$/.test(value) && !value.endsWith(' ')
    ? `${attr}: ${value}`
    : `${attr}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

function entry(dn: string, attrs: [string, string][]): string {
  return [ldifLine('dn', dn), ...attrs.map(([a, v]) => ldifLine(a, v))].join('\n') + '\n\n';
}

function slapdConf(dir: string, p: Pki, adminPassword: string, policyDn: string): string {
  return `# Generated by test/helpers/slapd.ts
include ${SCHEMA_DIR}/core.schema
include ${SCHEMA_DIR}/cosine.schema
include ${SCHEMA_DIR}/inetorgperson.schema
modulepath ${MODULE_PATH}
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload ppolicy
moduleload argon2
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
TLSCACertificateFile ${p.caFile}
TLSCertificateFile ${p.certFile}
TLSCertificateKeyFile ${p.keyFile}
# The monitor below counts connections for the pool tests.
database monitor
access to * by dn.exact="${ADMIN_DN}" read by * none

database mdb
suffix "${BASE_DN}"
rootdn "${ADMIN_DN}"
rootpw ${ssha(adminPassword)}
directory ${dir}/data
dbnosync
maxsize 67108864
index objectClass eq
index uid eq,sub
index mail eq
index entryUUID eq
index member eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member
overlay ppolicy
ppolicy_default "${policyDn}"
ppolicy_use_lockout

# Passwords: anyone may authenticate against them (a bind), nobody reads them.
access to attrs=userPassword
  by anonymous auth
  by self auth
  by * none
# People and groups: the service account reads them, operational attributes included
# (entryUUID, memberOf, pwdAccountLockedTime, pwdFailureTime, pwdChangedTime, pwdReset);
# a user reads their own entry; anonymous nothing.
access to dn.subtree="${PEOPLE_DN}"
  by dn.exact="${SERVICE_DN}" read
  by self read
  by * none
access to dn.subtree="${GROUPS_DN}"
  by dn.exact="${SERVICE_DN}" read
  by * none
# The suffix and the OU entries themselves: the service account may search from the base.
access to dn.base="${BASE_DN}"
  by dn.exact="${SERVICE_DN}" read
  by * none
access to *
  by self read
  by * none
`;
}

async function baseLdif(users: Record<UserKey, SlapdUser>, servicePassword: string, policy: PasswordPolicy, started: Date): Promise<string> {
  let ldif = entry(BASE_DN, [['objectClass', 'top'], ['objectClass', 'dcObject'], ['objectClass', 'organization'], ['dc', 'example'], ['o', 'Example Test']]);
  for (const ou of ['people', 'groups', 'services', 'policies']) {
    ldif += entry(`ou=${ou},${BASE_DN}`, [['objectClass', 'organizationalUnit'], ['ou', ou]]);
  }
  ldif += entry(POLICY_DN, [
    ['objectClass', 'organizationalRole'], ['objectClass', 'pwdPolicy'], ['cn', 'default'],
    ['pwdAttribute', 'userPassword'],
    ['pwdMaxFailure', String(policy.maxFailure)],
    ['pwdLockout', 'TRUE'],
    ['pwdLockoutDuration', String(policy.lockoutDuration)],
    ['pwdFailureCountInterval', String(policy.failureCountInterval)],
    ['pwdMustChange', 'TRUE'],
    ['pwdAllowUserChange', 'TRUE'],
  ]);
  ldif += entry(SERVICE_DN, [
    ['objectClass', 'organizationalRole'], ['objectClass', 'simpleSecurityObject'], ['cn', 'idp'],
    ['description', 'The identity provider\'s service account'], ['userPassword', await argon2Hash(servicePassword)],
  ]);
  const extra: Partial<Record<UserKey, [string, string][]>> = {
    locked: [['pwdAccountLockedTime', generalizedTime(started)]],
    disabled: [['pwdAccountLockedTime', '000001010000Z']],
    mustChange: [['pwdReset', 'TRUE']],
  };
  const hashes = await Promise.all(Object.values(users).map((u) => argon2Hash(u.password)));
  (Object.keys(users) as UserKey[]).forEach((key, i) => {
    const u = users[key];
    ldif += entry(u.dn, [
      ['objectClass', 'inetOrgPerson'], ['uid', u.uid], ['cn', u.cn], ['givenName', u.givenName], ['sn', u.sn], ['mail', u.mail],
      ['userPassword', hashes[i] ?? ''], ...(extra[key] ?? []),
    ]);
  });
  return ldif;
}

/** Groups go in through slapd itself, so the memberOf overlay writes memberOf as in production. */
function groupsLdif(users: Record<UserKey, SlapdUser>): string {
  const g = (name: GroupName) => `cn=${name},${GROUPS_DN}`;
  return [
    // groupOfNames requires a member (RFC 4519 §3.5): staff's is the engineering group.
    entry(g('engineering'), [['objectClass', 'groupOfNames'], ['cn', 'engineering'], ['member', users.alice.dn]]),
    entry(g('staff'), [['objectClass', 'groupOfNames'], ['cn', 'staff'], ['member', g('engineering')]]),
    entry(g('admins'), [['objectClass', 'groupOfNames'], ['cn', 'admins'], ['member', users.zoe.dn]]),
  ].join('');
}

// --- the handle ----------------------------------------------------------------------

export async function startSlapd(opts: SlapdOptions = {}): Promise<Slapd> {
  if (slapdMissing) throw new Error(slapdMissing);
  const p = await makePki();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-slapd-'));
  cleanupDirs.add(dir);
  fs.mkdirSync(path.join(dir, 'data'));
  const adminPassword = crypto.randomBytes(12).toString('hex');
  const servicePassword = `svc-${crypto.randomBytes(12).toString('hex')}`;
  const pwFile = path.join(dir, 'admin.pw');
  fs.writeFileSync(pwFile, adminPassword, { mode: 0o600 });
  const policy: PasswordPolicy = { maxFailure: 5, lockoutDuration: 300, failureCountInterval: 300, ...opts.policy };

  const users = Object.fromEntries(Object.entries(USERS).map(([k, u]) => [k, {
    ...u, dn: userDn(u.uid), cn: `${u.givenName} ${u.sn}`,
  }])) as Record<UserKey, SlapdUser>;

  const conf = path.join(dir, 'slapd.conf');
  fs.writeFileSync(conf, slapdConf(dir, p, adminPassword, POLICY_DN));
  await run('/usr/sbin/slapadd', ['-q', '-f', conf, '-b', BASE_DN], { input: await baseLdif(users, servicePassword, policy, new Date()) });

  const ldapi = `ldapi://${encodeURIComponent(path.join(dir, 'ldapi'))}`;
  let child: ChildProcess | undefined;
  let log = '';
  let port = 0;
  let ldapsPort = 0;

  const launch = async (): Promise<void> => {
    const args = ['-d', '0', '-f', conf, '-h', `ldap://127.0.0.1:${port}/ ldaps://127.0.0.1:${ldapsPort}/ ldaps://127.0.0.2:${ldapsPort}/ ${ldapi}`];
    // setpriv --pdeathsig: the kernel kills slapd when the test process dies, even when an
    // uncaught error ends it without 'exit' handlers (node:test rethrows from its own handler).
    const proc = fs.existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', SLAPD_PATH, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(SLAPD_PATH, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    proc.stderr?.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-20_000); });
    let exited = false;
    proc.once('exit', () => { exited = true; });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) throw new Error(`slapd exited at start (ports ${port}/${ldapsPort}): ${log}`);
      if (await canConnect(port) && await canConnect(ldapsPort) && await canConnect(ldapsPort, '127.0.0.2')) break;
      if (Date.now() > deadline) {
        await terminate(proc, 'SIGKILL');
        throw new Error(`slapd did not listen within 30 s: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    child = proc;
  };

  // Free ports are picked at random; another process may take one before slapd binds it.
  for (let attempt = 1; ; attempt++) {
    [port, ldapsPort] = await Promise.all([freePort(), freePort()]);
    if (port === ldapsPort) continue;
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 5 || !/bind|address already in use|errno=98/i.test(String(err))) throw err;
    }
  }

  const ldapArgs = ['-H', ldapi, '-x', '-D', ADMIN_DN, '-y', pwFile];
  // The Relax Rules control (draft-zeilenga-ldap-relax) lets the rootdn write the ppolicy state
  // (pwdFailureTime is NO-USER-MODIFICATION), as an administrator's unlock does.
  const modify = async (ldif: string) => { await run('/usr/bin/ldapmodify', [...ldapArgs, '-e', 'relax'], { input: ldif }); };
  await run('/usr/bin/ldapadd', ldapArgs, { input: groupsLdif(users) });

  const read = async (dn: string, attributes: string[] = ['*', '+']): Promise<Record<string, string[]> | undefined> => {
    let out: string;
    try {
      out = await run('/usr/bin/ldapsearch', [...ldapArgs, '-LLL', '-o', 'ldif-wrap=no', '-s', 'base', '-b', dn, '(objectClass=*)', ...attributes]);
    } catch (err) {
      if (/No such object/i.test(String(err))) return undefined;
      throw err;
    }
    const attrs: Record<string, string[]> = {};
    for (const line of out.split('\n')) {
      const m = /^([^:]+)(::?) ?(.*)$/.exec(line);
      if (!m || m[1] === 'dn') continue;
      const name = (m[1] ?? '').toLowerCase();
      const value = m[2] === '::' ? Buffer.from(m[3] ?? '', 'base64').toString('utf8') : (m[3] ?? '');
      (attrs[name] ??= []).push(value);
    }
    return attrs;
  };

  const monitorCounter = async (dn: string): Promise<number> => {
    const a = await read(dn, ['monitorCounter']);
    return Number(a?.monitorcounter?.[0] ?? NaN);
  };

  const handle: Slapd = {
    ldapUrl: `ldap://127.0.0.1:${port}`,
    ldapUrlLocalhost: `ldap://localhost:${port}`,
    ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
    ldapsUrlWrongName: `ldaps://127.0.0.2:${ldapsPort}`,
    port,
    ldapsPort,
    caFile: p.caFile,
    caPem: fs.readFileSync(p.caFile),
    wrongCaFile: p.wrongCaFile,
    wrongCaPem: fs.readFileSync(p.wrongCaFile),
    baseDn: BASE_DN,
    peopleDn: PEOPLE_DN,
    groupsDn: GROUPS_DN,
    serviceDn: SERVICE_DN,
    servicePassword,
    policy,
    users,
    dir,
    groupDn: (name) => `cn=${name},${GROUPS_DN}`,
    directoryConfig(overrides = {}) {
      return {
        name: 'corp',
        preset: 'openldap',
        urls: [handle.ldapUrl],
        startTls: true,
        allowPlain: false,
        ca: handle.caPem,
        caFile: handle.caFile,
        bindDn: SERVICE_DN,
        bindPassword: servicePassword,
        baseDn: PEOPLE_DN,
        scope: 'sub',
        userFilter: '(&(objectClass=inetOrgPerson)(uid={username}))',
        idAttribute: 'entryUUID',
        attributes: { email: 'mail', name: 'cn', given_name: 'givenName', family_name: 'sn', preferred_username: 'uid' },
        groups: { source: 'member_of', attribute: 'memberOf', filter: '(&(objectClass=groupOfNames)(member={dn}))', nested: true, nameAttribute: 'cn' },
        timeouts: { connectMs: 2000, operationMs: 2000 },
        poolSize: 4,
        lockout: { threshold: policy.maxFailure, windowSeconds: policy.failureCountInterval, maxFailures: policy.maxFailure - 1 },
        source: 'test',
        ...overrides,
      };
    },
    get pid() { return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined; },
    get log() { return log; },
    async stop() { if (child) await terminate(child, 'SIGTERM'); },
    async kill() { if (child) await terminate(child, 'SIGKILL'); },
    async restart() {
      if (child) await terminate(child, 'SIGTERM');
      await launch();
    },
    async close() {
      if (child) await terminate(child, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
      cleanupDirs.delete(dir);
    },
    modify,
    read,
    async renameUser(uid, newUid) {
      await modify(`${ldifLine('dn', userDn(uid))}\nchangetype: modrdn\n${ldifLine('newrdn', `uid=${escapeDnValue(newUid)}`)}\ndeleteoldrdn: 1\n`);
      return userDn(newUid);
    },
    async deleteUser(uid) {
      await modify(`${ldifLine('dn', userDn(uid))}\nchangetype: delete\n`);
    },
    async disableUser(uid) {
      await modify(`${ldifLine('dn', userDn(uid))}\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n`);
    },
    async lockUser(uid) {
      await modify(`${ldifLine('dn', userDn(uid))}\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: ${generalizedTime(new Date())}\n`);
    },
    async unlockUser(uid) {
      const a = await read(userDn(uid), ['pwdAccountLockedTime', 'pwdFailureTime']);
      const changes = ['pwdaccountlockedtime', 'pwdfailuretime'].filter((n) => a?.[n]?.length).map((n) => `delete: ${n}\n-\n`);
      if (changes.length) await modify(`${ldifLine('dn', userDn(uid))}\nchangetype: modify\n${changes.join('')}`);
    },
    async setPassword(uid, password) {
      await modify(`${ldifLine('dn', userDn(uid))}\nchangetype: modify\nreplace: userPassword\n${ldifLine('userPassword', await argon2Hash(password))}\n`);
    },
    async addToGroup(memberDn, group) {
      await modify(`dn: cn=${group},${GROUPS_DN}\nchangetype: modify\nadd: member\n${ldifLine('member', memberDn)}\n`);
    },
    async removeFromGroup(memberDn, group) {
      await modify(`dn: cn=${group},${GROUPS_DN}\nchangetype: modify\ndelete: member\n${ldifLine('member', memberDn)}\n`);
    },
    async failureCount(uid) {
      const a = await read(userDn(uid), ['pwdFailureTime']);
      return a?.pwdfailuretime?.length ?? 0;
    },
    connectionsAccepted: () => monitorCounter('cn=Total,cn=Connections,cn=Monitor'),
    async connectionsOpen() {
      // The ldapsearch asking is one of them.
      return (await monitorCounter('cn=Current,cn=Connections,cn=Monitor')) - 1;
    },
  };
  return handle;
}

async function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}

// --- servers that do not answer -------------------------------------------------------

/**
 * A TCP server on loopback that accepts connections and never sends a byte: a directory
 * that "accepts the connection but never answers". `connections` counts accepted sockets;
 * `open` those still open (the client must have destroyed its socket at its deadline).
 */
export async function hangingLdapServer(): Promise<{ url: string; ldapsUrl: string; port: number; readonly connections: number; readonly open: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    // Read (and drop) what the client sends, so its close is seen: a paused socket never ends.
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `ldap://127.0.0.1:${port}`,
    ldapsUrl: `ldaps://127.0.0.1:${port}`,
    port,
    get connections() { return connections; },
    get open() { return sockets.size; },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port nothing listens on (connections are refused): bound then released. */
export async function refusedPort(): Promise<{ port: number; url: string }> {
  const port = await freePort();
  return { port, url: `ldap://127.0.0.1:${port}` };
}

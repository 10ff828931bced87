/**
 * The administrator's side of directories (issue 9): `idp directory test` against a real
 * slapd (the service bind, a user's mapped claims and groups, no password printed), its
 * failures (unknown user, unreachable directory), and `idp config check` / `npm start`
 * refusing a broken directories.yml with file, line and key.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { describeOrSkip, freePort, tempDir, testEnv } from '../helpers/env.ts';
import { runNode, type RunResult } from '../helpers/process.ts';
import { refusedPort, slapdMissing, startSlapd, type Slapd } from '../helpers/slapd.ts';
import { directoryYaml } from '../helpers/directory.ts';
import { directoryAccountId } from '../../adapters/directory/index.ts';

const DIST = path.join(import.meta.dirname, '..', '..');
const BIN = path.join(DIST, 'idp', 'bin.js');
const MAIN = path.join(DIST, 'idp', 'main.js');

function idp(env: Record<string, string>, args: string[]): Promise<RunResult> {
  return runNode([BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
}

describeOrSkip(slapdMissing, 'idp directory test and the directory configuration checks', () => {
  let slapd: Slapd;
  let env: Record<string, string>;
  let dir: string;
  let passwordFile: string;

  before(async () => {
    slapd = await startSlapd();
    dir = tempDir('idp-directory-cli-');
    passwordFile = path.join(dir, 'bind-password');
    fs.writeFileSync(passwordFile, `${slapd.servicePassword}\n`, { mode: 0o600 });
    const file = path.join(dir, 'directories.yml');
    fs.writeFileSync(file, directoryYaml(slapd, passwordFile));
    env = testEnv('embedded', dir, await freePort(), { DIRECTORY_CONFIG: file });
  });
  after(() => slapd?.close());

  it('binds as the service account and prints a user\'s mapped claims, groups and sub; never a password', async () => {
    const r = await idp(env, ['directory', 'test', 'corp', '--user', slapd.users.alice.uid]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^directory corp \(openldap\): OK$/m);
    assert.match(r.stdout, /connected: ldap:\/\/127\.0\.0\.1:\d+ \(starttls\), service bind OK/);
    assert.match(r.stdout, /^ {2}email: alice@example\.test$/m);
    assert.match(r.stdout, /^ {2}groups: engineering, staff$/m);
    const uuid = (await slapd.read(slapd.users.alice.dn, ['entryUUID']))!.entryuuid![0]!;
    assert.ok(r.stdout.includes(`(sub ${directoryAccountId('corp', uuid)})`), r.stdout);
    assert.ok(!r.stdout.includes(slapd.servicePassword) && !r.stderr.includes(slapd.servicePassword), 'the service password is never printed');

    const json = JSON.parse((await idp(env, ['directory', 'test', '--user', slapd.users.disabled.uid, '--json'])).stdout) as { user: { state: string } }[];
    assert.equal(json[0]!.user.state, 'disabled');
  });

  it('fails (exit 1) for a username that finds no one, and for a directory that does not answer', async () => {
    const none = await idp(env, ['directory', 'test', '--user', '*)(uid=*']);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /user search: no entry matches/);

    const down = path.join(dir, 'down.yml');
    fs.writeFileSync(down, directoryYaml(slapd, passwordFile, { overrides: { urls: [(await refusedPort()).url], timeouts: { connect_seconds: 1 } } }));
    const r = await idp({ ...env, DIRECTORY_CONFIG: down }, ['directory', 'test']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAILED/);
    assert.match(r.stdout, /error: directory corp unavailable \(connect\)/);
  });

  it('a wrong service password is a failed test that names the service bind, not the password', async () => {
    const wrong = path.join(dir, 'wrong-password');
    fs.writeFileSync(wrong, 'not the service password\n', { mode: 0o600 });
    const file = path.join(dir, 'wrong.yml');
    fs.writeFileSync(file, directoryYaml(slapd, wrong));
    const r = await idp({ ...env, DIRECTORY_CONFIG: file }, ['directory', 'test']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /service_bind/);
    assert.ok(!r.stdout.includes('not the service password'));
  });

  it('a broken directories.yml: config check names file, line and key; the server refuses to start (exit 78)', async () => {
    const file = path.join(dir, 'broken.yml');
    fs.writeFileSync(file, [
      'directories:',
      '  - name: corp',
      '    preset: openldap',
      `    urls: [ldap://127.0.0.1:${slapd.port}]`,
      '    allow_plain: false',
      '    start_tls: false',
      '    bind_dn: cn=idp,ou=services,dc=example,dc=test',
      '    bind_password: inline-secret-value',
      '    base_dn: ou=people,dc=example,dc=test',
      '',
    ].join('\n'));
    const check = await idp({ ...env, DIRECTORY_CONFIG: file }, ['config', 'check']);
    assert.equal(check.code, 1);
    assert.match(check.stderr, /broken\.yml:8:\d+: directories\.0\.bind_password: /);
    assert.match(check.stderr, /broken\.yml:\d+:\d+: directories\.0\.\S+: .*(plain|StartTLS|clear)/i);
    assert.ok(!check.stderr.includes('inline-secret-value'), 'the password is not repeated');

    const start = await runNode([MAIN], { env: { PATH: process.env.PATH ?? '', ...env, DIRECTORY_CONFIG: file } });
    assert.equal(start.code, 78, start.stderr);
    assert.match(start.stderr, /directory configuration rejected/);
  });
});

/**
 * Whether a linked account's sessions and refresh tokens keep working (Directories.sessionState,
 * used by findAccount at every use): the rules of our own code, over a stand-in connection that
 * answers as a directory would (the real directory path is test/integration/directory.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Directories } from '../../adapters/directory/index.ts';
import { loadDirectoryConfig } from '../../adapters/directory/config.ts';
import { DirectoryUnavailableError, type DirectoryConnection, type RawEntry } from '../../adapters/directory/types.ts';

const UUID = '0f0e0d0c-0b0a-4909-8807-060504030201';
const config = loadDirectoryConfig({
  env: {
    LDAP_URL: 'ldap://directory.invalid', LDAP_ALLOW_PLAIN: 'true', LDAP_START_TLS: 'false', LDAP_PRESET: 'openldap',
    LDAP_BIND_DN: 'cn=idp,dc=example,dc=test', LDAP_BIND_PASSWORD: 'SERVICE_PW', SERVICE_PW: 'x', LDAP_BASE_DN: 'dc=example,dc=test',
  },
})[0]!;

/** A directory whose one entry the test changes; `down` makes every search fail as unreachable. */
function fakeDirectory() {
  const state: { entry: RawEntry | undefined; down: boolean } = {
    entry: { dn: 'uid=alice,dc=example,dc=test', attributes: { entryUUID: [UUID], uid: ['alice'] } },
    down: false,
  };
  const connection: DirectoryConnection = {
    async search() {
      if (state.down) throw new DirectoryUnavailableError(config.name, 'connect', 'refused');
      return state.entry ? [state.entry] : [];
    },
    async bind() { return { ok: true }; },
    async checkServiceBind() { return { url: config.urls[0]!, tls: 'none' }; },
    async close() {},
  };
  return { state, directories: new Directories([config], () => connection) };
}

describe('a linked account\'s sessions follow its directory entry', () => {
  it('active and locked entries keep their sessions; disabled, expired and deleted ones end them', async () => {
    const { state, directories } = fakeDirectory();
    assert.equal(await directories.sessionState(config.name, UUID, 0), 'active');
    // Locked by failed binds: an attacker guessing passwords must not sign the owner out everywhere.
    state.entry!.attributes.pwdAccountLockedTime = ['20261121120000Z'];
    assert.equal(await directories.sessionState(config.name, UUID, 0), 'active');
    state.entry!.attributes.pwdAccountLockedTime = ['000001010000Z'];
    assert.equal(await directories.sessionState(config.name, UUID, 0), 'ended');
    state.entry = undefined;
    assert.equal(await directories.sessionState(config.name, UUID, 0), 'ended');
    assert.equal(await directories.sessionState('gone-from-config', UUID, 0), 'ended', 'a directory removed from the configuration vouches for no one');
  });

  it('an entry whose id differs from the link is not the linked user', async () => {
    const { state, directories } = fakeDirectory();
    state.entry!.attributes.entryUUID = ['11111111-2222-4333-8444-555555555555'];
    assert.equal(await directories.sessionState(config.name, UUID, 0), 'ended');
  });

  it('a directory that does not answer: usable within the grace after this process last saw the entry active, unavailable after', async () => {
    const { state, directories } = fakeDirectory();
    state.down = true;
    assert.equal(await directories.sessionState(config.name, UUID, 300_000), 'unavailable', 'never seen active: no grace');
    state.down = false;
    const t0 = Date.now();
    assert.equal(await directories.sessionState(config.name, UUID, 300_000, t0), 'active');
    state.down = true;
    assert.equal(await directories.sessionState(config.name, UUID, 300_000, t0 + 299_000), 'active');
    assert.equal(await directories.sessionState(config.name, UUID, 300_000, t0 + 301_000), 'unavailable');
    assert.equal(await directories.sessionState(config.name, UUID, 0, t0 + 1), 'unavailable', 'grace 0: refused at once');
    // Seen ended: an outage does not bring it back.
    state.down = false;
    state.entry = undefined;
    assert.equal(await directories.sessionState(config.name, UUID, 300_000, t0 + 2), 'ended');
    state.down = true;
    assert.equal(await directories.sessionState(config.name, UUID, 300_000, t0 + 3), 'unavailable');
  });
});

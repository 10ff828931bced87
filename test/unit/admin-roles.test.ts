/**
 * RoleAdmin's guard (idp/admin/roles.ts): a caller changes only the roles it holds itself,
 * judged against the version it names in If-Match, not against whatever it read meanwhile.
 * The store is a stand-in that keeps versions as the real ones do (one winner per version;
 * the real stores are tested against that in the storage contract suite).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { VersionConflictError, type AdminRoles, type Storage } from '../../adapters/storage/port.ts';
import { RoleAdmin } from '../../idp/admin/roles.ts';
import type { AuditInput } from '../../models/types.ts';

function store(onGet: () => void = () => {}) {
  let roles: AdminRoles = { scopes: ['admin:read'], version: 1 };
  const s = {
    accounts: { findById: async (id: string) => ({ id }) },
    roles: {
      get: async () => {
        const r = structuredClone(roles);
        onGet();
        return r;
      },
      set: async (_id: string, scopes: string[], ifVersion: number) => {
        if (ifVersion !== roles.version) throw new VersionConflictError('roles', roles.version);
        roles = { scopes: [...scopes].sort(), version: ifVersion + 1 };
        return structuredClone(roles);
      },
    },
  };
  return { storage: s as unknown as Storage, now: () => roles, grant: (scopes: string[]) => { roles = { scopes, version: roles.version + 1 }; } };
}

const actor = { kind: 'client', id: 'writer' } as const;
const held = new Set(['admin:read', 'admin:write']);

it('refuses a change whose If-Match is not the version the holding check looked at', async () => {
  // Another administrator grants admin:keys (version 2) just after this change read version 1:
  // naming version 2 in If-Match must not remove admin:keys unseen by a caller not holding it.
  let raced = false;
  const s = store(() => {
    if (!raced) {
      raced = true;
      s.grant(['admin:keys', 'admin:read']);
    }
  });
  const audit: AuditInput[] = [];
  const admin = new RoleAdmin(s.storage, async (e) => { audit.push(e); });
  await assert.rejects(admin.set('u1', { scopes: ['admin:read'] }, 2, actor, held), VersionConflictError);
  assert.deepEqual(s.now(), { scopes: ['admin:keys', 'admin:read'], version: 2 }, 'admin:keys is still held');
  assert.deepEqual(audit, []);
});

it('applies a change of the version read when it touches only what the caller holds', async () => {
  const s = store();
  const admin = new RoleAdmin(s.storage, async () => {});
  assert.deepEqual(await admin.set('u1', { scopes: ['admin:read', 'admin:write'] }, 1, actor, held), { account_id: 'u1', scopes: ['admin:read', 'admin:write'], version: 2 });
});

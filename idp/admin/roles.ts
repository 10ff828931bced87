/**
 * Who is an administrator, and of what: the admin scopes an account holds (port.ts
 * RoleStore). An administrator's token is cut to these at every request (auth.ts), so a role
 * taken away counts at once. Changing roles is itself guarded: the caller must hold every
 * scope it grants or takes away, so admin:write alone cannot mint an admin:keys holder. The
 * CLI (on the server's disk) is how the first administrator is made.
 */
import * as z from 'zod';
import type { Actor, AuditInput } from '../../models/types.ts';
import { VersionConflictError, type AdminRoles, type Storage } from '../../adapters/storage/port.ts';
import { ADMIN_SCOPE_NAMES, type AdminScope } from './route.ts';

export const RolesInput = z.strictObject({
  scopes: z.array(z.enum(ADMIN_SCOPE_NAMES as [AdminScope, ...AdminScope[]])).max(ADMIN_SCOPE_NAMES.length)
    .describe('The admin scopes the account holds from now on (empty: none).'),
}).meta({ id: 'RolesInput' });

export const RolesView = z.object({
  account_id: z.string(),
  scopes: z.array(z.string()),
  version: z.int().describe('0 when no roles were ever set.'),
}).meta({ id: 'Roles' });

export class RoleAdminError extends Error {
  override name = 'RoleAdminError';
  readonly code: 'not_found' | 'forbidden';
  constructor(code: RoleAdminError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export class RoleAdmin {
  readonly #storage: Storage;
  readonly #audit: (e: AuditInput) => Promise<void>;
  constructor(storage: Storage, audit: (e: AuditInput) => Promise<void>) {
    this.#storage = storage;
    this.#audit = audit;
  }

  async get(accountId: string): Promise<z.output<typeof RolesView>> {
    if (!(await this.#storage.accounts.findById(accountId))) throw new RoleAdminError('not_found', `no user "${accountId}"`);
    const r = await this.#storage.roles.get(accountId);
    return { account_id: accountId, scopes: r.scopes, version: r.version };
  }

  /**
   * Sets the account's roles at version `ifVersion`. `held`: the caller's own scopes (every
   * scope for the CLI); the change may only touch scopes among them.
   */
  async set(accountId: string, raw: unknown, ifVersion: number, actor: Actor, held: ReadonlySet<string> | 'all'): Promise<z.output<typeof RolesView>> {
    const { scopes } = RolesInput.parse(raw);
    if (!(await this.#storage.accounts.findById(accountId))) throw new RoleAdminError('not_found', `no user "${accountId}"`);
    const before: AdminRoles = await this.#storage.roles.get(accountId);
    // The check below is judged on `before`: only a change of that very version may follow
    // (the store's versioned write then guarantees nothing changed in between).
    if (before.version !== ifVersion) throw new VersionConflictError(`the roles of account "${accountId}"`, before.version);
    const touched = [...scopes.filter((x) => !before.scopes.includes(x)), ...before.scopes.filter((x) => !scopes.includes(x as AdminScope))];
    const lacking = held === 'all' ? [] : touched.filter((x) => !held.has(x));
    if (lacking.length) throw new RoleAdminError('forbidden', `granting or removing ${lacking.join(', ')} needs a token holding ${lacking.length > 1 ? 'them' : 'it'}`);
    const after = await this.#storage.roles.set(accountId, scopes, ifVersion);
    await this.#audit({ actor, action: 'user.roles', outcome: 'success', target: { type: 'user', id: accountId }, before: before.scopes, after: after.scopes });
    return { account_id: accountId, scopes: after.scopes, version: after.version };
  }
}

/**
 * The admin API, assembled: the services (one implementation each, shared with the `idp`
 * CLI) and their routes, behind the HTTP layer of api.ts. Built once per server; what
 * changes with a key rotation (the verification keys, the provider that validates client
 * metadata) is read through the getters it is given.
 */
import fs from 'node:fs';
import * as jose from 'jose';
import type { Storage } from '../../adapters/storage/port.ts';
import type { SecretBox } from '../../adapters/crypto.ts';
import type { Logger } from '../log.ts';
import type { Settings } from '../settings.ts';
import { OIDC_SCOPES, adminAudience } from '../tokens.ts';
import { adminApi } from './api.ts';
import { ClientAdmin } from './clients.ts';
import { EventAdmin } from './events.ts';
import { clientRoutes } from './routes/clients.ts';
import { eventRoutes } from './routes/events.ts';
import { keyRoutes } from './routes/keys.ts';
import { roleRoutes } from './routes/roles.ts';
import { auditRoutes } from './routes/audit.ts';
import { userRoutes } from './routes/users.ts';
import { policyRoutes } from './routes/policies.ts';
import type { Place } from '../../policies/types.ts';
import { UserService } from './users.ts';
import type { LogoutNotifier } from './backchannel.ts';
import type { AuditTrail } from '../audit.ts';
import { RoleAdmin } from './roles.ts';
import { ADMIN_SCOPE_NAMES, type AdminRoute } from './route.ts';

export interface AdminDeps {
  settings: Settings;
  storage: Storage;
  box: SecretBox;
  log: Logger;
  /** Resource scopes (tokens.ts resourceScopeNames, admin scopes among them). */
  resourceScopes: readonly string[];
  /** The policy's ACR values, weakest first. */
  levels(): readonly string[];
  /** The provider's verification keys now. */
  verificationKeys(): jose.JWTVerifyGetKey;
  /** oidc-provider's client metadata validation (the current provider's Client.validate). */
  validateClient(metadata: Record<string, unknown>): Promise<void>;
  /** Called after this process changed a client (its client cache forgets at once). */
  clientsChanged(): void;
  /** Where an address is (the dry run replays events with the live lookup). */
  placeOf(ip: string): Place;
  /** Tells relying parties of sessions an administrator ended (OIDC Back-Channel Logout 1.0). */
  logout: LogoutNotifier;
  /** The audit trail: admin actions go on it, and the API serves it. */
  trail: AuditTrail;
  clientIp(ctx: import('koa').Context): string;
}

const VERSION = (JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function adminRoutesOf(d: AdminDeps): AdminRoute[] {
  const clients = new ClientAdmin({
    storage: d.storage, box: d.box,
    supportedScopes: new Set<string>([...OIDC_SCOPES, ...d.resourceScopes]),
    acrValues: d.levels(),
    validate: d.validateClient,
    audit: async (e) => {
      d.clientsChanged();
      await d.trail.audit(e);
    },
  });
  return [
    ...clientRoutes(clients),
    ...eventRoutes(new EventAdmin(d.storage)),
    ...userRoutes(new UserService({ storage: d.storage, settings: d.settings, audit: d.trail.audit, logout: d.logout }), async (id) => (await d.storage.roles.get(id)).scopes),
    ...roleRoutes(new RoleAdmin(d.storage, d.trail.audit)),
    ...auditRoutes(d.trail),
    ...policyRoutes({ settings: d.settings, storage: d.storage, audit: d.trail.audit, placeOf: d.placeOf }),
    ...keyRoutes({ keysFile: d.settings.keysFile, reloadSeconds: d.settings.keysReloadInterval, idTokenTtl: d.settings.idTokenTtl, audit: d.trail.audit }),
  ];
}

export function createAdminApi(d: AdminDeps) {
  const { settings, storage } = d;
  return adminApi({
    issuer: settings.issuer,
    version: VERSION,
    routes: adminRoutesOf(d),
    maxBodyBytes: settings.adminMaxBodyBytes,
    log: d.log,
    clientIp: d.clientIp,
    auth: {
      issuer: settings.issuer,
      audience: adminAudience(settings.issuer),
      keys: d.verificationKeys,
      levels: d.levels,
      acr: settings.adminAcr,
      sensitiveAcr: settings.adminSensitiveAcr,
      sensitiveMaxAge: settings.adminSensitiveMaxAge,
      // Read at every request, not cached: a removed client or a changed scope counts at once.
      async clientScopes(clientId) {
        const c = await storage.clients.find(clientId);
        if (!c) return undefined;
        const scope = typeof c.metadata.scope === 'string' ? c.metadata.scope : '';
        return new Set(scope.split(' ').filter((s) => (ADMIN_SCOPE_NAMES as string[]).includes(s)));
      },
      async accountScopes(accountId) {
        const [a, roles] = await Promise.all([storage.accounts.findById(accountId), storage.roles.get(accountId)]);
        // A disabled administrator's JWT access tokens cannot be revoked: they stop here.
        return a && !a.disabled ? new Set(roles.scopes) : undefined;
      },
    },
  });
}

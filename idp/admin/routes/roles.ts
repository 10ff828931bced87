/** Admin API: an account's admin roles (idp/admin/roles.ts; `idp user roles` on the CLI). */
import * as z from 'zod';
import { RoleAdmin, RolesInput, RolesView } from '../roles.ts';
import { defineRoute, type AdminRoute } from '../route.ts';

const Params = z.object({ userId: z.string().min(1).max(200).describe('The account id (`sub`).') });

export function roleRoutes(roles: RoleAdmin): AdminRoute[] {
  return [
    defineRoute({
      method: 'get', path: '/users/{userId}/roles', operationId: 'getUserRoles', tag: 'users', scope: 'admin:read',
      summary: 'The admin scopes an account holds.',
      params: Params,
      responses: { 200: { description: 'The roles; version 0 when none were ever set.', schema: RolesView, etag: true } },
      handler: async ({ params }) => {
        const r = await roles.get(params.userId);
        return { body: r, version: r.version };
      },
    }),
    defineRoute({
      method: 'put', path: '/users/{userId}/roles', operationId: 'setUserRoles', tag: 'users', scope: 'admin:write', sensitive: true,
      summary: 'Set the admin scopes an account holds (If-Match "0" for an account that never had any).',
      description: 'The caller\'s token must hold every scope it grants or takes away.',
      params: Params, body: RolesInput, ifMatch: true,
      responses: { 200: { description: 'The roles as set.', schema: RolesView, etag: true } },
      handler: async ({ params, body, ifMatch, principal }) => {
        const r = await roles.set(params.userId, body, ifMatch!, principal.actor, principal.scopes);
        return { body: r, version: r.version };
      },
    }),
  ];
}

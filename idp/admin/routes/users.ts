/**
 * Admin API: users, their sessions and grants (idp/admin/users.ts; the `idp user` commands
 * call the same service). Changes of the user record (claims, disable, enable, delete) take
 * If-Match on its version; actions that leave the record as it is (unlock, resetting second
 * factors, ending sessions) do not.
 *
 * An account holding admin roles is an administrator: it is changed (claims, lock, factors,
 * state, sessions, existence) only by a caller holding every role it holds, as roles are
 * granted (roles.ts). Otherwise admin:write alone could strip an admin:keys holder's second
 * factor or lift their lock-out and sign in as them with a password, or take them out.
 */
import * as z from 'zod';
import {
  CreateUserSchema, DisableUserSchema, GrantSchema, RevocationSchema, SessionSchema, UpdateUserSchema, UserFilterSchema, UserSchema,
  type UserService,
} from '../users.ts';
import { Problem } from '../problem.ts';
import { defineRoute, PageQuery, pageOf, pageReply, type AdminRoute, type Principal } from '../route.ts';

const Id = z.string().min(1).max(200).describe('The user\'s id (`sub`).');
const Params = z.object({ userId: Id });

/** The admin scopes an account holds (port.ts RoleStore). */
export type RolesOf = (accountId: string) => Promise<readonly string[]>;

export function userRoutes(users: UserService, rolesOf: RolesOf): AdminRoute[] {
  const location = (url: URL, id: string) => `${url.origin}/admin/api/v1/users/${encodeURIComponent(id)}`;
  const mayChange = async (principal: Principal, id: string) => {
    const lacking = (await rolesOf(id)).filter((s) => !principal.scopes.has(s));
    if (lacking.length) throw new Problem('forbidden', `user "${id}" holds ${lacking.join(', ')}: changing them needs a token holding ${lacking.length > 1 ? 'them' : 'it'}`);
  };
  return [
    defineRoute({
      method: 'get', path: '/users', operationId: 'listUsers', tag: 'users', scope: 'admin:read',
      summary: 'List users in username order, filtered.',
      query: UserFilterSchema.extend(PageQuery),
      responses: { 200: { description: 'A page of users.', schema: pageOf(UserSchema, 'UserPage') } },
      handler: async ({ query, url }) => {
        const { limit, cursor, disabled, ...filter } = query;
        // The service takes the filter as given (it parses it again): the flag goes back to its text.
        return pageReply(await users.list({ ...filter, ...(disabled === undefined ? {} : { disabled: String(disabled) }) }, { limit, after: cursor }), url);
      },
    }),
    defineRoute({
      method: 'post', path: '/users', operationId: 'createUser', tag: 'users', scope: 'admin:write',
      summary: 'Create a local user (the password is write-only).',
      body: CreateUserSchema,
      responses: { 201: { description: 'The user.', schema: UserSchema, etag: true } },
      handler: async ({ body, principal, url }) => {
        const u = await users.create(principal.actor, body);
        return { status: 201, body: u, version: u.version, headers: { location: location(url, u.id) } };
      },
    }),
    defineRoute({
      method: 'get', path: '/users/{userId}', operationId: 'getUser', tag: 'users', scope: 'admin:read',
      summary: 'One user, with every claim it holds.',
      params: Params,
      responses: { 200: { description: 'The user.', schema: UserSchema, etag: true } },
      handler: async ({ params }) => {
        const u = await users.get(params.userId);
        return { body: u, version: u.version };
      },
    }),
    defineRoute({
      method: 'patch', path: '/users/{userId}', operationId: 'updateUser', tag: 'users', scope: 'admin:write',
      summary: 'Change a user\'s claims (OIDC Core §5.1); a claim set to null is removed.',
      params: Params, body: UpdateUserSchema, ifMatch: true,
      responses: { 200: { description: 'The user as changed.', schema: UserSchema, etag: true } },
      handler: async ({ params, body, ifMatch, principal }) => {
        await mayChange(principal, params.userId);
        const u = await users.update(principal.actor, params.userId, body, ifMatch);
        return { body: u, version: u.version };
      },
    }),
    defineRoute({
      method: 'post', path: '/users/{userId}/disable', operationId: 'disableUser', tag: 'users', scope: 'admin:write',
      summary: 'Disable a user: no sign-in, sessions ended (relying parties told by back-channel logout), tokens revoked.',
      params: Params, body: DisableUserSchema, ifMatch: true,
      responses: { 200: { description: 'The user, and what was ended.', schema: UserSchema.extend({ revoked: RevocationSchema }), etag: true } },
      handler: async ({ params, body, ifMatch, principal }) => {
        await mayChange(principal, params.userId);
        const u = await users.disable(principal.actor, params.userId, body, ifMatch);
        return { body: u, version: u.version };
      },
    }),
    defineRoute({
      method: 'post', path: '/users/{userId}/enable', operationId: 'enableUser', tag: 'users', scope: 'admin:write',
      summary: 'Let a disabled user sign in again.',
      params: Params, ifMatch: true,
      responses: { 200: { description: 'The user.', schema: UserSchema, etag: true } },
      handler: async ({ params, ifMatch, principal }) => {
        await mayChange(principal, params.userId);
        const u = await users.enable(principal.actor, params.userId, ifMatch);
        return { body: u, version: u.version };
      },
    }),
    defineRoute({
      method: 'post', path: '/users/{userId}/unlock', operationId: 'unlockUser', tag: 'users', scope: 'admin:write',
      summary: 'Clear the user\'s failed-sign-in lock (the throttle\'s account buckets).',
      params: Params,
      responses: { 204: { description: 'Unlocked.' } },
      handler: async ({ params, principal }) => {
        await mayChange(principal, params.userId);
        await users.unlock(principal.actor, params.userId);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'delete', path: '/users/{userId}/factors', operationId: 'resetUserFactors', tag: 'users', scope: 'admin:write', sensitive: true,
      summary: 'Remove every second factor of the user (a lost phone); the next sign-in that needs one offers enrolment.',
      params: Params,
      responses: { 200: { description: 'How many were removed.', schema: z.object({ removed: z.int() }) } },
      handler: async ({ params, principal }) => {
        await mayChange(principal, params.userId);
        return { body: await users.resetFactors(principal.actor, params.userId) };
      },
    }),
    defineRoute({
      method: 'delete', path: '/users/{userId}', operationId: 'deleteUser', tag: 'users', scope: 'admin:write', sensitive: true,
      summary: 'Delete a user with their factors, sessions, grants and tokens; their login events and audit records stay.',
      params: Params, ifMatch: true,
      responses: { 200: { description: 'What was ended with the user.', schema: z.object({ revoked: RevocationSchema }) } },
      handler: async ({ params, ifMatch, principal }) => {
        // The service deletes by id: the version is checked just before, so a change made
        // since the caller's read is not deleted unseen.
        await mayChange(principal, params.userId);
        const u = await users.get(params.userId);
        if (u.version !== ifMatch) throw new Problem('version_conflict', `user "${params.userId}" was changed meanwhile (now version ${u.version})`, { headers: { etag: `"${u.version}"` } });
        return { body: await users.delete(principal.actor, params.userId) };
      },
    }),
    defineRoute({
      method: 'get', path: '/users/{userId}/sessions', operationId: 'listUserSessions', tag: 'sessions', scope: 'admin:read',
      summary: 'The user\'s sessions, with the relying parties signed in to in each.',
      params: Params,
      responses: { 200: { description: 'The sessions.', schema: z.object({ items: z.array(SessionSchema) }) } },
      handler: async ({ params }) => ({ body: { items: await users.sessions(params.userId) } }),
    }),
    defineRoute({
      method: 'delete', path: '/users/{userId}/sessions', operationId: 'revokeUserSessions', tag: 'sessions', scope: 'admin:write',
      summary: 'End every session of the user and revoke every grant (relying parties told by back-channel logout).',
      params: Params,
      responses: { 200: { description: 'What was ended.', schema: RevocationSchema } },
      handler: async ({ params, principal }) => {
        await mayChange(principal, params.userId);
        return { body: await users.revokeAll(principal.actor, params.userId) };
      },
    }),
    defineRoute({
      method: 'delete', path: '/users/{userId}/sessions/{uid}', operationId: 'revokeUserSession', tag: 'sessions', scope: 'admin:write',
      summary: 'End one session (relying parties told by back-channel logout).',
      params: z.object({ userId: Id, uid: z.string().min(1).max(200).describe('The session\'s uid, as listed.') }),
      responses: { 200: { description: 'What was ended.', schema: RevocationSchema } },
      handler: async ({ params, principal }) => {
        await mayChange(principal, params.userId);
        return { body: await users.revokeSession(principal.actor, params.userId, params.uid) };
      },
    }),
    defineRoute({
      method: 'get', path: '/users/{userId}/grants', operationId: 'listUserGrants', tag: 'sessions', scope: 'admin:read',
      summary: 'The user\'s grants (what each relying party was given).',
      params: Params,
      responses: { 200: { description: 'The grants.', schema: z.object({ items: z.array(GrantSchema) }) } },
      handler: async ({ params }) => ({ body: { items: await users.grants(params.userId) } }),
    }),
    defineRoute({
      method: 'delete', path: '/users/{userId}/grants/{grantId}', operationId: 'revokeUserGrant', tag: 'sessions', scope: 'admin:write',
      summary: 'Revoke one grant with its tokens.',
      params: z.object({ userId: Id, grantId: z.string().min(1).max(200) }),
      responses: { 200: { description: 'What was revoked.', schema: RevocationSchema } },
      handler: async ({ params, principal }) => {
        await mayChange(principal, params.userId);
        return { body: await users.revokeGrant(principal.actor, params.userId, params.grantId) };
      },
    }),
  ];
}

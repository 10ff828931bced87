/** Admin API: clients (idp/admin/clients.ts does the work; the `idp client` CLI too). */
import * as z from 'zod';
import { CLIENT_ID, ClientView, ClientWithSecret, type ClientAdmin } from '../clients.ts';
import { defineRoute, PageQuery, pageOf, pageReply, type AdminRoute } from '../route.ts';

const Params = z.object({ clientId: CLIENT_ID });
const Secret = z.object({ client_secret: z.string().optional(), client: ClientView });

export function clientRoutes(clients: ClientAdmin): AdminRoute[] {
  return [
    defineRoute({
      method: 'get', path: '/clients', operationId: 'listClients', tag: 'clients', scope: 'admin:read',
      summary: 'List clients, in client id order.',
      query: z.object(PageQuery),
      responses: { 200: { description: 'A page of clients.', schema: pageOf(ClientView, 'ClientPage') } },
      handler: async ({ query, url }) => pageReply(await clients.list({ limit: query.limit, after: query.cursor }), url),
    }),
    defineRoute({
      method: 'post', path: '/clients', operationId: 'createClient', tag: 'clients', scope: 'admin:write',
      summary: 'Register a client; its secret is in this answer only.',
      description: 'A client with admin scopes is registered, changed, re-keyed or removed only by a token holding all of them (403 forbidden otherwise).',
      body: clients.schemas.create,
      responses: { 201: { description: 'The client and, for a confidential one, its secret (shown once).', schema: ClientWithSecret, etag: true } },
      handler: async ({ body, principal, url }) => {
        const { client, secret } = await clients.create(body, principal.actor, { held: principal.scopes });
        return { status: 201, version: client.version, headers: { location: `${url.origin}/admin/api/v1/clients/${encodeURIComponent(client.client_id)}` }, body: { client, ...(secret ? { client_secret: secret } : {}) } };
      },
    }),
    defineRoute({
      method: 'get', path: '/clients/{clientId}', operationId: 'getClient', tag: 'clients', scope: 'admin:read',
      summary: 'One client (never its secret).',
      params: Params,
      responses: { 200: { description: 'The client.', schema: ClientView, etag: true } },
      handler: async ({ params }) => {
        const client = await clients.get(params.clientId);
        return { body: client, version: client.version };
      },
    }),
    defineRoute({
      method: 'put', path: '/clients/{clientId}', operationId: 'replaceClient', tag: 'clients', scope: 'admin:write',
      summary: 'Replace a client\'s metadata (its secret stays).',
      params: Params, body: clients.schemas.input, ifMatch: true,
      responses: { 200: { description: 'The client as changed.', schema: ClientView, etag: true } },
      handler: async ({ params, body, ifMatch, principal }) => {
        const client = await clients.update(params.clientId, body, ifMatch!, principal.actor, principal.scopes);
        return { body: client, version: client.version };
      },
    }),
    defineRoute({
      method: 'post', path: '/clients/{clientId}/secret', operationId: 'rotateClientSecret', tag: 'clients', scope: 'admin:write', sensitive: true,
      summary: 'Give a confidential client a new secret (shown once); the old one stops working.',
      params: Params, ifMatch: true,
      responses: { 200: { description: 'The new secret (shown once).', schema: Secret, etag: true } },
      handler: async ({ params, ifMatch, principal }) => {
        const { client, secret } = await clients.rotateSecret(params.clientId, ifMatch!, principal.actor, principal.scopes);
        return { body: { client, client_secret: secret }, version: client.version };
      },
    }),
    defineRoute({
      method: 'delete', path: '/clients/{clientId}', operationId: 'deleteClient', tag: 'clients', scope: 'admin:write', sensitive: true,
      summary: 'Remove a client; its tokens stop working with it.',
      params: Params, ifMatch: true,
      responses: { 204: { description: 'Removed.' } },
      handler: async ({ params, ifMatch, principal }) => {
        await clients.remove(params.clientId, ifMatch!, principal.actor, principal.scopes);
        return { status: 204 };
      },
    }),
  ];
}

/**
 * Registered relying parties, as an administrator manages them: through the `idp client` CLI
 * and the admin API, one implementation. Metadata is RFC 7591 §2 client metadata, validated
 * twice: by the zod schema below (clear per-field messages, and the OpenAPI document) and then
 * by oidc-provider's own client schema, so what is stored is what the provider accepts. A
 * secret is generated here, shown once in the answer that created or rotated it, and stored
 * only encrypted (adapters/crypto.ts).
 *
 * A client registered for admin scopes is an administrator of its own (client_credentials, or
 * the console administrators sign in through): registering, changing, re-keying or removing
 * one needs a caller that holds every admin scope it has or gets, as for an account's roles
 * (roles.ts). Otherwise admin:write alone would mint an admin:keys client, or take one over by
 * rotating its secret.
 */
import crypto from 'node:crypto';
import * as z from 'zod';
import type { ClientRecord, Actor, AuditInput } from '../../models/types.ts';
import type { Page, PageRequest, Storage } from '../../adapters/storage/port.ts';
import type { SecretBox } from '../../adapters/crypto.ts';
import { clientSecretContext } from '../../adapters/oidc-adapter.ts';
import { ACCOUNT_CLIENT_ID } from '../../interactions/account/client.ts';
import { VersionConflictError } from '../../adapters/storage/port.ts';
import { ADMIN_SCOPE_NAMES } from './route.ts';

export const CLIENT_ID = z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, '1-128 characters of A-Z a-z 0-9 . _ ~ -')
  .meta({ description: 'The client identifier (RFC 6749 §2.2).', example: 'orders-web' });

const uri = z.url({ protocol: /^https?$/ }).max(2000);

const alternation = (names: Iterable<string>) => [...names].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');

/**
 * What an administrator says about a client (RFC 7591 §2 names). Built per server: the
 * scopes and ACR values it accepts are the server's (OIDC, resource and admin scopes; the
 * policy's levels), so the published schema says exactly what will be accepted.
 */
export function clientSchemas(scopes: ReadonlySet<string>, acrValues: readonly string[]) {
  const scopeName = `(?:${alternation(scopes)})`;
  const input = z.strictObject({
    client_name: z.string().min(1).max(200).optional().describe('Shown to users on the consent and sign-in pages.'),
    redirect_uris: z.array(uri).max(50).default([]).describe('Exact redirect URIs (at least one for authorization_code).'),
    post_logout_redirect_uris: z.array(uri).max(50).optional().describe('Where RP-initiated logout may return (OIDC RP-Initiated Logout 1.0).'),
    backchannel_logout_uri: uri.optional().describe('Told when a session of its users ends (OIDC Back-Channel Logout 1.0).'),
    grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials'])).min(1).max(3)
      .default(['authorization_code', 'refresh_token']).describe('Grant types it may use.'),
    token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'none']).default('client_secret_basic')
      .describe('`none`: a public client (no secret; PKCE required).'),
    scope: z.string().max(2000).regex(new RegExp(`^${scopeName}( ${scopeName})*$`), {
      error: (iss) => {
        const unknown = String(iss.input).split(' ').filter((x) => !scopes.has(x));
        return `unsupported scope(s): ${unknown.join(', ') || '(empty, or not single-space separated)'} (supported: ${[...scopes].join(' ')}; add API scopes to RESOURCE_SCOPES)`;
      },
    }).optional()
      .describe(`The scopes it may ask for (the allow-list), space-separated, of: ${[...scopes].join(' ')}. Admin scopes must be listed to be granted.`),
    min_acr: z.enum(acrValues as [string, ...string[]]).optional().describe('The weakest ACR it accepts: every authorization needs at least this level.'),
    first_party: z.boolean().optional().describe('The operator\'s own application: no consent page.'),
  }).meta({ id: 'ClientInput' });
  const create = input.extend({
    client_id: CLIENT_ID.optional().describe('Chosen by the administrator; random when absent.'),
  }).meta({ id: 'ClientCreate' });
  return { input, create };
}
type ClientInputOut = z.output<ReturnType<typeof clientSchemas>['input']>;

export const ClientView = z.object({
  client_id: z.string(),
  client_type: z.enum(['confidential', 'public']),
  client_name: z.string().optional(),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()).optional(),
  backchannel_logout_uri: z.string().optional(),
  grant_types: z.array(z.string()),
  response_types: z.array(z.string()),
  token_endpoint_auth_method: z.string(),
  scope: z.string().optional(),
  min_acr: z.string().optional(),
  first_party: z.boolean().optional(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  version: z.int(),
}).meta({ id: 'Client', description: 'A registered client; never its secret.' });
export type ClientView = z.output<typeof ClientView>;

/** The answer that carries a new secret: the only time it is ever shown. */
export const ClientWithSecret = z.object({
  client: ClientView,
  client_secret: z.string().optional().describe('Shown once; store it now. Absent for a public client.'),
}).meta({ id: 'ClientWithSecret' });

export class ClientAdminError extends Error {
  override name = 'ClientAdminError';
  readonly code: 'invalid_request' | 'not_found' | 'conflict' | 'forbidden';
  constructor(code: ClientAdminError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export interface ClientAdminDeps {
  storage: Storage;
  box: SecretBox;
  /** Scopes the server accepts (OIDC, resource and admin scopes). */
  supportedScopes: ReadonlySet<string>;
  /** The policy's ACR values (min_acr must be one). */
  acrValues: readonly string[];
  /** oidc-provider's own validation of the full metadata (Client.validate); throws with a description. */
  validate(metadata: Record<string, unknown>): Promise<void>;
  audit(e: AuditInput): Promise<void>;
}

const DEFAULT_SCOPE = 'openid offline_access profile email';

/** The caller's own scopes (the admin API's token), or 'all' (the CLI, on the server's disk). */
export type HeldScopes = ReadonlySet<string> | 'all';

const adminScopesOf = (scope: unknown): string[] =>
  (typeof scope === 'string' ? scope.split(' ').filter((s) => (ADMIN_SCOPE_NAMES as string[]).includes(s)) : []);

/** Refuses unless the caller holds every admin scope of the client as it is and as it will be. */
function mayTouch(held: HeldScopes, ...scopes: unknown[]): void {
  if (held === 'all') return;
  const lacking = [...new Set(scopes.flatMap(adminScopesOf))].filter((s) => !held.has(s));
  if (lacking.length) {
    throw new ClientAdminError('forbidden', `a client registered for ${lacking.join(', ')} is registered, changed or removed only with a token holding ${lacking.length > 1 ? 'them' : 'it'}`);
  }
}

/**
 * The version the caller read is the one checked against: the scope check above looked at
 * this read, and the store's versioned write guarantees nothing changed after it.
 */
function sameVersion(c: ClientRecord, ifVersion: number): void {
  if (c.version !== ifVersion) throw new VersionConflictError(`client "${c.clientId}"`, c.version);
}

export function clientView(c: ClientRecord): ClientView {
  const m = c.metadata;
  return {
    client_id: c.clientId,
    client_type: c.secretCiphertext ? 'confidential' : 'public',
    ...(m.client_name !== undefined ? { client_name: m.client_name as string } : {}),
    redirect_uris: (m.redirect_uris as string[] | undefined) ?? [],
    ...(m.post_logout_redirect_uris !== undefined ? { post_logout_redirect_uris: m.post_logout_redirect_uris as string[] } : {}),
    ...(m.backchannel_logout_uri !== undefined ? { backchannel_logout_uri: m.backchannel_logout_uri as string } : {}),
    grant_types: (m.grant_types as string[] | undefined) ?? [],
    response_types: (m.response_types as string[] | undefined) ?? [],
    token_endpoint_auth_method: (m.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic',
    ...(m.scope !== undefined ? { scope: m.scope as string } : {}),
    ...(m.min_acr !== undefined ? { min_acr: m.min_acr as string } : {}),
    ...(m.first_party !== undefined ? { first_party: m.first_party as boolean } : {}),
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
    version: c.version,
  };
}

export class ClientAdmin {
  readonly #d: ClientAdminDeps;
  readonly schemas: ReturnType<typeof clientSchemas>;
  constructor(deps: ClientAdminDeps) {
    this.#d = deps;
    this.schemas = clientSchemas(deps.supportedScopes, deps.acrValues);
  }

  /** Stored metadata from the input: defaults filled, response types derived. */
  async #metadata(clientId: string, input: ClientInputOut, secret: string | undefined): Promise<Record<string, unknown>> {
    const grantTypes = input.grant_types;
    if (grantTypes.includes('authorization_code') && input.redirect_uris.length === 0) throw new ClientAdminError('invalid_request', 'redirect_uris: required for the authorization_code grant');
    if (grantTypes.includes('client_credentials') && input.token_endpoint_auth_method === 'none') throw new ClientAdminError('invalid_request', 'a public client (token_endpoint_auth_method none) cannot use client_credentials');
    const scope = input.scope ?? DEFAULT_SCOPE;
    const unknown = scope.split(' ').filter((s) => !this.#d.supportedScopes.has(s));
    if (unknown.length) throw new ClientAdminError('invalid_request', `scope: unsupported scope(s): ${unknown.join(', ')} (supported: ${[...this.#d.supportedScopes].join(' ')}; add API scopes to RESOURCE_SCOPES)`);
    const metadata: Record<string, unknown> = {
      redirect_uris: input.redirect_uris,
      grant_types: grantTypes,
      response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
      token_endpoint_auth_method: input.token_endpoint_auth_method,
      scope,
      ...(input.client_name !== undefined ? { client_name: input.client_name } : {}),
      ...(input.post_logout_redirect_uris ? { post_logout_redirect_uris: input.post_logout_redirect_uris } : {}),
      ...(input.backchannel_logout_uri ? { backchannel_logout_uri: input.backchannel_logout_uri, backchannel_logout_session_required: true } : {}),
      ...(input.min_acr !== undefined ? { min_acr: input.min_acr } : {}),
      // The operator's own application: no consent page (idp/provider.ts loadExistingGrant).
      ...(input.first_party ? { first_party: true } : {}),
    };
    try {
      await this.#d.validate({ client_id: clientId, ...(secret ? { client_secret: secret } : {}), ...metadata });
    } catch (err) {
      const e = err as { error_description?: string; message: string };
      throw new ClientAdminError('invalid_request', `invalid client: ${e.error_description ?? e.message}`);
    }
    return metadata;
  }

  async create(raw: unknown, actor: Actor, opts: { secret?: string | undefined; held: HeldScopes }): Promise<{ client: ClientView; secret: string | undefined; metadata: Record<string, unknown> }> {
    const input = this.schemas.create.parse(raw);
    mayTouch(opts.held, input.scope);
    const clientId = input.client_id ?? crypto.randomBytes(12).toString('base64url');
    // The account page's built-in client: a stored one of that id would never be used.
    if (clientId === ACCOUNT_CLIENT_ID) throw new ClientAdminError('conflict', `client "${clientId}" is reserved for the provider's own account page (/account)`);
    if (opts.secret !== undefined && opts.secret.length < 32) throw new ClientAdminError('invalid_request', 'the secret must be at least 32 characters');
    const isPublic = input.token_endpoint_auth_method === 'none';
    if (isPublic && opts.secret !== undefined) throw new ClientAdminError('invalid_request', 'a public client has no secret');
    const secret = isPublic ? undefined : (opts.secret ?? crypto.randomBytes(32).toString('base64url'));
    const metadata = await this.#metadata(clientId, input, secret);
    const record = await this.#d.storage.clients.create({ clientId, secretCiphertext: secret ? this.#d.box.seal(secret, clientSecretContext(clientId)) : undefined, metadata });
    const client = clientView(record);
    await this.#d.audit({ actor, action: 'client.create', outcome: 'success', target: { type: 'client', id: clientId }, after: client });
    return { client, secret, metadata };
  }

  async get(clientId: string): Promise<ClientView> {
    const c = await this.#d.storage.clients.find(clientId);
    if (!c) throw new ClientAdminError('not_found', `no client "${clientId}"`);
    return clientView(c);
  }

  async list(req: PageRequest): Promise<Page<ClientView>> {
    const page = await this.#d.storage.clients.page(req);
    return { items: page.items.map(clientView), next: page.next };
  }

  /** Replaces the client's metadata (the secret stays; a client cannot change between public and confidential here). */
  async update(clientId: string, raw: unknown, ifVersion: number, actor: Actor, held: HeldScopes): Promise<ClientView> {
    const input = this.schemas.input.parse(raw);
    const before = await this.#d.storage.clients.find(clientId);
    if (!before) throw new ClientAdminError('not_found', `no client "${clientId}"`);
    mayTouch(held, before.metadata.scope, input.scope);
    sameVersion(before, ifVersion);
    const wasPublic = !before.secretCiphertext;
    if (wasPublic !== (input.token_endpoint_auth_method === 'none')) {
      throw new ClientAdminError('invalid_request', `token_endpoint_auth_method: a ${wasPublic ? 'public' : 'confidential'} client stays one (register a new client instead)`);
    }
    const secret = before.secretCiphertext ? this.#d.box.open(before.secretCiphertext, clientSecretContext(clientId)) : undefined;
    const metadata = await this.#metadata(clientId, input, secret);
    const after = await this.#d.storage.clients.update(clientId, { secretCiphertext: before.secretCiphertext, metadata }, ifVersion);
    const view = clientView(after);
    await this.#d.audit({ actor, action: 'client.update', outcome: 'success', target: { type: 'client', id: clientId }, before: clientView(before), after: view });
    return view;
  }

  /** A new secret; the old one stops working at once (within the client cache's life on other instances). */
  async rotateSecret(clientId: string, ifVersion: number, actor: Actor, held: HeldScopes): Promise<{ client: ClientView; secret: string }> {
    const before = await this.#d.storage.clients.find(clientId);
    if (!before) throw new ClientAdminError('not_found', `no client "${clientId}"`);
    mayTouch(held, before.metadata.scope);
    sameVersion(before, ifVersion);
    if (!before.secretCiphertext) throw new ClientAdminError('invalid_request', 'a public client has no secret to rotate');
    const secret = crypto.randomBytes(32).toString('base64url');
    const after = await this.#d.storage.clients.update(clientId, { secretCiphertext: this.#d.box.seal(secret, clientSecretContext(clientId)), metadata: before.metadata }, ifVersion);
    const client = clientView(after);
    await this.#d.audit({ actor, action: 'client.rotate_secret', outcome: 'success', target: { type: 'client', id: clientId }, detail: { version: after.version } });
    return { client, secret };
  }

  /**
   * Removes the client. Its tokens stop working with it: oidc-provider loads the client at
   * every use of a token, refresh and introspection included.
   */
  async remove(clientId: string, ifVersion: number, actor: Actor, held: HeldScopes): Promise<void> {
    const before = await this.#d.storage.clients.find(clientId);
    if (!before) throw new ClientAdminError('not_found', `no client "${clientId}"`);
    mayTouch(held, before.metadata.scope);
    sameVersion(before, ifVersion);
    await this.#d.storage.clients.remove(clientId, ifVersion);
    await this.#d.audit({ actor, action: 'client.delete', outcome: 'success', target: { type: 'client', id: clientId }, before: clientView(before) });
  }
}

/**
 * How an admin API operation is declared: one object per operation holding its method, path,
 * the scope it needs, the zod schemas of its parameters, body and responses, and its handler.
 * The Koa router (api.ts) and the OpenAPI document (openapi.ts) are both built from the same
 * list, so the document cannot describe a route that does not exist, or miss one, and the
 * schemas that validate a request are the ones published for it.
 */
import * as z from 'zod';
import type { Actor } from '../../models/types.ts';

/**
 * Roles as OAuth scopes, each granting what it says and nothing implied: a token needs the
 * scope an operation declares (admin:write does not include admin:read).
 */
export const ADMIN_SCOPES = {
  'admin:read': 'Read users, clients, sessions, events, labels, policies, the model, keys and the audit trail.',
  'admin:write': 'Change users, clients, sessions and labels.',
  'admin:policy': 'Validate, dry-run, publish and roll back policies; retrain and activate models.',
  'admin:keys': 'Rotate and retire signing keys.',
} as const;
export type AdminScope = keyof typeof ADMIN_SCOPES;
export const ADMIN_SCOPE_NAMES = Object.keys(ADMIN_SCOPES) as AdminScope[];

/** Who called, as the access token says (auth.ts). */
export interface Principal {
  actor: Actor;
  kind: 'client' | 'user';
  scopes: ReadonlySet<string>;
  clientId: string;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The version If-Match named, for routes that require one. */
  ifMatch: number | undefined;
  principal: Principal;
  /** Absolute URL of this request (for `next` links). */
  url: URL;
}

export interface Reply {
  status?: number;
  body?: unknown;
  /** The resource's version, sent as a strong ETag (RFC 9110 §8.8.3). */
  version?: number | undefined;
  headers?: Record<string, string>;
  /** A streamed body (JSON lines), sent with `type`. */
  stream?: AsyncIterable<string>;
  type?: string;
}

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Default application/json. */
  contentType?: string;
  /** The response carries the resource's version in ETag. */
  etag?: boolean;
}

type AnyObject = z.ZodObject<z.ZodRawShape>;

export interface AdminRoute {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI template, relative to /admin/api/v1: `/clients/{clientId}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  scope: AdminScope;
  /**
   * For an administrator's own token: the operation needs the stronger assurance
   * (ADMIN_SENSITIVE_ACR, and an authentication no older than ADMIN_SENSITIVE_MAX_AGE).
   */
  sensitive?: boolean;
  params?: AnyObject;
  query?: AnyObject;
  body?: z.ZodType;
  /** The change needs `If-Match: "<version>"` (428 without, 412 when stale). */
  ifMatch?: boolean;
  responses: Record<number, ResponseSpec>;
  handler(input: RouteInput<unknown, unknown, unknown>): Promise<Reply>;
}

/** Declares an operation with its handler typed from its schemas. */
export function defineRoute<
  P extends AnyObject | undefined = undefined,
  Q extends AnyObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(r: Omit<AdminRoute, 'handler' | 'params' | 'query' | 'body'> & {
  params?: P; query?: Q; body?: B;
  handler(input: RouteInput<
    P extends AnyObject ? z.output<P> : Record<string, never>,
    Q extends AnyObject ? z.output<Q> : Record<string, never>,
    B extends z.ZodType ? z.output<B> : undefined>): Promise<Reply>;
}): AdminRoute {
  return r as unknown as AdminRoute;
}

/** Query parameters of every listing: cursor pagination (port.ts Page). */
export const PageQuery = {
  limit: z.coerce.number().int().min(1).max(500).default(50).meta({ description: 'Items per page (1-500).' }),
  cursor: z.string().min(1).max(512).regex(/^[A-Za-z0-9_-]+$/).optional().meta({ description: 'The `next` of the previous page (opaque).' }),
};

/** A page of `item`s: `next` is absent on the last page. */
export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z.object({
    items: z.array(item),
    next: z.string().optional().describe('Pass as `cursor` for the following page; absent on the last page.'),
  }).meta({ id });
}

/** The answer for one page, with RFC 8288 `Link: <...>; rel="next"` when there is more. */
export function pageReply<T>(page: { items: T[]; next?: string | undefined }, url: URL): Reply {
  if (!page.next) return { body: { items: page.items } };
  const next = new URL(url);
  next.searchParams.set('cursor', page.next);
  return { body: { items: page.items, next: page.next }, headers: { link: `<${next.href}>; rel="next"` } };
}

/**
 * The admin API's HTTP side: one Koa router under /admin/api/v1 built from the route
 * declarations, the OpenAPI document at /admin/api/openapi.json and its reference page at
 * /admin/api. For every operation, in order: the token and its scope (auth.ts), the Accept
 * header, the path and query parameters, If-Match, the body (bounded, JSON only), then the
 * handler; whatever fails becomes an RFC 9457 problem (problem.ts), never a stack trace.
 */
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { Readable } from 'node:stream';
import * as z from 'zod';
import { DuplicateError, VersionConflictError } from '../../adapters/storage/port.ts';
import type { Logger } from '../log.ts';
import { authenticate, type AdminAuthOptions } from './auth.ts';
import { API_PREFIX, openApiDocument, PROBLEM_JSON } from './openapi.ts';
import { fieldErrors, Problem, problemBody, PROBLEMS, type FieldError, type ProblemCode } from './problem.ts';
import { REFERENCE_CSS, REFERENCE_CSS_PATH, referencePage } from './reference.ts';
import type { AdminRoute, Reply } from './route.ts';

export interface AdminApiOptions {
  issuer: string;
  version: string;
  routes: readonly AdminRoute[];
  auth: AdminAuthOptions;
  /** Largest accepted request body, bytes. */
  maxBodyBytes: number;
  log: Logger;
  /** The client address of a request (the proxy-aware one the rest of the server uses). */
  clientIp(ctx: Context): string;
}

function send(ctx: Context, issuer: string, p: Problem): void {
  ctx.status = p.status;
  for (const [k, v] of Object.entries(p.headers)) ctx.set(k, v);
  ctx.type = PROBLEM_JSON;
  ctx.set('cache-control', 'no-store');
  ctx.body = JSON.stringify(problemBody(issuer, p, ctx.path));
}

/** Errors of the layers below, as problems; anything unknown is a 500 logged here. */
function toProblem(err: unknown, log: Logger, ctx: Context): Problem {
  if (err instanceof Problem) return err;
  if (err instanceof z.ZodError) return new Problem('invalid_request', 'the request is not valid', { errors: fieldErrors('body', err) });
  if (err instanceof VersionConflictError) {
    return err.current === undefined ? new Problem('not_found', err.message) : new Problem('version_conflict', err.message, { headers: { etag: `"${err.current}"` } });
  }
  if (err instanceof DuplicateError) return new Problem('conflict', err.message);
  // Typed errors of the admin services: `code` one of ours (idp/admin/*.ts), with the fields
  // that were wrong when they say (a policy's file/line/key errors).
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && Object.hasOwn(PROBLEMS, code) && err instanceof Error) {
    const errors = (err as { errors?: unknown }).errors;
    const list = Array.isArray(errors) ? errors.filter((e): e is FieldError => typeof (e as FieldError)?.path === 'string' && typeof (e as FieldError)?.message === 'string') : [];
    return new Problem(code as ProblemCode, err.message, list.length ? { errors: list.map((e) => ({ path: `body.${e.path}`, message: e.message })) } : {});
  }
  log.error('admin api error', { error: err as Error, path: ctx.path, method: ctx.method });
  return new Problem('internal', 'the server could not complete the request; it has been logged');
}

async function readJson(ctx: Context, limit: number): Promise<unknown> {
  const type = ctx.request.type;
  if (type !== 'application/json') throw new Problem('unsupported_media_type', `send the body as application/json${type ? `, not ${type}` : ''}`);
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new Problem('payload_too_large', `the body may be at most ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of ctx.req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new Problem('payload_too_large', `the body may be at most ${limit} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Problem('invalid_request', 'the body is not valid JSON', { errors: [{ path: 'body', message: 'not valid JSON' }] });
  }
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new Problem('invalid_request', `invalid ${where}`, { errors: fieldErrors(where, r.error) });
  return r.data;
}

function ifMatchOf(ctx: Context): number {
  const raw = ctx.get('if-match');
  // RFC 6585 §3: a change without a precondition is refused, so nobody overwrites blind.
  if (!raw) throw new Problem('precondition_required', 'send If-Match with the ETag of the version you read');
  const m = /^"(\d{1,15})"$/.exec(raw.trim());
  if (!m) throw new Problem('invalid_request', 'If-Match must be one strong ETag as this API sends it, e.g. "3"', { errors: [{ path: 'header.if-match', message: 'expected "<version>"' }] });
  return Number(m[1]);
}

function write(ctx: Context, r: Reply, contentType: string | undefined): void {
  ctx.status = r.status ?? 200;
  ctx.set('cache-control', 'no-store');
  if (r.version !== undefined) ctx.set('etag', `"${r.version}"`);
  for (const [k, v] of Object.entries(r.headers ?? {})) ctx.set(k, v);
  if (r.stream) {
    ctx.type = r.type ?? contentType ?? 'application/x-ndjson';
    ctx.body = Readable.from(r.stream);
  } else if (r.body !== undefined) {
    ctx.type = contentType ?? 'application/json';
    ctx.body = JSON.stringify(r.body);
  } else {
    ctx.body = null;
  }
}

export function adminApi(o: AdminApiOptions): Middleware {
  const router = new Router({ prefix: API_PREFIX });
  for (const route of o.routes) {
    const koaPath = route.path.replace(/\{(\w+)\}/g, ':$1');
    const okStatus = Number(Object.keys(route.responses).find((s) => Number(s) < 300) ?? 200);
    const contentType = route.responses[okStatus]?.contentType;
    router[route.method](route.operationId, koaPath, async (ctx) => {
      ctx.state.adminHandled = true;
      const principal = await authenticate(ctx.get('authorization') || undefined, route, o.auth, o.clientIp(ctx));
      const produces = contentType ?? 'application/json';
      if (!ctx.accepts(produces, PROBLEM_JSON)) throw new Problem('not_acceptable', `this operation answers with ${produces}`);
      const params = route.params ? parseWith(route.params, ctx.params, 'params') : {};
      const query = route.query ? parseWith(route.query, ctx.query, 'query') : {};
      const ifMatch = route.ifMatch ? ifMatchOf(ctx) : undefined;
      const body = route.body ? parseWith(route.body, await readJson(ctx, o.maxBodyBytes), 'body') : undefined;
      // The issuer's origin, never the request's: an absolute-form request target (RFC 9112
      // §3.2.2) would otherwise name the host of the Link and Location headers sent back.
      const url = new URL(o.issuer);
      url.pathname = ctx.path;
      url.search = ctx.search;
      const reply = await route.handler({ params, query, body, ifMatch, principal, url });
      write(ctx, reply, contentType);
    });
  }
  const routes = router.routes();
  const allowed = router.allowedMethods();
  let document: unknown;
  const documentOf = () => (document ??= openApiDocument(o.routes, { issuer: o.issuer, version: o.version }));

  return async (ctx: Context, next: Next) => {
    const lower = ctx.path.toLowerCase();
    if (lower !== '/admin/api' && !lower.startsWith('/admin/api/')) return next();
    // RFC 9110 §9.3.2: HEAD as GET (Koa leaves the body out).
    const read = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (read && ctx.path === '/admin/api/openapi.json') {
      ctx.type = 'application/json';
      ctx.set('cache-control', 'no-cache');
      ctx.body = JSON.stringify(documentOf());
      return undefined;
    }
    if (read && ctx.path === REFERENCE_CSS_PATH) {
      ctx.type = 'text/css';
      ctx.set('cache-control', 'public, max-age=3600');
      ctx.body = REFERENCE_CSS;
      return undefined;
    }
    if (read && (ctx.path === '/admin/api' || ctx.path === '/admin/api/')) {
      ctx.type = 'html';
      ctx.set('cache-control', 'no-cache');
      ctx.body = referencePage(documentOf() as Parameters<typeof referencePage>[0]).value;
      return undefined;
    }
    try {
      await routes(ctx as never, async () => {});
      if (!ctx.state.adminHandled) {
        // @koa/router answers OPTIONS (200 with Allow), and sets 405 with Allow or 501.
        await allowed(ctx as never, async () => {});
        if (ctx.status === 405) throw new Problem('method_not_allowed', `${ctx.method} is not supported here`, { headers: { allow: ctx.response.get('allow') } });
        if (ctx.status === 501) throw new Problem('method_not_allowed', `${ctx.method} is not supported`);
        if (!(ctx.method === 'OPTIONS' && ctx.status === 200)) throw new Problem('not_found', `no operation at ${ctx.method} ${ctx.path}`);
      }
    } catch (err) {
      send(ctx, o.issuer, toProblem(err, o.log, ctx));
    }
    return undefined;
  };
}

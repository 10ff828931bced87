/**
 * Request ids and the access log. Every HTTP request gets an id (its proxy's, under
 * TRUST_PROXY), echoed in `X-Request-Id` and written as `req_id` on every log line of the
 * request (idp/log.ts scope). The requests
 * of one login (authorize → interaction pages and posts → resume → consent → token, refresh,
 * userinfo) also share a `login_id`, carried by the records they load (adapters/oidc-adapter.ts).
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import { runInScope, type Logger, type RequestScope } from './log.ts';

/** An incoming id is kept only if it cannot break a log line or a header, nor flood either. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The id a request is logged under: a proxy's `X-Request-Id` if safe, else a new one. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

/** Paths with an oidc-provider interaction uid (nanoid): the interaction pages and the resume endpoint. */
const LOGIN_PATH = /^\/(interaction|auth)\/([A-Za-z0-9_-]{1,64})(?=\/|$)/i;
const MAX_LOGGED_PATH = 200;

/**
 * The path as logged: no query string (it carries codes, states and, in error redirects,
 * anything), and an interaction's uid replaced, since it is also an `_interaction` cookie's value.
 */
export function loggedPath(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0]!.replace(LOGIN_PATH, (_m, prefix: string) => `/${prefix}/:uid`);
  return path.length > MAX_LOGGED_PATH ? `${path.slice(0, MAX_LOGGED_PATH)}…` : path;
}

export interface RequestLogOptions {
  /** The access log line's level: see README "Logs" for the choice. */
  accessLevel?: 'debug' | 'info';
  /**
   * Take a safe incoming `X-Request-Id` (TRUST_PROXY: our proxy set it). Otherwise the client
   * wrote it, and would choose the id its lines are logged under, or reuse another request's.
   */
  trustIncomingId?: boolean;
}

/**
 * Wraps the server's request listener: opens the request's log scope, echoes its id, and
 * writes one access line when the response is done (or the client went away).
 */
export function withRequestScope(log: Logger, handler: http.RequestListener, opts: RequestLogOptions = {}): http.RequestListener {
  const level = opts.accessLevel ?? 'debug';
  return (req, res) => {
    const scope: RequestScope = { reqId: opts.trustIncomingId ? requestIdOf(req.headers['x-request-id']) : crypto.randomUUID() };
    const started = performance.now();
    res.setHeader('x-request-id', scope.reqId);
    res.once('close', () => runInScope(scope, () => log[level]('request', {
      method: req.method,
      path: loggedPath(req.url),
      status: res.statusCode,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ...(res.writableFinished ? {} : { aborted: true }),
    })));
    runInScope(scope, () => handler(req, res));
  };
}

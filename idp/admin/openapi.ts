/**
 * The OpenAPI 3.1 document of the admin API, generated from the route declarations
 * (route.ts) with zod-openapi: the request schemas are the validators themselves. Every
 * operation lists the scope it needs (as its OAuth 2.0 security requirement and as
 * `x-required-scope`) and every problem it can answer with (RFC 9457, problem.ts).
 */
import * as z from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { ADMIN_SCOPES, type AdminRoute } from './route.ts';
import { PROBLEMS, ProblemSchema, type ProblemCode } from './problem.ts';

export const API_PREFIX = '/admin/api/v1';
export const PROBLEM_JSON = 'application/problem+json';

/** `If-Match: "<version>"`, as ETag sends it (RFC 9110 §13.1.1); a weak tag is not accepted for a change. */
export const IfMatchHeader = z.string().regex(/^"\d{1,15}"$/).meta({
  description: 'The version the change applies to, as the ETag of the last read returned it: `"3"`.',
  example: '"1"',
});

type Responses = Record<string, ZodOpenApiResponsesObject[keyof ZodOpenApiResponsesObject]>;

function problems(codes: ProblemCode[]): Responses {
  const out: Responses = {};
  for (const code of codes) {
    const status = String(PROBLEMS[code].status);
    const prior = out[status] as { description: string } | undefined;
    out[status] = {
      description: prior ? `${prior.description}; or: ${PROBLEMS[code].title}` : PROBLEMS[code].title,
      content: { [PROBLEM_JSON]: { schema: ProblemSchema } },
    };
  }
  return out;
}

/** The problems an operation can answer with, from what it declares. */
export function problemCodesOf(r: AdminRoute): ProblemCode[] {
  // not_found for every operation: a body can name something that is not there either (a
  // policy version to roll back to, a model to activate).
  const codes: ProblemCode[] = ['unauthorized', 'insufficient_scope', 'not_found', 'not_acceptable', 'internal', 'unavailable'];
  if (r.params || r.query || r.body || r.ifMatch) codes.push('invalid_request');
  if (r.body) codes.push('payload_too_large', 'unsupported_media_type');
  if (r.ifMatch) codes.push('precondition_required', 'version_conflict');
  if (r.method !== 'get') codes.push('conflict');
  return codes;
}

export function openApiDocument(routes: readonly AdminRoute[], opts: { issuer: string; version: string }) {
  const paths: ZodOpenApiPathsObject = {};
  for (const r of routes) {
    const responses = problems(problemCodesOf(r));
    // Node's HTTP parser answers this itself, before any of our code, for a request line and
    // headers over its limit (16 KiB): plain text, not a problem.
    responses['431'] = { description: 'Request Header Fields Too Large (a request line or headers over 16 KiB), answered by the HTTP server itself.' };
    for (const [status, spec] of Object.entries(r.responses)) {
      responses[status] = {
        description: spec.description,
        ...(spec.etag ? { headers: { ETag: { description: 'The version of the resource, for If-Match.', schema: { type: 'string' } } } } : {}),
        ...(spec.schema ? { content: { [spec.contentType ?? 'application/json']: { schema: spec.schema } } } : {}),
      };
    }
    const op: ZodOpenApiOperationObject = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      security: [{ oauth2: [r.scope] }, { bearer: [r.scope] }],
      requestParams: {
        ...(r.params ? { path: r.params } : {}),
        ...(r.query ? { query: r.query } : {}),
        ...(r.ifMatch ? { header: z.object({ 'if-match': IfMatchHeader }) } : {}),
      },
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
      responses: responses as ZodOpenApiResponsesObject,
      'x-required-scope': r.scope,
      ...(r.sensitive ? { 'x-sensitive': true } : {}),
    };
    const item = (paths[r.path] ??= {});
    (item as Record<string, ZodOpenApiOperationObject>)[r.method] = op;
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'adaptive-idp admin API',
      version: opts.version,
      description: 'Administration of the identity provider: users, clients, sessions, login events, labels, policies, the risk model, signing keys and the audit trail. Errors are RFC 9457 problem details; lists are cursor-paginated; changes take If-Match.',
    },
    servers: [{ url: `${opts.issuer}${API_PREFIX}` }],
    components: {
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          description: `Access tokens of this provider for the resource ${opts.issuer}/admin/api (RFC 8707 resource indicator; JWT access tokens, RFC 9068).`,
          flows: {
            clientCredentials: { tokenUrl: `${opts.issuer}/token`, scopes: { ...ADMIN_SCOPES } },
            authorizationCode: { authorizationUrl: `${opts.issuer}/auth`, tokenUrl: `${opts.issuer}/token`, scopes: { ...ADMIN_SCOPES } },
          },
        },
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      },
    },
    paths,
  });
}

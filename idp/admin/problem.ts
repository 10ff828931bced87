/**
 * Errors of the admin API as RFC 9457 problem details (`application/problem+json`): a `type`
 * URI per stable code (pointing into the API reference page, where each is explained), the
 * HTTP status, a short `title` that never varies for a code, a `detail` for this occurrence,
 * and for invalid input the list of what was wrong (`errors`, RFC 9457 §3.2 extension member).
 * Clients branch on `code` (or `type`), never on the text.
 */
import * as z from 'zod';

export const PROBLEMS = {
  invalid_request: { status: 400, title: 'The request is not valid' },
  unauthorized: { status: 401, title: 'A valid access token is required' },
  insufficient_user_authentication: { status: 401, title: 'The administrator must authenticate again, more strongly' },
  insufficient_scope: { status: 403, title: 'The access token lacks the scope this operation needs' },
  forbidden: { status: 403, title: 'This principal may not do this' },
  not_found: { status: 404, title: 'No such resource' },
  method_not_allowed: { status: 405, title: 'The resource does not support this method' },
  not_acceptable: { status: 406, title: 'The resource cannot be returned in a media type the request accepts' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  version_conflict: { status: 412, title: 'The resource changed since the version given in If-Match' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'The request body must be application/json' },
  precondition_required: { status: 428, title: 'This change needs an If-Match header with the version it applies to' },
  internal: { status: 500, title: 'Something went wrong on the server' },
  unavailable: { status: 503, title: 'A service the operation needs is not answering' },
} as const satisfies Record<string, { status: number; title: string }>;
export type ProblemCode = keyof typeof PROBLEMS;

/** One thing wrong with the input: where (a JSON pointer-like path) and what. */
export interface FieldError {
  /** e.g. `body.redirect_uris.0`, `query.limit`, `header.if-match`. */
  path: string;
  message: string;
}

export class Problem extends Error {
  override name = 'Problem';
  readonly code: ProblemCode;
  readonly status: number;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  constructor(code: ProblemCode, detail?: string, opts: { errors?: FieldError[]; headers?: Record<string, string> } = {}) {
    super(detail ?? PROBLEMS[code].title);
    this.code = code;
    this.status = PROBLEMS[code].status;
    this.errors = opts.errors;
    this.headers = opts.headers ?? {};
  }
}

/** Where a problem type is explained: the reference page's section for it. */
export function problemType(base: string, code: ProblemCode): string {
  return `${base}/admin/api#problem-${code}`;
}

export function problemBody(base: string, p: Problem, instance: string) {
  return {
    type: problemType(base, p.code),
    title: PROBLEMS[p.code].title,
    status: p.status,
    detail: p.message,
    instance,
    code: p.code,
    ...(p.errors ? { errors: p.errors } : {}),
  };
}

/** A zod error as field errors, under `where` (body, query, params, header). */
export function fieldErrors(where: string, err: z.ZodError): FieldError[] {
  return err.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }));
}

/** The schema of every problem response, for the OpenAPI document. */
export const ProblemSchema = z.object({
  type: z.string().describe('URI of the problem type; dereference it for an explanation.'),
  title: z.string().describe('Short summary of the problem type; the same for every occurrence.'),
  status: z.int().describe('The HTTP status code.'),
  detail: z.string().describe('What went wrong this time, for a person to read.'),
  instance: z.string().describe('The request path.'),
  code: z.enum(Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]]).describe('Stable machine-readable code; branch on this.'),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe('For invalid_request: each field that was wrong.'),
}).meta({ id: 'Problem', description: 'RFC 9457 problem details.' });

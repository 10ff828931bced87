/**
 * Typed failures of the administration services (idp/admin/*), each with a stable `code`
 * and the HTTP status the admin API answers it with (RFC 9457 problem+json: `code` becomes
 * the problem's type, `detail` its extension members). The CLI prints `message`.
 *
 * A lost update is not here: the stores throw VersionConflictError (adapters/storage/port.ts),
 * which the API answers with 412 (RFC 9110 §13.1.1 If-Match).
 */
import type { z } from 'zod';

export class AdminError extends Error {
  override name = 'AdminError';
  readonly code: string;
  readonly status: number;
  /** Machine-readable details (e.g. the file/line/key errors of a refused policy). Never a secret. */
  readonly detail: Record<string, unknown> | undefined;
  constructor(status: number, code: string, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** 404: what the request names does not exist. */
export class NotFoundError extends AdminError {
  override name = 'NotFoundError';
  constructor(code: string, message: string, detail?: Record<string, unknown>) {
    super(404, code, message, detail);
  }
}

/** 409: the request is valid, but the state of things does not allow it (e.g. nothing would change). */
export class ConflictError extends AdminError {
  override name = 'ConflictError';
  constructor(code: string, message: string, detail?: Record<string, unknown>) {
    super(409, code, message, detail);
  }
}

/** 422: the request is well-formed but what it carries is not acceptable (e.g. an invalid policy). */
export class InvalidError extends AdminError {
  override name = 'InvalidError';
  constructor(code: string, message: string, detail?: Record<string, unknown>) {
    super(422, code, message, detail);
  }
}

/** Parses `input` with `schema`; a bad request becomes InvalidError `invalid_request` naming each field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new InvalidError('invalid_request', issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '), { issues });
}

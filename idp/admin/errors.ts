/**
 * Typed failures of the policy, label and model services (idp/admin/policies.ts, labels.ts,
 * model.ts). `code` is the admin API's problem code (idp/admin/problem.ts PROBLEMS), which its
 * error mapping takes as it is; `reason` is the stable, specific cause (`policy_invalid`,
 * `policy_unchanged`, `event_not_found`, …) for clients and the CLI to tell cases apart;
 * `errors` lists what was wrong with the input, field by field (RFC 9457 §3.2 extension
 * member `errors`). The CLI prints `message`.
 *
 * A lost update is not here: the stores throw VersionConflictError (adapters/storage/port.ts),
 * which the API answers with 412 (RFC 9110 §13.1.1 If-Match); a page cursor the store did not
 * hand out is port.ts InvalidCursorError (400).
 */
import type { z } from 'zod';

export type AdminErrorCode = 'invalid_request' | 'not_found' | 'conflict';

/** One thing wrong with the input: where (`files.assurance.yml.default.medium`, `limit`) and what. */
export interface InputError {
  path: string;
  message: string;
}

export class AdminError extends Error {
  override name = 'AdminError';
  readonly code: AdminErrorCode;
  readonly reason: string;
  readonly errors: InputError[] | undefined;
  /** Machine-readable details (e.g. the file/line/key errors of a refused policy). Never a secret. */
  readonly detail: Record<string, unknown> | undefined;
  constructor(code: AdminErrorCode, reason: string, message: string, opts: { errors?: InputError[]; detail?: Record<string, unknown> } = {}) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.errors = opts.errors;
    this.detail = opts.detail;
  }
}

/** What the request names does not exist (404). */
export class NotFoundError extends AdminError {
  override name = 'NotFoundError';
  constructor(reason: string, message: string, detail?: Record<string, unknown>) {
    super('not_found', reason, message, { ...(detail ? { detail } : {}) });
  }
}

/** The request is valid, but the state of things does not allow it, e.g. nothing would change (409). */
export class ConflictError extends AdminError {
  override name = 'ConflictError';
  constructor(reason: string, message: string, detail?: Record<string, unknown>) {
    super('conflict', reason, message, { ...(detail ? { detail } : {}) });
  }
}

/** What the request carries is not acceptable, e.g. an invalid policy (400 invalid_request). */
export class InvalidError extends AdminError {
  override name = 'InvalidError';
  constructor(reason: string, message: string, opts: { errors?: InputError[]; detail?: Record<string, unknown> } = {}) {
    super('invalid_request', reason, message, opts);
  }
}

/** Parses `input` with `schema`; a bad request becomes InvalidError `invalid_request` naming each field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const errors = r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new InvalidError('invalid_request', errors.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '), { errors });
}

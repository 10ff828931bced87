/**
 * Reads an `application/x-www-form-urlencoded` body with a byte limit. Anything else is a
 * UserError rendered as a page: wrong content type, oversized, malformed, repeated fields.
 */
import type { Context } from 'koa';
import { UserError } from '../idp/errors.ts';

export async function readForm(ctx: Context, maxBytes: number): Promise<Map<string, string>> {
  const type = ctx.request.type;
  if (type !== 'application/x-www-form-urlencoded') throw new UserError('unsupported_media_type');
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > maxBytes) throw new UserError('payload_too_large');

  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new UserError('payload_too_large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const out = new Map<string, string>();
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(text);
  } catch {
    throw new UserError('invalid_form');
  }
  for (const [k, v] of params) {
    // U+FFFD: the body or a %-escape was not valid UTF-8.
    if (k.includes('\uFFFD') || v.includes('\uFFFD')) throw new UserError('invalid_form');
    // A repeated field is ambiguous (which one did the user mean?): refuse it.
    if (out.has(k)) throw new UserError('invalid_form');
    out.set(k, v);
  }
  return out;
}

/** A required text field with a length cap; control characters refused. */
export function field(form: Map<string, string>, name: string, maxLength: number, opts: { allowEmpty?: boolean } = {}): string {
  const v = form.get(name);
  if (v === undefined || v.length > maxLength || (!opts.allowEmpty && v.length === 0)) throw new UserError('invalid_form');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(v)) throw new UserError('invalid_form');
  return v;
}

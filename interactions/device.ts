/**
 * The device cookie: a random id, signed with the cookie keys. The browser becomes
 * recognised for an account only when a whole login from it has succeeded (the finish
 * step, interactions/finish.ts): a right password alone does not make it so. Recognised
 * browsers get their own failure counter,
 * so an attacker failing against an account from elsewhere cannot lock its owner out
 * (OWASP "device cookies" against online guessing; NIST 800-63B-4 §3.2.2).
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';

const COOKIE = 'idp_device';
/** Browsers cap cookie lifetime at 400 days. */
const MAX_AGE_MS = 400 * 24 * 3600 * 1000;

export function readDeviceId(ctx: Context): string | undefined {
  const v = ctx.cookies.get(COOKIE, { signed: true });
  return v && /^[A-Za-z0-9_-]{22}$/.test(v) ? v : undefined;
}

export function ensureDeviceId(ctx: Context, secure: boolean): string {
  const existing = readDeviceId(ctx);
  if (existing) return existing;
  const id = crypto.randomBytes(16).toString('base64url');
  ctx.cookies.set(COOKIE, id, { signed: true, httpOnly: true, sameSite: 'lax', secure, maxAge: MAX_AGE_MS, overwrite: true });
  return id;
}

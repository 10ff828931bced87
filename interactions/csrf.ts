/**
 * CSRF protection for every interaction POST: a signed double-submit token. A random
 * secret lives in an HttpOnly, SameSite=Lax cookie; the form carries
 * HMAC(key, secret | interaction uid). A cross-site page can neither read the cookie nor
 * compute the token, and a token is valid only for its own interaction. The account page
 * (interactions/account.ts) has its own instance: its own cookie, under /account, and tokens
 * bound to the signed-in session instead of an interaction.
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import { UserError } from '../idp/errors.ts';

/** Where the secret lives: the interaction pages' cookie unless told otherwise. */
export interface CsrfCookie {
  name: string;
  path: string;
}
const INTERACTION_COOKIE: CsrfCookie = { name: 'idp_csrf', path: '/interaction' };
/** A key shorter than the HMAC's output would be the weakest link (RFC 2104 §3). */
export const CSRF_KEY_MIN_BYTES = 32;

export class Csrf {
  /** A KeyObject, made once: an HMAC keyed by a Buffer re-imports the key each time (measured 15 µs, against 2). */
  readonly #key: crypto.KeyObject;
  readonly #secure: boolean;
  readonly #cookie: CsrfCookie;

  /** `key`: at least 32 secret bytes; anything shorter (an empty fallback above all) is refused. */
  constructor(key: Buffer, secure: boolean, cookie: CsrfCookie = INTERACTION_COOKIE) {
    if (!Buffer.isBuffer(key) || key.length < CSRF_KEY_MIN_BYTES) {
      throw new Error(`CSRF key must be at least ${CSRF_KEY_MIN_BYTES} bytes`);
    }
    this.#key = crypto.createSecretKey(Buffer.from(key));
    this.#secure = secure;
    this.#cookie = { ...cookie };
  }

  #mac(secret: string, uid: string): string {
    return crypto.createHmac('sha256', this.#key).update(`${secret}|${uid}`).digest('base64url');
  }

  /** Token for a form of interaction (or session) `uid`; sets the cookie if the browser has none. */
  issue(ctx: Context, uid: string): string {
    let secret = ctx.cookies.get(this.#cookie.name);
    if (!secret || !/^[A-Za-z0-9_-]{43}$/.test(secret)) {
      secret = crypto.randomBytes(32).toString('base64url');
      ctx.cookies.set(this.#cookie.name, secret, { httpOnly: true, sameSite: 'lax', secure: this.#secure, path: this.#cookie.path, overwrite: true });
    }
    return this.#mac(secret, uid);
  }

  verify(ctx: Context, uid: string, token: string | undefined): void {
    const secret = ctx.cookies.get(this.#cookie.name);
    if (!secret || !token) throw new UserError('csrf_failed');
    const expected = Buffer.from(this.#mac(secret, uid));
    const given = Buffer.from(token);
    if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) throw new UserError('csrf_failed');
  }
}

/**
 * POST /interaction/:uid/passkey/options — the options of the ceremony this interaction is at (JSON)
 * POST /interaction/:uid/passkey         — the browser's result, posted as a form field; the
 *                                          outcome is the caller's (onVerified / onFailed)
 *
 * Both load what the ceremony is for before acting (`load`: in the login, the interaction bound
 * to this browser by oidc-provider's cookie, at the login prompt; on the account page, the
 * signed-in session) and check the CSRF token bound to it. The challenge is bound to the same
 * uid (methods/webauthn.ts), so a response made for one sign-in cannot finish another. Which
 * ceremony applies, for which account, and at which user-verification requirement is the
 * caller's decision, asked of `ceremony()`; never of the request.
 */
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import { ERROR_CODES, UserError } from '../../idp/errors.ts';
import type { Account, FactorRecord } from '../../models/types.ts';
import { loadInteraction, type Details } from '../context.ts';
import type { Csrf } from '../csrf.ts';
import { field, readForm } from '../form.ts';
import { WebAuthnError, type PasskeyAssertion, type UserVerification, type WebAuthn } from '../methods/webauthn.ts';

export type PasskeyCeremony =
  | { kind: 'register'; account: Pick<Account, 'id' | 'username' | 'name'>; userVerification?: UserVerification; enrolledVia: FactorRecord['enrolledVia']; label?: string }
  | { kind: 'authenticate'; accountId?: string | undefined; userVerification?: UserVerification };

export type PasskeyResult =
  | { kind: 'register'; factor: FactorRecord }
  | { kind: 'authenticate'; assertion: PasskeyAssertion };

/** What a ceremony is for; its `uid` binds the CSRF token and the challenge. */
export interface PasskeySubject {
  uid: string;
}

export interface PasskeyStepDeps<S extends PasskeySubject = Details> {
  csrf: Csrf;
  webauthn: WebAuthn;
  maxFormBytes: number;
  /** Loads and checks the subject, or throws a UserError; runs before the form is read. */
  load(ctx: Context): Promise<S>;
}

/** The subject of a login's ceremonies: the interaction bound to this browser, at its login prompt. */
export const interactionAtLogin = (provider: Provider) => (ctx: Context): Promise<Details> => loadInteraction(ctx, provider, 'login');

export interface PasskeyCallbacks<S extends PasskeySubject = Details> {
  /** The ceremony the subject is at, from its server-side state; undefined: none (refused as out of date). */
  ceremony(ctx: Context, subject: S): Promise<PasskeyCeremony | undefined>;
  /** Success: finish the step (typically a 303 redirect). `form`: the posted form, for fields of the caller's own. */
  onVerified(ctx: Context, subject: S, result: PasskeyResult, form: ReadonlyMap<string, string>): Promise<void>;
  /** A refused ceremony: typically the page again with `error.message` (never library internals). */
  onFailed(ctx: Context, subject: S, error: WebAuthnError): Promise<void>;
}

/** Longest result accepted: a response with a packed attestation and certificate chain fits easily. */
const MAX_RESPONSE_CHARS = 12_000;

/** Options as JSON for the page's script; failures as JSON `{ error, message }` it can show. */
export function passkeyOptions<S extends PasskeySubject>(deps: PasskeyStepDeps<S>, cb: PasskeyCallbacks<S>): Middleware {
  return async (ctx) => {
    try {
      const subject = await deps.load(ctx);
      const form = await readForm(ctx, deps.maxFormBytes);
      deps.csrf.verify(ctx, subject.uid, form.get('csrf'));
      const c = await cb.ceremony(ctx, subject);
      if (!c) throw new UserError('interaction_out_of_date');
      ctx.type = 'application/json';
      ctx.body = c.kind === 'register'
        ? await deps.webauthn.registrationOptions({ binding: subject.uid, account: c.account, userVerification: c.userVerification })
        : await deps.webauthn.authenticationOptions({ binding: subject.uid, accountId: c.accountId, userVerification: c.userVerification });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      ctx.status = err.status;
      ctx.type = 'application/json';
      ctx.body = { error: err.code, message: ERROR_CODES[err.code].message };
    }
  };
}

export function passkeyVerify<S extends PasskeySubject>(deps: PasskeyStepDeps<S>, cb: PasskeyCallbacks<S>): Middleware {
  return async (ctx) => {
    const subject = await deps.load(ctx);
    const form = await readForm(ctx, deps.maxFormBytes);
    deps.csrf.verify(ctx, subject.uid, form.get('csrf'));
    const raw = field(form, 'response', MAX_RESPONSE_CHARS);
    const c = await cb.ceremony(ctx, subject);
    if (!c) throw new UserError('interaction_out_of_date');
    let response: unknown;
    try {
      response = JSON.parse(raw);
    } catch {
      return cb.onFailed(ctx, subject, new WebAuthnError('verification_failed'));
    }
    let result: PasskeyResult;
    try {
      result = c.kind === 'register'
        ? { kind: 'register', factor: await deps.webauthn.verifyRegistration({ binding: subject.uid, account: c.account, response, enrolledVia: c.enrolledVia, label: c.label }) }
        : { kind: 'authenticate', assertion: await deps.webauthn.verifyAuthentication({ binding: subject.uid, accountId: c.accountId, response, requireUserVerification: c.userVerification === 'required' }) };
    } catch (err) {
      if (err instanceof WebAuthnError) return cb.onFailed(ctx, subject, err);
      throw err;
    }
    return cb.onVerified(ctx, subject, result, form);
  };
}

/**
 * POST /interaction/:uid/passkey/options — the options of the ceremony this interaction is at (JSON)
 * POST /interaction/:uid/passkey         — the browser's result, posted as a form field; the
 *                                          outcome is the caller's (onVerified / onFailed)
 *
 * Both check the interaction (bound to this browser by oidc-provider's cookie, at the login
 * prompt) and the CSRF token before acting. The challenge is bound to the interaction uid
 * (methods/webauthn.ts), so a response made for one sign-in cannot finish another. Which
 * ceremony applies, for which account, and at which user-verification requirement is the
 * login flow's decision, asked of `ceremony()`; never of the request.
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

export interface PasskeyStepDeps {
  provider: Provider;
  csrf: Csrf;
  webauthn: WebAuthn;
  maxFormBytes: number;
}

export interface PasskeyCallbacks {
  /** The ceremony this interaction is at, from its server-side state; undefined: none (refused as out of date). */
  ceremony(ctx: Context, details: Details): Promise<PasskeyCeremony | undefined>;
  /** Success: finish the step (typically a 303 redirect). */
  onVerified(ctx: Context, details: Details, result: PasskeyResult): Promise<void>;
  /** A refused ceremony: typically the page again with `error.message` (never library internals). */
  onFailed(ctx: Context, details: Details, error: WebAuthnError): Promise<void>;
}

/** Longest result accepted: a response with a packed attestation and certificate chain fits easily. */
const MAX_RESPONSE_CHARS = 12_000;

/** Options as JSON for the page's script; failures as JSON `{ error, message }` it can show. */
export function passkeyOptions(deps: PasskeyStepDeps, cb: PasskeyCallbacks): Middleware {
  return async (ctx) => {
    try {
      const details = await loadInteraction(ctx, deps.provider, 'login');
      const form = await readForm(ctx, deps.maxFormBytes);
      deps.csrf.verify(ctx, details.uid, form.get('csrf'));
      const c = await cb.ceremony(ctx, details);
      if (!c) throw new UserError('interaction_out_of_date');
      ctx.type = 'application/json';
      ctx.body = c.kind === 'register'
        ? await deps.webauthn.registrationOptions({ binding: details.uid, account: c.account, userVerification: c.userVerification })
        : await deps.webauthn.authenticationOptions({ binding: details.uid, accountId: c.accountId, userVerification: c.userVerification });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      ctx.status = err.status;
      ctx.type = 'application/json';
      ctx.body = { error: err.code, message: ERROR_CODES[err.code].message };
    }
  };
}

export function passkeyVerify(deps: PasskeyStepDeps, cb: PasskeyCallbacks): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider, 'login');
    const form = await readForm(ctx, deps.maxFormBytes);
    deps.csrf.verify(ctx, details.uid, form.get('csrf'));
    const raw = field(form, 'response', MAX_RESPONSE_CHARS);
    const c = await cb.ceremony(ctx, details);
    if (!c) throw new UserError('interaction_out_of_date');
    let response: unknown;
    try {
      response = JSON.parse(raw);
    } catch {
      return cb.onFailed(ctx, details, new WebAuthnError('verification_failed'));
    }
    let result: PasskeyResult;
    try {
      result = c.kind === 'register'
        ? { kind: 'register', factor: await deps.webauthn.verifyRegistration({ binding: details.uid, account: c.account, response, enrolledVia: c.enrolledVia, label: c.label }) }
        : { kind: 'authenticate', assertion: await deps.webauthn.verifyAuthentication({ binding: details.uid, accountId: c.accountId, response, requireUserVerification: c.userVerification === 'required' }) };
    } catch (err) {
      if (err instanceof WebAuthnError) return cb.onFailed(ctx, details, err);
      throw err;
    }
    return cb.onVerified(ctx, details, result);
  };
}

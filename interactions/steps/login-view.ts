/**
 * The sign-in form as the steps render it again: after a wrong password, and after a login
 * refused once its password was right (level.ts `refuse`). One function for both, so the two
 * pages cannot drift apart: a difference (the typed username kept or not, a button more or
 * less) would tell a password-guesser that the password was right.
 */
import type { Context } from 'koa';
import { clientName, type Details, type InteractionDeps } from '../context.ts';
import { loginPage, type LoginView } from '../views/login.ts';

export async function loginForm(deps: InteractionDeps, ctx: Context, details: Details, v: Partial<LoginView>): Promise<ReturnType<typeof loginPage>> {
  const base = `/interaction/${details.uid}`;
  return loginPage({
    action: `${base}/login`, abortAction: `${base}/abort`, csrf: deps.csrf.issue(ctx, details.uid),
    clientName: await clientName(deps.provider, details.params.client_id),
    passkey: deps.webauthn.supported ? { optionsAction: `${base}/passkey/options`, action: `${base}/passkey` } : undefined, ...v,
  });
}

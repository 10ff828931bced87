/**
 * The sign-in form as the steps render it again: after a wrong password, and after a login
 * refused once its password was right (level.ts `refuse`). One function for both, so the two
 * pages cannot drift apart: a difference (the typed username kept or not, a button more or
 * less) would tell a password-guesser that the password was right.
 * Each rendering carries a fresh single-use nonce for the device key to sign
 * (interactions/device-key.ts): a wrong password spends the page's nonce, the page shown
 * again brings a new one.
 */
import type { Context } from 'koa';
import { clientName, type Details, type InteractionDeps } from '../context.ts';
import { DeviceKeys } from '../device-key.ts';
import { loginPage, type LoginView } from '../views/login.ts';

export async function loginForm(deps: InteractionDeps, ctx: Context, details: Details, v: Partial<LoginView>): Promise<ReturnType<typeof loginPage>> {
  const base = `/interaction/${details.uid}`;
  const deviceProof = await new DeviceKeys(deps.storage.oidc, deps.provider.issuer, deps.deviceNonceKey)
    .issue(details.uid, typeof details.exp === 'number' ? details.exp * 1000 : undefined);
  return loginPage({
    action: `${base}/login`, abortAction: `${base}/abort`, csrf: deps.csrf.issue(ctx, details.uid),
    clientName: await clientName(deps.provider, details.params.client_id),
    passkey: deps.webauthn.supported ? { optionsAction: `${base}/passkey/options`, action: `${base}/passkey` } : undefined, deviceProof, ...v,
  });
}

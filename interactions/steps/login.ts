/** POST /interaction/:uid/login — first factor (username + password). */
import type { Middleware } from 'koa';
import { ACR_VALUES } from '../../idp/provider.ts';
import { ERROR_CODES } from '../../idp/errors.ts';
import { clientAddress, clientName, loadInteraction, renderPage, type InteractionDeps } from '../context.ts';
import { ensureDeviceId } from '../device.ts';
import { field, readForm } from '../form.ts';
import { PASSWORD_MAX_LENGTH, passwordMethod } from '../methods/password.ts';
import { loginPage } from '../views/login.ts';

export function login(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider, 'login');
    const form = await readForm(ctx, deps.maxFormBytes);
    deps.csrf.verify(ctx, details.uid, form.get('csrf'));
    const username = field(form, 'username', 256);
    const password = field(form, 'password', PASSWORD_MAX_LENGTH);
    const deviceId = ensureDeviceId(ctx, deps.secure);

    const outcome = await deps.authenticator.attempt({ username, password, ip: clientAddress(ctx), deviceId });
    if (!outcome.ok) {
      deps.log.info('login.failed', { reason: outcome.reason, client: details.params.client_id, ip: clientAddress(ctx) });
      const base = `/interaction/${details.uid}`;
      renderPage(ctx, loginPage({
        action: `${base}/login`, abortAction: `${base}/abort`, csrf: deps.csrf.issue(ctx, details.uid),
        clientName: await clientName(deps.provider, details.params.client_id), username,
        error: ERROR_CODES.invalid_credentials.message,
      }));
      return;
    }

    deps.log.info('login.succeeded', { account: outcome.account.id, client: details.params.client_id });
    const redirectTo = await deps.provider.interactionResult(ctx.req, ctx.res, {
      login: {
        accountId: outcome.account.id,
        // Until the risk engine picks the assurance (issue 3), a password alone is AAL1.
        acr: ACR_VALUES[0],
        amr: [...passwordMethod.amr],
        ts: Math.floor(Date.now() / 1000),
      },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  };
}

/** POST /interaction/:uid/login — first factor (username + password). */
import type { Middleware } from 'koa';
import { ERROR_CODES } from '../../idp/errors.ts';
import { clientAddress, clientIp, clientName, loadInteraction, renderPage, type InteractionDeps } from '../context.ts';
import { ensureDeviceId } from '../device.ts';
import { field, readForm } from '../form.ts';
import { PASSWORD_MAX_LENGTH, passwordMethod } from '../methods/password.ts';
import { loginPage } from '../views/login.ts';
import { stepUpPage } from '../views/stepup.ts';

export function login(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider, 'login');
    const form = await readForm(ctx, deps.maxFormBytes);
    deps.csrf.verify(ctx, details.uid, form.get('csrf'));
    const username = field(form, 'username', 256);
    const password = field(form, 'password', PASSWORD_MAX_LENGTH);
    const deviceId = ensureDeviceId(ctx, deps.secure);

    const outcome = await deps.authenticator.attempt({ username, password, ip: clientAddress(ctx), deviceId });
    const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : undefined;
    const attempt = {
      user: outcome.subject, ip: clientIp(ctx), userAgent: ctx.get('user-agent'), deviceId, clientId,
      scopes: typeof details.params.scope === 'string' ? details.params.scope.split(' ').filter(Boolean) : [],
    };
    const base = `/interaction/${details.uid}`;
    const refuse = async () => renderPage(ctx, loginPage({
      action: `${base}/login`, abortAction: `${base}/abort`, csrf: deps.csrf.issue(ctx, details.uid),
      clientName: await clientName(deps.provider, clientId), username,
      error: ERROR_CODES.invalid_credentials.message,
    }));

    if (!outcome.ok) {
      if (outcome.reason === 'invalid') await deps.risk.passwordFailed(attempt);
      deps.events.emit(outcome.reason === 'throttled' ? 'login.throttled' : 'login.failed', { client: clientId, ip: attempt.ip });
      await refuse();
      return;
    }

    const risk = await deps.risk.passwordSucceeded(attempt);
    switch (risk.decision.decision) {
      case 'block':
        // The same words as a wrong password: a block must not confirm the password was right.
        deps.events.emit('login.blocked', { account: outcome.account.id, client: clientId, event: risk.eventId }, 'warn');
        await refuse();
        return;
      case 'step_up':
        deps.events.emit('stepup.required', { account: outcome.account.id, client: clientId, required: risk.decision.required, event: risk.eventId });
        renderPage(ctx, stepUpPage({ clientName: await clientName(deps.provider, clientId), abortAction: `${base}/abort`, csrf: deps.csrf.issue(ctx, details.uid) }));
        return;
      case 'allow':
        break;
    }

    deps.events.emit('login.succeeded', { account: outcome.account.id, client: clientId, event: risk.eventId });
    // What a password proves: the weakest level of the policy snapshot that scored it.
    const achieved = risk.policy.assurance.levels[0]!;
    const redirectTo = await deps.provider.interactionResult(ctx.req, ctx.res, {
      login: {
        accountId: outcome.account.id,
        acr: achieved.acr,
        amr: [...passwordMethod.amr],
        ts: Math.floor(Date.now() / 1000),
      },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  };
}

/**
 * POST /interaction/:uid/login — the first factor, then the risk decision, then finish.
 * In order: form + CSRF → empty fields re-rendered → throttle + password
 * (authenticate.ts) → risk (risk.ts) → finish (finish.ts, the only step that writes trust).
 */
import type { Context, Middleware } from 'koa';
import { ERROR_CODES, type ErrorCode } from '../../idp/errors.ts';
import { clientAddress, clientIp, clientName, loadInteraction, renderPage, type Details, type InteractionDeps } from '../context.ts';
import { ensureDeviceId } from '../device.ts';
import { finishLogin } from '../finish.ts';
import { field, readForm } from '../form.ts';
import { PASSWORD_MAX_LENGTH, passwordMethod } from '../methods/password.ts';
import { loginPage, type LoginView } from '../views/login.ts';

/** "in 5 seconds", "in 2 minutes": how long a paused sign-in waits, for people. */
function waitText(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

export function login(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider, 'login');
    const form = await readForm(ctx, deps.maxFormBytes);
    deps.csrf.verify(ctx, details.uid, form.get('csrf'));
    // Present but empty (Enter pressed in the username field): the form again, with the
    // field's error, instead of a dead-end error page.
    const username = field(form, 'username', 256, { allowEmpty: true });
    const password = field(form, 'password', PASSWORD_MAX_LENGTH, { allowEmpty: true });
    const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : undefined;
    const again = async (view: Partial<LoginView>, code: ErrorCode) =>
      renderPage(ctx, await loginView(deps, ctx, details, clientId, { username, ...view }), ERROR_CODES[code].status);

    if (!username.trim()) return again({ fieldError: { field: 'username', message: ERROR_CODES.missing_username.message } }, 'missing_username');
    if (!password) return again({ fieldError: { field: 'password', message: ERROR_CODES.missing_password.message } }, 'missing_password');

    const deviceId = ensureDeviceId(ctx, deps.secure);
    const outcome = await deps.authenticator.attempt({ username, password, ip: clientAddress(ctx), deviceId });
    const attempt = {
      user: outcome.subject, ip: clientIp(ctx), userAgent: ctx.get('user-agent'), deviceId, clientId,
      scopes: typeof details.params.scope === 'string' ? details.params.scope.split(' ').filter(Boolean) : [],
    };
    const refuse = () => again({ error: ERROR_CODES.invalid_credentials.message }, 'invalid_credentials');

    if (!outcome.ok) {
      if (outcome.reason === 'throttled') {
        deps.events.emit('login.throttled', { client: clientId, ip: attempt.ip });
        const wait = outcome.until === undefined ? undefined : outcome.until - Date.now();
        // RFC 6585 §4: 429 with Retry-After (seconds) when the wait is known.
        if (wait !== undefined) ctx.set('retry-after', String(Math.max(1, Math.ceil(wait / 1000))));
        return again({
          error: `${ERROR_CODES.login_paused.message} ${wait === undefined ? 'Sign in from a browser you have used before, or ask an administrator to unlock the account.' : `Try again in ${waitText(wait)}.`}`,
        }, 'login_paused');
      }
      await deps.risk.passwordFailed(attempt);
      deps.events.emit('login.failed', { client: clientId, ip: attempt.ip });
      return refuse();
    }

    const risk = await deps.risk.passwordSucceeded(attempt);
    switch (risk.decision.decision) {
      case 'block':
        // The same words as a wrong password: a block must not confirm the password was
        // right. It stays counted as a failure in the throttle (nothing is reset).
        deps.events.emit('login.blocked', { account: outcome.account.id, client: clientId, event: risk.eventId }, 'warn');
        return refuse();
      case 'step_up':
        // No account can hold a second factor yet, so a challenge cannot be offered. A page
        // saying so would tell a credential-stuffing run which passwords are right: until
        // step-up methods exist, a challenged login is refused with the same words as a wrong
        // password and stays counted as a failure, like a block.
        deps.events.emit('stepup.required', { account: outcome.account.id, client: clientId, required: risk.decision.required, event: risk.eventId });
        return refuse();
      case 'allow':
        return finishLogin(deps, ctx, { account: outcome.account, ticket: outcome.ticket, risk, deviceId, methods: [passwordMethod], clientId });
    }
  };
}

async function loginView(deps: InteractionDeps, ctx: Context, details: Details, clientId: string | undefined, v: Partial<LoginView>): Promise<ReturnType<typeof loginPage>> {
  const base = `/interaction/${details.uid}`;
  return loginPage({
    action: `${base}/login`, abortAction: `${base}/abort`, csrf: deps.csrf.issue(ctx, details.uid),
    clientName: await clientName(deps.provider, clientId), ...v,
  });
}

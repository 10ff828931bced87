/**
 * POST /interaction/:uid/login — the first factor, then the risk decision.
 * In order: form + CSRF → empty fields re-rendered → throttle + password
 * (authenticate.ts) → risk (risk.ts) → the required level (level.ts), which asks for a
 * second factor or enrolment, or hands over to finish (finish.ts, the only step that writes
 * trust).
 */
import type { Middleware } from 'koa';
import { ERROR_CODES, type ErrorCode } from '../../idp/errors.ts';
import type { LoginFailureReason } from '../../idp/events.ts';
import { isUnknownSubject, type PasswordOutcome } from '../authenticate.ts';
import { clientAddress, clientIp, loadInteraction, requestedScopes, renderPage, type InteractionDeps } from '../context.ts';
import { ensureDeviceId } from '../device.ts';
import { DEVICE_PROOF_FIELD, provenDeviceKey } from '../device-key.ts';
import { readBehaviour } from '../behaviour.ts';
import { proceed } from './level.ts';
import { assuranceOf, firstFactorTransaction, requestedBy } from '../transaction.ts';
import { waitText } from './wait.ts';
import { field, readForm } from '../form.ts';
import { PASSWORD_MAX_LENGTH, passwordMethod } from '../methods/password.ts';
import { ldapMethod } from '../methods/ldap.ts';
import type { LoginView } from '../views/login.ts';
import { loginForm } from './login-view.ts';

/** What the unavailable page's Retry-After says: a directory restart or failover takes about this long. */
const UNAVAILABLE_RETRY_SECONDS = 30;

/**
 * Why the first factor was refused, for idp_login_failures_total only (the page says
 * "incorrect" whatever it is). An unknown username's throttle subject is its keyed hash.
 */
function failureReason(outcome: Extract<PasswordOutcome, { reason: 'invalid' }>): LoginFailureReason {
  const refused = outcome.refused;
  if (refused?.reason === 'account_disabled') return 'disabled';
  if (refused?.reason === 'ambiguous') return 'other';
  if (refused) return 'directory_refused';
  return isUnknownSubject(outcome.subject) ? 'unknown_user' : 'bad_password';
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
      renderPage(ctx, await loginForm(deps, ctx, details, { username, ...view }), ERROR_CODES[code].status);

    if (!username.trim()) return again({ fieldError: { field: 'username', message: ERROR_CODES.missing_username.message } }, 'missing_username');
    if (!password) return again({ fieldError: { field: 'password', message: ERROR_CODES.missing_password.message } }, 'missing_password');

    const deviceId = ensureDeviceId(ctx, deps.secure);
    // The device key's proof is checked for every attempt, whatever the password: its nonce
    // is spent either way, and a failed proof only leaves the key out (device-key.ts).
    const [outcome, deviceKey] = await Promise.all([
      deps.authenticator.attempt({ username, password, ip: clientAddress(ctx), deviceId }),
      provenDeviceKey(deps, details.uid, form.get(DEVICE_PROOF_FIELD), clientId),
    ]);
    const attempt = {
      user: outcome.subject, ip: clientIp(ctx), userAgent: ctx.get('user-agent'), deviceId, clientId,
      scopes: requestedScopes(details.params.scope), behaviour: readBehaviour(form, password), deviceKey,
    };
    const refuse = () => again({ error: ERROR_CODES.invalid_credentials.message }, 'invalid_credentials');

    if (!outcome.ok) {
      if (outcome.reason === 'unavailable') {
        // The directory did not answer within its timeouts: nothing was decided, so neither
        // "incorrect" nor a count. 503 + Retry-After (RFC 9110 §15.6.4, §10.2.3).
        deps.events.emit('directory.unavailable', { directory: outcome.directory, kind: outcome.kind, during: 'sign-in', client: clientId, ip: attempt.ip }, 'warn');
        deps.events.count('idp_directory_errors_total', { directory: outcome.directory, kind: outcome.kind });
        deps.events.metrics.login('unavailable', 'none');
        ctx.set('retry-after', String(UNAVAILABLE_RETRY_SECONDS));
        // Above the form, not as an error of the fields: what the user typed was not wrong.
        return again({ notice: ERROR_CODES.directory_unavailable.message }, 'directory_unavailable');
      }
      if (outcome.reason === 'throttled') {
        deps.events.emit('login.throttled', { client: clientId, ip: attempt.ip });
        deps.events.metrics.login('throttled', 'none');
        deps.events.metrics.throttled('password');
        const wait = outcome.until === undefined ? undefined : outcome.until - Date.now();
        // RFC 6585 §4: 429 with Retry-After (seconds) when the wait is known.
        if (wait !== undefined) ctx.set('retry-after', String(Math.max(1, Math.ceil(wait / 1000))));
        return again({
          error: `${ERROR_CODES.login_paused.message} ${wait === undefined ? 'Sign in from a browser you have used before, or ask an administrator to unlock the account.' : `Try again in ${waitText(wait)}.`}`,
        }, 'login_paused');
      }
      await deps.risk.passwordFailed(attempt);
      // The page says "incorrect" whatever the reason; the log and the event say which.
      deps.events.emit('login.failed', {
        client: clientId, ip: attempt.ip,
        ...(outcome.refused ? { directory: outcome.refused.directory, reason: outcome.refused.reason } : {}),
      }, outcome.refused ? 'warn' : 'info');
      deps.events.metrics.login('failure', 'none');
      deps.events.metrics.loginFailure(failureReason(outcome));
      return refuse();
    }

    // Provisioning is said once, when it happens: who, from which directory entry (no password).
    if (outcome.linked) deps.events.emit('directory.linked', { account: outcome.account.id, directory: outcome.account.directory?.name, dn: outcome.account.directory?.dn });
    const method = outcome.method === 'ldap' ? ldapMethod : passwordMethod;
    const risk = await deps.risk.passwordSucceeded(attempt, { amr: method.amr, requested: requestedBy(assuranceOf(details)) });
    if (risk.decision.decision === 'block') {
      // The same words as a wrong password: a block must not confirm the password was
      // right. It stays counted as a failure in the throttle (nothing is reset).
      deps.events.emit('login.blocked', { account: outcome.account.id, client: clientId, event: risk.eventId }, 'warn');
      deps.events.metrics.login('blocked', 'block');
      return refuse();
    }
    const tx = firstFactorTransaction(details, {
      accountId: outcome.account.id, method: method.id, amr: method.amr, risk, ticket: outcome.ticket, deviceId, trustedDevices: outcome.account.trustedDevices,
    });
    return proceed(deps, ctx, details, tx, { username });
  };
}


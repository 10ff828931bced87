/**
 * The interaction pipeline, listed in one place (STYLE.md §1), in the order a login runs
 * (ARCHITECTURE.md: form + CSRF → throttle → first factor → risk → required level → second
 * factor / enrolment → finish). One module per step.
 *
 *   GET  /interaction/:uid              show       the page for where the login is (login form,
 *                                                  second factor, enrolment, consent); starts the
 *                                                  step-up of an existing session
 *   POST /interaction/:uid/login        login      username + password → throttle → risk →
 *                                                  required level (level.ts)
 *   POST /interaction/:uid/totp         totp       a code from the authenticator app
 *   POST /interaction/:uid/recovery     recovery   a recovery code
 *   POST /interaction/:uid/passkey/options          the passkey ceremony's options (JSON): an
 *                                                  assertion, a registration at enrolment, or a
 *                                                  username-less sign-in from the login page
 *   POST /interaction/:uid/passkey      passkey    its result
 *   POST /interaction/:uid/enrol/totp   enrolTotp  confirms a new authenticator app
 *   POST /interaction/:uid/enrol/skip   skip       declines an optional enrolment
 *   POST /interaction/:uid/continue     continue   after the recovery codes were shown
 *                                                  → finish (finish.ts: the only writer of trust)
 *   POST /interaction/:uid/confirm      confirm    consent → grant
 *   POST /interaction/:uid/abort        abort      access_denied back to the client
 *
 * Every response is `Cache-Control: no-store`; POSTs check the interaction, its prompt and
 * a CSRF token before acting, and answer with 303 redirects or a rendered page.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { UserError } from '../idp/errors.ts';
import type { InteractionDeps } from './context.ts';
import { show } from './steps/show.ts';
import { login } from './steps/login.ts';
import { recovery, totp } from './steps/second-factor.ts';
import { continueLogin, enrolTotp, skipEnrolment } from './steps/enrol.ts';
import { passkeyRoutes } from './steps/passkey-login.ts';
import { confirm } from './steps/consent.ts';
import { abort } from './steps/abort.ts';

export const noStore: Middleware = async (ctx, next) => {
  ctx.set('cache-control', 'no-store');
  ctx.set('pragma', 'no-cache');
  await next();
};

export const methodNotAllowed: Middleware = () => {
  throw new UserError('method_not_allowed');
};

export function interactionRouter(deps: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction' });
  router.use(noStore);
  router.get('/:uid', show(deps));
  router.post('/:uid/login', login(deps));
  router.post('/:uid/totp', totp(deps));
  router.post('/:uid/recovery', recovery(deps));
  const passkey = passkeyRoutes(deps);
  router.post('/:uid/passkey/options', passkey.options);
  router.post('/:uid/passkey', passkey.verify);
  router.post('/:uid/enrol/totp', enrolTotp(deps));
  router.post('/:uid/enrol/skip', skipEnrolment(deps));
  router.post('/:uid/continue', continueLogin(deps));
  router.post('/:uid/confirm', confirm(deps));
  router.post('/:uid/abort', abort(deps));
  router.all('/:uid/:step', methodNotAllowed);
  router.all('/:uid/:step/:sub', methodNotAllowed);
  return router;
}

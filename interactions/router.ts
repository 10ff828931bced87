/**
 * The interaction pipeline, listed in one place (STYLE.md §1). One module per step.
 *
 *   GET  /interaction/:uid          show      login or consent page, as oidc-provider prompts
 *   POST /interaction/:uid/login    login     username + password → login result
 *   POST /interaction/:uid/confirm  confirm   consent → grant
 *   POST /interaction/:uid/abort    abort     access_denied back to the client
 *
 * Every response is `Cache-Control: no-store`; POSTs check the interaction, its prompt and
 * a CSRF token before acting, and answer with 303 redirects.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { UserError } from '../idp/errors.ts';
import type { InteractionDeps } from './context.ts';
import { show } from './steps/show.ts';
import { login } from './steps/login.ts';
import { confirm } from './steps/consent.ts';
import { abort } from './steps/abort.ts';

const noStore: Middleware = async (ctx, next) => {
  ctx.set('cache-control', 'no-store');
  ctx.set('pragma', 'no-cache');
  await next();
};

const methodNotAllowed: Middleware = () => {
  throw new UserError('method_not_allowed');
};

export function interactionRouter(deps: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction' });
  router.use(noStore);
  router.get('/:uid', show(deps));
  router.post('/:uid/login', login(deps));
  router.post('/:uid/confirm', confirm(deps));
  router.post('/:uid/abort', abort(deps));
  router.all('/:uid/:step', methodNotAllowed);
  return router;
}

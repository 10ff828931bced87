/**
 * The account page: a signed-in user sees, adds and removes their own second factors
 * (issue 7, "Self-service"). Its routes, in one place:
 *
 *   GET  /account                   show      the user's sign-in methods; signed out → sign in
 *   GET  /account/callback          callback  back from the sign-in (state, PKCE, the code redeemed once)
 *   GET  /account/totp              showAddTotp   an authenticator app: QR code and key
 *   POST /account/totp              addTotp       its first code turns it on
 *   GET  /account/passkey           showAddPasskey
 *   POST /account/passkey/options   passkey.options   the registration's options (JSON)
 *   POST /account/passkey           passkey.verify    its result
 *   POST /account/recovery          newRecoveryCodes  new recovery codes, shown once
 *   POST /account/remove            removeFactor      removes one (the last: after a confirmation)
 *
 * Who the user is comes from oidc-provider's session only (account/session.ts). Every change
 * needs a fresh authentication at the session's level (at least two factors when the account
 * holds a second one): otherwise the user goes through the sign-in again (`max_age`,
 * `acr_values`) and comes back. Every POST checks the session and a CSRF token bound to it;
 * every response is `Cache-Control: no-store`.
 */
import Router from '@koa/router';
import { callback } from './account/signin.ts';
import { passkeyRoutes, showAddPasskey } from './account/passkey.ts';
import { newRecoveryCodes } from './account/recovery.ts';
import { removeFactor } from './account/remove.ts';
import type { AccountDeps } from './account/session.ts';
import { show } from './account/show.ts';
import { addTotp, showAddTotp } from './account/totp.ts';
import { methodNotAllowed, noStore } from './router.ts';

export type { AccountDeps } from './account/session.ts';

export function accountRouter(deps: AccountDeps): Router {
  const router = new Router();
  router.use(noStore);
  router.get('/account', show(deps));
  router.get('/account/callback', callback(deps));
  router.get('/account/totp', showAddTotp(deps));
  router.post('/account/totp', addTotp(deps));
  router.get('/account/passkey', showAddPasskey(deps));
  const passkey = passkeyRoutes(deps);
  router.post('/account/passkey/options', passkey.options);
  router.post('/account/passkey', passkey.verify);
  router.post('/account/recovery', newRecoveryCodes(deps));
  router.post('/account/remove', removeFactor(deps));
  router.all(['/account', '/account/:step', '/account/:step/:sub'], methodNotAllowed);
  return router;
}

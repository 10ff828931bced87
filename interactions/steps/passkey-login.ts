/**
 * POST /interaction/:uid/passkey/options and /passkey — passkeys in the login: which ceremony
 * the interaction is at is decided here, from its server-side state, never from the request
 * (steps/passkey.ts runs the ceremonies):
 * - a login at the second-factor step → an assertion by one of the account's passkeys (user
 *   verification required when the level is phishing-resistant);
 * - a login at its enrolment step → registering a new passkey (flagged as an enrolment the
 *   login needed, like an authenticator app: steps/enrol.ts);
 * - no login under way (the sign-in page) → a username-less assertion: a discoverable passkey
 *   as the first factor, which is then scored by the risk engine like a right password.
 */
import type { Context } from 'koa';
import { clientIp, renderPage, requestedScopes, type Details, type InteractionDeps } from '../context.ts';
import { ensureDeviceId } from '../device.ts';
import { DEVICE_PROOF_FIELD, provenDeviceKey } from '../device-key.ts';
import type { WebAuthnError } from '../methods/webauthn.ts';
import { assuranceOf, firstFactorTransaction, requestedBy, type LoginTransaction } from '../transaction.ts';
import { loginForm } from './login-view.ts';
import { afterEnrolment } from './enrol.ts';
import { proceed, renderStep } from './level.ts';
import { interactionAtLogin, passkeyOptions, passkeyVerify, type PasskeyCallbacks, type PasskeyCeremony } from './passkey.ts';

/** A passkey sign-in refused (blocked by the policy, or a disabled account): one message for both. */
const REFUSED = 'This sign-in was refused. Try again later, or contact your administrator.';

const enrolling = (tx: LoginTransaction) => tx.enrolment === 'required' || tx.enrolment === 'offer' || tx.enrolment === 'require';

function callbacks(deps: InteractionDeps): PasskeyCallbacks {
  const levels = () => deps.risk.policy.assurance.levels;
  return {
    async ceremony(_ctx: Context, details: Details): Promise<PasskeyCeremony | undefined> {
      if (!deps.webauthn.supported) return undefined;
      const tx = await deps.transactions.get(details.uid);
      // Username-less: the passkey is the whole sign-in, so it must verify the user (PIN or
      // biometric): possession alone would be one factor standing in for the password.
      if (!tx) return { kind: 'authenticate', userVerification: 'required' };
      const phishingResistant = levels()[Math.max(tx.required, 0)]?.phishing_resistant === true;
      const userVerification = phishingResistant ? 'required' : 'preferred';
      if (enrolling(tx)) {
        const account = await deps.storage.accounts.findById(tx.accountId);
        if (!account) return undefined;
        return { kind: 'register', account, userVerification, enrolledVia: tx.enrolment === 'required' ? 'login' : 'self', label: 'Passkey' };
      }
      return { kind: 'authenticate', accountId: tx.accountId, userVerification };
    },

    async onVerified(ctx, details, result, form) {
      const tx = await deps.transactions.get(details.uid);
      const now = Date.now();
      if (result.kind === 'register') {
        if (!tx) return renderPage(ctx, await loginForm(deps, ctx, details, {}), 400);
        const w = result.factor.webauthn!;
        const amr = [w.deviceType === 'singleDevice' ? 'hwk' : 'swk', ...(w.userVerified ? ['user'] : [])];
        return afterEnrolment(deps, ctx, details, tx, { kind: 'webauthn', method: 'webauthn', amr, at: now, factor: result.factor });
      }
      const a = result.assertion;
      if (tx) {
        if (a.accountId !== tx.accountId) {
          // A valid passkey of someone else proves nothing for this login: a failed step-up.
          deps.events.emit('stepup.failed', { account: tx.accountId, client: details.params.client_id, method: 'webauthn', reason: 'other_account', event: tx.eventId }, 'warn');
          deps.events.metrics.stepup('webauthn', 'failed');
          return renderStep(deps, ctx, details, tx, { errorFor: 'passkey', error: 'This passkey belongs to another account.' });
        }
        tx.proven.push({ method: 'webauthn', amr: a.amr, at: now });
        deps.events.emit('stepup.passed', { account: tx.accountId, client: details.params.client_id, method: 'webauthn', event: tx.eventId });
        deps.events.metrics.stepup('webauthn', 'passed');
        return proceed(deps, ctx, details, tx);
      }
      // A passkey as the first factor: scored like a right password, then the same steps. The
      // sign-in page's passkey form carries the device key's proof like the password form.
      const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : undefined;
      // Disabled by an administrator: refused with the words of a blocked sign-in, which tell
      // nothing of why; the log says.
      if ((await deps.storage.accounts.findById(a.accountId))?.disabled) {
        deps.events.emit('login.failed', { account: a.accountId, client: clientId, method: 'webauthn', reason: 'account_disabled' }, 'warn');
        deps.events.metrics.login('failure', 'none');
        deps.events.metrics.loginFailure('disabled');
        return renderPage(ctx, await loginForm(deps, ctx, details, { error: REFUSED }), 403);
      }
      const deviceId = ensureDeviceId(ctx, deps.secure);
      const deviceKey = await provenDeviceKey(deps, details.uid, form.get(DEVICE_PROOF_FIELD), clientId);
      const risk = await deps.risk.passwordSucceeded({
        user: a.accountId, ip: clientIp(ctx), userAgent: ctx.get('user-agent'), deviceId, clientId, scopes: requestedScopes(details.params.scope), deviceKey,
      }, { amr: a.amr, requested: requestedBy(assuranceOf(details)) });
      if (risk.decision.decision === 'block') {
        deps.events.emit('login.blocked', { account: a.accountId, client: clientId, event: risk.eventId, method: 'webauthn' }, 'warn');
        deps.events.metrics.login('blocked', 'block');
        return renderPage(ctx, await loginForm(deps, ctx, details, { error: REFUSED }), 403);
      }
      return proceed(deps, ctx, details, firstFactorTransaction(details, { accountId: a.accountId, method: 'webauthn', amr: a.amr, risk, deviceId }));
    },

    async onFailed(ctx, details, error: WebAuthnError) {
      const tx = await deps.transactions.get(details.uid);
      deps.events.emit('stepup.failed', { account: tx?.accountId, client: details.params.client_id, method: 'webauthn', reason: error.code }, error.code === 'counter_regression' ? 'warn' : 'info');
      // A passkey as the first factor that fails is no step-up: it is a first factor refused
      // (docs/metrics.md idp_logins_total `failure`), of no reason the password's have.
      if (tx) deps.events.metrics.stepup('webauthn', 'failed');
      else {
        deps.events.metrics.login('failure', 'none');
        deps.events.metrics.loginFailure('other');
      }
      if (tx) return renderStep(deps, ctx, details, tx, { errorFor: 'passkey', error: error.message, status: 400 });
      return renderPage(ctx, await loginForm(deps, ctx, details, { passkeyError: error.message }), 400);
    },
  };
}

export function passkeyRoutes(deps: InteractionDeps) {
  const stepDeps = { csrf: deps.csrf, webauthn: deps.webauthn, maxFormBytes: deps.maxFormBytes, load: interactionAtLogin(deps.provider) };
  const cb = callbacks(deps);
  return { options: passkeyOptions(stepDeps, cb), verify: passkeyVerify(stepDeps, cb) };
}

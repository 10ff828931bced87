/**
 * GET /interaction/:uid — renders the page for where the interaction is:
 * - a login under way (first factor done) → its second-factor or enrolment page;
 * - an existing session the assurance check found short of the level required, with nothing
 *   else asked (no max_age passed, no prompt=login) → a step-up of the missing factor only:
 *   the session's methods that still count are carried over (policies/assurance.ts
 *   carriedAmr) and the password is not asked again unless they do not;
 * - otherwise the login form, or the consent page as oidc-provider prompts.
 */
import { signInName } from '../methods/ldap.ts';
import type { Middleware } from 'koa';
import { UserError } from '../../idp/errors.ts';
import { clientIp, clientName, loadInteraction, renderPage, requestedScopes, type InteractionDeps } from '../context.ts';
import { ensureDeviceId } from '../device.ts';
import { consentPage } from '../views/consent.ts';
import { proceed, renderStep } from './level.ts';
import { assuranceOf } from '../transaction.ts';
import { loginForm } from './login-view.ts';

export function show(deps: InteractionDeps): Middleware {
  return async (ctx) => {
    const details = await loadInteraction(ctx, deps.provider);
    switch (details.prompt.name) {
      case 'login': {
        const tx = await deps.transactions.get(details.uid);
        if (tx) return renderStep(deps, ctx, details, tx);
        const stepUp = await sessionStepUp(deps, details);
        if (stepUp) {
          const deviceId = ensureDeviceId(ctx, deps.secure);
          const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : undefined;
          // The session's proven device key (risk.ts sessionDeviceKey) carries over to the login the step-up makes.
          const deviceKey = await deps.risk.sessionDeviceKey(stepUp.accountId, stepUp.session.authTime, deviceId);
          const context = deps.risk.contextOf({ user: stepUp.accountId, ip: clientIp(ctx), userAgent: ctx.get('user-agent'), deviceId, clientId, scopes: requestedScopes(details.params.scope), deviceKey });
          return proceed(deps, ctx, details, {
            v: 1, uid: details.uid, accountId: stepUp.accountId, mode: 'stepup', carried: stepUp.carried, proven: [],
            required: stepUp.assurance.required, accepted: stepUp.assurance.accepted, risk: stepUp.risk, deviceId, context, session: stepUp.session,
          });
        }
        const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint.slice(0, 256) : undefined;
        // Signing in again to the same account (max_age, prompt=login): its name is known.
        const again = details.session?.accountId ? await deps.storage.accounts.findById(details.session.accountId).then((a) => a && signInName(a)) : undefined;
        renderPage(ctx, await loginForm(deps, ctx, details, { username: hint ?? again }));
        return;
      }
      case 'consent': {
        const base = `/interaction/${details.uid}`;
        const csrf = deps.csrf.issue(ctx, details.uid);
        const name = await clientName(deps.provider, details.params.client_id);
        const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
        renderPage(ctx, consentPage({
          action: `${base}/confirm`, abortAction: `${base}/abort`, csrf, clientName: name,
          scopes: d.missingOIDCScope ?? [], claims: (d.missingOIDCClaims ?? []).filter((c) => !['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss'].includes(c)),
        }));
        return;
      }
      default:
        throw new UserError('interaction_out_of_date');
    }
  };
}

/**
 * Whether this interaction is a step-up of the session it was started from: only the
 * assurance check asked for it, and some of the session's methods still count.
 */
async function sessionStepUp(deps: InteractionDeps, details: Awaited<ReturnType<InteractionDeps['provider']['interactionDetails']>>) {
  const assurance = assuranceOf(details);
  const accountId = details.session?.accountId;
  if (!assurance || assurance.required < 0 || !accountId || !details.prompt.reasons.every((r) => r === 'assurance')) return undefined;
  const cookie = details.session?.cookie;
  const session = cookie ? await deps.provider.Session.find(cookie) : undefined;
  if (!session || session.accountId !== accountId) return undefined;
  // The check worked out what still counts before the session was saved as used by this
  // request, and scored the session; the session must be the one it looked at.
  const { carried, risk } = assurance;
  if (!carried?.length || !risk || session.uid !== assurance.sessionUid || session.authTime() !== assurance.sessionAuthTime) return undefined;
  return { accountId, carried, assurance, risk, session: { uid: session.uid, authTime: session.authTime() ?? 0 } };
}

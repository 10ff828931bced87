/**
 * Enforcement of assurance levels inside oidc-provider's login prompt (ARCHITECTURE.md
 * "One login" step 1 and "Re-authorization"): a Check runs on every authorization request,
 * so no path to a token skips it. It replaces oidc-provider's `essential_acr(s)` checks, which
 * compare ACR strings for equality (a session at aal3 would be asked again for an essential
 * aal2 request, endlessly) and ignore voluntary `acr_values`.
 *
 * For a request on an existing session it
 * - works out the level the request requires (acr_values, essential acr, the client's
 *   minimum) and refuses one the provider cannot meet (`unmet_authentication_requirements`,
 *   OpenID Connect Core 1.0 errata set 2 §3.1.2.6);
 * - scores the session again in this request's context (new address, network, browser) with
 *   the same engine as a login, against what the session has proven: `block` ends the
 *   session; a higher requirement sends the user to the interaction, which asks only for the
 *   missing factor;
 * - compares with the session's level computed from its `amr` and the levels'
 *   reauthentication limits (NIST SP 800-63B-4 §2.2.3).
 * What it worked out travels to the interaction in the prompt details (`assurance`), which
 * oidc-provider stores server-side with the interaction.
 */
import { errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { Context } from 'koa';
import { carriedAmr, requestedLevel, sessionLevelIndex, type AcrRequest, type SessionAuth } from '../policies/assurance.ts';
import type { PolicyRuntime } from '../policies/watcher.ts';
import { clientIp, requestedScopes } from '../interactions/context.ts';
import { readDeviceId } from '../interactions/device.ts';
import type { RiskService } from '../interactions/risk.ts';
import { riskClaim } from '../interactions/login-record.ts';
import type { AssuranceDetails } from '../interactions/transaction.ts';

export interface AssuranceCheckDeps {
  policies: PolicyRuntime;
  risk: RiskService;
  /** Session TTL (s): a session's last use is its expiry minus this (oidc-provider re-saves it on use). */
  sessionIdleTtl: number;
  /** Whether browsers can use passkeys with this issuer (methods/webauthn.ts `supported`). */
  passkeys: boolean;
}

/**
 * The session as the level computations see it. Its last use: oidc-provider re-saves a used
 * session with a fresh expiry of the (constant) session TTL, so expiry − TTL; never before its
 * own authentication.
 */
export function sessionAuthOf(session: { amr?: string[] | undefined; authTime(): number | undefined; exp?: number | undefined }, idleTtl: number): SessionAuth {
  const authTime = session.authTime() ?? 0;
  const exp = session.exp;
  return { amr: session.amr ?? [], authTime, lastActive: exp ? Math.max(exp - idleTtl, authTime) : undefined };
}

/** The acr parts of an authorization request (OIDC Core §3.1.2.1, §5.5.1.1). */
export function acrRequestOf(ctx: KoaContextWithOIDC): AcrRequest {
  const params = ctx.oidc.params as { acr_values?: unknown } | undefined;
  const acrValues = typeof params?.acr_values === 'string' ? params.acr_values.split(' ').filter(Boolean) : undefined;
  const acr = (ctx.oidc.claims as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } } | undefined)?.id_token?.acr;
  let essential: string[] | undefined;
  if (acr?.essential) {
    if (acr.values !== undefined && !Array.isArray(acr.values)) throw new errors.InvalidRequest('invalid claims.id_token.acr.values type');
    essential = [
      ...(typeof acr.value === 'string' ? [acr.value] : []),
      ...(Array.isArray(acr.values) ? acr.values.filter((v): v is string => typeof v === 'string') : []),
    ];
    if (!essential.length) essential = undefined;
  }
  const min = ctx.oidc.client?.metadata()['min_acr'];
  return { acrValues, essential, clientMinimum: typeof min === 'string' ? min : undefined };
}

const summary = (r: Awaited<ReturnType<RiskService['session']>>): AssuranceDetails['risk'] => ({ ...riskClaim(r.assessment), decision: r.decision.decision });

type LoginPrompt = ReturnType<ReturnType<typeof interactionPolicy.base>['get']> & object;

/**
 * Installs the check in oidc-provider's login prompt, in place of its `essential_acr` and
 * `essential_acrs` checks, and adds what it worked out to the prompt's details, whichever
 * check (no session, max_age, ours) asked for the login.
 */
export function installAssuranceCheck(login: LoginPrompt, deps: AssuranceCheckDeps): void {
  const found = new WeakMap<object, AssuranceDetails>();
  login.checks.remove('essential_acr');
  login.checks.remove('essential_acrs');
  const details = login.details;
  login.details = async (ctx: KoaContextWithOIDC) => ({ ...(await details(ctx)), assurance: found.get(ctx) });
  login.checks.add(new interactionPolicy.Check(
    'assurance',
    'the session does not meet the assurance level required',
    async (ctx: KoaContextWithOIDC) => {
      const levels = deps.policies.current().assurance.levels;
      // A phishing-resistant level needs passkeys, which browsers use only with an https (or
      // localhost) issuer: there it is out of reach, so a request for it alone is unmet at
      // once, instead of a login that could never finish.
      const unreachable = new Set(levels.filter((l) => l.phishing_resistant && !deps.passkeys).map((l) => l.acr));
      const raw = acrRequestOf(ctx);
      if (raw.essential?.length && raw.essential.every((v) => unreachable.has(v))) {
        throw new errors.UnmetAuthenticationRequirements('the requested ACR needs passkeys, which this provider cannot offer (an https issuer is required)');
      }
      const req = requestedLevel({
        ...raw, acrValues: raw.acrValues?.filter((v) => !unreachable.has(v)), essential: raw.essential?.filter((v) => !unreachable.has(v)),
      }, levels);
      if (!req.ok) throw new errors.UnmetAuthenticationRequirements(req.reason);
      const accepted = req.accepted ? [...req.accepted] : undefined;
      found.set(ctx, { required: req.index, because: req.because, accepted });
      const session = ctx.oidc.session;
      // A login is needed anyway (oidc-provider's no_session); it starts from what the RP asked.
      if (!session?.accountId) return interactionPolicy.Check.REQUEST_PROMPT;
      // The interaction just finished in this request: it met the level it was sent for
      // (the login steps finish only then). Scoring again here could only loop.
      if ((ctx.oidc as { result?: { login?: unknown } }).result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;

      const now = Math.floor(Date.now() / 1000);
      const auth = sessionAuthOf(session, deps.sessionIdleTtl);
      const amr = auth.amr;
      const current = sessionLevelIndex(auth, levels, now);
      const koa = ctx as unknown as Context;
      const params = ctx.oidc.params as { scope?: unknown; max_age?: unknown } | undefined;
      const risk = await deps.risk.session({
        user: session.accountId, ip: clientIp(koa), userAgent: ctx.get('user-agent'), deviceId: readDeviceId(koa),
        clientId: ctx.oidc.client?.clientId, scopes: requestedScopes(params?.scope),
      }, { amr, requested: req, sessionAuthTime: auth.authTime });
      if (risk.decision.decision === 'block') {
        // The engine would refuse this login outright: the session ends rather than keep
        // serving tokens to whoever now holds it.
        await session.destroy();
        (session as { destroyed?: boolean }).destroyed = true;
        throw new errors.AccessDenied('the session was ended because this request was assessed as too risky');
      }
      const required = levels.findIndex((l) => l.name === risk.decision.required);
      // What of the session still counts towards that level, worked out here, before
      // oidc-provider saves the session at the end of this request (which makes it look
      // active now): the interaction asks for the rest (assurance.ts carriedAmr).
      const maxAge = Number(params?.max_age ?? Number.NaN);
      const carried = required >= 0 ? carriedAmr(auth, levels[required]!, now, Number.isInteger(maxAge) ? maxAge : undefined) : [];
      found.set(ctx, { required, because: risk.decision.because, accepted, risk: summary(risk), carried, sessionUid: session.uid, sessionAuthTime: auth.authTime });
      return current >= required ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    },
  ));
}

/** What every interaction step needs, and the helpers they share. */
import net from 'node:net';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { RecordGoneError, savingStoredOnly, type Storage } from '../adapters/storage/port.ts';
import { classifyAddress, ipv6Groups } from '../adapters/geoip.ts';
import { UserError } from '../idp/errors.ts';
import type { Logger } from '../idp/log.ts';
import type { PasswordAuthenticator } from './authenticate.ts';
import type { LoginThrottle } from './throttle.ts';
import type { RiskService } from './risk.ts';
import type { Events } from '../idp/events.ts';
import type { Csrf } from './csrf.ts';
import type { SafeHtml } from './html.ts';
import type { Transactions } from './transaction.ts';
import type { WebAuthn } from './methods/webauthn.ts';
import type { SecretBox } from '../adapters/crypto.ts';
import type { AuditInput } from '../models/types.ts';

export interface InteractionDeps {
  provider: Provider;
  storage: Storage;
  authenticator: PasswordAuthenticator;
  throttle: LoginThrottle;
  csrf: Csrf;
  risk: RiskService;
  events: Events;
  log: Logger;
  /** Cookies get the Secure attribute (https issuer). */
  secure: boolean;
  maxFormBytes: number;
  /** Login state between steps (transaction.ts). */
  transactions: Transactions;
  /** Seals secrets at rest (TOTP seeds, a pending enrolment's secret). */
  box: SecretBox;
  /** Keys the hashes of recovery codes (HKDF of the data key). */
  recoveryKey: Buffer;
  /** Keys the MAC of device-key nonces (HKDF of the data key; interactions/device-key.ts). */
  deviceNonceKey: Buffer;
  /** The issuer label authenticator apps show (otpauth:// `issuer`). */
  issuerName: string;
  /** Session TTL (s): the session's last use is its expiry minus this. */
  sessionIdleTtl: number;
  /** Passkey ceremonies (methods/webauthn.ts). */
  webauthn: WebAuthn;
  /** Seconds after a login during which its tokens can still be minted (login-record.ts). */
  loginRecordTtl: number;
  /** The audit trail (idp/audit.ts): factor enrolments, recorded before the step answers. */
  audit: (e: AuditInput) => Promise<void>;
}

export type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * Loads the interaction bound to this browser and checks it is the one in the URL and at
 * the expected prompt, before acting on a POST (oidc-provider example/routes/koa.js).
 */
export async function loadInteraction(ctx: Context, provider: Provider, expectedPrompt?: 'login' | 'consent'): Promise<Details> {
  let details: Details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    // SessionNotFound: no interaction cookie, or the interaction expired. Anything else (the
    // store failing) is an outage, answered and counted as one (5xx), not "sign in again".
    if (err instanceof errors.SessionNotFound) throw new UserError('interaction_not_found');
    throw err;
  }
  if (details.uid !== ctx.params.uid) throw new UserError('interaction_not_found');
  if (expectedPrompt && details.prompt.name !== expectedPrompt) throw new UserError('interaction_out_of_date');
  return details;
}

/**
 * oidc-provider's interactionResult on the interaction this request loaded already
 * (loadInteraction), instead of reading it again: sets the result, saves it for the rest of
 * its life, and returns where to go. An interaction that expired meanwhile is not finished,
 * nor one that is gone: a parallel request may have finished it and its browser resumed it
 * (which destroys it) since this request loaded it. Saving it back would let it be resumed
 * again, for a second authorization code; so the save only updates a stored interaction, in
 * one atomic step (port.ts savingStoredOnly).
 */
export async function saveInteractionResult(details: Details, result: NonNullable<Details['result']>): Promise<string> {
  const ttl = details.exp - Math.floor(Date.now() / 1000);
  if (ttl <= 0) throw new UserError('interaction_not_found');
  details.result = result;
  try {
    await savingStoredOnly(() => details.save(ttl));
  } catch (err) {
    if (err instanceof RecordGoneError) throw new UserError('interaction_not_found');
    throw err;
  }
  return details.returnTo;
}

export async function clientName(provider: Provider, clientId: unknown): Promise<string> {
  if (typeof clientId !== 'string') return 'the application';
  const client = await provider.Client.find(clientId).catch(() => undefined);
  return client?.clientName ?? clientId;
}

/** The scopes an authorization request asked for (its `scope` parameter). */
export const requestedScopes = (scope: unknown): string[] => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);

export function renderPage(ctx: Context, page: SafeHtml, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = page.value;
}

/**
 * The client's address as the risk engine sees it (IPv4-mapped IPv6 unwrapped). Behind
 * TRUST_PROXY it comes from X-Forwarded-For; an entry that is not an address (a request that
 * did not come through our proxy) gives way to the connection's own address, so no request
 * can name its own throttling bucket.
 */
export function clientIp(ctx: Context): string {
  const forwarded = ctx.ip;
  const ip = forwarded && net.isIP(forwarded) ? forwarded : (ctx.req.socket.remoteAddress ?? '0.0.0.0');
  return classifyAddress(ip).ip;
}

/**
 * The address throttling counts against: IPv4 as is; IPv6 by its /64, since one host
 * usually controls a whole /64.
 */
export function clientAddress(ctx: Context): string {
  const ip = clientIp(ctx);
  if (!net.isIPv6(ip)) return ip;
  return `${ipv6Groups(ip.toLowerCase()).slice(0, 4).map((g) => g.padStart(4, '0')).join(':')}::/64`;
}

/** What every interaction step needs, and the helpers they share. */
import net from 'node:net';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Storage } from '../adapters/storage/port.ts';
import { UserError } from '../idp/errors.ts';
import type { Logger } from '../idp/log.ts';
import type { PasswordAuthenticator } from './authenticate.ts';
import type { RiskService } from './risk.ts';
import type { Events } from '../idp/events.ts';
import type { Csrf } from './csrf.ts';
import type { SafeHtml } from './html.ts';

export interface InteractionDeps {
  provider: Provider;
  storage: Storage;
  authenticator: PasswordAuthenticator;
  csrf: Csrf;
  risk: RiskService;
  events: Events;
  log: Logger;
  /** Cookies get the Secure attribute (https issuer). */
  secure: boolean;
  maxFormBytes: number;
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
  } catch {
    // SessionNotFound: no interaction cookie, or the interaction expired.
    throw new UserError('interaction_not_found');
  }
  if (details.uid !== ctx.params.uid) throw new UserError('interaction_not_found');
  if (expectedPrompt && details.prompt.name !== expectedPrompt) throw new UserError('interaction_out_of_date');
  return details;
}

export async function clientName(provider: Provider, clientId: unknown): Promise<string> {
  if (typeof clientId !== 'string') return 'the application';
  const client = await provider.Client.find(clientId).catch(() => undefined);
  return client?.clientName ?? clientId;
}

export function renderPage(ctx: Context, page: SafeHtml, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = page.value;
}

/** The client's address as the risk engine sees it (IPv4-mapped IPv6 unwrapped). */
export function clientIp(ctx: Context): string {
  const ip = ctx.ip || '0.0.0.0';
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/**
 * The address throttling counts against: IPv4 as is (IPv4-mapped IPv6 unwrapped); IPv6 by
 * its /64, since one host usually controls a whole /64.
 */
export function clientAddress(ctx: Context): string {
  let ip = ctx.ip || '0.0.0.0';
  if (ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7))) ip = ip.slice(7);
  if (net.isIPv6(ip)) {
    const sl = new net.SocketAddress({ address: ip, family: 'ipv6' });
    const full = expandIpv6(sl.address);
    return `${full.split(':').slice(0, 4).join(':')}::/64`;
  }
  return ip;
}

function expandIpv6(ip: string): string {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const mid = ip.includes('::') ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...mid, ...t].map((p) => p.padStart(4, '0')).join(':');
}

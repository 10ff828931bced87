/**
 * A small Koa app with the real passkey pieces — assets, the pages' CSP, CSRF, the handlers
 * of interactions/steps/passkey.ts, the passkey view, WebAuthn ceremonies on the embedded
 * store — and a stand-in for oidc-provider's interactionDetails (this browser's interaction,
 * at the login prompt). The login flow that wires these handlers is tested with the provider.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa, { type Context } from 'koa';
import Router from '@koa/router';
import type Provider from 'oidc-provider';
import { openStorage, type Storage } from '../../adapters/storage/index.ts';
import { CONTENT_SECURITY_POLICY } from '../../idp/server.ts';
import { UserError } from '../../idp/errors.ts';
import { assetRoutes } from '../../interactions/assets.ts';
import { Csrf } from '../../interactions/csrf.ts';
import { html } from '../../interactions/html.ts';
import { WebAuthn, type WebAuthnError } from '../../interactions/methods/webauthn.ts';
import { interactionAtLogin, passkeyOptions, passkeyVerify, type PasskeyCeremony, type PasskeyResult } from '../../interactions/steps/passkey.ts';
import { layout, STYLESHEET, STYLESHEET_PATH } from '../../interactions/views/layout.ts';
import { passkeyForm } from '../../interactions/views/passkey.ts';
import { tempDir } from './env.ts';

export const UID = 'passkey-interaction';

export interface PasskeyHarness {
  /** http://localhost:PORT: WebAuthn needs a domain for the RP ID, and localhost is a secure context. */
  url: string;
  storage: Storage;
  factors: Storage['factors'];
  webauthn: WebAuthn;
  /** The ceremony the interaction is at; a function is asked on every request. */
  ceremony: PasskeyCeremony | undefined | (() => PasskeyCeremony | undefined);
  results: PasskeyResult[];
  failures: WebAuthnError[];
  close(): Promise<void>;
}

export async function startPasskeyHarness(): Promise<PasskeyHarness> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://localhost:${port}`;
  const storage = await openStorage({ dataDir: tempDir('idp-passkey-') });
  const webauthn = new WebAuthn(storage, { issuer, rpName: 'Adaptive IdP (test)' });
  const csrf = new Csrf(crypto.randomBytes(32), false);
  const provider = { interactionDetails: async () => ({ uid: UID, prompt: { name: 'login' }, params: {} }) } as unknown as Provider;
  const h: PasskeyHarness = {
    url: issuer, storage, factors: storage.factors, webauthn, ceremony: undefined, results: [], failures: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await storage.close();
    },
  };

  const current = () => (typeof h.ceremony === 'function' ? h.ceremony() : h.ceremony);
  const render = (ctx: Context, error?: string, status = 200) => {
    const c = current();
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = layout('Passkey', html`<h1>${c?.kind === 'register' ? 'Create a passkey' : 'Sign in with a passkey'}</h1>
${passkeyForm({
    action: `/interaction/${UID}/passkey`, optionsAction: `/interaction/${UID}/passkey/options`, csrf: csrf.issue(ctx, UID),
    ceremony: c?.kind ?? 'authenticate', label: c?.kind === 'register' ? 'Create a passkey' : 'Use a passkey', error,
  })}`).value;
  };
  const callbacks = {
    ceremony: async () => current(),
    onVerified: async (ctx: Context, _d: unknown, result: PasskeyResult) => {
      h.results.push(result);
      ctx.status = 303;
      ctx.redirect('/done');
    },
    onFailed: async (ctx: Context, _d: unknown, error: WebAuthnError) => {
      h.failures.push(error);
      render(ctx, error.message, 400);
    },
  };
  const deps = { csrf, webauthn, maxFormBytes: 16384, load: interactionAtLogin(provider) };
  const router = new Router();
  router.get('/interaction/:uid', (ctx) => render(ctx));
  router.post('/interaction/:uid/passkey/options', passkeyOptions(deps, callbacks));
  router.post('/interaction/:uid/passkey', passkeyVerify(deps, callbacks));
  // Browsers ask for it on every page; a 404 would show as a console error.
  router.get('/favicon.ico', (ctx) => { ctx.status = 204; });
  router.get('/done', (ctx) => {
    ctx.type = 'html';
    ctx.body = layout('Done', html`<h1>Done</h1>`).value;
  });
  const app = new Koa();
  app.use(async (ctx, next) => {
    await next();
    ctx.set('x-content-type-options', 'nosniff');
    if (ctx.type === 'text/html') ctx.set('content-security-policy', CONTENT_SECURITY_POLICY);
  });
  // As the server's error boundary does: a UserError is a page with its code and status.
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      ctx.status = err.status;
      ctx.type = 'html';
      ctx.body = layout('Error', html`<p>${err.message}</p><code>${err.code}</code>`).value;
    }
  });
  app.use(async (ctx, next) => {
    if (ctx.path !== STYLESHEET_PATH) return next();
    ctx.type = 'text/css';
    ctx.body = STYLESHEET;
    return undefined;
  });
  app.use(assetRoutes());
  app.use(router.routes());
  server.on('request', app.callback());
  return h;
}

/** The relying party of the tests: openid-client, over real HTTP. */
import * as client from 'openid-client';
import { Browser, type Page } from './browser.ts';

export const REDIRECT_URI = 'http://127.0.0.1:9/cb';

export async function discover(issuer: string, clientId: string, secret?: string, metadata: Partial<client.ClientMetadata> = {}) {
  return client.discovery(
    new URL(issuer),
    clientId,
    { ...metadata, ...(secret ? { client_secret: secret } : {}) },
    secret ? client.ClientSecretBasic(secret) : client.None(),
    { execute: [client.allowInsecureRequests] },
  );
}

/** An authorization request (code + PKCE, scope openid unless `params` says otherwise) opened in `browser`. */
export async function startAuthorization(config: client.Configuration, browser: Browser, params: Record<string, string> = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: 'openid', nonce, state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params,
  });
  return { page: await browser.navigate(url, {}, REDIRECT_URI), verifier, nonce, state };
}

/** The TOTP secret as an enrolment page shows it for typing (groups of four), without the spaces. */
export const secretOnPage = (page: Page) => /<code id="secret"[^>]*>([A-Z2-7 ]+)<\/code>/.exec(page.body)?.[1]?.replace(/ /g, '');

/** Declines the shipped policy's offer to enrol a second factor ("Not now"), if it is made. */
export async function skipEnrolmentOffer(browser: Browser, page: Page): Promise<Page> {
  return page.body.includes('/enrol/skip') ? browser.submit(page, '/enrol/skip', {}, REDIRECT_URI) : page;
}

export interface LoginResult {
  callback: URL;
  verifier: string;
  nonce: string;
  state: string;
  browser: Browser;
}

/** Code + PKCE through the HTML login form (and the consent page when shown). */
export async function loginThroughForm(
  config: client.Configuration,
  username: string,
  password: string,
  params: Record<string, string> = {},
  browser = new Browser(),
): Promise<LoginResult> {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email offline_access',
    prompt: 'consent',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    ...params,
  });
  let page: Page = await browser.navigate(url, {}, REDIRECT_URI);
  for (let i = 0; i < 4 && !page.url.href.startsWith(REDIRECT_URI); i += 1) {
    if (page.body.includes('name="password"')) {
      page = await browser.submit(page, '/login', { username, password }, REDIRECT_URI);
    } else if (page.body.includes('/enrol/skip')) {
      // The shipped policy offers second-factor enrolment to accounts without one: "Not now".
      page = await browser.submit(page, '/enrol/skip', {}, REDIRECT_URI);
    } else if (page.body.includes('/confirm')) {
      page = await browser.submit(page, '/confirm', {}, REDIRECT_URI);
    } else {
      throw new Error(`unexpected page ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
    }
  }
  if (!page.url.href.startsWith(REDIRECT_URI)) throw new Error(`login did not reach the client: ${page.status} ${page.body.slice(0, 300)}`);
  return { callback: page.url, verifier, nonce, state, browser };
}

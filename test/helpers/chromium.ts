/** Debian's Chromium for the browser tests, through playwright-core (never a downloaded build). */
import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or false. For describeOrSkip (CI=true fails instead). */
export const chromiumMissing: string | false = fs.existsSync(CHROMIUM_PATH)
  ? false
  : `${CHROMIUM_PATH} is not installed (apt-get install chromium, or set CHROMIUM_PATH)`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--no-first-run'],
  });
}

const CALLBACK_TEXT = 'callback reached';

/**
 * Answers the relying party's redirect URI inside the page (nothing listens there): the
 * tests read the code from the page's URL.
 */
export async function stubCallback(page: Page, redirectUri: string): Promise<void> {
  await page.route(`${redirectUri}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: CALLBACK_TEXT }));
}

/** Waits until the page reaches the stubbed callback, allowing consent on the way if it is asked. */
export async function reachCallback(page: Page): Promise<void> {
  const allow = page.getByRole('button', { name: 'Allow' });
  const reached = page.getByText(CALLBACK_TEXT);
  await allow.or(reached).waitFor();
  if (await allow.isVisible()) {
    await allow.click();
    await reached.waitFor();
  }
}

/** A browser context of its own (a device of its own to the engine) with one page. */
export interface Tab {
  context: BrowserContext;
  page: Page;
  /** Script errors and Content-Security-Policy reports the pages gave. */
  problems: string[];
  /** The virtual authenticator's id, with `authenticator`. */
  authenticatorId?: string | undefined;
}

export interface TabOptions {
  /** E.g. the viewport, or `extraHTTPHeaders` with an X-Forwarded-For address. */
  context?: BrowserContextOptions;
  /** Runs in every page before its own scripts (e.g. to take WebAuthn away). */
  initScript?: string;
  /** The relying party's redirect URI, answered inside the page (stubCallback). */
  redirectUri?: string;
  /**
   * A platform authenticator through the DevTools protocol: CTAP2, internal, user presence
   * simulated; by default with user verification (a PIN or biometric) and discoverable
   * credentials, what a phone or laptop passkey is.
   */
  authenticator?: { hasUserVerification?: boolean; hasResidentKey?: boolean };
}

/** Opens a tab; the caller closes `tab.context`. */
export async function openTab(browser: Browser, o: TabOptions = {}): Promise<Tab> {
  const context = await browser.newContext(o.context);
  if (o.initScript) await context.addInitScript(o.initScript);
  const page = await context.newPage();
  const tab: Tab = { context, page, problems: [] };
  page.on('console', (m) => { if (m.type() === 'error' || /Content.Security.Policy/i.test(m.text())) tab.problems.push(m.text()); });
  page.on('pageerror', (e) => tab.problems.push(e.message));
  if (o.redirectUri) await stubCallback(page, o.redirectUri);
  if (o.authenticator) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: o.authenticator.hasResidentKey ?? true,
        hasUserVerification: o.authenticator.hasUserVerification ?? true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    tab.authenticatorId = authenticatorId;
  }
  return tab;
}

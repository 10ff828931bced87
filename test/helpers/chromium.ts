/** Debian's Chromium for the browser tests, through playwright-core (never a downloaded build). */
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

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

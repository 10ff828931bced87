/** Debian's Chromium for the browser tests, through playwright-core (never a downloaded build). */
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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

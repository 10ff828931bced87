/**
 * What the browser tests check on every page a user sees: axe-core (every rule, WCAG 2.2 AA
 * contrast included, SC 1.4.3) in light and dark mode, and a screenshot of each in
 * test/e2e/artifacts/ (git-ignored) for a human to look at.
 *
 * axe-core is evaluated through DevTools, which the pages' Content-Security-Policy does not
 * govern, so the pages are checked as served: no `bypassCSP` needed, and a script the CSP
 * blocks (the passkey button's) is blocked in these tests too.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { AxeResults } from 'axe-core';
import type { Page } from 'playwright-core';

/** Source tree, not dist/: the folder is git-ignored and easy to find. */
export const ARTIFACTS = path.join(import.meta.dirname, '..', '..', '..', 'test', 'e2e', 'artifacts');
/** An iPhone-sized viewport: the narrowest common phone layout. */
export const PHONE = { width: 390, height: 844 };

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface Checked { page: string; scheme: 'light' | 'dark'; violations: string[] }

/** A full-page screenshot under ARTIFACTS/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Runs axe-core on the page in light and dark mode and screenshots both
 * (`<name>-light.png`, `<name>-dark.png`); leaves the page in light mode. Returns the
 * violations, each as one readable line.
 */
export async function checkPage(page: Page, name: string): Promise<Checked[]> {
  const out: Checked[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
    const results = await page.evaluate<AxeResults>('axe.run(document, { resultTypes: ["violations"] })');
    out.push({
      page: name,
      scheme,
      violations: results.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => `${n.target.join(' ')}${n.failureSummary ? ` [${n.failureSummary.replace(/\s+/g, ' ')}]` : ''}`).join('; ')}`),
    });
    await screenshot(page, `${name}-${scheme}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return out;
}

/** The violations of `results` as one message per page and scheme (empty: none). */
export function violationsOf(results: Checked[]): string[] {
  return results.filter((r) => r.violations.length).map((r) => `${r.page} (${r.scheme}):\n  ${r.violations.join('\n  ')}`);
}

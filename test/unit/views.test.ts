/**
 * Pages without a browser: the logout page names the application, and the stylesheet's
 * colours keep WCAG 2.2 AA contrast in both colour schemes (the browser test checks the
 * rendered pages with axe-core; this one also runs where Chromium is missing).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logoutPage } from '../../interactions/views/pages.ts';
import { STYLESHEET } from '../../interactions/views/layout.ts';

const FORM = '<form id="op.logoutForm" method="post" action="/session/end/confirm"><input type="hidden" name="xsrf" value="x"/></form>';

describe('logout page', () => {
  it('names the application, escaped, as the login page does', () => {
    const page = logoutPage('Payroll <Admin>', FORM).value;
    assert.match(page, /<h1>Sign out of Payroll &lt;Admin&gt;\?<\/h1>/);
    assert.ok(page.includes(FORM), "oidc-provider's form is kept as it is");
  });

  it('asks plainly when the request named no application', () => {
    assert.match(logoutPage(undefined, FORM).value, /<h1>Sign out\?<\/h1>/);
  });
});

/** WCAG 2.2 relative luminance and contrast ratio (definitions in the WCAG 2.2 glossary). */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** The custom properties of one `:root{...}` block, long hex colours expanded. */
function palette(block: string): Record<string, string> {
  const expand = (v: string) => (/^#[0-9a-f]{3}$/i.test(v) ? `#${[...v.slice(1)].map((c) => c + c).join('')}` : v);
  return Object.fromEntries([...block.matchAll(/--([\w-]+):(#[0-9a-fA-F]{3,6})/g)].map((m) => [m[1]!, expand(m[2]!)]));
}

describe('stylesheet colours', () => {
  const light = palette(/:root\{[^}]*\}/.exec(STYLESHEET)?.[0] ?? '');
  const dark = palette(/prefers-color-scheme:dark\)\{:root\{[^}]*\}/.exec(STYLESHEET)?.[0] ?? '');

  for (const [scheme, p] of [['light', light], ['dark', dark]] as const) {
    it(`meets WCAG 2.2 AA contrast in ${scheme} mode`, () => {
      for (const k of ['bg', 'fg', 'muted', 'error', 'field', 'accent', 'on-accent', 'focus']) assert.ok(p[k], `--${k} defined`);
      // SC 1.4.3: 4.5:1 for text (body, secondary, error messages, button labels).
      for (const [fg, bg] of [['fg', 'bg'], ['muted', 'bg'], ['error', 'bg'], ['on-accent', 'accent']] as const) {
        const ratio = contrast(p[fg]!, p[bg]!);
        assert.ok(ratio >= 4.5, `--${fg} on --${bg}: ${ratio.toFixed(2)}:1 < 4.5:1`);
      }
      // SC 1.4.11: 3:1 for the boundaries of fields and for the focus indicator.
      for (const k of ['field', 'error', 'focus']) {
        const ratio = contrast(p[k]!, p.bg!);
        assert.ok(ratio >= 3, `--${k} on --bg: ${ratio.toFixed(2)}:1 < 3:1`);
      }
    });
  }
});

/** The page frame shared by every interaction page. */
import { html, type SafeHtml } from '../html.ts';

export const STYLESHEET_PATH = '/assets/idp.css';

/**
 * Colours are explicit rather than system colours (Canvas, GrayText) so their contrast is
 * known: every text colour meets WCAG 2.2 SC 1.4.3 (4.5:1) on its background in light and in
 * dark mode (GrayText gave 3.9:1, the error red 3.3:1 on dark), and the field borders meet
 * SC 1.4.11 (3:1). test/e2e/pages.e2e.test.ts checks every page in both modes with axe-core.
 * Class names (.error, .alert, .muted, .secondary) are what the views use: keep them.
 */
export const STYLESHEET = `
:root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.45;
--bg:#fff;--fg:#1b1b1b;--muted:#595959;--line:#d0d0d0;--field:#767676;--error:#b3261e;--accent:#1e5bb8;--on-accent:#fff;--focus:#1e5bb8}
@media (prefers-color-scheme:dark){:root{
--bg:#121212;--fg:#ececec;--muted:#b4b4b4;--line:#3c3c3c;--field:#8f8f8f;--error:#ff8a80;--accent:#1e5bb8;--on-accent:#fff;--focus:#8ab4f8}}
body{margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:var(--bg);color:var(--fg)}
main{box-sizing:border-box;width:min(26rem,calc(100% - 2rem));margin:1rem 0;padding:2rem;border:1px solid var(--line);border-radius:.75rem}
h1{font-size:1.4rem;line-height:1.25;margin:0 0 1rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border-radius:.4rem;border:1px solid var(--field)}
input[aria-invalid=true]{border-color:var(--error)}
button{margin-top:1rem;width:100%;padding:.7rem;font-size:1rem;border-radius:.4rem;border:0;background:var(--accent);color:var(--on-accent);cursor:pointer}
button.secondary{background:transparent;color:inherit;border:1px solid var(--field)}
button:disabled{opacity:.5;cursor:not-allowed}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.error{color:var(--error);margin:.25rem 0 0}
.alert{border-left:4px solid var(--error);padding:.5rem .75rem;margin-bottom:1rem}
.muted{color:var(--muted);font-size:.9rem}
ul,ol{padding-left:1.2rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
li{margin:.35rem 0}
.qr{margin:.5rem 0;max-width:12rem;background:#fff;padding:.25rem;border-radius:.4rem}
.qr svg{display:block;width:100%;height:auto}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.secret{font-size:1.05rem;letter-spacing:.05em;word-break:break-all;user-select:all}
ul.codes{list-style:none;padding:0;white-space:nowrap}
.muted+form>button[data-passkey]{margin-top:.25rem}
details{margin-top:1rem}
summary{cursor:pointer;color:var(--accent)}
@media (prefers-color-scheme:dark){summary{color:var(--focus)}}
@media (max-width:30rem){body{align-items:flex-start}main{width:100%;margin:0;padding:1.5rem 1.25rem;border:0;border-radius:0}}
`;

export function layout(title: string, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

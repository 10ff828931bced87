/** The page frame shared by every interaction page. */
import { html, type SafeHtml } from '../html.ts';

export const STYLESHEET_PATH = '/assets/idp.css';

export const STYLESHEET = `
:root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
body{margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:Canvas;color:CanvasText}
main{width:min(24rem,92vw);padding:2rem;border:1px solid color-mix(in srgb,CanvasText 20%,transparent);border-radius:.75rem}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border-radius:.4rem;border:1px solid GrayText}
input[aria-invalid=true]{border-color:#c62828}
button{margin-top:1rem;width:100%;padding:.7rem;font-size:1rem;border-radius:.4rem;border:0;background:#1e5bb8;color:#fff;cursor:pointer}
button.secondary{background:transparent;color:inherit;border:1px solid GrayText}
.error{color:#c62828;margin:.25rem 0 0}
.alert{border-left:4px solid #c62828;padding:.5rem .75rem;margin-bottom:1rem}
.muted{color:GrayText;font-size:.9rem}
ul{padding-left:1.2rem}
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

/**
 * The admin API's reference page (GET /admin/api): every operation of the OpenAPI document,
 * grouped by tag, with the scope it needs, its parameters, body and responses, and the
 * problem types (each with the anchor its `type` URI points at). Rendered on the server from
 * the document itself, with no script and nothing fetched from elsewhere, so it works
 * offline and under the pages' Content-Security-Policy.
 */
import { html, type SafeHtml } from '../../interactions/html.ts';
import { STYLESHEET } from '../../interactions/views/layout.ts';
import { PROBLEMS, type ProblemCode } from './problem.ts';

export const REFERENCE_CSS_PATH = '/admin/api/reference.css';
export const REFERENCE_CSS = `${STYLESHEET}
body{display:block}
main.reference{width:min(62rem,calc(100% - 2rem));margin:1rem auto}
.op{border-top:1px solid var(--line);padding:.75rem 0}
.op h3{font-size:1rem;margin:0 0 .25rem;word-break:break-all}
.method{display:inline-block;min-width:4.2rem;font-family:ui-monospace,monospace;font-weight:700}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.25rem 0}
th,td{text-align:left;vertical-align:top;padding:.2rem .4rem;border-bottom:1px solid var(--line)}
pre{white-space:pre-wrap;word-break:break-word;font-size:.8rem;margin:.25rem 0;padding:.5rem;border:1px solid var(--line);border-radius:.4rem}
nav ul{columns:2 12rem}
@media (max-width:30rem){main.reference{width:100%;margin:0;padding:1rem}}
`;

interface Doc {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}
interface Operation {
  operationId: string;
  summary?: string;
  description?: string;
  tags?: string[];
  'x-required-scope'?: string;
  'x-sensitive'?: boolean;
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: unknown }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses: Record<string, { description: string }>;
}

/** A schema as compact JSON, `$ref`s left as names. */
function schemaText(s: unknown): string {
  return JSON.stringify(s, (k, v: unknown) => (k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', '') : v), 1)
    .replace(/\n\s*/g, ' ');
}

function operation(path: string, method: string, op: Operation): SafeHtml {
  const params = op.parameters ?? [];
  const body = op.requestBody ? Object.values(op.requestBody.content)[0]?.schema : undefined;
  return html`<section class="op" id="${op.operationId}">
<h3><span class="method">${method.toUpperCase()}</span> <code>${path}</code></h3>
<p>${op.summary ?? ''}${op['x-sensitive'] ? html` <strong>Sensitive</strong>: an administrator needs the stronger assurance level.` : ''}</p>
${op.description ? html`<p class="muted">${op.description}</p>` : ''}
<p class="muted">Scope: <code>${op['x-required-scope'] ?? ''}</code> · operationId <code>${op.operationId}</code></p>
${params.length ? html`<table><thead><tr><th>Parameter</th><th>In</th><th>Description</th></tr></thead><tbody>
${params.map((p) => html`<tr><td><code>${p.name}</code>${p.required ? ' *' : ''}</td><td>${p.in}</td><td>${p.description ?? ''} <code>${schemaText(p.schema)}</code></td></tr>`)}
</tbody></table>` : ''}
${body ? html`<p class="muted">Request body (application/json):</p><pre>${schemaText(body)}</pre>` : ''}
<table><thead><tr><th>Status</th><th>Response</th></tr></thead><tbody>
${Object.entries(op.responses).map(([s, r]) => html`<tr><td>${s}</td><td>${r.description}</td></tr>`)}
</tbody></table>
</section>`;
}

export function referencePage(doc: Doc): SafeHtml {
  const byTag = new Map<string, SafeHtml[]>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push(operation(path, method, op));
    }
  }
  const tags = [...byTag.keys()].sort();
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${doc.info.title} ${doc.info.version}</title>
<link rel="stylesheet" href="${REFERENCE_CSS_PATH}">
</head>
<body>
<main class="reference">
<h1>${doc.info.title}</h1>
<p>${doc.info.description ?? ''}</p>
<p>Machine-readable: <a href="/admin/api/openapi.json">openapi.json</a> (OpenAPI 3.1). Base path <code>/admin/api/v1</code>.</p>
<nav aria-label="Resources"><ul>${tags.map((t) => html`<li><a href="#tag-${t}">${t}</a></li>`)}<li><a href="#problems">Problem types</a></li></ul></nav>
${tags.map((t) => html`<h2 id="tag-${t}">${t}</h2>${byTag.get(t)!}`)}
<h2 id="problems">Problem types</h2>
<p>Errors are <code>application/problem+json</code> (RFC 9457) with a stable <code>code</code>.</p>
<table><thead><tr><th>code</th><th>Status</th><th>Meaning</th></tr></thead><tbody>
${(Object.keys(PROBLEMS) as ProblemCode[]).map((c) => html`<tr id="problem-${c}"><td><code>${c}</code></td><td>${PROBLEMS[c].status}</td><td>${PROBLEMS[c].title}</td></tr>`)}
</tbody></table>
</main>
</body>
</html>`;
}

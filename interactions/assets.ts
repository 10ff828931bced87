/**
 * Static scripts of the interaction pages, served from the provider's own origin so the
 * Content-Security-Policy can stay `script-src 'self'` (no CDN, no inline script):
 * @simplewebauthn/browser's UMD bundle, our passkey button script (assets/passkey.js) and the
 * sign-in page's behavioural capture (assets/behaviour.js) and device key (assets/device-key.js).
 *
 * A fixed allow-list read once at start: a request names one of these URLs exactly or gets
 * nothing, so no path can reach another file (no directory traversal by construction). Each
 * URL carries a hash of its content, so responses may be cached for a year and a new release
 * is fetched at once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Middleware } from 'koa';

/** Our own scripts, kept as plain files in interactions/assets/. */
const OWN = ['passkey.js', 'behaviour.js', 'device-key.js'] as const;
export type AssetName = 'webauthn-browser.js' | (typeof OWN)[number];

interface Asset {
  readonly url: string;
  readonly type: string;
  readonly body: Buffer;
}

/** The first of `candidates` that exists; a missing asset is a broken install, named at start. */
function firstExisting(name: string, candidates: string[]): string {
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`asset ${name} not found (looked in ${candidates.join(', ')})`);
  return found;
}

function locate(name: AssetName): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  if (name !== 'webauthn-browser.js') {
    // Compiled: dist/interactions/assets.js, the source beside the repository's interactions/;
    // run from source: interactions/assets.ts.
    return firstExisting(name, [path.join(here, 'assets', name), path.join(here, '..', '..', 'interactions', 'assets', name)]);
  }
  // The package exports only its module entry points; the browser bundle sits beside them.
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return firstExisting(name, [path.join(path.dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js')]);
}

function load(name: AssetName): Asset {
  const body = fs.readFileSync(locate(name));
  const hash = crypto.createHash('sha256').update(body).digest('base64url').slice(0, 12);
  const [base, ext] = name.split('.') as [string, string];
  // RFC 9239 §6: text/javascript is the one media type for JavaScript.
  return { url: `/assets/${base}.${hash}.${ext}`, type: 'text/javascript; charset=utf-8', body };
}

const ASSETS: ReadonlyMap<AssetName, Asset> = new Map((['webauthn-browser.js', ...OWN] as const).map((n) => [n, load(n)]));
const BY_URL: ReadonlyMap<string, Asset> = new Map([...ASSETS.values()].map((a) => [a.url, a]));

/** The URL an asset is served at (content-hashed). */
export function assetUrl(name: AssetName): string {
  return ASSETS.get(name)!.url;
}

/** Serves the allow-listed assets on GET and HEAD; every other request passes through. */
export function assetRoutes(): Middleware {
  return async (ctx, next) => {
    const asset = (ctx.method === 'GET' || ctx.method === 'HEAD') ? BY_URL.get(ctx.path) : undefined;
    if (!asset) return next();
    ctx.status = 200;
    ctx.type = asset.type;
    ctx.set('cache-control', 'public, max-age=31536000, immutable');
    ctx.set('x-content-type-options', 'nosniff');
    ctx.set('cross-origin-resource-policy', 'same-origin');
    ctx.body = asset.body;
    return undefined;
  };
}

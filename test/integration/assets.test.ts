/**
 * The pages' scripts, served by the real server from its own origin (interactions/assets.ts):
 * the exact bytes of the files, as JavaScript, cacheable for a year under a content-hashed
 * URL, never sniffed; nothing else under /assets/ (no traversal, no listing); and the pages'
 * CSP allows scripts and fetches from 'self' only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { assetUrl } from '../../interactions/assets.ts';

/** A request exactly as written (fetch would normalise `..` and `%2e%2e` away). */
async function rawGet(base: string, target: string): Promise<{ status: number; head: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.write(`GET ${target} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => { data += c; });
    sock.on('end', () => resolve({ status: Number(data.split(' ')[1]), head: data.split('\r\n\r\n')[0] ?? '' }));
    sock.on('error', reject);
  });
}

describe('static assets (embedded store; no storage involved)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer('embedded');
  });
  after(() => srv?.close());

  const sources = {
    'passkey.js': path.join(import.meta.dirname, '..', '..', '..', 'interactions', 'assets', 'passkey.js'),
    'device-key.js': path.join(import.meta.dirname, '..', '..', '..', 'interactions', 'assets', 'device-key.js'),
    'behaviour.js': path.join(import.meta.dirname, '..', '..', '..', 'interactions', 'assets', 'behaviour.js'),
    'webauthn-browser.js': path.join(path.dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')), '..', 'dist', 'bundle', 'index.umd.min.js'),
  } as const;

  for (const [name, file] of Object.entries(sources) as [keyof typeof sources, string][]) {
    it(`serves ${name} as JavaScript under a content-hashed URL, cached for a year`, async () => {
      const url = assetUrl(name);
      assert.match(url, /^\/assets\/[a-z-]+\.[A-Za-z0-9_-]{12}\.js$/);
      const res = await fetch(new URL(url, srv.url));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), fs.readFileSync(file));
      const head = await fetch(new URL(url, srv.url), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
    });
  }

  it('serves nothing else under /assets/: other names, old hashes, traversal, other methods', async () => {
    const passkey = assetUrl('passkey.js');
    for (const target of [
      '/assets/passkey.js', '/assets/', '/assets', passkey.replace(/\.[^.]+\.js$/, '.AAAAAAAAAAAA.js'), `${passkey}/`,
      '/assets/../package.json', '/assets/%2e%2e/package.json', '/assets/..%2fpackage.json', '/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/assets/../../interactions/assets/passkey.js', '/assets/node_modules/@simplewebauthn/browser/package.json',
    ]) {
      const res = await rawGet(srv.url, target);
      assert.equal(res.status, 404, target);
      assert.doesNotMatch(res.head, /text\/javascript|application\/json/, target);
    }
    const post = await fetch(new URL(passkey, srv.url), { method: 'POST' });
    assert.notEqual(post.status, 200);
    assert.doesNotMatch(post.headers.get('content-type') ?? '', /javascript/);
  });

  it('lets the pages run scripts and fetch from their own origin only', async () => {
    const res = await fetch(new URL('/interaction/unknown', srv.url));
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  });
});

/**
 * A relying party's back-channel logout endpoint for tests (OpenID Connect Back-Channel
 * Logout 1.0 §2.5): records each logout token POSTed to it, form-encoded, and answers 200;
 * `verify` checks one as an RP must (§2.6: signature with the OP's keys, iss, aud, typ,
 * the event, no nonce).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';

export interface LogoutReceiver {
  url: string;
  tokens: string[];
  /** Resolves once `count` tokens have arrived in all, or rejects after `ms`. */
  waitFor(count: number, ms?: number): Promise<void>;
  verify(token: string, issuer: string, audience: string): Promise<jose.JWTPayload>;
  close(): Promise<void>;
}

export async function logoutReceiver(): Promise<LogoutReceiver> {
  const tokens: string[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method === 'POST' && token && req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
        tokens.push(token);
        for (const w of waiters.filter((x) => tokens.length >= x.count)) w.resolve();
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/backchannel`,
    tokens,
    waitFor(count, ms = 5000) {
      if (tokens.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${tokens.length} of ${count} logout tokens within ${ms} ms`)), ms);
        waiters.push({ count, resolve: () => { clearTimeout(timer); resolve(); } });
      });
    },
    async verify(token, issuer, audience) {
      const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`));
      const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, { issuer, audience, typ: 'logout+jwt' });
      if (protectedHeader.typ !== 'logout+jwt') throw new Error('not a logout token');
      if (!(payload.events as Record<string, unknown> | undefined)?.['http://schemas.openid.net/event/backchannel-logout']) throw new Error('no back-channel logout event');
      if (payload.nonce !== undefined) throw new Error('a logout token carries no nonce');
      return payload;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A plain HTTP/1.1 request with exactly the headers given (Host included), for edge tests. */
import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string>; path?: string; body?: string } = {}): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, method: opts.method ?? 'GET',
      // `path` may be an absolute URI (RFC 9112 §3.2.2 absolute-form), as proxies send.
      path: opts.path ?? `${u.pathname}${u.search}`,
      headers: opts.headers ?? {}, setHost: !(opts.headers && Object.keys(opts.headers).some((h) => h.toLowerCase() === 'host')),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

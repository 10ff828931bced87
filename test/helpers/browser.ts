/**
 * A minimal cookie-keeping user agent for driving the server-rendered pages over real
 * HTTP: follows redirects by hand (so a test sees each hop) and submits forms as a browser
 * would (application/x-www-form-urlencoded, with the page's hidden fields).
 */
export interface Page {
  url: URL;
  status: number;
  body: string;
  headers: Headers;
}

export class Browser {
  readonly cookies = new Map<string, string>();
  /** Sent with every request (e.g. X-Forwarded-For, User-Agent). */
  readonly headers: Record<string, string>;

  constructor(headers: Record<string, string> = {}) {
    this.headers = headers;
  }

  #store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1] ?? '') < Date.now())
        || attrs.some((a) => /^\s*max-age=0/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: URL | string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [k, v] of Object.entries(this.headers)) if (!headers.has(k)) headers.set(k, v);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.#store(res);
    return res;
  }

  /** Follows redirects until a page is returned or a URL starting with `stopAt` is reached. */
  async navigate(url: URL | string, init: RequestInit = {}, stopAt?: string): Promise<Page> {
    let current = new URL(url);
    let res = await this.request(current, init);
    for (let hops = 0; hops < 20; hops += 1) {
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) break;
      current = new URL(location, current);
      if (stopAt && current.href.startsWith(stopAt)) return { url: current, status: res.status, body: '', headers: res.headers };
      res = await this.request(current);
    }
    return { url: current, status: res.status, body: await res.text(), headers: res.headers };
  }

  /** Submits the form whose action contains `actionPart`, with its hidden fields plus `fields`. */
  async submit(page: Page, actionPart: string, fields: Record<string, string>, stopAt?: string): Promise<Page> {
    const form = findForm(page.body, actionPart);
    const body = new URLSearchParams({ ...form.hidden, ...fields });
    return this.navigate(new URL(form.action, page.url), {
      method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
    }, stopAt);
  }
}

export function findForm(html: string, actionPart: string): { action: string; hidden: Record<string, string> } {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  for (const [, attrs = '', inner = ''] of forms) {
    const action = decode(/action="([^"]*)"/.exec(attrs)?.[1] ?? '');
    if (!action.includes(actionPart)) continue;
    const hidden: Record<string, string> = {};
    for (const [, tag = ''] of inner.matchAll(/<input\b([^>]*)>/g)) {
      if (!/type="hidden"/.test(tag)) continue;
      const name = /name="([^"]*)"/.exec(tag)?.[1];
      if (name) hidden[name] = decode(/value="([^"]*)"/.exec(tag)?.[1] ?? '');
    }
    return { action, hidden };
  }
  throw new Error(`no form with action containing "${actionPart}" in page:\n${html.slice(0, 500)}`);
}

function decode(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#96;/g, '`').replace(/&amp;/g, '&');
}

/**
 * The LDAP client of a directory (issue 9): DirectoryConnection (types.ts) over ldapts.
 *
 * - Transport: `ldaps://` (TLS from the first byte) or `ldap://` upgraded by StartTLS
 *   (RFC 4513 §3; RFC 4511 §4.14), both verifying the server certificate against `ca` and the
 *   URL's host name (RFC 6125). Plain `ldap://` only with `allowPlain`: config.ts refuses it
 *   too; refusing it here again keeps a password from crossing in clear if a config slips by.
 * - Failover: URLs are tried in order; one that failed to connect is skipped for
 *   URL_RETRY_MS unless every URL is down.
 * - Two pools: `poolSize` service-bound connections for searches, and `poolSize` connections
 *   for user binds. A user bind changes the identity of its connection (RFC 4513 §5.1), so
 *   it never happens on a connection used for searches. Pooled bind connections rather than
 *   one fresh connection per bind: on loopback a StartTLS connection costs more than the
 *   bind itself (figures in test/integration/directory-client.test.ts).
 * - Deadlines: connecting (TCP + TLS, StartTLS included) is bounded by `connectMs`, each
 *   operation (bind, search) and each wait for a pooled connection by `operationMs`. At a
 *   deadline the sockets are destroyed: nothing keeps waiting on a silent server.
 * - One ldapts Client = one socket: ldapts reconnects silently when a socket dropped, and
 *   that new connection would be neither upgraded by StartTLS nor bound (a search as
 *   anonymous, in clear). The connection factories given to ldapts refuse a second socket;
 *   a dropped connection is discarded and a fresh one made here, with TLS and the bind.
 * - No password (the service account's or a user's) ever goes into an error or a log line.
 */
import net from 'node:net';
import tls from 'node:tls';
import {
  AndFilter, ApproximateFilter, Client, EqualityFilter, ExtensibleFilter, type Filter, FilterParser, GreaterThanEqualsFilter,
  LessThanEqualsFilter, NotFilter, OrFilter, ResultCodeError, SubstringFilter,
} from 'ldapts';
import { DirectoryUnavailableError, type DirectoryConfig, type DirectoryConnection, type RawEntry, type UnavailableKind } from './types.ts';

/** How long a URL that failed to connect is skipped (unless every URL is down). */
export const URL_RETRY_MS = 30_000;

/** Attributes always returned as bytes: AD's objectGUID and objectSid are binary (MS-ADTS §2.2.9). */
const BINARY_ATTRIBUTES = ['objectGUID', 'objectSid'];

/** What a connection is for; reported to hooks (tests count connections, metrics may too). */
export type ConnectionPurpose = 'service' | 'bind' | 'check';

export interface ClientHooks {
  /** A connection is up (TLS done, before any bind). */
  onConnect?(event: { url: string; purpose: ConnectionPurpose }): void;
}

export interface ClientOptions {
  hooks?: ClientHooks;
  /** More attributes to return as Buffers (besides objectGUID, objectSid and `;binary` ones). */
  binaryAttributes?: string[];
}

type TlsMode = 'ldaps' | 'starttls' | 'none';

/** A deadline passed: the caller destroys what was waiting. */
class DeadlineError extends Error {
  override name = 'DeadlineError';
}

function withDeadline<T>(work: Promise<T>, ms: number, what: string, onExpire: () => void): Promise<T> {
  // The abandoned promise may still reject once its socket is destroyed.
  work.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onExpire();
      reject(new DeadlineError(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/** A failure of the transport (as opposed to a result code the server sent). */
function kindOf(err: unknown, phase: 'tcp' | 'tls' | 'op'): UnavailableKind {
  if (err instanceof DeadlineError) return 'timeout';
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return 'connect';
    if (/^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH)/.test(code)) return 'tls';
  }
  if (phase === 'tls') return 'tls';
  const message = err instanceof Error ? err.message : String(err);
  if (/connection closed|socket error|not established|socket hang up|reconnect refused/i.test(message)) return 'connect';
  return phase === 'tcp' ? 'connect' : 'protocol';
}

/** The server's diagnostic message of an LDAP result (ldapts appends " Code: 0x31"). */
function diagnosticOf(err: ResultCodeError): string {
  return err.message.replace(/\s*Code: 0x[0-9a-f]+$/i, '').trim();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * An RFC 4515 filter string → an ldapts Filter whose values are the exact octets the string
 * denotes. ldapts' own parser turns each `\XX` escape into the character U+00XX and then
 * writes it as UTF-8, so `\c3\ab` (ë) or an escaped objectGUID (`\a3\f0…`) would reach the
 * server as different bytes. Here every non-ASCII character is first escaped as its UTF-8
 * octets, ldapts parses the all-ASCII string (each value character is then one octet), and
 * each value is rebuilt from those octets: a UTF-8 string, or a Buffer (equality only,
 * e.g. a binary GUID) when the octets are not UTF-8.
 */
export function parseFilter(filter: string): Filter {
  const ascii = filter.replace(/[\u0080-\u{10ffff}]/gu, (ch) => [...Buffer.from(ch, 'utf8')].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join(''));
  const root = FilterParser.parseString(ascii);
  const text = (v: string): string => {
    const octets = Buffer.from(v, 'latin1');
    try {
      return utf8.decode(octets);
    } catch {
      throw new Error('a filter value that is not UTF-8 is only supported in an equality match');
    }
  };
  const octets = (v: string | Buffer): string | Buffer => {
    if (Buffer.isBuffer(v)) return v;
    const b = Buffer.from(v, 'latin1');
    try {
      return utf8.decode(b);
    } catch {
      return b;
    }
  };
  const fix = (f: Filter): void => {
    if (f instanceof AndFilter || f instanceof OrFilter) f.filters.forEach(fix);
    else if (f instanceof NotFilter) fix(f.filter);
    else if (f instanceof EqualityFilter) f.value = octets(f.value);
    else if (f instanceof SubstringFilter) {
      f.initial = text(f.initial);
      f.any = f.any.map(text);
      f.final = text(f.final);
    } else if (f instanceof ApproximateFilter || f instanceof GreaterThanEqualsFilter || f instanceof LessThanEqualsFilter || f instanceof ExtensibleFilter) {
      f.value = text(f.value);
    }
  };
  fix(root);
  return root;
}

/** Resolves at `event`, rejects at the socket's first error; leaves no listener behind. */
function connected(s: net.Socket, event: 'connect' | 'secureConnect'): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => { s.off('error', fail); resolve(); };
    const fail = (err: Error) => { s.off(event, ok); reject(err); };
    s.once(event, ok);
    s.once('error', fail);
  });
}

function hostOf(url: URL): string {
  const h = url.hostname;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** One LDAP connection: an ldapts Client over exactly one socket (two with StartTLS). */
class Conn {
  readonly sockets: net.Socket[] = [];
  broken = false;
  uses = 0;
  client!: Client;
  readonly url: string;
  readonly tlsMode: TlsMode;
  constructor(url: string, tlsMode: TlsMode) {
    this.url = url;
    this.tlsMode = tlsMode;
  }

  track(s: net.Socket): void {
    this.sockets.push(s);
    s.once('close', () => { this.broken = true; });
    // Until ldapts puts its own handler (at its first operation), an error must not be
    // an uncaught exception: it marks the connection broken, and the close follows.
    s.on('error', () => { this.broken = true; });
  }

  get alive(): boolean {
    return !this.broken && this.client.isConnected;
  }

  destroy(): void {
    this.broken = true;
    for (const s of this.sockets) s.destroy();
  }
}

/** A bounded pool; callers beyond `max` wait for a release, at most `waitMs`. */
class Pool {
  private idle: Conn[] = [];
  private count = 0;
  private waiters: (() => void)[] = [];
  private closed = false;
  private readonly max: number;
  private readonly create: () => Promise<Conn>;
  private readonly onWaitTimeout: (ms: number) => Error;
  private readonly onClosed: () => Error;
  constructor(max: number, create: () => Promise<Conn>, onWaitTimeout: (ms: number) => Error, onClosed: () => Error) {
    this.max = max;
    this.create = create;
    this.onWaitTimeout = onWaitTimeout;
    this.onClosed = onClosed;
  }

  async acquire(waitMs: number): Promise<Conn> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (this.closed) throw this.onClosed();
      const c = this.idle.pop();
      if (c) {
        if (c.alive) return c;
        this.drop(c);
        continue;
      }
      if (this.count < this.max) {
        this.count++;
        try {
          return await this.create();
        } catch (err) {
          this.count--;
          this.wake();
          throw err;
        }
      }
      await this.wait(deadline, waitMs);
    }
  }

  release(c: Conn): void {
    if (c.alive && !this.closed) this.idle.push(c);
    else this.drop(c, false);
    this.wake();
  }

  drop(c: Conn, wake = true): void {
    c.destroy();
    this.count--;
    if (wake) this.wake();
  }

  /** No more connections; the idle ones are returned to be unbound, busy ones are destroyed at release. */
  close(): Conn[] {
    this.closed = true;
    const all = this.idle;
    this.idle = [];
    this.count -= all.length;
    // Waiters wake up, find the pool closed and fail.
    for (const w of this.waiters.splice(0)) w();
    return all;
  }

  private wake(): void {
    this.waiters.shift()?.();
  }

  private wait(deadline: number, waitMs: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(this.onWaitTimeout(waitMs));
    return new Promise((resolve, reject) => {
      const waiter = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(this.onWaitTimeout(waitMs));
      }, left);
      this.waiters.push(waiter);
    });
  }
}

export function createDirectoryConnection(config: DirectoryConfig, options: ClientOptions = {}): DirectoryConnection {
  const { connectMs, operationMs } = config.timeouts;
  const downUntil = new Map<string, number>();
  const binary = new Set([...BINARY_ATTRIBUTES, ...(options.binaryAttributes ?? [])].map((a) => a.toLowerCase()));
  const isBinary = (a: string) => binary.has(a.toLowerCase()) || /;binary$/i.test(a);
  let closed = false;

  const unavailable = (kind: UnavailableKind, detail: string) => {
    // Defence in depth: whatever a library put in a message, the passwords never leave.
    let safe = detail;
    if (config.bindPassword) safe = safe.split(config.bindPassword).join('***');
    return new DirectoryUnavailableError(config.name, kind, safe);
  };

  /** TCP (+ TLS) to one URL, bounded by connectMs. */
  async function open(url: string, purpose: ConnectionPurpose): Promise<Conn> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw unavailable('protocol', `invalid URL ${url}`);
    }
    const scheme = parsed.protocol;
    if (scheme !== 'ldap:' && scheme !== 'ldaps:') throw unavailable('protocol', `${url}: not an ldap:// or ldaps:// URL`);
    const mode: TlsMode = scheme === 'ldaps:' ? 'ldaps' : config.startTls ? 'starttls' : 'none';
    if (mode === 'none' && !config.allowPlain) {
      throw unavailable('tls', `${url}: plain LDAP refused (passwords would cross in clear); use ldaps://, StartTLS, or allow_plain`);
    }
    const host = hostOf(parsed);
    const port = Number(parsed.port || (mode === 'ldaps' ? 636 : 389));
    const tlsOptions: tls.ConnectionOptions = {
      host,
      // SNI carries names only, never an IP address (RFC 6066 §3).
      servername: net.isIP(host) ? undefined : host,
      ca: config.ca,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    };
    const conn = new Conn(url, mode);
    let phase: 'tcp' | 'tls' = mode === 'ldaps' ? 'tls' : 'tcp';

    const connect = async (): Promise<void> => {
      let first: net.Socket;
      if (mode === 'ldaps') {
        first = tls.connect({ ...tlsOptions, port });
        conn.track(first);
        await connected(first, 'secureConnect');
      } else {
        first = net.connect({ host, port });
        conn.track(first);
        await connected(first, 'connect');
      }
      let given = false;
      let upgraded = false;
      const once = () => {
        if (given) throw new Error('reconnect refused: a dropped LDAP connection is replaced, never silently reopened');
        given = true;
        return first;
      };
      conn.client = new Client({
        url: `${mode === 'ldaps' ? 'ldaps' : 'ldap'}://${parsed.host}`,
        strictDN: false,
        createConnection: once as unknown as typeof net.connect,
        createSecureConnection: ((opts: unknown) => {
          // ldapts calls this for ldaps:// (port, host, options) and for StartTLS (options with the socket).
          if (mode === 'starttls' && typeof opts === 'object' && opts !== null && !upgraded) {
            upgraded = true;
            const s = tls.connect({ ...(opts as tls.ConnectionOptions), ...tlsOptions });
            conn.track(s);
            return s;
          }
          return once();
        }) as unknown as typeof tls.connect,
      });
      if (mode === 'starttls') {
        phase = 'tls';
        await conn.client.startTLS({});
      }
    };

    try {
      await withDeadline(connect(), connectMs, `${url}: connect`, () => conn.destroy());
    } catch (err) {
      conn.destroy();
      if (err instanceof ResultCodeError) throw unavailable('tls', `${url}: StartTLS refused: ${diagnosticOf(err)} (code ${err.code})`);
      throw unavailable(kindOf(err, phase), `${url}: ${err instanceof Error ? err.message : String(err)}`);
    }
    options.hooks?.onConnect?.({ url, purpose });
    return conn;
  }

  /** The first URL that connects, in order; a URL that failed is skipped for a while unless all are down. */
  async function openAny(purpose: ConnectionPurpose): Promise<Conn> {
    if (closed) throw closedError();
    const now = Date.now();
    const up = config.urls.filter((u) => (downUntil.get(u) ?? 0) <= now);
    const candidates = up.length ? up : config.urls;
    const failures: string[] = [];
    let last: DirectoryUnavailableError | undefined;
    for (const url of candidates) {
      try {
        const conn = await open(url, purpose);
        downUntil.delete(url);
        return conn;
      } catch (err) {
        if (!(err instanceof DirectoryUnavailableError) || err.kind === 'protocol') throw err;
        downUntil.set(url, Date.now() + URL_RETRY_MS);
        failures.push(err.message);
        last = err;
      }
    }
    if (last && failures.length === 1) throw last;
    throw unavailable(last?.kind ?? 'connect', `no URL answered: ${failures.join('; ')}`);
  }

  /** Runs one LDAP operation on `conn`, bounded by operationMs. */
  function operate<T>(conn: Conn, what: string, op: (c: Client) => Promise<T>): Promise<T> {
    conn.uses++;
    return withDeadline(op(conn.client), operationMs, `${conn.url}: ${what}`, () => conn.destroy());
  }

  async function openService(purpose: ConnectionPurpose): Promise<Conn> {
    const conn = await openAny(purpose);
    try {
      await operate(conn, 'service bind', (c) => c.bind(config.bindDn, config.bindPassword));
    } catch (err) {
      conn.destroy();
      if (err instanceof ResultCodeError) {
        throw unavailable('service_bind', `${conn.url}: bind as ${config.bindDn} failed: ${diagnosticOf(err) || 'no diagnostic'} (code ${err.code})`);
      }
      throw unavailable(kindOf(err, 'op'), `${conn.url}: service bind: ${err instanceof Error ? err.message : String(err)}`);
    }
    return conn;
  }

  const waitTimeout = (pool: string) => (ms: number) => unavailable('timeout', `no ${pool} connection free within ${ms} ms (pool of ${config.poolSize})`);
  const closedError = () => unavailable('connect', 'the connection was closed');
  const searchPool = new Pool(config.poolSize, () => openService('service'), waitTimeout('search'), closedError);
  const bindPool = new Pool(config.poolSize, () => openAny('bind'), waitTimeout('bind'), closedError);

  /**
   * Runs `op` on a pooled connection. A result code from the server leaves the connection
   * usable; a transport failure discards it. A pooled connection that had served before may
   * have been closed by the server meanwhile (idle timeout, restart): the operation is tried
   * once more on a fresh connection. A timeout is never retried: the bound is the bound.
   */
  async function pooled<T>(pool: Pool, what: string, op: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const conn = await pool.acquire(operationMs);
      const reused = conn.uses > (pool === searchPool ? 1 : 0);
      try {
        const result = await operate(conn, what, op);
        pool.release(conn);
        return result;
      } catch (err) {
        if (err instanceof ResultCodeError) {
          pool.release(conn);
          throw err;
        }
        pool.drop(conn);
        const kind = kindOf(err, 'op');
        if (kind === 'connect' && reused && attempt === 0) continue;
        throw unavailable(kind, `${conn.url}: ${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  function toRawEntry(entry: Record<string, unknown> & { dn: string }, requested: string[]): RawEntry {
    const byLower = new Map(requested.map((a) => [a.toLowerCase(), a]));
    const attributes: RawEntry['attributes'] = {};
    for (const [type, raw] of Object.entries(entry)) {
      if (type === 'dn') continue;
      // Named as configured: servers answer with the schema's spelling (entryUUID for entryuuid).
      const name = byLower.get(type.toLowerCase()) ?? type;
      const values = (Array.isArray(raw) ? raw : [raw]) as (string | Buffer)[];
      if (!values.length) continue;
      attributes[name] = isBinary(name)
        // A binary value that happened to be valid UTF-8 came back as a string: its UTF-8 bytes are exactly the value.
        ? values.map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8')))
        // Text attributes are strings; a value that is not UTF-8 stays bytes rather than being mangled.
        : values;
    }
    return { dn: entry.dn, attributes };
  }

  return {
    async search(base, scope, filter, attributes, sizeLimit) {
      let parsed: Filter;
      try {
        parsed = parseFilter(filter);
      } catch {
        // A bug of the caller (mapping.ts escapes every value). Neither the filter nor the
        // parser's message (which quotes the value) is repeated: they carry a username.
        throw unavailable('protocol', 'invalid search filter (RFC 4515)');
      }
      try {
        const result = await pooled(searchPool, 'search', (c) => c.search(base, {
          scope,
          filter: parsed,
          attributes,
          sizeLimit,
          derefAliases: 'never',
          explicitBufferAttributes: attributes.filter(isBinary),
        }));
        return result.searchEntries.map((e) => toRawEntry(e, attributes));
      } catch (err) {
        // noSuchObject (RFC 4511 §4.5.2): the base is gone (a user's DN read after a delete): nothing matches.
        if (err instanceof ResultCodeError && err.code === 32) return [];
        if (err instanceof ResultCodeError) throw unavailable('protocol', `search under ${base} failed: ${diagnosticOf(err) || 'no diagnostic'} (code ${err.code})`);
        throw err;
      }
    },

    async bind(dn, password) {
      // RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an unauthenticated
      // bind, which servers may accept as anonymous: never let it reach one.
      if (password === '' || dn === '') {
        return { ok: false, code: 49, diagnostic: 'empty password or DN refused by the client (unauthenticated bind, RFC 4513 §5.1.2)' };
      }
      try {
        await pooled(bindPool, 'bind', (c) => c.bind(dn, password));
        return { ok: true };
      } catch (err) {
        if (err instanceof ResultCodeError) return { ok: false, code: err.code, diagnostic: diagnosticOf(err).split(password).join('***') };
        throw err;
      }
    },

    async checkServiceBind() {
      const conn = await openService('check');
      const out = { url: conn.url, tls: conn.tlsMode };
      await withDeadline(conn.client.unbind(), operationMs, 'unbind', () => conn.destroy()).catch(() => {});
      conn.destroy();
      return out;
    },

    async close() {
      closed = true;
      const all = [...searchPool.close(), ...bindPool.close()];
      await Promise.all(all.map((c) => withDeadline(c.client.unbind(), operationMs, 'unbind', () => c.destroy()).catch(() => {})));
      for (const c of all) c.destroy();
    },
  };
}

/**
 * The yardstick of `npm run bench`: a bare oidc-provider, run as its own process beside ours
 * and loaded by the same code. In memory (a Map adapter), no password
 * hashing, no risk engine, no stores; the protocol choices that cost CPU per grant are ours:
 * client_secret_basic clients, RS256 ID tokens (RSA 2048), opaque access tokens, refresh
 * tokens for `offline_access` rotated at every use (RFC 9700 §4.14.2). Its login is a
 * redirect that signs in a fixed account, and its grant is made without a consent page,
 * so a refresh token is one authorization away.
 *
 * With a fourth argument, a directory, it keeps its records in our embedded store there
 * instead (adapters/oidc-adapter.ts over adapters/storage/embedded.ts): the same durable
 * writes ours makes, and nothing else of ours. Ours against that one is what our own code
 * costs; that one against the in-memory one is what keeping the records durably costs.
 *
 * Usage: node bare-provider.js <port> <client secret> <redirect uri> [store dir]; prints "ready" on stdout.
 */
import crypto from 'node:crypto';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';
import { createAdapterClass } from '../../adapters/oidc-adapter.ts';
import { SecretBox } from '../../adapters/crypto.ts';
import { openEmbeddedStorage } from '../../adapters/storage/embedded.ts';

const [port = '0', secret = '', redirect = '', storeDir] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bare', use: 'sig', alg: 'RS256' };

/**
 * In memory, without a size bound: oidc-provider's own development adapter is an LRU of
 * 1,000 entries, which a client_credentials load evicts the refresh tokens from.
 */
const records = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
const grants = new Map<string, Set<string>>();
class MapAdapter implements Adapter {
  readonly #model: string;
  constructor(model: string) { this.#model = model; }
  #key(id: string) { return `${this.#model}:${id}`; }
  async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
    const key = this.#key(id);
    records.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) grants.set(payload.grantId, (grants.get(payload.grantId) ?? new Set()).add(key));
  }
  async find(id: string) {
    const r = records.get(this.#key(id));
    return r && r.expiresAt > Date.now() ? r.payload : undefined;
  }
  async findByUid(uid: string) {
    for (const [key, r] of records) if (key.startsWith(`${this.#model}:`) && r.payload.uid === uid) return r.payload;
    return undefined;
  }
  async findByUserCode() { return undefined; }
  async consume(id: string) {
    const r = records.get(this.#key(id));
    if (r) r.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) { records.delete(this.#key(id)); }
  async revokeByGrantId(grantId: string) {
    for (const key of grants.get(grantId) ?? []) records.delete(key);
    grants.delete(grantId);
  }
}

const configuration: Configuration = {
  // The client is static configuration either way (oidc-provider does not ask the adapter for it).
  adapter: storeDir ? createAdapterClass(openEmbeddedStorage(storeDir), new SecretBox(crypto.randomBytes(32).toString('base64url'))) : MapAdapter,
  clients: [{
    client_id: 'bench', client_secret: secret, redirect_uris: [redirect], response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] } as Configuration['jwks'],
  scopes: ['openid', 'offline_access'],
  claims: { openid: ['sub', 'acr', 'amr', 'auth_time'] },
  findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true }, introspection: { enabled: true }, revocation: { enabled: true } },
  pkce: { required: () => false },
  responseTypes: ['code'],
  rotateRefreshToken: true,
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
    grant.addOIDCScope('openid offline_access');
    await grant.save();
    return grant;
  },
};

const provider = new Provider(issuer, configuration);
// The whole interaction: sign in the fixed account and return to the authorization.
provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/interaction/')) {
    const to = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: 'bench-user' }, consent: {} }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }
  await next();
});
provider.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
// A clean exit on SIGINT, so that --cpu-prof writes its profile.
process.once('SIGINT', () => process.exit(0));

/**
 * oidc-provider's Adapter interface over the storage port. oidc-provider owns the payloads;
 * we store them with their expiry and the secondary keys it looks them up by.
 *
 * Clients are read from the client store (there is no registration through this adapter),
 * through the verified cache when one is given (client-cache.ts), so a client added or changed
 * with `idp client add` works in every instance within the cache's verification interval,
 * without a restart.
 */
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { SecretBox } from './crypto.ts';
import type { ClientCache } from './client-cache.ts';
import { RecordGoneError, storedOnly, type Storage } from './storage/port.ts';
import { adoptLoginId, currentLoginId, enterLogin } from '../idp/log.ts';

/**
 * The records of a login carry its log id (idp/log.ts `login_id`), so every request of it
 * logs under one id without a look-up of its own: a new interaction that is not part of a
 * login yet starts one; its pages, the resume, the next prompt's interaction (consent is a new
 * interaction, with a new uid), then the code exchange, refreshes and userinfo read the id
 * back from the record they load anyway. oidc-provider ignores payload fields it does not know.
 */
const CARRY_LOGIN_ID = new Set(['Interaction', 'AuthorizationCode', 'RefreshToken', 'AccessToken']);

export function clientSecretContext(clientId: string): string {
  return `client_secret:${clientId}`;
}

export function createAdapterClass(storage: Storage, box: SecretBox, clients?: ClientCache<AdapterPayload>) {
  const loadClient = async (id: string): Promise<AdapterPayload | undefined> => {
    const c = await storage.clients.find(id);
    if (!c) return undefined;
    return {
      ...c.metadata,
      client_id: c.clientId,
      ...(c.secretCiphertext ? { client_secret: box.open(c.secretCiphertext, clientSecretContext(c.clientId)) } : {}),
    } as AdapterPayload;
  };

  return class StorageAdapter implements Adapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed with `idp client add`');
      const now = Date.now();
      if (this.model === 'Interaction' && currentLoginId() === undefined) enterLogin(id);
      const loginId = CARRY_LOGIN_ID.has(this.model) ? currentLoginId() : undefined;
      const rec = {
        model: this.model,
        id,
        payload: (loginId === undefined ? payload : { ...payload, loginId }) as Record<string, unknown>,
        grantId: payload.grantId,
        uid: payload.uid,
        userCode: payload.userCode,
        expiresAt: expiresIn ? now + expiresIn * 1000 : undefined,
        // Sessions, grants and the tokens of a user, found by account for an administrator
        // (list a user's sessions, end them, delete the user: idp/admin/users.ts).
        accountId: typeof payload.accountId === 'string' ? payload.accountId : undefined,
      };
      // Inside savingStoredOnly (port.ts): an update of a record still there, never a re-creation.
      if (storedOnly.getStore()) {
        if (!(await storage.oidc.replace(rec, now))) throw new RecordGoneError(`${this.model} is gone`);
        return;
      }
      await storage.oidc.upsert(rec);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') {
        if (!clients) return loadClient(id);
        // A copy: the cached record is never handed out to be changed.
        const cached = await clients.get(id, loadClient);
        return cached && structuredClone(cached);
      }
      return this.#out(await storage.oidc.find(this.model, id, Date.now()));
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.#out(await storage.oidc.findByUid(this.model, uid, Date.now()));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.#out(await storage.oidc.findByUserCode(this.model, userCode, Date.now()));
    }

    /**
     * oidc-provider checks `consumed` on the record it read, then calls this. Two parallel
     * redemptions of one code could both pass that check, so the store decides atomically
     * who consumes it; the loser is treated as the replay it is (RFC 6749 §4.1.2: refuse,
     * and revoke what the code granted).
     */
    async consume(id: string): Promise<void> {
      const won = await storage.oidc.consume(this.model, id, Math.floor(Date.now() / 1000));
      if (won) return;
      const rec = await storage.oidc.find(this.model, id, Date.now());
      if (rec?.grantId) await storage.oidc.revokeByGrantId(rec.grantId);
      throw new errors.InvalidGrant(`${this.model === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
    }

    async destroy(id: string): Promise<void> {
      await storage.oidc.destroy(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await storage.oidc.revokeByGrantId(grantId);
    }

    #out(rec: Awaited<ReturnType<Storage['oidc']['find']>>): AdapterPayload | undefined {
      if (!rec) return undefined;
      if (CARRY_LOGIN_ID.has(this.model) && typeof rec.payload.loginId === 'string') adoptLoginId(rec.payload.loginId);
      return { ...rec.payload, ...(rec.consumed ? { consumed: rec.consumed } : {}) } as AdapterPayload;
    }
  };
}

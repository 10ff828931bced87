/**
 * In-memory FactorStore and OidcStore for unit tests of our own logic (the ceremonies in
 * interactions/methods/webauthn.ts). They honour the port's atomic contract the way a
 * single-threaded process can: every check-and-write runs without an await in between, so
 * `advance` is a compare-and-set and `consume` succeeds for exactly one caller. The real
 * stores are tested against the same contract in test/integration/storage.contract.test.ts.
 */
import { DuplicateError, type FactorStore, type OidcStore } from '../../adapters/storage/port.ts';
import type { FactorKind, FactorRecord, NewFactor, OidcRecord } from '../../models/types.ts';

/** Lets other promises run first, so parallel callers really interleave. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export class MemoryFactorStore implements FactorStore {
  readonly records = new Map<string, FactorRecord>();

  async add(factor: NewFactor): Promise<FactorRecord> {
    await tick();
    const cred = factor.webauthn?.credentialId;
    if (cred !== undefined && [...this.records.values()].some((r) => r.webauthn?.credentialId === cred)) throw new DuplicateError('factor', cred);
    const rec: FactorRecord = structuredClone({ ...factor, counter: factor.counter ?? 0, createdAt: new Date() });
    this.records.set(rec.id, rec);
    return structuredClone(rec);
  }

  async list(accountId: string): Promise<FactorRecord[]> {
    await tick();
    return [...this.records.values()].filter((r) => r.accountId === accountId).map((r) => structuredClone(r));
  }

  async find(accountId: string, id: string): Promise<FactorRecord | undefined> {
    await tick();
    const r = this.records.get(id);
    return r && r.accountId === accountId ? structuredClone(r) : undefined;
  }

  async findByCredentialId(credentialId: string): Promise<FactorRecord | undefined> {
    await tick();
    const r = [...this.records.values()].find((x) => x.webauthn?.credentialId === credentialId);
    return r && structuredClone(r);
  }

  async remove(accountId: string, id: string): Promise<boolean> {
    await tick();
    const r = this.records.get(id);
    return r?.accountId === accountId && this.records.delete(id);
  }

  async removeAll(accountId: string, kind?: FactorKind): Promise<number> {
    await tick();
    let n = 0;
    for (const [id, r] of this.records) {
      if (r.accountId === accountId && (kind === undefined || r.kind === kind)) n += Number(this.records.delete(id));
    }
    return n;
  }

  async advance(id: string, value: number, at: Date): Promise<boolean> {
    await tick();
    // Compare and set with no await in between.
    const r = this.records.get(id);
    if (!r || !(r.counter < value)) return false;
    r.counter = value;
    r.lastUsedAt = at;
    return true;
  }

  async touch(id: string, at: Date): Promise<void> {
    await tick();
    const r = this.records.get(id);
    if (r) r.lastUsedAt = at;
  }

  async useRecoveryCode(id: string, hash: string, at: Date): Promise<boolean> {
    await tick();
    const rec = this.records.get(id)?.recovery;
    if (!rec || !rec.hashes.includes(hash) || rec.used.some((u) => u.hash === hash)) return false;
    rec.used.push({ hash, at });
    return true;
  }
}

export class MemoryOidcStore implements OidcStore {
  readonly records = new Map<string, OidcRecord>();
  #key = (model: string, id: string) => `${model}\0${id}`;
  #live = (r: OidcRecord | undefined, now: number) => (r && (r.expiresAt === undefined || r.expiresAt > now) ? structuredClone(r) : undefined);

  async upsert(record: OidcRecord): Promise<void> {
    await tick();
    this.records.set(this.#key(record.model, record.id), structuredClone(record));
  }

  async replace(record: OidcRecord, now: number): Promise<boolean> {
    await tick();
    const had = this.#live(this.records.get(this.#key(record.model, record.id)), now);
    if (!had) return false;
    this.records.set(this.#key(record.model, record.id), { ...structuredClone(record), ...(had.consumed !== undefined ? { consumed: had.consumed } : {}) });
    return true;
  }

  async find(model: string, id: string, now: number): Promise<OidcRecord | undefined> {
    await tick();
    return this.#live(this.records.get(this.#key(model, id)), now);
  }

  async findByUid(model: string, uid: string, now: number): Promise<OidcRecord | undefined> {
    await tick();
    return this.#live([...this.records.values()].find((r) => r.model === model && r.uid === uid), now);
  }

  async findByUserCode(model: string, userCode: string, now: number): Promise<OidcRecord | undefined> {
    await tick();
    return this.#live([...this.records.values()].find((r) => r.model === model && r.userCode === userCode), now);
  }

  async claim(model: string, id: string, expiresAt: number): Promise<boolean> {
    await tick();
    const key = this.#key(model, id);
    if (this.records.has(key)) return false;
    this.records.set(key, { model, id, payload: {}, expiresAt });
    return true;
  }

  async consume(model: string, id: string, at: number): Promise<boolean> {
    await tick();
    const r = this.records.get(this.#key(model, id));
    if (!r || r.consumed !== undefined) return false;
    r.consumed = at;
    return true;
  }

  async destroy(model: string, id: string): Promise<void> {
    await tick();
    this.records.delete(this.#key(model, id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await tick();
    for (const [k, r] of this.records) if (r.grantId === grantId) this.records.delete(k);
  }

  async sweep(now: number): Promise<number> {
    await tick();
    let n = 0;
    for (const [k, r] of this.records) {
      if (r.expiresAt !== undefined && r.expiresAt <= now) n += Number(this.records.delete(k));
    }
    return n;
  }

  async listByAccount(model: string, accountId: string, now: number): Promise<OidcRecord[]> {
    await tick();
    return [...this.records.values()].filter((r) => r.model === model && r.accountId === accountId).map((r) => this.#live(r, now)).filter((r): r is OidcRecord => !!r);
  }

  async removeByAccount(accountId: string): Promise<number> {
    await tick();
    let n = 0;
    for (const [k, r] of this.records) if (r.accountId === accountId) n += Number(this.records.delete(k));
    return n;
  }
}

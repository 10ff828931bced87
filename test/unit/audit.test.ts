/**
 * The audit trail's own logic, without a store: RFC 8785 canonical JSON, the hash chain and
 * its seal (verifyChain names the first broken record and says why), masking of secrets, and
 * the ECS shape of a record (which rebuilds into the record, so an export verifies).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { auditHash, canonicalJson, chainRecord, GENESIS_HASH, hmacSealer, type AuditEntry } from '../../adapters/storage/audit-chain.ts';
import { AuditTrail, auditSealKey, MASKED, maskSecrets, policyChange, verifyChain } from '../../idp/audit.ts';
import type { Storage } from '../../adapters/storage/port.ts';
import { isSecretKey } from '../../idp/audit-mask.ts';
import { recordOfEcs, toEcs } from '../../idp/audit-ecs.ts';
import type { AuditRecord } from '../../models/types.ts';

const KEY = crypto.randomBytes(32);
const seal = hmacSealer(KEY);

function chain(entries: AuditEntry[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  entries.forEach((e, i) => {
    const r = chainRecord(e, { id: crypto.randomUUID(), seq: i + 1, ts: 1_750_000_000_000 + i, prevHash: prev }, seal);
    prev = r.hash;
    out.push(r);
  });
  return out;
}

const entry = (action: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({ actor: { kind: 'cli', id: 'root' }, action, outcome: 'success', ...extra });

describe('canonical JSON (RFC 8785)', () => {
  it('sorts members by UTF-16 code units, as the RFC\'s §3.2.3 example does', () => {
    const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', 1: 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    const order = Object.keys(JSON.parse(canonicalJson(input)) as object);
    // JSON.parse puts the integer-like key first again; compare the text instead.
    assert.equal(order.length, 7);
    const text = canonicalJson(input);
    const positions = ['\\r', '"1"', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) => text.indexOf(k));
    assert.deepEqual([...positions].sort((a, b) => a - b), positions, text);
  });

  it('serialises numbers as ECMAScript does (§3.2.2.3), drops undefined members and has no whitespace', () => {
    assert.equal(canonicalJson({ b: [1e30, 4.5, 0.002, 1e-27, -0, 333333333.3333333], a: undefined, c: { z: null, y: true } }),
      '{"b":[1e+30,4.5,0.002,1e-27,0,333333333.3333333],"c":{"y":true,"z":null}}');
    assert.throws(() => canonicalJson({ x: Number.NaN }), /finite/);
    assert.equal(canonicalJson({ t: new Date(0) }), '{"t":"1970-01-01T00:00:00.000Z"}');
  });
});

describe('the hash chain', () => {
  const records = chain([
    entry('user.create', { target: { type: 'user', id: 'u1' }, after: { username: 'amy' } }),
    entry('user.unlock', { target: { type: 'user', id: 'u1' } }),
    entry('factor.reset', { target: { type: 'user', id: 'u1' }, before: [{ id: 'f1', kind: 'totp' }], after: [], detail: { removed: 1 } }),
    entry('keys.rotate', { detail: { staged: ['k1'] } }),
  ]);

  it('links each record to the one before and verifies whole, seals included', async () => {
    assert.equal(records[0]!.prevHash, GENESIS_HASH);
    for (let i = 1; i < records.length; i += 1) assert.equal(records[i]!.prevHash, records[i - 1]!.hash);
    const v = await verifyChain(records, KEY);
    assert.deepEqual(v, { ok: true, checked: 4, sealsChecked: true, head: { seq: 4, hash: records[3]!.hash } });
  });

  it('names a record whose content changed', async () => {
    const tampered = records.map((r) => (r.seq === 2 ? { ...r, outcome: 'failure' as const } : r));
    const v = await verifyChain(tampered, KEY);
    assert.equal(v.ok, false);
    assert.deepEqual(v.broken && { seq: v.broken.seq, problem: v.broken.problem }, { seq: 2, problem: 'hash_mismatch' });
    assert.deepEqual(v.head, { seq: 1, hash: records[0]!.hash });
    assert.equal(v.checked, 2);
  });

  it('names the record where someone without the key rewrote the rest of the chain', async () => {
    // Change record 2 and recompute every hash from there on: the links hold, the seal does not.
    const rewritten: AuditRecord[] = [records[0]!];
    for (const r of records.slice(1)) {
      const body = { ...r, detail: r.seq === 2 ? { forged: true } : r.detail, prevHash: rewritten[rewritten.length - 1]!.hash };
      rewritten.push({ ...body, hash: auditHash(body) });
    }
    const v = await verifyChain(rewritten, KEY);
    assert.deepEqual(v.broken && { seq: v.broken.seq, problem: v.broken.problem }, { seq: 2, problem: 'seal_mismatch' });
    // Without the key only the links can be checked, and they hold: why the seal is there.
    assert.equal((await verifyChain(rewritten)).ok, true);
    // A seal made with another key is no seal.
    assert.equal((await verifyChain(records, crypto.randomBytes(32))).broken?.problem, 'seal_mismatch');
  });

  it('names a gap (a record removed) and a link that points elsewhere', async () => {
    const gap = await verifyChain([records[0]!, records[2]!, records[3]!], KEY);
    assert.deepEqual(gap.broken && { seq: gap.broken.seq, problem: gap.broken.problem }, { seq: 2, problem: 'gap' });
    assert.match(gap.broken!.message, /record 2 is missing \(the next stored record is 3\)/);
    const first = await verifyChain(records.slice(1), KEY);
    assert.deepEqual(first.broken && { seq: first.broken.seq, problem: first.broken.problem }, { seq: 1, problem: 'gap' });
    // Record 3 re-linked (and re-sealed, as only the key holder could) to a record that is not its predecessor.
    const body = { ...records[2]!, prevHash: records[0]!.hash };
    const hash = auditHash(body);
    const relinked = [records[0]!, records[1]!, { ...body, hash, seal: seal(hash) }];
    const v = await verifyChain(relinked, KEY);
    assert.deepEqual(v.broken && { seq: v.broken.seq, problem: v.broken.problem }, { seq: 3, problem: 'broken_link' });
  });
});

describe('verifying through the service', () => {
  it('walks the chain once for callers that ask together, and afresh for one that asks after a walk began', async () => {
    // Every admin:read token can ask: parallel requests must not each walk a long chain.
    const dataKey = crypto.randomBytes(32).toString('base64url');
    const sealWith = hmacSealer(auditSealKey(dataKey));
    let prev = GENESIS_HASH;
    const records = [entry('a.b'), entry('c.d'), entry('e.f')].map((e, i) => {
      const r = chainRecord(e, { id: crypto.randomUUID(), seq: i + 1, ts: 1_750_000_000_000 + i, prevHash: prev }, sealWith);
      prev = r.hash;
      return r;
    });
    let walks = 0;
    let release!: () => void;
    let gate = new Promise<void>((r) => { release = r; });
    const storage = {
      audit: {
        async *scan() {
          walks += 1;
          await gate;
          yield* records;
        },
      },
    } as unknown as Storage;
    const trail = new AuditTrail({ storage, dataKey });
    const first = trail.verify();
    await new Promise((r) => setImmediate(r));
    // Asked while the first walk is under way: it began before them, so they share the next one.
    const later = Array.from({ length: 10 }, () => trail.verify());
    assert.equal(walks, 1);
    release();
    gate = Promise.resolve();
    const results = await Promise.all([first, ...later]);
    assert.equal(walks, 2, 'one walk under way, and one more for everyone who asked during it');
    for (const r of results) assert.deepEqual([r.ok, r.checked], [true, 3]);
    await trail.verify();
    assert.equal(walks, 3, 'nothing under way: a walk of its own');
  });
});

describe('masking secrets', () => {
  it('masks secret-named keys at any depth and keeps what only says whether there is one', () => {
    const masked = maskSecrets({
      username: 'amy', password: 'hunter2 hunter2', passwordHash: '$argon2id$v=19$...', email: 'amy@example.com',
      client_secret: 's3cr3t', client_secret_expires_at: 0, token_endpoint_auth_method: 'client_secret_basic',
      totp: { secretCiphertext: 'v1.a.b.c', algorithm: 'SHA1', digits: 6 }, recovery: { hashes: ['h1', 'h2'], codes_left: 8 },
      tokens: [{ refresh_token: 'rt', access_token: 'at', expires_in: 3600 }], deviceKey: 'thumbprint', privateKey: { d: 'x' },
      'x-api-key': 'k', seed: '', otp: null, hasSecret: true, createdAt: new Date(0), kid: 'kid-1', keystroke: { mean: 1 },
    }) as Record<string, unknown>;
    assert.deepEqual(masked, {
      username: 'amy', password: MASKED, passwordHash: MASKED, email: 'amy@example.com',
      client_secret: MASKED, client_secret_expires_at: MASKED, token_endpoint_auth_method: 'client_secret_basic',
      totp: { secretCiphertext: MASKED, algorithm: 'SHA1', digits: 6 }, recovery: { hashes: MASKED, codes_left: 8 },
      tokens: MASKED, deviceKey: MASKED, privateKey: MASKED,
      'x-api-key': MASKED, seed: '', otp: null, hasSecret: true, createdAt: '1970-01-01T00:00:00.000Z', kid: 'kid-1', keystroke: { mean: 1 },
    });
  });

  it('masks the paths a caller names, with * for any key or index', () => {
    assert.deepEqual(maskSecrets({ metadata: { jwks_uri: 'https://x', extra: { a: 1 } }, list: [{ v: 'p' }, { v: 'q' }] }, { paths: ['metadata.extra', 'list.*.v'] }),
      { metadata: { jwks_uri: 'https://x', extra: MASKED }, list: [{ v: MASKED }, { v: MASKED }] });
  });

  it('splits camelCase, snake_case and kebab-case names into words', () => {
    for (const k of ['password', 'newPassword', 'PASSWORD_HASH', 'clientSecret', 'id_token', 'recoveryCodes', 'api-key', 'SessionCookie']) assert.ok(isSecretKey(k), k);
    for (const k of ['username', 'tokenEndpointAuthMethod', 'codesLeft', 'keystroke', 'keyId', 'kid', 'monkey', 'passkeyLabel']) assert.ok(!isSecretKey(k), k);
  });
});

describe('ECS shape', () => {
  const [decision, cli] = chain([
    { actor: { kind: 'system', id: 'login', ip: '192.0.2.7' }, action: 'auth.decision', outcome: 'failure', target: { type: 'user', id: 'u-9' }, detail: { decision: 'block', level: 'critical', score: 0.97, client: 'web' } },
    { actor: { kind: 'cli', id: 'root' }, action: 'user.create', outcome: 'success', target: { type: 'user', id: 'u-10' }, after: { username: 'bo' } },
  ]);

  it('names the user signing in, the address and the category of a login decision', () => {
    const e = toEcs(decision!);
    assert.equal(e['@timestamp'], decision!.ts);
    assert.deepEqual(e.event, {
      kind: 'event', category: ['authentication'], type: ['info'], action: 'auth.decision', outcome: 'failure', id: decision!.id, sequence: 1,
      hash: decision!.hash, dataset: 'idp.audit', provider: 'adaptive-idp',
    });
    assert.deepEqual(e.user, { id: 'u-9' });
    assert.deepEqual(e.source, { ip: '192.0.2.7' });
    assert.deepEqual(e.related, { user: ['u-9'], ip: ['192.0.2.7'] });
    assert.deepEqual(e.idp.audit.detail, decision!.detail);
  });

  it('names the administrator and the user acted on of an admin action', () => {
    const e = toEcs(cli!);
    assert.deepEqual(e.event.category, ['iam']);
    assert.deepEqual(e.event.type, ['user', 'creation']);
    assert.deepEqual(e.user, { name: 'root', target: { id: 'u-10' } });
    assert.deepEqual(e.related, { user: ['root', 'u-10'] });
    assert.equal(e.source, undefined);
  });

  it('rebuilds the records from their JSON lines, so an export verifies on its own', async () => {
    const lines = [decision!, cli!].map((r) => JSON.stringify(toEcs(r)));
    const back = lines.map((l) => recordOfEcs(JSON.parse(l)));
    assert.equal((await verifyChain(back, KEY)).ok, true);
    const edited = JSON.parse(lines[1]!);
    edited.idp.audit.after.username = 'eve';
    assert.equal((await verifyChain([back[0]!, recordOfEcs(edited)], KEY)).broken?.problem, 'hash_mismatch');
  });
});

describe('policy changes through the store', () => {
  it('are recorded in the shape of a file reload: versions before and after, the message', () => {
    assert.deepEqual(policyChange({ kind: 'user', id: 'admin', ip: '192.0.2.1' }, 'policy.publish', { from: 'aaaaaaaaaaaa', to: 'bbbbbbbbbbbb', message: 'raise new_country' }), {
      actor: { kind: 'user', id: 'admin', ip: '192.0.2.1' }, action: 'policy.publish', outcome: 'success', target: { type: 'policy', id: 'bbbbbbbbbbbb' },
      before: { version: 'aaaaaaaaaaaa' }, after: { version: 'bbbbbbbbbbbb' }, detail: { message: 'raise new_country' },
    });
  });
});

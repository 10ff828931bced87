/**
 * A software WebAuthn authenticator for tests: what a browser plus a passkey would hand the
 * server, built from first principles (W3C WebAuthn L3 §6.1 authenticator data, §6.5
 * attestation object with fmt "none", §5.8.1 client data), with an EC P-256 key from
 * node:crypto and CBOR from the server library's isoCBOR. Every field a test may need to
 * falsify (origin, RP ID, flags, counter, challenge, user handle) can be overridden.
 */
import crypto from 'node:crypto';
import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const FLAG = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;

interface Credential {
  id: Buffer;
  privateKey: crypto.KeyObject;
  rpId: string;
  userHandle: string;
  counter: number;
}

export interface CeremonyOverrides {
  origin?: string;
  rpId?: string;
  /** Set the UV flag (default: the authenticator's `userVerifying`). */
  uv?: boolean;
  /** Set the UP flag (default true). */
  up?: boolean;
  /** Signature counter to report (default: the previous one + 1, or 0 for a counterless authenticator). */
  counter?: number;
  /** Challenge to sign instead of the options' one. */
  challenge?: string;
  /** get(): which credential to use (base64url id), default the first allowed or discoverable; create(): the new one's id. */
  credentialId?: string;
  /** User handle to return; null: none. Default: the one stored at registration. */
  userHandle?: string | null;
  type?: string;
}

export interface SoftAuthenticatorOptions {
  origin: string;
  rpId: string;
  /** A synced passkey (BE and BS set: "multiDevice") rather than a device-bound key. */
  synced?: boolean;
  /** Performs user verification (PIN / biometric) unless told otherwise. */
  userVerifying?: boolean;
  /** Keeps a signature counter (false: always 0, as most synced passkeys do). */
  counting?: boolean;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export class SoftAuthenticator {
  readonly credentials: Credential[] = [];
  readonly #o: Required<SoftAuthenticatorOptions>;

  constructor(o: SoftAuthenticatorOptions) {
    this.#o = { synced: false, userVerifying: true, counting: true, ...o };
  }

  #flags(over: CeremonyOverrides, extra = 0): number {
    let f = extra;
    if (over.up ?? true) f |= FLAG.UP;
    if (over.uv ?? this.#o.userVerifying) f |= FLAG.UV;
    if (this.#o.synced) f |= FLAG.BE | FLAG.BS;
    return f;
  }

  #clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** navigator.credentials.create(): a new credential and its attestation (fmt "none"). */
  create(options: PublicKeyCredentialCreationOptionsJSON, over: CeremonyOverrides = {}): RegistrationResponseJSON {
    const rpId = over.rpId ?? options.rp.id ?? this.#o.rpId;
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    // RFC 9053 §7.1.1 / RFC 8152 §13.1.1: EC2 key, ES256, P-256.
    const cose = isoCBOR.encode(new Map<number, number | Uint8Array>([
      [1, 2], [3, -7], [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')],
    ]));
    const id = over.credentialId ? Buffer.from(over.credentialId, 'base64url') : crypto.randomBytes(32);
    const counter = over.counter ?? 0;
    const authData = Buffer.concat([
      crypto.createHash('sha256').update(rpId).digest(),
      Buffer.from([this.#flags(over, FLAG.AT)]),
      u32(counter),
      Buffer.alloc(16), // AAGUID: zeros, as with attestation "none"
      Buffer.from([id.length >> 8, id.length & 0xff]),
      id,
      Buffer.from(cose),
    ]);
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', new Uint8Array(authData)]]) as never);
    const clientDataJSON = this.#clientData(over.type ?? 'webauthn.create', over.challenge ?? options.challenge, over.origin ?? this.#o.origin);
    this.credentials.push({ id, privateKey, rpId, userHandle: options.user.id, counter });
    const idB64 = b64(id);
    return {
      id: idB64, rawId: idB64, type: 'public-key', clientExtensionResults: {}, authenticatorAttachment: 'platform',
      response: {
        clientDataJSON: b64(clientDataJSON),
        attestationObject: b64(attestationObject),
        transports: ['internal'],
      },
    };
  }

  /** navigator.credentials.get(): an assertion signed over authenticatorData ‖ SHA-256(clientDataJSON). */
  get(options: PublicKeyCredentialRequestOptionsJSON, over: CeremonyOverrides = {}): AuthenticationResponseJSON {
    const rpId = options.rpId ?? this.#o.rpId;
    const allowed = options.allowCredentials?.map((c) => c.id) ?? [];
    const cred = this.credentials.find((c) => (over.credentialId
      ? b64(c.id) === over.credentialId
      : c.rpId === rpId && (allowed.length === 0 || allowed.includes(b64(c.id)))));
    if (!cred) throw new Error('SoftAuthenticator: no credential for this request');
    const counter = over.counter ?? (this.#o.counting ? cred.counter + 1 : 0);
    cred.counter = Math.max(cred.counter, counter);
    const authData = Buffer.concat([
      crypto.createHash('sha256').update(over.rpId ?? rpId).digest(),
      Buffer.from([this.#flags(over)]),
      u32(counter),
    ]);
    const clientDataJSON = this.#clientData(over.type ?? 'webauthn.get', over.challenge ?? options.challenge, over.origin ?? this.#o.origin);
    const signature = crypto.sign('sha256', Buffer.concat([authData, crypto.createHash('sha256').update(clientDataJSON).digest()]), cred.privateKey);
    const idB64 = b64(cred.id);
    const userHandle = over.userHandle === undefined ? cred.userHandle : over.userHandle;
    return {
      id: idB64, rawId: idB64, type: 'public-key', clientExtensionResults: {}, authenticatorAttachment: 'platform',
      response: {
        clientDataJSON: b64(clientDataJSON),
        authenticatorData: b64(authData),
        signature: b64(signature),
        ...(userHandle === null ? {} : { userHandle }),
      },
    };
  }
}

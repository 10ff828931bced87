/**
 * Passkeys and security keys (W3C WebAuthn Level 3) through @simplewebauthn/server: the
 * registration and authentication ceremonies, and what an assertion proves (RFC 8176 `amr`).
 *
 * - The Relying Party is the issuer: RP ID = its hostname, expected origin = its origin
 *   (WebAuthn L3 §7.1 and §7.2, the origin and rpIdHash checks). Never the request's Host
 *   header: a proxy or an attacker's Host would otherwise choose whose credentials count.
 * - Challenges live on the server and are consumed once, atomically (§13.4.3 Cryptographic
 *   Challenges): a record per challenge in the generic store (`storage.oidc`, model
 *   `WebAuthnChallenge`), keyed by the caller's binding (the interaction uid), the ceremony
 *   and the challenge. The challenge the client echoes only says which of the binding's
 *   records it answers; the record decides.
 * - The signature counter advances atomically (FactorStore.advance, compare-and-set); a
 *   counter that does not grow refuses the assertion as a possible cloned authenticator
 *   (§6.1.1 Signature Counter Considerations).
 * - Failures are WebAuthnError with a stable code and a message fit for users; the library's
 *   own messages (which name challenges and origins) go to the debug log only.
 */
import { signInName } from '../methods/ldap.ts';
import crypto from 'node:crypto';
import net from 'node:net';
import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { DuplicateError, type FactorStore, type OidcStore } from '../../adapters/storage/port.ts';
import type { Logger } from '../../idp/log.ts';
import type { Account, FactorRecord } from '../../models/types.ts';
import type { AuthMethod } from './method.ts';

/** The generic-store model challenges are kept under (adapters/storage: one of its models). */
export const CHALLENGE_MODEL = 'WebAuthnChallenge';

/** How long a challenge may be answered: the browser's own timeout plus time to post the form. */
const CHALLENGE_TTL_MS = 5 * 60_000;
/** What the browser is told (WebAuthn L3 §5.4 `timeout`): shorter than the challenge lives. */
const CEREMONY_TIMEOUT_MS = 3 * 60_000;
/**
 * COSE algorithms accepted (RFC 9053): EdDSA, ES256, RS256 (Windows Hello), what the library
 * offers by default, named here so it is not probed at run time for post-quantum support
 * (an experimental Web Crypto call that prints a warning on every start).
 */
const ALGORITHMS = [-8, -7, -257]; // COSE algorithm ids (IANA registry): EdDSA, ES256, RS256

/**
 * The library, imported at the first ceremony: with its ASN.1 and CBOR dependencies it is
 * about 9 MiB of a server's resident memory (measured, issue 10), which a deployment whose
 * users never use passkeys need not carry. The first ceremony pays the import (tens of ms).
 */
let library: Promise<typeof import('@simplewebauthn/server')> | undefined;
const simpleWebAuthn = () => (library ??= import('@simplewebauthn/server'));
/** Longest credential id in base64url (WebAuthn L3 §4, Credential ID: at most 1023 bytes). */
const MAX_CREDENTIAL_ID = 1364;

/** Stable codes of every ceremony failure, with the words users see. */
export const WEBAUTHN_ERRORS = {
  challenge_expired: 'This passkey request has expired. Try again.',
  challenge_reused: 'This passkey response was already used. Try again.',
  not_allowed: 'This sign-in needs a passkey that checks it is you (PIN, fingerprint or face). Try again and unlock your passkey when asked, or use another passkey.',
  counter_regression: 'This passkey could not be trusted (it may have been copied). Use another method and contact your administrator.',
  unknown_credential: 'This passkey is not registered for this account. Use another passkey or another method.',
  wrong_account: 'This passkey belongs to a different account. Use another passkey or another method.',
  already_registered: 'This passkey is already registered.',
  verification_failed: 'The passkey could not be verified. Try again, or use another method.',
} as const;

export type WebAuthnErrorCode = keyof typeof WEBAUTHN_ERRORS;

export class WebAuthnError extends Error {
  override name = 'WebAuthnError';
  readonly code: WebAuthnErrorCode;
  constructor(code: WebAuthnErrorCode) {
    super(WEBAUTHN_ERRORS[code]);
    this.code = code;
  }
}

/**
 * RFC 8176 §2: `hwk` proof of possession of a hardware-secured key (a device-bound
 * credential: WebAuthn L3 §6.1.3 backup ineligible, "singleDevice"), `swk` of a
 * software-secured key (a synced passkey, "multiDevice", whose private key leaves the
 * device), and `user` when the authenticator verified the user (§6.1 UV flag).
 */
export function webauthnAmr(a: { deviceType: 'singleDevice' | 'multiDevice'; userVerified: boolean }): string[] {
  return [a.deviceType === 'singleDevice' ? 'hwk' : 'swk', ...(a.userVerified ? ['user'] : [])];
}

/**
 * What one assertion proves, as an AuthMethod. With user verification a passkey is a
 * multi-factor authenticator on its own (possession + the PIN or biometric that unlocked
 * it, NIST SP 800-63B-4 §3.1.7 "multi-factor cryptographic authenticator"), and it is always
 * phishing-resistant: the signature covers the origin and RP ID hash, so a look-alike site
 * gets nothing it can replay (§3.2.5 verifier-impersonation resistance).
 */
export function webauthnMethod(a: { deviceType: 'singleDevice' | 'multiDevice'; userVerified: boolean }): AuthMethod {
  return { id: 'webauthn', amr: webauthnAmr(a), factor: 'possession' };
}

export interface WebAuthnConfig {
  /** settings.issuer: RP ID and origin derive from it, never from a request. */
  issuer: string;
  /** Shown by the authenticator when a passkey is created. */
  rpName?: string;
  /** Epoch ms; injectable for tests of expiry. */
  now?: () => number;
  log?: Logger;
}

/** Whether the ceremony demands user verification (the phishing-resistant level does). */
export type UserVerification = 'required' | 'preferred';

export interface RegistrationRequest {
  /** What the challenge is bound to: the interaction uid (or another server-side binding). */
  binding: string;
  account: Pick<Account, 'id' | 'username' | 'name'>;
  userVerification?: UserVerification;
}

export interface RegistrationVerify {
  binding: string;
  account: Pick<Account, 'id'>;
  /** The browser's RegistrationResponseJSON: untrusted, checked here. */
  response: unknown;
  label?: string;
  enrolledVia: FactorRecord['enrolledVia'];
}

export interface AuthenticationRequest {
  binding: string;
  /** The account expected to answer; absent: username-less sign-in (discoverable credentials). */
  accountId?: string | undefined;
  userVerification?: UserVerification;
}

export interface AuthenticationVerify {
  binding: string;
  /** Must match the options' account, if those had one (it is checked against both). */
  accountId?: string | undefined;
  /** The browser's AuthenticationResponseJSON: untrusted, checked here. */
  response: unknown;
  /** Demand UV even if the options only preferred it (the level may have risen meanwhile). */
  requireUserVerification?: boolean;
}

/** A verified assertion. */
export interface PasskeyAssertion {
  accountId: string;
  factor: FactorRecord;
  userVerified: boolean;
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  method: AuthMethod;
  amr: string[];
  /** Possession plus a verified user (NIST SP 800-63B-4 §3.1.7). */
  multiFactor: boolean;
  /** Always true for WebAuthn; stated so the assurance code need not know why. */
  phishingResistant: true;
}

type Purpose = 'register' | 'authenticate';

interface ChallengePayload {
  purpose: Purpose;
  challenge: string;
  accountId?: string | undefined;
  userVerification: UserVerification;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The shape both responses share, checked before anything is looked up: an id, and
 * base64url strings where the library expects them. Returns the echoed challenge.
 */
function readResponse(response: unknown, fields: readonly string[]): { id: string; challenge: string } {
  if (!isRecord(response) || response.type !== 'public-key') throw new WebAuthnError('verification_failed');
  const { id, rawId } = response;
  if (typeof id !== 'string' || id !== rawId || id.length > MAX_CREDENTIAL_ID || !B64URL.test(id)) throw new WebAuthnError('verification_failed');
  const inner = response.response;
  if (!isRecord(inner)) throw new WebAuthnError('verification_failed');
  for (const f of fields) {
    const v = inner[f];
    if (typeof v !== 'string' || !B64URL.test(v)) throw new WebAuthnError('verification_failed');
  }
  let challenge: unknown;
  try {
    challenge = (JSON.parse(Buffer.from(inner.clientDataJSON as string, 'base64url').toString('utf8')) as Record<string, unknown>).challenge;
  } catch {
    throw new WebAuthnError('verification_failed');
  }
  if (typeof challenge !== 'string' || challenge.length > 256 || !B64URL.test(challenge)) throw new WebAuthnError('verification_failed');
  return { id, challenge };
}

export class WebAuthn {
  /** A valid domain string (WebAuthn L3 §5.4 `rp.id`): the issuer's host without port. */
  readonly rpID: string;
  /** HTML origin of the issuer (scheme, host, port): what clientDataJSON.origin must be. */
  readonly origin: string;
  /**
   * Whether browsers will run the ceremonies for this issuer at all: the RP ID must be a
   * domain, not an IP address (WebAuthn L3 §5.4 `rp.id`), and the page a secure context
   * (https, or http://localhost for development). When false, pages should not offer passkeys.
   */
  readonly supported: boolean;
  readonly #rpName: string;
  readonly #oidc: OidcStore;
  readonly #factors: FactorStore;
  readonly #now: () => number;
  readonly #log: Logger | undefined;

  constructor(storage: { oidc: OidcStore; factors: FactorStore }, config: WebAuthnConfig) {
    const issuer = new URL(config.issuer);
    this.rpID = issuer.hostname.replace(/^\[|\]$/g, '');
    this.origin = issuer.origin;
    const local = this.rpID === 'localhost' || this.rpID.endsWith('.localhost');
    this.supported = net.isIP(this.rpID) === 0 && (issuer.protocol === 'https:' || local);
    this.#rpName = config.rpName ?? this.rpID;
    this.#oidc = storage.oidc;
    this.#factors = storage.factors;
    this.#now = config.now ?? Date.now;
    this.#log = config.log;
  }

  /** The WebAuthn user handle: the account id, random and opaque, so never PII (WebAuthn L3 §14.6.1). */
  static userHandle(accountId: string): string {
    return Buffer.from(accountId, 'utf8').toString('base64url');
  }

  async registrationOptions(req: RegistrationRequest): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const userVerification = req.userVerification ?? 'preferred';
    const existing = (await this.#factors.list(req.account.id)).flatMap((f) => (f.webauthn ? [f.webauthn] : []));
    const { generateRegistrationOptions } = await simpleWebAuthn();
    const options = await generateRegistrationOptions({
      rpName: this.#rpName,
      rpID: this.rpID,
      userName: signInName(req.account) || req.account.username,
      userDisplayName: req.account.name ?? (signInName(req.account) || req.account.username),
      userID: new TextEncoder().encode(req.account.id),
      timeout: CEREMONY_TIMEOUT_MS,
      // Nothing here trusts an attestation (no metadata service): asking for one would only
      // collect identifying data about the device (WebAuthn L3 §14.4.1).
      attestationType: 'none',
      // §5.4 excludeCredentials: the same authenticator cannot be registered twice for one account.
      excludeCredentials: existing.map((w) => ({ id: w.credentialId, transports: w.transports })),
      // A discoverable credential can later sign in without a username (§6.2.2).
      authenticatorSelection: { residentKey: 'preferred', userVerification },
      supportedAlgorithmIDs: ALGORITHMS,
    });
    await this.#saveChallenge(req.binding, { purpose: 'register', challenge: options.challenge, accountId: req.account.id, userVerification });
    return options;
  }

  async verifyRegistration(req: RegistrationVerify): Promise<FactorRecord> {
    const { challenge } = readResponse(req.response, ['clientDataJSON', 'attestationObject']);
    const payload = await this.#consumeChallenge(req.binding, 'register', challenge);
    if (payload.accountId !== req.account.id) throw new WebAuthnError('wrong_account');
    let info;
    const { verifyRegistrationResponse } = await simpleWebAuthn();
    try {
      const result = await verifyRegistrationResponse({
        response: req.response as RegistrationResponseJSON,
        expectedChallenge: payload.challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpID,
        // Checked below, to tell the user why rather than "could not be verified".
        requireUserVerification: false,
        supportedAlgorithmIDs: ALGORITHMS,
      });
      if (!result.verified) throw new Error('registration not verified');
      info = result.registrationInfo;
    } catch (err) {
      this.#log?.debug('webauthn registration refused', { account: req.account.id, detail: (err as Error).message.slice(0, 300) });
      throw new WebAuthnError('verification_failed');
    }
    if (payload.userVerification === 'required' && !info.userVerified) throw new WebAuthnError('not_allowed');
    try {
      return await this.#factors.add({
        id: crypto.randomUUID(),
        accountId: req.account.id,
        kind: 'webauthn',
        label: req.label ?? `Passkey added ${new Date(this.#now()).toISOString().slice(0, 10)}`,
        enrolledVia: req.enrolledVia,
        counter: info.credential.counter,
        webauthn: {
          credentialId: info.credential.id,
          publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
          transports: info.credential.transports ?? [],
          deviceType: info.credentialDeviceType,
          backedUp: info.credentialBackedUp,
          aaguid: info.aaguid,
          userVerified: info.userVerified,
        },
      });
    } catch (err) {
      if (err instanceof DuplicateError) throw new WebAuthnError('already_registered');
      throw err;
    }
  }

  async authenticationOptions(req: AuthenticationRequest): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const userVerification = req.userVerification ?? 'preferred';
    const allow = req.accountId === undefined
      ? undefined
      : (await this.#factors.list(req.accountId)).flatMap((f) => (f.webauthn ? [{ id: f.webauthn.credentialId, transports: f.webauthn.transports }] : []));
    const { generateAuthenticationOptions } = await simpleWebAuthn();
    const options = await generateAuthenticationOptions({
      rpID: this.rpID,
      // Empty for a username-less sign-in: the authenticator offers its discoverable
      // credentials for this RP ID (WebAuthn L3 §5.5 allowCredentials).
      allowCredentials: allow,
      timeout: CEREMONY_TIMEOUT_MS,
      userVerification,
    });
    await this.#saveChallenge(req.binding, { purpose: 'authenticate', challenge: options.challenge, accountId: req.accountId, userVerification });
    return options;
  }

  /** WebAuthn L3 §7.2, with the challenge and the counter checked against the store. */
  async verifyAuthentication(req: AuthenticationVerify): Promise<PasskeyAssertion> {
    const { id, challenge } = readResponse(req.response, ['clientDataJSON', 'authenticatorData', 'signature']);
    const payload = await this.#consumeChallenge(req.binding, 'authenticate', challenge);
    const expectedAccount = payload.accountId ?? req.accountId;
    if (req.accountId !== undefined && payload.accountId !== undefined && req.accountId !== payload.accountId) throw new WebAuthnError('wrong_account');

    const factor = await this.#factors.findByCredentialId(id);
    if (!factor || factor.kind !== 'webauthn' || !factor.webauthn) throw new WebAuthnError('unknown_credential');
    // §7.2: the credential must belong to the user being authenticated, and the user handle
    // the authenticator returns (a discoverable credential) must name its owner.
    if (expectedAccount !== undefined && factor.accountId !== expectedAccount) throw new WebAuthnError('wrong_account');
    const userHandle = (req.response as { response: { userHandle?: unknown } }).response.userHandle;
    if (userHandle !== undefined && userHandle !== null && userHandle !== '' && userHandle !== WebAuthn.userHandle(factor.accountId)) {
      throw new WebAuthnError('wrong_account');
    }

    let info;
    const { verifyAuthenticationResponse } = await simpleWebAuthn();
    try {
      const result = await verifyAuthenticationResponse({
        response: req.response as AuthenticationResponseJSON,
        expectedChallenge: payload.challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpID,
        // Counter 0: the library compares counters non-atomically; the store does it below.
        credential: { id: factor.webauthn.credentialId, publicKey: new Uint8Array(Buffer.from(factor.webauthn.publicKey, 'base64url')), counter: 0, transports: factor.webauthn.transports },
        // User presence is still required (§7.2); verification is checked below.
        requireUserVerification: false,
      });
      if (!result.verified) throw new Error('signature not verified');
      info = result.authenticationInfo;
    } catch (err) {
      this.#log?.debug('webauthn assertion refused', { account: factor.accountId, factor: factor.id, detail: (err as Error).message.slice(0, 300) });
      throw new WebAuthnError('verification_failed');
    }
    if ((payload.userVerification === 'required' || req.requireUserVerification) && !info.userVerified) throw new WebAuthnError('not_allowed');

    // §6.1.1: once either side has a non-zero counter it must grow; the
    // compare-and-set makes two assertions with one counter value yield one success.
    const at = new Date(this.#now());
    if (info.newCounter > 0 || factor.counter > 0) {
      if (!(await this.#factors.advance(factor.id, info.newCounter, at))) {
        this.#log?.warn('webauthn counter regression: possible cloned authenticator', { account: factor.accountId, factor: factor.id, counter: info.newCounter, stored: factor.counter });
        throw new WebAuthnError('counter_regression');
      }
    } else {
      await this.#factors.touch(factor.id, at);
    }
    const deviceType = info.credentialDeviceType;
    const userVerified = info.userVerified;
    return {
      accountId: factor.accountId,
      factor: { ...factor, counter: Math.max(factor.counter, info.newCounter), lastUsedAt: at },
      userVerified,
      deviceType,
      backedUp: info.credentialBackedUp,
      method: webauthnMethod({ deviceType, userVerified }),
      amr: webauthnAmr({ deviceType, userVerified }),
      multiFactor: userVerified,
      phishingResistant: true,
    };
  }

  /** One record per (binding, ceremony, challenge): a new options call never overwrites an older one's state. */
  #challengeId(binding: string, purpose: Purpose, challenge: string): string {
    return crypto.createHash('sha256').update(`${purpose}\0${binding}\0${challenge}`).digest('base64url');
  }

  async #saveChallenge(binding: string, payload: ChallengePayload): Promise<void> {
    await this.#oidc.upsert({
      model: CHALLENGE_MODEL,
      id: this.#challengeId(binding, payload.purpose, payload.challenge),
      payload: { ...payload },
      expiresAt: this.#now() + CHALLENGE_TTL_MS,
    });
  }

  /**
   * The challenge the response answers, consumed by this call or refused: missing or
   * expired → challenge_expired, already consumed (also by a parallel call) → challenge_reused.
   * Consumed before the signature is checked: a failed attempt also burns it.
   */
  async #consumeChallenge(binding: string, purpose: Purpose, challenge: string): Promise<ChallengePayload> {
    const id = this.#challengeId(binding, purpose, challenge);
    const now = this.#now();
    const rec = await this.#oidc.find(CHALLENGE_MODEL, id, now);
    if (!rec) throw new WebAuthnError('challenge_expired');
    if (rec.consumed !== undefined) throw new WebAuthnError('challenge_reused');
    if (!(await this.#oidc.consume(CHALLENGE_MODEL, id, Math.floor(now / 1000)))) throw new WebAuthnError('challenge_reused');
    const p = rec.payload as unknown as ChallengePayload;
    // The id already binds purpose and challenge; checked again so a store bug cannot mix them.
    if (p.purpose !== purpose || p.challenge !== challenge) throw new WebAuthnError('challenge_expired');
    return p;
  }
}

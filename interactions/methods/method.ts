/**
 * An authentication method declares what it proves (STYLE.md §6): its RFC 8176 `amr`
 * values and the authenticator type it is under NIST 800-63B. A session's assurance is
 * computed from the methods used, never set by hand.
 */
export interface AuthMethod {
  readonly id: 'password' | 'ldap' | 'totp' | 'webauthn' | 'recovery';
  /** RFC 8176 §2 Authentication Method Reference values. */
  readonly amr: readonly string[];
  /** NIST 800-63B-4 §3.1 authenticator kind: what factor it contributes. */
  readonly factor: 'knowledge' | 'possession' | 'inherence';
}

/**
 * Local passwords: argon2id (OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1 at
 * least), NFKC-normalised first (NIST 800-63B-4 §3.1.1.2: verifiers SHOULD normalise).
 *
 * The implementation is @node-rs/argon2 (the RustCrypto argon2 crate, SIMD): the same
 * RFC 9106 function and PHC strings as the `argon2` package this used before, at under half
 * its CPU per verification here (11–12 ms against 25–27 ms at m=19 MiB, t=2). Hashes stored
 * by either verify with the other (test/unit/password.test.ts). A faster implementation of
 * the same parameters costs an attacker nothing less: crackers run optimised code already.
 * Hashing and verifying run on libuv's thread pool, off the event loop.
 */
import { hash as argon2Hash, parseOptions, verify as argon2Verify, type Algorithm, type Options, type ParsedHashOptions } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { ARGON2_MAX_ITERATIONS, ARGON2_MAX_MEMORY_KIB } from './argon2-limits.ts';
import type { AuthMethod } from './method.ts';
import { enforceUsername, prepareUsernameForLookup, UsernameError } from './username.ts';

export const passwordMethod: AuthMethod = { id: 'password', amr: ['pwd'], factor: 'knowledge' };

export interface HashParams {
  memoryKib: number;
  iterations: number;
}

/** Longest password accepted: far above NIST's 64-character floor, short enough not to be a DoS. */
export const PASSWORD_MAX_LENGTH = 1024;

export class PasswordError extends Error {
  override name = 'PasswordError';
}

/**
 * NIST 800-63B-4 §3.1.1.2: a new password SHALL be compared against a blocklist of
 * commonly used, expected or compromised values. The list ships in an npm package (no
 * network at run time): zxcvbn-ts's common-password dictionary, 49,233 passwords from
 * public breach corpora. Compared case-insensitively after NFKC, as a guesser would try them.
 * Built once per process (~15 ms); a lookup is one Set probe.
 */
const COMMON_PASSWORDS: ReadonlySet<string> = new Set(dictionary['passwords-common'].map((p) => p.normalize('NFKC').toLowerCase()));

export function isCommonPassword(password: string): boolean {
  return COMMON_PASSWORDS.has(password.normalize('NFKC').toLowerCase());
}

/**
 * Runs guessers walk: the alphabet, digits, keyboard rows (QWERTY, QWERTZ, AZERTY) and
 * columns, and the shifted digit row. A password lying along one of them, forwards or
 * backwards and wrapping round, is "sequential" (NIST 800-63B-4 §3.1.1.2).
 */
const SEQUENCES = [
  'abcdefghijklmnopqrstuvwxyz', '0123456789', 'qwertyuiopasdfghjklzxcvbnm', 'qwertzuiopasdfghjklyxcvbnm',
  'azertyuiopqsdfghjklmwxcvbn', '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p', '!@#$%^&*()',
];

/** Why a new password is guessable beyond the blocklist, or undefined. */
export interface PasswordContext {
  /** Context-specific words: the username, the email's local part, the name. */
  words?: readonly (string | undefined)[];
}

export function weakPasswordReason(password: string, context: PasswordContext = {}): string | undefined {
  const p = password.normalize('NFKC').toLowerCase();
  // What a guesser sees once spaces and separators are dropped: "pass word" is "password".
  const compact = p.replace(/[\s._-]+/gu, '');
  if (COMMON_PASSWORDS.has(p) || COMMON_PASSWORDS.has(compact)) return 'it appears in lists of breached passwords';
  const chars = [...compact];
  if (/^(.+?)\1+$/su.test(compact) || new Set(chars).size <= 3) return 'it repeats the same characters';
  const reversed = chars.reverse().join('');
  for (const seq of SEQUENCES) {
    const ring = seq.repeat(Math.ceil(compact.length / seq.length) + 1);
    if (ring.includes(compact) || ring.includes(reversed)) return 'it is a sequence of letters, digits or keys';
  }
  // Two breached passwords back to back ("qwerty123456789", "dragonmonkey") are no stronger.
  for (let i = 1; i < compact.length; i += 1) {
    if (COMMON_PASSWORDS.has(compact.slice(0, i)) && COMMON_PASSWORDS.has(compact.slice(i))) return 'it is made of common passwords';
  }
  // Context-specific words: the username and what is derived from it.
  for (const word of context.words ?? []) {
    const w = word?.normalize('NFKC').toLowerCase().replace(/[\s._-]+/gu, '');
    if (w && w.length >= 3 && compact.includes(w)) return 'it contains your username, email or name';
  }
  return undefined;
}

/**
 * The form a typed username is looked up in at login: the PRECIS UsernameCaseMapped
 * mapping (RFC 8265 §3.3), the same `user add` stores. Never throws.
 */
export function normaliseUsername(raw: string): string {
  return prepareUsernameForLookup(raw);
}

/** A new username, enforced under PRECIS UsernameCaseMapped; throws PasswordError with the reason. */
export function validateUsername(raw: string): string {
  try {
    return enforceUsername(raw);
  } catch (err) {
    if (err instanceof UsernameError) throw new PasswordError(err.message);
    throw err;
  }
}

/** We write p=1; the argon2 package's hashes may have had more lanes. */
const ARGON2_MAX_PARALLELISM = 16;

/** Algorithm.Argon2id: a declared const enum, which isolated modules cannot read by name. */
const ARGON2ID = 2 as Algorithm;
/** Version.V0x13 (19, RFC 9106), the library's default and the only one we write. */
const V0X13 = 1;

/** A stored PHC string's parameters, or undefined when it is none. */
function storedParams(hash: string): ParsedHashOptions | undefined {
  try {
    return parseOptions(hash);
  } catch {
    return undefined;
  }
}

export class PasswordHasher {
  readonly #opts: Options & { algorithm: Algorithm; memoryCost: number; timeCost: number; parallelism: number };
  readonly #dummy: Promise<string>;
  readonly #minLength: number;

  constructor(params: HashParams, minLength: number) {
    this.#opts = { algorithm: ARGON2ID, memoryCost: params.memoryKib, timeCost: params.iterations, parallelism: 1 };
    this.#minLength = minLength;
    // Verified against when there is no account, so an unknown username costs the same time
    // as a wrong password (no enumeration by timing).
    this.#dummy = argon2Hash('dummy-password-never-matches', this.#opts);
  }

  /**
   * Checks a new password against the policy; throws PasswordError with the reason. Every
   * way of setting a password (`user add`, `user passwd`, any self-service change) goes
   * through hash() and so through here.
   */
  check(password: string, context: PasswordContext = {}): string {
    const p = password.normalize('NFKC');
    if ([...p].length < this.#minLength) throw new PasswordError(`password must be at least ${this.#minLength} characters`);
    if (p.length > PASSWORD_MAX_LENGTH) throw new PasswordError(`password must be at most ${PASSWORD_MAX_LENGTH} characters`);
    const weak = weakPasswordReason(p, context);
    // NIST 800-63B-4 §3.1.1.2: the reason is told, so the user can choose better.
    if (weak) throw new PasswordError(`password is too easy to guess: ${weak}; choose another`);
    return p;
  }

  #meetsPolicy(password: string): boolean {
    try {
      this.check(password);
      return true;
    } catch {
      return false;
    }
  }

  async hash(password: string, context: PasswordContext = {}): Promise<string> {
    return argon2Hash(this.check(password, context), this.#opts);
  }

  async verify(hash: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
    // A stored value that is no argon2 hash we could have written (an account without a
    // password, NO_PASSWORD; a damaged or planted record) spends one verification's time and
    // fails: answered at once, it would tell that the account exists (an unknown username
    // costs a verification), and verified as stored it would run with the costs it carries
    // (m=4 TiB reserves memory until the process is killed; @node-rs/argon2 does not refuse).
    const stored = storedParams(hash);
    if (!stored || stored.memoryCost > ARGON2_MAX_MEMORY_KIB || stored.timeCost > ARGON2_MAX_ITERATIONS || stored.parallelism > ARGON2_MAX_PARALLELISM) {
      return { ok: await this.burn(password), needsRehash: false };
    }
    try {
      const ok = await argon2Verify(hash, password.normalize('NFKC'));
      // A password set before the current policy (shorter, or since found in the blocklist)
      // keeps its old hash: re-hashing goes through hash(), which would refuse it mid-login.
      return { ok, needsRehash: ok && this.#needsRehash(stored) && this.#meetsPolicy(password) };
    } catch {
      return { ok: false, needsRehash: false };
    }
  }

  /** Stored with other parameters than the current ones (either way: settings may be lowered on purpose). */
  #needsRehash(p: ParsedHashOptions): boolean {
    return p.algorithm !== ARGON2ID || p.version !== V0X13 || p.memoryCost !== this.#opts.memoryCost
      || p.timeCost !== this.#opts.timeCost || p.parallelism !== this.#opts.parallelism;
  }

  /** Spends the time of one verification and fails. */
  async burn(password: string): Promise<false> {
    await argon2Verify(await this.#dummy, password.normalize('NFKC')).catch(() => false);
    return false;
  }
}

/**
 * A directory password, checked by an LDAP simple bind (RFC 4513 §5.1.3) as the user's
 * entry. The same factor as a local password (something you know), so the same RFC 8176
 * `pwd`; the directory checks it, the provider never stores it.
 */
import type { AuthMethod } from './method.ts';

export const ldapMethod: AuthMethod = { id: 'ldap', amr: ['pwd'], factor: 'knowledge' };

/** The name a user types to sign in: a linked account's stored username is an internal key. */
export function signInName(account: { username: string; directory?: unknown; claims?: { preferred_username?: string | undefined } | undefined }): string {
  return account.directory ? (account.claims?.preferred_username ?? '') : account.username;
}

/**
 * directories.yml for a test slapd (test/helpers/slapd.ts): written as an administrator
 * would, so the tests go through the real configuration loader, not a hand-made object.
 */
import { stringify } from 'yaml';
import type { Slapd } from './slapd.ts';

export interface DirectoryYamlOptions {
  name?: string;
  /** Replaces keys of the directory's entry (snake_case, as in the file). */
  overrides?: Record<string, unknown>;
  /** Further directories, as file entries. */
  more?: Record<string, unknown>[];
}

export function directoryEntry(slapd: Slapd, passwordFile: string, o: DirectoryYamlOptions = {}): Record<string, unknown> {
  return {
    name: o.name ?? 'corp',
    preset: 'openldap',
    urls: [slapd.ldapUrl],
    ca_file: slapd.caFile,
    bind_dn: slapd.serviceDn,
    bind_password_file: passwordFile,
    base_dn: slapd.peopleDn,
    // The memberOf overlay lists direct groups only; the group search follows nesting.
    groups: { source: 'search', base: slapd.groupsDn, nested: true },
    lockout: { threshold: slapd.policy.maxFailure, window_seconds: slapd.policy.failureCountInterval },
    ...o.overrides,
  };
}

export function directoryYaml(slapd: Slapd, passwordFile: string, o: DirectoryYamlOptions = {}): string {
  return stringify({ directories: [directoryEntry(slapd, passwordFile, o), ...(o.more ?? [])] });
}

/**
 * Where the directory configuration comes from: `DIRECTORY_CONFIG`, else `directories.yml`
 * beside the policy files when there is one, plus the `LDAP_*` variables for the simple
 * case (adapters/directory/config.ts validates both, with file/line/key errors).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadDirectoryConfig } from '../adapters/directory/config.ts';
import type { DirectoryConfig } from '../adapters/directory/types.ts';
import type { Settings } from './settings.ts';

/** The configuration file in force, or undefined when there is none. */
export function directoryConfigFile(settings: Pick<Settings, 'directoryConfig' | 'policyDir'>): string | undefined {
  if (settings.directoryConfig !== undefined) return settings.directoryConfig;
  const beside = path.join(settings.policyDir, 'directories.yml');
  return fs.existsSync(beside) ? beside : undefined;
}

/** Throws DirectoryConfigError listing every problem (the start stops, as for a policy). */
export function loadDirectories(settings: Pick<Settings, 'directoryConfig' | 'policyDir'>, env: NodeJS.ProcessEnv = process.env): DirectoryConfig[] {
  // A file named by DIRECTORY_CONFIG must exist; the default one beside the policy is optional.
  return loadDirectoryConfig({ file: directoryConfigFile(settings), env, required: settings.directoryConfig !== undefined });
}

/**
 * `idp directory test [<name>] [--user <username>] [--json]`: lets an administrator check a
 * directory's configuration before going live. For each directory (or the one named): connect
 * (failover order, TLS as configured), bind as the service account, and, given a username,
 * run the sign-in's user search and print the mapped claims, groups and account state. No
 * user password is asked for or sent; the service password is never printed.
 */
import { directoryAccountId, Directories, DirectoryUnavailableError, type DirectoryConfig } from '../adapters/directory/index.ts';
import { CliError } from './cli-risk.ts';

export interface DirectoryTestOptions {
  name?: string | undefined;
  user?: string | undefined;
  json?: boolean | undefined;
}

interface Report {
  directory: string;
  preset: string;
  ok: boolean;
  connected?: { url: string; tls: string } | undefined;
  error?: string | undefined;
  user?: {
    matches: number;
    dn?: string | undefined;
    id?: string | undefined;
    sub?: string | undefined;
    state?: string | undefined;
    directory_failures?: number | undefined;
    claims?: Record<string, unknown> | undefined;
  } | undefined;
}

/** Returns whether every tested directory passed (the exit status). */
export async function directoryTestCommand(configs: DirectoryConfig[], o: DirectoryTestOptions, out: NodeJS.WritableStream = process.stdout): Promise<boolean> {
  if (configs.length === 0) throw new CliError('no directory is configured (DIRECTORY_CONFIG, directories.yml in POLICY_DIR, or LDAP_URL)');
  const chosen = o.name === undefined ? configs : configs.filter((c) => c.name === o.name);
  if (chosen.length === 0) throw new CliError(`no directory named "${o.name}" (configured: ${configs.map((c) => c.name).join(', ')})`);
  const directories = new Directories(chosen);
  const reports: Report[] = [];
  try {
    for (const c of chosen) reports.push(await testOne(directories, c, o.user));
  } finally {
    await directories.close();
  }
  out.write(o.json ? `${JSON.stringify(reports, null, 2)}\n` : reports.map(render).join('\n'));
  return reports.every((r) => r.ok);
}

async function testOne(directories: Directories, c: DirectoryConfig, username: string | undefined): Promise<Report> {
  const report: Report = { directory: c.name, preset: c.preset, ok: false };
  try {
    const result = await directories.test(c.name, username);
    report.connected = { url: result.bind.url, tls: result.bind.tls };
    if (username !== undefined) {
      const u = 'user' in result ? result.user : undefined;
      report.user = { matches: result.matches ?? 0 };
      if (u) {
        report.user = {
          matches: 1, dn: u.dn, id: u.id, sub: directoryAccountId(c.name, u.id), state: u.problem ?? 'active',
          directory_failures: u.directoryFailures, claims: { ...u.claims },
        };
      }
    }
    // A username that finds nothing (or two entries) is a failed test: the filter is wrong for it.
    report.ok = username === undefined || report.user?.matches === 1;
  } catch (err) {
    if (!(err instanceof DirectoryUnavailableError)) throw err;
    report.error = err.message;
  }
  return report;
}

function render(r: Report): string {
  const lines = [`directory ${r.directory} (${r.preset}): ${r.ok ? 'OK' : 'FAILED'}`];
  if (r.connected) lines.push(`  connected: ${r.connected.url} (${r.connected.tls === 'none' ? 'no TLS' : r.connected.tls}), service bind OK`);
  if (r.error) lines.push(`  error: ${r.error}`);
  if (r.user) {
    if (r.user.matches !== 1) lines.push(`  user search: ${r.user.matches === 0 ? 'no entry matches' : `${r.user.matches} entries match (ambiguous: sign-in is refused)`}`);
    else {
      lines.push(`  user: ${r.user.dn}`, `  id: ${r.user.id} (sub ${r.user.sub})`, `  state: ${r.user.state}${r.user.directory_failures ? ` (${r.user.directory_failures} recent failed binds counted by the directory)` : ''}`);
      for (const [k, v] of Object.entries(r.user.claims ?? {})) if (v !== undefined) lines.push(`  ${k}: ${Array.isArray(v) ? v.join(', ') || '(none)' : String(v)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

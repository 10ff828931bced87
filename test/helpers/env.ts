/** Test environments: settings in a temp dir, and the stores to run against. */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { loadSettings, type Settings } from '../../idp/settings.ts';

export type StoreKind = 'embedded' | 'mongodb';

/** Under CI=true nothing may be skipped for want of a service or a browser. */
export const IN_CI = process.env.CI === 'true';

/**
 * The embedded store always; MongoDB whenever MONGODB_URI is set (.ci/run sets it).
 * `skip`: why the store cannot be tested here, or false. Declare suites with describeOrSkip.
 * TEST_STORES (a comma-separated list, e.g. `mongodb`) keeps only those: `npm run test:mongo`
 * runs the MongoDB suites again on a second server without repeating the embedded ones.
 */
export const STORES: { kind: StoreKind; skip: string | false }[] = selectStores([
  { kind: 'embedded', skip: false },
  { kind: 'mongodb', skip: process.env.MONGODB_URI ? false : 'MONGODB_URI is not set' },
], process.env.TEST_STORES);

export function selectStores<T extends { kind: StoreKind }>(all: T[], list: string | undefined): T[] {
  if (!list) return all;
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !all.some((s) => s.kind === n));
  // A misspelt name must not quietly run nothing.
  if (unknown.length > 0 || names.length === 0) throw new Error(`TEST_STORES: unknown store "${unknown.join(', ')}" (${all.map((s) => s.kind).join(', ')})`);
  return all.filter((s) => names.includes(s.kind));
}

/**
 * describe() for a suite that needs what the machine may lack; `missing` says what, or is false.
 *
 * node:test reports a suite declared with `{ skip }` as a suite and counts no skipped test
 * (the summary said "skipped 0" while the MongoDB suites never ran). So a suite that cannot
 * run becomes one skipped test named after it, counted and shown with its reason; under
 * CI=true it is a failing test instead, so a CI run cannot pass without it.
 */
export function describeOrSkip(missing: string | false, title: string, fn: () => void): void {
  if (!missing) {
    describe(title, fn);
  } else if (IN_CI) {
    describe(title, () => {
      it('has what it needs', () => {
        throw new Error(`CI=true and ${missing}: this suite may not be skipped in CI`);
      });
    });
  } else {
    describe(title, () => {
      it(`skipped: ${missing}`, { skip: missing }, () => {});
    });
  }
}

const madeDirs: string[] = [];

/**
 * A fresh directory under the system temp dir, removed when the test process exits (every
 * test file runs in a process of its own), so a full run leaves nothing behind in /tmp.
 * KEEP_TEST_DIRS=1 keeps them to look at after a failure.
 */
export function tempDir(prefix = 'idp-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (madeDirs.length === 0 && process.env.KEEP_TEST_DIRS !== '1') {
    process.once('exit', () => {
      for (const d of madeDirs) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          // Best effort: a directory a child process still holds open is left behind.
        }
      }
    });
  }
  madeDirs.push(dir);
  return dir;
}

/** A fresh database name on the configured MongoDB server. */
export function mongoUriForTest(): string {
  const base = process.env.MONGODB_URI;
  if (!base) throw new Error('MONGODB_URI is not set');
  const u = new URL(base);
  u.pathname = `/idp_test_${crypto.randomBytes(6).toString('hex')}`;
  return u.toString();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * PORT and ISSUER for a provider at http://localhost:PORT (for startTestServer's overrides):
 * browsers use passkeys only with a domain name for the RP ID, never an IP address, and
 * localhost is a secure context over plain http. The server still listens on 127.0.0.1,
 * which is where Chromium and Node resolve localhost to.
 */
export async function localhostIssuer(): Promise<Record<string, string>> {
  const port = await freePort();
  return { PORT: String(port), ISSUER: `http://localhost:${port}` };
}

/** Environment variables for a test instance (also used to spawn `idp` / `npm start`). */
export function testEnv(kind: StoreKind, dir: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    DATA_DIR: path.join(dir, 'data'),
    KEYS_FILE: path.join(dir, 'keys.json'),
    LOG_LEVEL: 'silent',
    // Test relying parties listen on loopback.
    OUTBOUND_PRIVATE_HOSTS: '127.0.0.1',
    ...(kind === 'mongodb' ? { MONGODB_URI: mongoUriForTest() } : {}),
    ...extra,
  };
}

export function testSettings(env: Record<string, string>): Settings {
  // Start from an empty environment so the developer's own variables cannot leak in.
  return loadSettings(env);
}

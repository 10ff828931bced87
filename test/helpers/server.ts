/** Starts a real provider in-process on a free loopback port, with helpers to seed it. */
import crypto from 'node:crypto';
import { startServer, type RunningServer } from '../../idp/server.ts';
import { loadOrCreateKeys } from '../../adapters/keys.ts';
import { SecretBox } from '../../adapters/crypto.ts';
import { clientSecretContext } from '../../adapters/oidc-adapter.ts';
import { PasswordHasher } from '../../interactions/methods/password.ts';
import { createLogger } from '../../idp/log.ts';
import { newTotpFactor } from '../../interactions/methods/totp.ts';
import type { Settings } from '../../idp/settings.ts';
import { freePort, tempDir, testEnv, testSettings, type StoreKind } from './env.ts';
import { passwordOnlyPolicy } from './policy.ts';

export interface LogEntry {
  msg: string;
  level: string;
  [field: string]: unknown;
}

export interface TestServer extends RunningServer {
  /** Everything the server logged, parsed (the real logger, writing to memory). */
  logs: LogEntry[];
  /** The same lines as written (each with its newline), for searching the raw text. */
  rawLogs: string[];
  /** Gives the account an authenticator app; returns its secret (test/helpers/totp.ts makes codes). */
  addTotp(accountId: string): Promise<string>;
  settings: Settings;
  env: Record<string, string>;
  issuer: string;
  addUser(username: string, password: string, extra?: { email?: string; name?: string }): Promise<string>;
  addClient(clientId: string, metadata: Record<string, unknown>, secret?: string): Promise<void>;
}

/**
 * Starts a provider for a test. Unless the test names a POLICY_DIR, it runs on the shipped
 * policy with assurance relaxed to a password below `critical`: protocol, page and CLI
 * tests log the same user in many times from one address and must not depend on how the
 * risk engine judges that. Risk behaviour is tested with the shipped policy as it is
 * (risk-login, simulate, policy tests).
 */
export async function startTestServer(kind: StoreKind, extraEnv: Record<string, string> = {}): Promise<TestServer> {
  const dir = tempDir();
  const port = await freePort();
  const env = testEnv(kind, dir, port, { POLICY_DIR: passwordOnlyPolicy(), ...extraEnv });
  // ISSUER may name the port it does not know yet: `http://localhost:$PORT` (passkeys need a domain).
  env.ISSUER = env.ISSUER!.replace('$PORT', String(port));
  const settings = testSettings(env);
  const logs: LogEntry[] = [];
  const rawLogs: string[] = [];
  const running = await startServer(settings, createLogger('debug', (line) => {
    rawLogs.push(line);
    logs.push(JSON.parse(line) as LogEntry);
    if (process.env.TEST_LOG === '1') process.stderr.write(line);
  }));
  const hasher = new PasswordHasher({ memoryKib: settings.argon2MemoryKib, iterations: settings.argon2Iterations }, settings.passwordMinLength);
  const box = new SecretBox(loadOrCreateKeys(settings.keysFile).dataKey);
  return {
    ...running,
    logs,
    rawLogs,
    close: () => running.close(),
    settings,
    env,
    issuer: settings.issuer,
    async addUser(username, password, extra = {}) {
      const a = await running.storage.accounts.create({
        id: crypto.randomUUID(), username, email: extra.email, emailVerified: Boolean(extra.email), name: extra.name,
        passwordHash: await hasher.hash(password),
      });
      return a.id;
    },
    async addTotp(accountId) {
      const { factor, secret } = newTotpFactor(box, { id: crypto.randomUUID(), accountId, label: 'Phone', enrolledVia: 'admin' });
      await running.storage.factors.add(factor);
      return secret;
    },
    async addClient(clientId, metadata, secret) {
      await running.storage.clients.create({
        clientId,
        secretCiphertext: secret ? box.seal(secret, clientSecretContext(clientId)) : undefined,
        metadata,
      });
    },
  };
}

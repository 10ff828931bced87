/**
 * Runs the provider until SIGINT/SIGTERM (loaded by main.ts after its Node.js check).
 * Start-up failures a user can fix are one line on stderr, never a stack trace:
 * configuration (exit 78, EX_CONFIG) and an address that cannot be listened on (exit 1).
 */
import { ConfigError, loadSettings } from './settings.ts';
import { KeyFileError } from '../adapters/keys.ts';
import { PolicyLoadError } from '../policies/policy.ts';
import { DirectoryConfigError } from '../adapters/directory/config.ts';
import { createLogger } from './log.ts';
import { startServer } from './server.ts';
import { collectWhenIdle } from './idle-gc.ts';

/** One line for an error of `server.listen`, or undefined when it is not one. */
function listenProblem(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall !== 'listen') return undefined;
  const where = e.address && e.address !== '::' && e.address !== '0.0.0.0' ? `${e.address} port ${e.port}` : `port ${e.port}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: it is already in use (is another idp or server running?); stop that process or set PORT to a free port`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need privileges); set PORT to 1024 or above, e.g. behind a reverse proxy`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${e.address} is not an address of this machine; set HOST to one of its addresses, or :: for all`;
    default:
      return `cannot listen on ${where}: ${e.code ?? e.message}`;
  }
}

try {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  const running = await startServer(settings, log);
  // Here, not in startServer: a collection pauses the whole process, and tests run many
  // servers in one process (idle-gc.ts).
  collectWhenIdle(running.server);
  const stop = async (signal: string) => {
    log.info('stopping', { signal });
    await running.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
} catch (err) {
  if (err instanceof ConfigError || err instanceof KeyFileError || err instanceof PolicyLoadError || err instanceof DirectoryConfigError) {
    process.stderr.write(`configuration error: ${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  const listen = listenProblem(err);
  if (listen) {
    process.stderr.write(`${listen}\n`);
    // Exit now: the store and the policy watcher opened before the listen keep the loop alive.
    process.exit(1);
  }
  throw err;
}

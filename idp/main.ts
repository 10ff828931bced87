#!/usr/bin/env node
/** `npm start`: runs the provider until SIGINT/SIGTERM. */
import { ConfigError, loadSettings } from './settings.ts';
import { KeyFileError } from '../adapters/keys.ts';
import { PolicyLoadError } from '../policies/policy.ts';
import { createLogger } from './log.ts';
import { startServer } from './server.ts';

try {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  const running = await startServer(settings, log);
  const stop = async (signal: string) => {
    log.info('stopping', { signal });
    await running.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
} catch (err) {
  if (err instanceof ConfigError || err instanceof KeyFileError || err instanceof PolicyLoadError) {
    process.stderr.write(`configuration error: ${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}

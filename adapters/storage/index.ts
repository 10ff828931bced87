/**
 * Opens the configured store: MongoDB when a URI is given, else the embedded store.
 *
 * The MongoDB store is imported only when it is used: mongoose, the driver and bson are
 * about 40 MiB of resident memory in a process (measured, issue 10), which an embedded
 * deployment has no use for.
 */
import { openEmbeddedStorage } from './embedded.ts';
import type { Storage } from './port.ts';

export type { Storage } from './port.ts';
export { DuplicateError } from './port.ts';

export async function openStorage(opts: { mongodbUri?: string | undefined; dataDir: string; warn?: (msg: string) => void }): Promise<Storage> {
  if (opts.mongodbUri) {
    const { openMongoStorage } = await import('./mongo.ts');
    return openMongoStorage(opts.mongodbUri, { ...(opts.warn ? { warn: opts.warn } : {}) });
  }
  return openEmbeddedStorage(opts.dataDir);
}

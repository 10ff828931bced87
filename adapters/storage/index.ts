/** Opens the configured store: MongoDB when a URI is given, else the embedded store. */
import { openEmbeddedStorage } from './embedded.ts';
import { openMongoStorage } from './mongo.ts';
import type { Storage } from './port.ts';

export type { Storage } from './port.ts';
export { DuplicateError } from './port.ts';

export async function openStorage(opts: { mongodbUri?: string | undefined; dataDir: string; warn?: (msg: string) => void }): Promise<Storage> {
  if (opts.mongodbUri) return openMongoStorage(opts.mongodbUri, { ...(opts.warn ? { warn: opts.warn } : {}) });
  return openEmbeddedStorage(opts.dataDir);
}

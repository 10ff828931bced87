/**
 * Can the configured store be opened? For `idp config check`: answers without creating or
 * changing anything (no directory, file, database, collection or index is made), which is
 * why it does not simply call openStorage.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Connection } from 'mongoose';

export interface StoreProbe {
  kind: 'embedded' | 'mongodb';
  /** Where the data is (a directory, or the MongoDB URI with any password masked). */
  where: string;
  /** What a start would find there, e.g. "will be created at first start". */
  state: string;
  /** One line each; empty when the store would open. */
  problems: string[];
}

/** The embedded store's database file inside DATA_DIR (embedded.ts opens the same name). */
const EMBEDDED_FILE = 'idp.sqlite';
// https://www.sqlite.org/fileformat.html §1.3: every database file starts with this header.
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** `mongodb://user:***@host/db`: a connection string may carry a password. */
export function maskMongoUri(uri: string): string {
  return uri.replace(/^([a-z+]+:\/\/)([^@/]*)@/i, (_m, scheme: string, cred: string) => `${scheme}${cred.split(':')[0]}:***@`);
}

/** The nearest existing ancestor of a path that does not exist yet. */
export function existingAncestor(p: string): string {
  let dir = path.dirname(p);
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** Whether this user may create entries in directory `p`. */
export const canWrite = (p: string) => {
  try {
    fs.accessSync(p, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

function probeEmbedded(dataDir: string): StoreProbe {
  const out: StoreProbe = { kind: 'embedded', where: dataDir, state: '', problems: [] };
  const stat = fs.statSync(dataDir, { throwIfNoEntry: false });
  if (!stat) {
    const parent = existingAncestor(dataDir);
    if (!fs.statSync(parent).isDirectory() || !canWrite(parent)) out.problems.push(`DATA_DIR: cannot create ${dataDir}: ${parent} is not a writable directory`);
    out.state = 'will be created at first start';
    return out;
  }
  if (!stat.isDirectory()) {
    out.problems.push(`DATA_DIR: ${dataDir} is not a directory`);
    return out;
  }
  if (!canWrite(dataDir)) out.problems.push(`DATA_DIR: ${dataDir} is not writable by this user`);
  const file = path.join(dataDir, EMBEDDED_FILE);
  const fstat = fs.statSync(file, { throwIfNoEntry: false });
  if (!fstat) {
    out.state = 'empty; the database will be created at first start';
    return out;
  }
  try {
    const fd = fs.openSync(file, 'r+');
    try {
      const head = Buffer.alloc(SQLITE_HEADER.length);
      const n = fs.readSync(fd, head, 0, head.length, 0);
      // A zero-length file is what the store creates before SQLite initialises it.
      if (n > 0 && !head.equals(SQLITE_HEADER)) out.problems.push(`DATA_DIR: ${file} is not an SQLite database`);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    out.problems.push(`DATA_DIR: cannot open ${file} for reading and writing (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  out.state = `database ${EMBEDDED_FILE} (${Math.ceil(fstat.size / 1024)} KiB)`;
  return out;
}

async function probeMongo(uri: string, timeoutMs: number): Promise<StoreProbe> {
  const masked = maskMongoUri(uri);
  const out: StoreProbe = { kind: 'mongodb', where: masked, state: '', problems: [] };
  // Nothing is written: no models are registered and a database only comes into being on
  // its first write, so connecting and pinging leaves the server as it was.
  let conn: Connection | undefined;
  try {
    // Imported here: the embedded store's checks need none of mongoose (storage/index.ts).
    const { default: mongoose } = await import('mongoose');
    conn = mongoose.createConnection(uri, { serverSelectionTimeoutMS: timeoutMs, autoIndex: false, autoCreate: false });
    await conn.asPromise();
    await conn.db!.command({ ping: 1 });
    out.state = `reachable, database "${conn.db!.databaseName}"`;
  } catch (err) {
    const password = /^[a-z+]+:\/\/[^:@/]*:([^@/]*)@/i.exec(uri)?.[1];
    let message = (err as Error).message.split('\n')[0] ?? '';
    if (password) message = message.split(password).join('***');
    out.problems.push(`MONGODB_URI: cannot reach MongoDB at ${masked} within ${timeoutMs / 1000} s: ${message}`);
  } finally {
    await conn?.close().catch(() => undefined);
  }
  return out;
}

export async function probeStorage(opts: { mongodbUri?: string | undefined; dataDir: string; timeoutMs?: number }): Promise<StoreProbe> {
  if (opts.mongodbUri) return probeMongo(opts.mongodbUri, opts.timeoutMs ?? 5_000);
  return probeEmbedded(opts.dataDir);
}

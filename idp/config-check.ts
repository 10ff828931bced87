/**
 * `idp config check`: validates what the server validates at start, in the same way, and
 * creates nothing (no data directory, database, key file, collection).
 *
 * What a start checks, in its order (server.ts): every setting, the policy directory, the
 * geolocation databases, the store, the key file. Every problem is reported, one line
 * each, not only the first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadSettings, SETTINGS, type Settings } from './settings.ts';
import { KeyFileError, readKeyFile } from '../adapters/keys.ts';
import { checkMmdb, openGeo } from '../adapters/geoip.ts';
import { planAsnMmdb } from '../adapters/geo/asn-mmdb.ts';
import { canWrite, existingAncestor, probeStorage } from '../adapters/storage/probe.ts';
import { describeMonitor } from '../policies/monitor.ts';
import { formatPolicyError, loadPolicy, PolicyLoadError } from '../policies/policy.ts';
import { checkDirectoryConfig, loadDirectoryConfig } from '../adapters/directory/config.ts';
import { directoryConfigFile } from './directories.ts';

export interface ConfigReport {
  /** What would be used, one line each ("label: value"), when there are no problems. */
  facts: string[];
  /** One line each; the check passed when empty. */
  problems: string[];
}

type Env = Record<string, string | undefined>;

/** The variables that name files and services: plain strings, so they always parse. */
const LOCATIONS = ['DATA_DIR', 'MONGODB_URI', 'KEYS_FILE', 'POLICY_DIR', 'GEOIP_CITY_DB', 'GEOIP_ASN_DB', 'GEOIP_CACHE_DIR', 'DIRECTORY_CONFIG'];

function checkSettings(env: Env, problems: string[]): Settings | undefined {
  const clean: Env = { ...env };
  for (const s of Object.values(SETTINGS)) {
    const raw = env[s.env];
    if (raw === undefined || raw === '') continue;
    try {
      s.parse(raw, s.env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err.message);
      delete clean[s.env];
    }
  }
  try {
    // The checks between settings (e.g. SESSION_MAX_AGE ≥ SESSION_IDLE_TTL).
    const settings = loadSettings(clean);
    return problems.length ? undefined : settings;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(err.message);
    return undefined;
  }
}

function checkPolicy(dir: string, problems: string[]): string | undefined {
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) return void problems.push(`POLICY_DIR: ${dir} does not exist`);
  if (!stat.isDirectory()) return void problems.push(`POLICY_DIR: ${dir} is not a directory`);
  try {
    const p = loadPolicy(dir);
    const monitor = describeMonitor(p.risk);
    return `${dir} (version ${p.version}, model ${p.forest.version})${monitor ? `; ${monitor}` : ''}`;
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const e of err.errors) problems.push(`POLICY_DIR: ${formatPolicyError({ ...e, file: path.join(dir, e.file) })}`);
    return undefined;
  }
}

async function checkGeo(settings: Settings, problems: string[]): Promise<string | undefined> {
  let ok = true;
  for (const [name, file] of [['GEOIP_CITY_DB', settings.geoipCityDb], ['GEOIP_ASN_DB', settings.geoipAsnDb]] as const) {
    if (file === undefined) continue;
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch (err) {
      problems.push(`${name}: cannot read ${path.resolve(file)} (${(err as NodeJS.ErrnoException).code})`);
      ok = false;
    }
  }
  if (!ok) return undefined;
  try {
    // The converted ASN file is made at first start; a check only says where (and whether it can be).
    const plan = settings.geoipAsnDb ? undefined : planAsnMmdb({ cacheDir: settings.geoipCacheDir, dataDir: settings.dataDir });
    if (plan && !plan.existing) {
      if (!plan.buildAt) {
        problems.push(`GEOIP_CACHE_DIR: none of ${plan.dirs.join(', ')} is writable, so a start cannot convert the ASN ranges; run \`idp geo build\` where one is, or set GEOIP_CACHE_DIR`);
        return undefined;
      }
      if (settings.geoipCityDb) checkMmdb(settings.geoipCityDb);
      return `city: ${settings.geoipCityDb ?? 'DB-IP City Lite'}; ASN: @ip-location-db/asn, converted at first start into ${plan.buildAt} (or now: idp geo build)`;
    }
    const geo = await openGeo({ cityDb: settings.geoipCityDb, asnDb: settings.geoipAsnDb, cacheDir: settings.geoipCacheDir, dataDir: settings.dataDir });
    return `city: ${geo.sources.city}; ASN: ${geo.sources.asn}${plan?.existing ? ` (${plan.existing})` : ''}`;
  } catch (err) {
    problems.push(`GEOIP_CITY_DB/GEOIP_ASN_DB: cannot open the geolocation databases: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

/**
 * The directory configuration as a start reads it (file and LDAP_* variables), every problem
 * with its file, line and key. Connecting is `idp directory test`'s job: a check creates
 * nothing and contacts no directory.
 */
function checkDirectories(settings: Settings, env: Env, problems: string[]): string | undefined {
  const file = directoryConfigFile(settings);
  const found = checkDirectoryConfig({ file, env, required: settings.directoryConfig !== undefined });
  for (const e of found) problems.push(`${file && e.file !== 'environment' ? 'DIRECTORY_CONFIG' : 'LDAP'}: ${formatPolicyError(e)}`);
  if (found.length) return undefined;
  const configs = loadDirectoryConfig({ file, env, required: settings.directoryConfig !== undefined });
  return configs.length ? configs.map((c) => `${c.name} (${c.preset}, ${c.urls.join(' ')}; from ${c.source})`).join('; ') : undefined;
}

/** Reads the key file as a start would, or says whether it could be created. */
function checkKeys(file: string, problems: string[]): string | undefined {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat) {
    const dir = existingAncestor(file);
    if (!canWrite(dir)) return void problems.push(`KEYS_FILE: cannot create ${file}: ${dir} is not writable by this user`);
    return `${file} (will be created at first start, mode 0600)`;
  }
  if (!stat.isFile()) return void problems.push(`KEYS_FILE: ${file} is not a file`);
  try {
    // Reads and validates it (mode, JSON, contents) exactly as the server does.
    const keys = readKeyFile(file);
    return `${file} (${keys.signing.filter((k) => k.state === 'current').length} current signing keys)`;
  } catch (err) {
    if (err instanceof KeyFileError) return void problems.push(`KEYS_FILE: ${err.message}`);
    return void problems.push(`KEYS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export async function checkConfiguration(env: Env = process.env): Promise<ConfigReport> {
  const problems: string[] = [];
  const facts: string[] = [];
  const settings = checkSettings(env, problems);
  // The rest is checked even when some setting is invalid: these variables always parse.
  const located = loadSettings(Object.fromEntries(LOCATIONS.map((k) => [k, env[k]])));

  const policy = checkPolicy(located.policyDir, problems);
  const geo = await checkGeo(located, problems);
  const store = await probeStorage({ mongodbUri: located.mongodbUri, dataDir: located.dataDir });
  problems.push(...store.problems);
  const keys = checkKeys(located.keysFile, problems);
  const directories = checkDirectories(located, env, problems);

  if (settings) {
    facts.push(`issuer: ${settings.issuer}`, `listen: ${settings.host} port ${settings.port}`);
  }
  facts.push(`store: ${store.kind} at ${store.where}${store.state ? ` (${store.state})` : ''}`);
  if (keys) facts.push(`keys: ${keys}`);
  if (policy) facts.push(`policy: ${policy}`);
  if (geo) facts.push(`geolocation: ${geo}`);
  if (directories) facts.push(`directories: ${directories}`);
  return { facts, problems };
}

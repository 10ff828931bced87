/** User-Agent → browser, OS and device class (ua-parser-js, MIT-licensed 1.x), memoised. */
import UAParser from 'ua-parser-js';
import type { Agent } from './types.ts';

const cache = new Map<string, Agent>();
const CACHE_MAX = 50_000;

export function parseAgent(ua: string | undefined): Agent {
  const key = (ua ?? '').slice(0, 512);
  const hit = cache.get(key);
  if (hit) return hit;
  const r = new UAParser(key).getResult();
  const type = r.device.type;
  const agent: Agent = {
    browser: r.browser.name || undefined,
    browserMajor: r.browser.major || undefined,
    os: r.os.name || undefined,
    engine: r.engine.name || undefined,
    // ua-parser-js reports no device type for desktops.
    device: type === 'mobile' ? 'mobile' : type === 'tablet' ? 'tablet' : type ? 'other' : 'desktop',
  };
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(key, agent);
  return agent;
}

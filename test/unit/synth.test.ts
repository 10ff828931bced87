import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng, sampleWorld, synthesize, type LoginEvent } from '../../policies/synth.ts';
import type { Place } from '../../policies/types.ts';

/** A small made-up world: the first octet picks a city, the second an ISP. */
const CITIES = [
  { country: 'GB', city: 'London', lat: 51.5, lon: -0.1 }, { country: 'FR', city: 'Lyon', lat: 45.8, lon: 4.8 },
  { country: 'AU', city: 'Sydney', lat: -33.9, lon: 151.2 }, { country: 'US', city: 'Denver', lat: 39.7, lon: -105 },
];
const ORGS = ['Home Broadband', 'Fibre Co', 'Mobile Telecom', 'Cloud Hosting'];
function placeOf(ip: string): Place {
  const [a = 0, b = 0] = ip.split('.').map(Number);
  const c = CITIES[a % CITIES.length]!;
  return { scope: 'public', country: c.country, region: 'R', city: c.city, lat: c.lat, lon: c.lon, asn: 1000 + (b % 4) + 10 * (a % 4), asOrg: ORGS[b % 4] };
}

function run(seed: number): LoginEvent[] {
  const rng = new Rng(seed);
  const world = sampleWorld(rng, placeOf, 20_000);
  return [...synthesize({ seed, users: 80, days: 20, start: '2026-01-05T00:00:00Z', victimRate: 0.5, stuffingPerDay: 1 }, world, rng)];
}

describe('synthetic login history', () => {
  it('is reproducible from its seed, and differs with another', () => {
    const a = run(3);
    assert.deepEqual(run(3), a);
    assert.notDeepEqual(run(4), a);
  });

  it('is in time order and labels every event', () => {
    const events = run(5);
    assert.ok(events.length > 500);
    for (let i = 1; i < events.length; i += 1) assert.ok(events[i]!.ts >= events[i - 1]!.ts, `event ${i} out of order`);
    assert.ok(events.every((e) => e.label === 'legit' || (e.label === 'attack' && e.attackType)));
    const types = new Set(events.filter((e) => e.label === 'attack').map((e) => e.attackType));
    for (const t of ['naive', 'vpn_hosting', 'targeted', 'credential_stuffing', 'impossible_travel']) assert.ok(types.has(t as never), t);
    // Typos (a failure just before a success) and stuffing failures are both there.
    assert.ok(events.some((e) => e.label === 'legit' && !e.success));
    assert.ok(events.filter((e) => e.attackType === 'credential_stuffing' && !e.success).length > 20);
    assert.ok(events.every((e) => e.success || e.mfa === undefined), 'mfa only where the password was right');
  });
});

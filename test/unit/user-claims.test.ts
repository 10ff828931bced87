/**
 * The standard claims as an administrator sets them (idp/admin/claims.ts) and as relying
 * parties get them (idp/tokens.ts accountClaims): OIDC Core §5.1's formats, a message per bad
 * field, merge-patch input, and nothing released that the user does not have.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isBirthdate, isLanguageTag, isPhoneNumber, isTimeZone, UserClaimsPatchSchema, UserClaimsSchema } from '../../idp/admin/claims.ts';
import { accountClaims, PROFILE_CLAIMS } from '../../idp/tokens.ts';
import type { Account } from '../../models/types.ts';

describe('claim formats (OIDC Core §5.1)', () => {
  it('birthdate: YYYY-MM-DD (a real date), YYYY, or 0000-MM-DD with the year withheld', () => {
    for (const ok of ['1990-01-31', '2000-02-29', '0000-02-29', '1999', '0000-12-31']) assert.ok(isBirthdate(ok), ok);
    for (const bad of ['1999-02-29', '1990-13-01', '1990-00-10', '1990-04-31', '0000', '90-01-01', '1990-1-1', '1990/01/01', '']) assert.ok(!isBirthdate(bad), bad);
  });

  it('zoneinfo: IANA names only, not offsets', () => {
    for (const ok of ['Europe/Paris', 'America/Argentina/Buenos_Aires', 'UTC', 'Etc/GMT+5']) assert.ok(isTimeZone(ok), ok);
    for (const bad of ['+01:00', 'Mars/Olympus', 'Europe/', 'paris france', '']) assert.ok(!isTimeZone(bad), bad);
  });

  it('locale: BCP 47 with hyphens', () => {
    for (const ok of ['en', 'en-US', 'fr-CA', 'zh-Hant-TW', 'sr-Latn']) assert.ok(isLanguageTag(ok), ok);
    for (const bad of ['en_US', 'e', 'en--US', 'en-US-', '']) assert.ok(!isLanguageTag(bad), bad);
  });

  it('phone_number: E.164 with the grouping of §5.1\'s examples and an RFC 3966 extension', () => {
    for (const ok of ['+1 (425) 555-1212', '+56 (2) 687 2400', '+1 (604) 555-1234;ext=5678', '+442079460000', '+33.1.42.68.53.00']) assert.ok(isPhoneNumber(ok), ok);
    for (const bad of ['555-1212', '+0 123 456 789', '+1 23', '+1234567890123456', '+1 425 555 1212 ext 5', 'tel:+14255551212']) assert.ok(!isPhoneNumber(bad), bad);
  });

  it('a new user\'s claims: every bad field named with what is expected; unknown claims refused', () => {
    const r = UserClaimsSchema.safeParse({
      email: 'x', picture: 'http//nope', gender: '', nickname: 'a'.repeat(300), phone_number_verified: 'yes', address: {}, middle_name: 'a\nb',
    });
    assert.ok(!r.success);
    const m = Object.fromEntries(r.error.issues.map((i) => [i.path.join('.'), i.message]));
    assert.match(m.email!, /email address/);
    assert.match(m.picture!, /absolute http or https URL/);
    assert.match(m.gender!, /must not be empty/);
    assert.match(m.nickname!, /at most 256/);
    assert.match(m.phone_number_verified!, /boolean/);
    assert.match(m.address!, /at least one member/);
    assert.match(m.middle_name!, /control characters/);
    assert.ok(!UserClaimsSchema.safeParse({ updated_at: 1 }).success, 'updated_at is the provider\'s');
    assert.ok(!UserClaimsSchema.safeParse({ groups: ['x'] }).success, 'groups come from a directory');
    // An address may keep its lines; a name may not.
    assert.ok(UserClaimsSchema.safeParse({ address: { formatted: '1 Main St\r\nSpringfield' } }).success);
    assert.deepEqual(UserClaimsSchema.parse({ given_name: '  Ada  ' }), { given_name: 'Ada' }, 'trimmed');
  });

  it('a change is a merge patch: null removes (the address member by member too); an empty change is refused', () => {
    assert.deepEqual(UserClaimsPatchSchema.parse({ nickname: null, address: { locality: null, region: 'VA' } }), { nickname: null, address: { locality: null, region: 'VA' } });
    assert.ok(!UserClaimsPatchSchema.safeParse({}).success);
    assert.ok(!UserClaimsPatchSchema.safeParse({ birthdate: '1999-02-29' }).success);
  });
});

describe('what relying parties get (idp/tokens.ts)', () => {
  const base: Account = {
    id: 'u1', username: 'ada', emailVerified: false, passwordHash: 'x', createdAt: new Date(0), updatedAt: new Date(5000), trustedDevices: [],
    version: 1, profileUpdatedAt: new Date(1_700_000_000_500),
  };

  it('only the claims the user has, *_verified with their claim, updated_at in seconds, preferred_username the username by default', () => {
    assert.deepEqual(accountClaims(base), { preferred_username: 'ada', updated_at: 1_700_000_000 });
    assert.deepEqual(accountClaims({ ...base, email: 'a@x', emailVerified: true, claims: { phone_number: '+1 425 555 1212', preferred_username: 'Ada L.', nickname: '' } }), {
      email: 'a@x', email_verified: true, phone_number: '+1 425 555 1212', phone_number_verified: false, preferred_username: 'Ada L.', updated_at: 1_700_000_000,
    });
    assert.deepEqual(accountClaims({ ...base, claims: { phone_number_verified: true } }), { preferred_username: 'ada', updated_at: 1_700_000_000 }, 'no verification without a number');
    // A directory user's stored username is an internal key, never released.
    assert.deepEqual(accountClaims({ ...base, username: 'corp:123', directory: { name: 'corp', id: '123', dn: 'uid=a', syncedAt: new Date() } }), { updated_at: 1_700_000_000 });
  });

  it('the profile scope covers §5.4\'s fourteen claims', () => {
    assert.deepEqual([...PROFILE_CLAIMS].sort(), ['birthdate', 'family_name', 'gender', 'given_name', 'locale', 'middle_name', 'name', 'nickname', 'picture', 'preferred_username', 'profile', 'updated_at', 'website', 'zoneinfo']);
  });
});

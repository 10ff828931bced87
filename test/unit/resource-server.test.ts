/** The resource-server helper's decision and its RFC 9470 §3 challenge, without a network. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bearerChallenge, checkAuthentication, requireAuthentication } from '../../idp/resource-server.ts';

const LEVELS = ['urn:adaptive-idp:aal1', 'urn:adaptive-idp:aal2', 'urn:adaptive-idp:aal3'];
const [AAL1, AAL2, AAL3] = LEVELS as [string, string, string];
const NOW = 1_800_000_000;

describe('checkAuthentication', () => {
  it('accepts the required level and any stronger one, in the given order', () => {
    for (const acr of [AAL2, AAL3]) assert.deepEqual(checkAuthentication({ acr }, { acr: AAL2, levels: LEVELS }), { ok: true });
    assert.deepEqual(checkAuthentication({ acr: AAL1 }, { acr: AAL1, levels: LEVELS }), { ok: true });
  });

  it('answers a weaker level with the RFC 9470 §3 challenge listing the acceptable values, weakest first', () => {
    const r = checkAuthentication({ acr: AAL1, auth_time: NOW }, { acr: AAL2, levels: LEVELS, now: NOW });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.status, 401);
    assert.deepEqual(r.acrValues, [AAL2, AAL3]);
    assert.equal(r.maxAge, undefined);
    assert.equal(r.wwwAuthenticate, `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="${AAL2} ${AAL3}"`);
  });

  it('treats a missing or unknown acr as not meeting the level', () => {
    for (const claims of [{}, { acr: 'urn:other:gold' }, { acr: 3 }]) {
      assert.equal(checkAuthentication(claims, { acr: AAL1, levels: LEVELS }).ok, false, JSON.stringify(claims));
    }
  });

  it('checks max_age against auth_time, and a token without auth_time fails it', () => {
    assert.deepEqual(checkAuthentication({ auth_time: NOW - 300 }, { maxAge: 300, now: NOW }), { ok: true });
    const old = checkAuthentication({ auth_time: NOW - 301 }, { maxAge: 300, now: NOW });
    assert.equal(old.ok, false);
    if (!old.ok) {
      assert.equal(old.wwwAuthenticate, 'Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="300"');
      assert.equal(old.acrValues, undefined);
    }
    assert.equal(checkAuthentication({}, { maxAge: 300, now: NOW }).ok, false);
  });

  it('names both when both fail', () => {
    const r = checkAuthentication({ acr: AAL1, auth_time: NOW - 4000 }, { acr: AAL3, levels: LEVELS, maxAge: 3600, now: NOW });
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.wwwAuthenticate, new RegExp(`acr_values="${AAL3}", max_age="3600"$`));
  });

  it('takes a plain list of acceptable values instead of an order', () => {
    assert.deepEqual(checkAuthentication({ acr: 'gold' }, { acrValues: ['gold', 'platinum'] }), { ok: true });
    const r = checkAuthentication({ acr: 'silver' }, { acrValues: ['gold', 'platinum'] });
    assert.ok(!r.ok && r.wwwAuthenticate.endsWith('acr_values="gold platinum"'));
  });

  it('asks nothing when nothing is required', () => {
    assert.deepEqual(checkAuthentication({}, {}), { ok: true });
  });

  it('fails loudly on a misconfigured requirement (an acr outside the levels, or no levels)', () => {
    assert.throws(() => checkAuthentication({ acr: AAL1 }, { acr: 'aal2', levels: LEVELS }), /not one of the levels/);
    assert.throws(() => checkAuthentication({ acr: AAL1 }, { acr: AAL2 }), TypeError);
    assert.throws(() => requireAuthentication({ issuer: 'https://idp.example', audience: 'https://api.example', acr: 'gold', levels: LEVELS }), /not one of the levels/);
    assert.throws(() => requireAuthentication({ issuer: 'https://idp.example', audience: 'https://api.example', acr: AAL2, jwksUri: 'https://idp.example/jwks' }), /levels/);
  });
});

describe('bearerChallenge', () => {
  it('quotes auth-param values (RFC 9110 §5.6.4), leaving out undefined ones', () => {
    assert.equal(bearerChallenge({ error: 'x', error_description: 'say "hi" \\o/', scope: undefined }), 'Bearer error="x", error_description="say \\"hi\\" \\\\o/"');
    assert.equal(bearerChallenge({}), 'Bearer');
  });
});

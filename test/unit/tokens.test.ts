/** Token configuration rules that need no server: resource scope names, when `risk` is released, the claim's shape. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resourceScopeNames, wantsRisk } from '../../idp/tokens.ts';
import { ConfigError, loadSettings } from '../../idp/settings.ts';
import { riskClaim } from '../../interactions/login-record.ts';
import type { Assessment } from '../../policies/types.ts';

describe('resource scopes', () => {
  it('are the policy operations plus the configured ones and the admin API\'s, without OIDC scopes or names that are not scope tokens', () => {
    assert.deepEqual(
      resourceScopeNames(['payments:write', 'bad scope', 'openid', 'say"hi"'], ['orders:read', 'payments:write', 'risk']),
      ['admin:keys', 'admin:policy', 'admin:read', 'admin:write', 'orders:read', 'payments:write'],
    );
  });

  it('RESOURCE_SCOPES and RESOURCE_SERVERS are validated at start, naming the variable', () => {
    const s = loadSettings({ RESOURCE_SCOPES: ' orders:read  orders:write ', RESOURCE_SERVERS: 'https://api.example/ urn:example:api' });
    assert.deepEqual(s.resourceScopes, ['orders:read', 'orders:write']);
    assert.deepEqual(s.resourceServers, ['https://api.example/', 'urn:example:api']);
    assert.deepEqual(loadSettings({}).resourceServers, []);
    assert.throws(() => loadSettings({ RESOURCE_SCOPES: 'orders"read' }), (e: Error) => e instanceof ConfigError && /RESOURCE_SCOPES/.test(e.message));
    assert.throws(() => loadSettings({ RESOURCE_SERVERS: '/relative' }), (e: Error) => e instanceof ConfigError && /RESOURCE_SERVERS: .*absolute/.test(e.message));
    assert.throws(() => loadSettings({ RESOURCE_SERVERS: 'https://api.example/#x' }), /fragment/);
  });
});

describe('the risk claim', () => {
  it('is released only when asked: scope `risk` or claims.id_token for the ID token, claims.userinfo for userinfo', () => {
    assert.equal(wantsRisk('id_token', 'openid email', {}), false);
    assert.equal(wantsRisk('id_token', 'openid risk', {}), true);
    assert.equal(wantsRisk('id_token', 'openid', { risk: null }), true);
    assert.equal(wantsRisk('id_token', 'openid riskier', undefined), false);
    assert.equal(wantsRisk('userinfo', 'openid risk', {}), false);
    assert.equal(wantsRisk('userinfo', 'openid', { risk: { essential: true } }), true);
    assert.equal(wantsRisk('logout', 'openid risk', { risk: null }), false);
  });

  it('carries score, level, reasons (factor and contribution only) and the versions', () => {
    const a: Assessment = {
      score: 0.123456789, level: 'medium', confidence: 0.5, modelProbability: 0.2, policyVersion: 'p1', modelVersion: 'm1', errors: [],
      reasons: [{ factor: 'new_country', contribution: 0.333333, detail: 'FR, first time' }, { factor: 'model', contribution: -0.05 }],
    };
    assert.deepEqual(riskClaim(a), {
      score: 0.1235, level: 'medium', policy_version: 'p1', model_version: 'm1',
      reasons: [{ factor: 'new_country', contribution: 0.3333 }, { factor: 'model', contribution: -0.05 }],
    });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Context } from 'koa';
import { clientAddress, clientIp } from '../../interactions/context.ts';

const ctx = (ip: string) => ({ ip }) as Context;

describe('client address', () => {
  it('unwraps IPv4-mapped IPv6 for the risk engine and for throttling', () => {
    assert.equal(clientIp(ctx('::ffff:81.2.69.142')), '81.2.69.142');
    assert.equal(clientAddress(ctx('::ffff:81.2.69.142')), '81.2.69.142');
    assert.equal(clientIp(ctx('2001:db8::1')), '2001:db8::1');
  });

  it('throttles IPv6 by /64, in one canonical spelling', () => {
    assert.equal(clientAddress(ctx('2001:db8:1:2:3:4:5:6')), '2001:0db8:0001:0002::/64');
    assert.equal(clientAddress(ctx('2001:DB8:1:2::9')), '2001:0db8:0001:0002::/64');
    assert.equal(clientAddress(ctx('2001:db8::1')), '2001:0db8:0000:0000::/64');
    assert.equal(clientAddress(ctx('::1')), '0000:0000:0000:0000::/64');
  });
});

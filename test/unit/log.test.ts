import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../idp/log.ts';

describe('logger', () => {
  it('redacts secret-looking fields at any depth and honours the level', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    log.debug('hidden', {});
    log.info('x', { user: 'amy', password: 'hunter2', nested: { client_secret: 's', refresh_token: 'r', ok: 1 }, code: 'c', error: new Error('boom') });
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]!);
    assert.equal(entry.user, 'amy');
    assert.equal(entry.password, '[redacted]');
    assert.equal(entry.nested.client_secret, '[redacted]');
    assert.equal(entry.nested.refresh_token, '[redacted]');
    assert.equal(entry.nested.ok, 1);
    assert.equal(entry.code, '[redacted]');
    assert.deepEqual(entry.error, { name: 'Error', message: 'boom' });
    assert.ok(!lines[0]!.includes('hunter2'));
    log.warn('y', { level: 'low', msg: 'spoofed', time: 'never' });
    const second = JSON.parse(lines[1]!);
    assert.deepEqual([second.level, second.msg], ['warn', 'y'], 'an event cannot overwrite the line\'s own fields');
  });
});

/**
 * parseFilter (adapters/directory/client.ts): RFC 4515 filter strings reach the server as the
 * octets they denote. ldapts' own parser writes `\c3\ab` as the two characters Ã« in UTF-8;
 * these tests read the BER the client would send.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BerWriter, EqualityFilter, SubstringFilter, type Filter } from 'ldapts';
import { parseFilter } from '../../adapters/directory/client.ts';

function ber(f: Filter): Buffer {
  const w = new BerWriter();
  f.write(w);
  return w.buffer;
}

it('an escaped UTF-8 value and the same value written literally give the same octets', () => {
  const escaped = parseFilter('(uid=zo\\c3\\ab)');
  const literal = parseFilter('(uid=zoë)');
  assert.ok(escaped instanceof EqualityFilter);
  assert.equal(escaped.value, 'zoë');
  assert.deepEqual(ber(escaped), ber(literal));
  assert.ok(ber(escaped).includes(Buffer.from('zoë', 'utf8')));
});

it('escaped metacharacters stay values, not wildcards', () => {
  const f = parseFilter('(&(objectClass=inetOrgPerson)(uid=a\\2ab\\28c\\29))');
  assert.ok(ber(f).includes(Buffer.from('a*b(c)')));
  assert.ok(f.toString().endsWith('(uid=a\\2ab\\28c\\29))'));
});

it('an escaped binary GUID is sent as its 16 octets', () => {
  const guid = Buffer.from('a3f0c2d4e5f60718293a4b5c6d7e8f90', 'hex');
  const escaped = [...guid].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
  const f = parseFilter(`(objectGUID=${escaped})`);
  assert.ok(f instanceof EqualityFilter);
  assert.ok(Buffer.isBuffer(f.value));
  assert.deepEqual(f.value, guid);
  assert.ok(ber(f).includes(guid));
});

it('substring values keep their non-ASCII characters', () => {
  const f = parseFilter('(cn=Zo\\c3\\ab*str\\c3\\b6m)');
  assert.ok(f instanceof SubstringFilter);
  assert.equal(f.initial, 'Zoë');
  assert.equal(f.final, 'ström');
});

it('a non-UTF-8 substring value is refused', () => {
  assert.throws(() => parseFilter('(cn=\\ff*)'), /not UTF-8/);
});

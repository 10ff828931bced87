import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { enforceUsername, prepareUsernameForLookup } from '../../interactions/methods/username.ts';
import { usernameSkeleton } from '../../adapters/storage/skeleton.ts';

describe('usernames: PRECIS UsernameCaseMapped (RFC 8265 §3.3)', () => {
  it('maps width and case, then NFC (RFC 8265 §3.5 examples among them)', () => {
    const cases: [string, string][] = [
      ['juliet@example.com', 'juliet@example.com'], ['fussball', 'fussball'], ['fußball', 'fußball'], ['π', 'π'],
      ['Σ', 'σ'], ['σ', 'σ'], ['ς', 'ς'], ['Zoe', 'zoe'], ['ＺＯＥ', 'zoe'], ['  alice ', 'alice'],
      ['E\u0301mile', '\u00e9mile'],
      ['क्षत्रिय', 'क्षत्रिय'], ['שלום1', 'שלום1'],
    ];
    for (const [input, out] of cases) assert.equal(enforceUsername(input), out, input);
  });

  it('refuses what the IdentifierClass or the Bidi Rule disallow (RFC 8264 §9, RFC 5893 §2)', () => {
    const refused: [string, RegExp][] = [
      ['foo bar', /may contain/], ['', /1 to 64/], ['henryⅣ', /not allowed.*U\+2173/], ['♚', /may contain/],
      ['ﬁona', /not allowed.*U\+FB01/], ['a\u200db', /may contain/], ['abcשלום', /right-to-left/], ['١۲', /not allowed/],
      ['x'.repeat(65), /1 to 64/], ['a\u0640b', /not allowed/],
    ];
    for (const [input, re] of refused) assert.throws(() => enforceUsername(input), re, JSON.stringify(input));
  });

  it('prepares a typed name for lookup the same way, without ever throwing', () => {
    assert.equal(prepareUsernameForLookup(' ＺＯＥ '), enforceUsername('Zoe'));
    assert.equal(prepareUsernameForLookup('henryⅣ'), 'henryⅳ');
  });
});

describe('usernames: UTS #39 skeletons', () => {
  it('gives look-alikes one skeleton and different names different ones', () => {
    const alice = usernameSkeleton('alice');
    for (const lookalike of ['аlice' /* Cyrillic а */, 'a1ice', 'alіce' /* Ukrainian і */, 'ａlice'.normalize('NFKC')]) {
      assert.equal(usernameSkeleton(lookalike), alice, lookalike);
    }
    assert.equal(usernameSkeleton('zoë'), usernameSkeleton('zoё'), 'Latin ë and Cyrillic ё');
    assert.equal(usernameSkeleton('rn'), usernameSkeleton('m'));
    assert.notEqual(usernameSkeleton('alicia'), alice);
    assert.notEqual(usernameSkeleton('user10'), usernameSkeleton('user11'));
  });
});

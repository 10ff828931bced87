/**
 * Usernames: the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3) on the IdentifierClass
 * (RFC 8264 §4.2), plus this provider's narrower alphabet. No maintained npm package
 * implements PRECIS (the one there was, precis-js, implements the obsoleted RFC 7564 and is
 * no longer published), so the rules are here, each citing its section; the Unicode data
 * are the runtime's own (regular-expression property escapes, String#normalize).
 *
 * Look-alikes (`аlice` with a Cyrillic а beside `alice`) are a different matter: PRECIS
 * allows both. The stores refuse a username whose UTS #39 skeleton is taken
 * (adapters/storage/skeleton.ts), with a unique index, so parallel creations cannot race.
 */

export class UsernameError extends Error {
  override name = 'UsernameError';
}

/** Longest username accepted, in code points (an application limit; RFC 8265 sets none). */
export const USERNAME_MAX_LENGTH = 64;

/**
 * RFC 8265 §3.3.1 rule 1 (width mapping): fullwidth and halfwidth code points map to their
 * decomposition. Those are the <wide>/<narrow> decompositions, all in the Halfwidth and
 * Fullwidth Forms block plus U+3000; NFKC of one such code point is its decomposition.
 */
const WIDTH_FORMS = /[\u3000\uFF01-\uFFEE]/gu;

/** The mapping rules of RFC 8265 §3.3.1, in order: width, (no additional mapping), case, NFC. */
function mapUsername(s: string): string {
  return s.replace(WIDTH_FORMS, (c) => c.normalize('NFKC')).toLowerCase().normalize('NFC');
}

/** RFC 8264 §7: apply the rules until the output is stable; refuse what does not settle in 4 rounds. */
function mapStable(s: string): string | undefined {
  let current = s;
  for (let i = 0; i < 4; i += 1) {
    const next = mapUsername(current);
    if (next === current) return current;
    current = next;
  }
  return undefined;
}

// RFC 5892 §2.6 Exceptions (F), as RFC 8264 §9.6 uses them.
const EXCEPTION_PVALID = new Set([0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTION_DISALLOWED = new Set([0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]);
const EXCEPTION_CONTEXTO = new Set([0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb]);
const ARABIC_INDIC_DIGIT = /[\u0660-\u0669]/u;
const EXTENDED_ARABIC_INDIC_DIGIT = /[\u06f0-\u06f9]/u;

type Derived = 'PVALID' | 'CONTEXTJ' | 'CONTEXTO' | 'DISALLOWED' | 'ID_DIS' | 'UNASSIGNED';

/** RFC 8264 §8: the derived property of one code point, for the IdentifierClass. */
function derivedProperty(c: string): Derived {
  const cp = c.codePointAt(0)!;
  if (EXCEPTION_PVALID.has(cp)) return 'PVALID';
  if (EXCEPTION_DISALLOWED.has(cp)) return 'DISALLOWED';
  if (EXCEPTION_CONTEXTO.has(cp) || ARABIC_INDIC_DIGIT.test(c) || EXTENDED_ARABIC_INDIC_DIGIT.test(c)) return 'CONTEXTO';
  if (/\p{Cn}/u.test(c)) return 'UNASSIGNED'; // §9.4
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID'; // §9.11 ASCII7
  if (/\p{Join_Control}/u.test(c)) return 'CONTEXTJ'; // §9.8
  // §9.9 OldHangulJamo: the conjoining jamo blocks (Hangul_Syllable_Type L, V, T).
  if ((cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97f) || (cp >= 0xd7b0 && cp <= 0xd7ff)) return 'DISALLOWED';
  if (/[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u.test(c)) return 'DISALLOWED'; // §9.13
  if (/\p{Cc}/u.test(c)) return 'DISALLOWED'; // §9.12
  if (c.normalize('NFKC') !== c) return 'ID_DIS'; // §9.17 HasCompat
  if (/[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u.test(c)) return 'PVALID'; // §9.1 LetterDigits
  if (/[\p{Lt}\p{Nl}\p{No}\p{Me}]/u.test(c)) return 'ID_DIS'; // §9.18 OtherLetterDigits
  if (/[\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{P}]/u.test(c)) return 'ID_DIS'; // §9.14-16
  return 'DISALLOWED';
}

/** RFC 5892 Appendix A: the contextual rules of the CONTEXTO code points. */
function contextOk(chars: string[], i: number): boolean {
  const c = chars[i]!;
  const cp = c.codePointAt(0)!;
  const before = chars[i - 1];
  const after = chars[i + 1];
  switch (cp) {
    case 0x00b7: return before === 'l' && after === 'l'; // A.3 MIDDLE DOT (Catalan l·l)
    case 0x0375: return after !== undefined && /\p{Script=Greek}/u.test(after); // A.4 KERAIA
    case 0x05f3:
    case 0x05f4: return before !== undefined && /\p{Script=Hebrew}/u.test(before); // A.5, A.6
    case 0x30fb: return chars.some((x) => /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u.test(x)); // A.9
    default:
      // A.8, A.9: Arabic-Indic and Extended Arabic-Indic digits are not mixed.
      if (ARABIC_INDIC_DIGIT.test(c)) return !chars.some((x) => EXTENDED_ARABIC_INDIC_DIGIT.test(x));
      if (EXTENDED_ARABIC_INDIC_DIGIT.test(c)) return !chars.some((x) => ARABIC_INDIC_DIGIT.test(x));
      return false;
  }
}

const RTL_SCRIPTS = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Mende_Kikakui}\p{Script=Yezidi}]/u;

/**
 * Bidi class, as far as this provider's alphabet needs it (JavaScript exposes no Bidi_Class):
 * letters and digits of right-to-left scripts are R (AN for Arabic-Indic digits), European
 * and Extended Arabic-Indic digits EN, non-spacing marks NSM, `-` `+` ES, `.` CS, `_` `@` ON,
 * everything else of the alphabet L.
 */
function bidiClass(c: string): 'L' | 'R' | 'AN' | 'EN' | 'NSM' | 'ES' | 'CS' | 'ON' {
  if (/[0-9\u06f0-\u06f9]/u.test(c)) return 'EN';
  if (ARABIC_INDIC_DIGIT.test(c)) return 'AN';
  if (/[\p{Mn}\p{Me}]/u.test(c)) return 'NSM';
  if (c === '-' || c === '+') return 'ES';
  if (c === '.') return 'CS';
  if (c === '_' || c === '@') return 'ON';
  return RTL_SCRIPTS.test(c) ? 'R' : 'L';
}

/** RFC 8265 §3.3.1 rule 5 → the Bidi Rule of RFC 5893 §2, for strings with right-to-left characters. */
function bidiRuleOk(chars: string[]): boolean {
  const classes = chars.map(bidiClass);
  if (!classes.some((k) => k === 'R' || k === 'AN')) return true;
  if (classes[0] !== 'R' && classes[0] !== 'L') return false; // 1
  if (classes[0] === 'L') return false; // an RTL character in an LTR label breaks rule 5
  if (classes.includes('L')) return false; // 2
  let end = classes.length - 1;
  while (end > 0 && classes[end] === 'NSM') end -= 1;
  if (!['R', 'EN', 'AN'].includes(classes[end]!)) return false; // 3
  return !(classes.includes('EN') && classes.includes('AN')); // 4
}

/** This provider's alphabet, narrower than the IdentifierClass (RFC 8264 §5.1 lets profiles' users restrict further). */
const ALPHABET = /^[\p{L}\p{M}\p{N}._@+-]+$/u;

/**
 * The form a typed username is looked up in (login): the same mapping as enforcement,
 * without refusing anything, so a login never errors on odd input; it just finds no one.
 */
export function prepareUsernameForLookup(raw: string): string {
  const trimmed = raw.trim();
  return mapStable(trimmed) ?? trimmed;
}

/** RFC 8265 §3.3 enforcement of UsernameCaseMapped; throws UsernameError with the reason. */
export function enforceUsername(raw: string): string {
  const mapped = mapStable(raw.trim());
  if (mapped === undefined) throw new UsernameError('username is not stable under normalisation');
  const chars = [...mapped];
  if (chars.length < 1 || chars.length > USERNAME_MAX_LENGTH) throw new UsernameError(`username must be 1 to ${USERNAME_MAX_LENGTH} characters`);
  if (!ALPHABET.test(mapped)) throw new UsernameError('username may contain letters, digits and . _ @ + - only');
  chars.forEach((c, i) => {
    const p = derivedProperty(c);
    if (p === 'PVALID') return;
    if (p === 'CONTEXTO' && contextOk(chars, i)) return;
    // CONTEXTJ (zero-width joiners) are refused outright: invisible, the very stuff of look-alikes.
    throw new UsernameError(`username contains a character not allowed in usernames (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`);
  });
  if (!bidiRuleOk(chars)) throw new UsernameError('username mixes right-to-left and left-to-right text in a way that can display misleadingly');
  return mapped;
}

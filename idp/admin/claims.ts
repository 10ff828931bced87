/**
 * The user's claims as an administrator sets them (`idp user set`, the admin API): OIDC Core
 * §5.1 standard claims, each validated with a message that names what is expected, as zod
 * schemas the admin API publishes in its OpenAPI document (hence the `.describe()` texts).
 *
 * What is checked is what the specification says a value is: a URL for `profile`, `picture`
 * and `website`; §5.1's three forms of `birthdate`; an IANA time zone for `zoneinfo`; a BCP 47
 * tag for `locale`; E.164 for `phone_number` (§5.1 recommends it; we require its leading `+`
 * and at most 15 digits, so every relying party can dial it). Free text (names, gender) only
 * refuses control characters and sizes no display could show. `sub`, `updated_at` and `groups`
 * are not set here: the id is the provider's, `updated_at` is kept by the store, and groups
 * come from a directory.
 */
import * as z from 'zod';

/** Control characters, which no claim shown to a person should hold (line breaks only where noted). */
const CONTROL = /\p{Cc}/u;
const CONTROL_BUT_NEWLINES = /[^\P{Cc}\r\n]/u;

/** Free text of at most `max` characters, trimmed, not empty, on one line unless `lines`. */
function text(max: number, description: string, lines = false) {
  return z.string()
    .trim()
    .min(1, 'must not be empty (leave the claim out instead)')
    .max(max, `at most ${max} characters`)
    .refine((v) => !(lines ? CONTROL_BUT_NEWLINES : CONTROL).test(v), lines ? 'must not contain control characters other than line breaks' : 'must not contain control characters')
    .describe(description);
}

/** An absolute http(s) URL (OIDC Core §5.1: profile, picture and website are URLs). */
function url(description: string) {
  return z.string()
    .trim()
    .max(2048, 'at most 2048 characters')
    .refine((v) => URL.canParse(v) && ['http:', 'https:'].includes(new URL(v).protocol), 'must be an absolute http or https URL')
    .describe(description);
}

/** The days of each month in a leap year: `0000-02-29` (year withheld) must pass. */
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** OIDC Core §5.1 birthdate: ISO 8601 YYYY-MM-DD, YYYY alone, or 0000-MM-DD when the year is withheld. */
export function isBirthdate(v: string): boolean {
  const m = /^(\d{4})(?:-(\d{2})-(\d{2}))?$/.exec(v);
  if (!m) return false;
  const year = Number(m[1]);
  if (m[2] === undefined) return year > 0;
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year === 0 || (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0));
  return day <= (month === 2 && !leap ? 28 : DAYS[month - 1]!);
}

/**
 * An IANA time zone name (OIDC Core §5.1 zoneinfo: "from the zoneinfo time zone database"),
 * as Node's ICU knows it: `Europe/Paris`, `America/Los_Angeles`, `UTC`. Offsets like `+01:00`,
 * which ICU would also take, are not zone names.
 */
export function isTimeZone(v: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/.test(v)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: v });
    return true;
  } catch {
    return false;
  }
}

/** A BCP 47 language tag (RFC 5646), e.g. `en-US` or `fr-CA` (OIDC Core §5.1 locale). */
export function isLanguageTag(v: string): boolean {
  if (!/^[A-Za-z0-9-]+$/.test(v)) return false;
  try {
    return Intl.getCanonicalLocales(v).length === 1;
  } catch {
    return false;
  }
}

/**
 * E.164 (OIDC Core §5.1 phone_number, "RECOMMENDED"): a `+`, the country code and number,
 * 7 to 15 digits, optionally grouped with spaces, dots, hyphens or parentheses as §5.1's own
 * examples are (`+1 (425) 555-1212`), and an RFC 3966 extension (`;ext=5678`).
 */
export function isPhoneNumber(v: string): boolean {
  const m = /^\+([0-9 ().-]+?)(?:;ext=([0-9]{1,10}))?$/.exec(v);
  if (!m) return false;
  const digits = m[1]!.replace(/\D/g, '');
  return digits.length >= 7 && digits.length <= 15 && /^[1-9]/.test(digits);
}

/** Loose on purpose (RFC 5321 addresses are varied); what a mail server takes is its business. */
export const emailSchema = z.string().trim().max(254, 'at most 254 characters')
  .regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address (name@domain)')
  .describe('Email address (OIDC Core §5.1 email).');

const addressFields = {
  formatted: text(1024, 'The full mailing address, formatted for display; lines separated by \\n.', true),
  street_address: text(512, 'Street address: house number, street, and possibly more lines (separated by \\n).', true),
  locality: text(256, 'City or locality.'),
  region: text(256, 'State, province, prefecture or region.'),
  postal_code: text(32, 'Zip or postal code.'),
  country: text(128, 'Country name or ISO 3166-1 code.'),
};

/** OIDC Core §5.1.1 address: every member optional, at least one given. */
export const addressSchema = z.strictObject(Object.fromEntries(Object.entries(addressFields).map(([k, s]) => [k, s.optional()])) as {
  [K in keyof typeof addressFields]: z.ZodOptional<(typeof addressFields)[K]>
}).refine((a) => Object.values(a).some((v) => v !== undefined), 'give at least one member of the address')
  .describe('Postal address (OIDC Core §5.1.1).')
  .meta({ id: 'Address' });

/** Every claim an administrator may set, with its schema (OIDC Core §5.1). */
const claimFields = {
  email: emailSchema,
  email_verified: z.boolean().describe('Whether the email address was verified (OIDC Core §5.1 email_verified).'),
  name: text(256, 'Full name, for display (OIDC Core §5.1 name).'),
  given_name: text(256, 'Given (first) name(s) (OIDC Core §5.1 given_name).'),
  family_name: text(256, 'Surname(s) (OIDC Core §5.1 family_name).'),
  middle_name: text(256, 'Middle name(s) (OIDC Core §5.1 middle_name).'),
  nickname: text(256, 'Casual name (OIDC Core §5.1 nickname).'),
  preferred_username: text(256, 'How the user wishes to be called at relying parties; default the username. Not unique, and no relying party may rely on it as an identifier (OIDC Core §5.1, §5.7).'),
  profile: url('URL of the user\'s profile page (OIDC Core §5.1 profile).'),
  picture: url('URL of the user\'s picture, an image file (OIDC Core §5.1 picture).'),
  website: url('URL of the user\'s web page or blog (OIDC Core §5.1 website).'),
  gender: text(64, 'Gender: "female", "male", or another value (OIDC Core §5.1 gender).'),
  birthdate: z.string().trim().refine(isBirthdate, 'must be YYYY-MM-DD, YYYY, or 0000-MM-DD (year withheld), a real date')
    .describe('Birthday: YYYY-MM-DD, YYYY alone, or 0000-MM-DD when the year is withheld (OIDC Core §5.1 birthdate).'),
  zoneinfo: z.string().trim().refine(isTimeZone, 'must be an IANA time zone name, e.g. Europe/Paris or America/Los_Angeles')
    .describe('Time zone, an IANA time zone database name such as Europe/Paris (OIDC Core §5.1 zoneinfo).'),
  locale: z.string().trim().refine(isLanguageTag, 'must be a BCP 47 language tag, e.g. en-US or fr-CA (with a hyphen)')
    .describe('Locale, a BCP 47 language tag such as en-US (OIDC Core §5.1 locale).'),
  phone_number: z.string().trim().refine(isPhoneNumber, 'must be an international number in E.164 form: + and 7-15 digits, e.g. +1 425 555 1212 (extension: ;ext=123)')
    .describe('Phone number in E.164 form, e.g. +1 (425) 555-1212, with an optional RFC 3966 extension ;ext=5678 (OIDC Core §5.1 phone_number).'),
  phone_number_verified: z.boolean().describe('Whether the phone number was verified (OIDC Core §5.1 phone_number_verified).'),
  address: addressSchema,
};

export type ClaimName = keyof typeof claimFields;
export const CLAIM_NAMES = Object.keys(claimFields) as ClaimName[];

/** The claims of a new user (all optional). */
export const UserClaimsSchema = z.strictObject(Object.fromEntries(Object.entries(claimFields).map(([k, s]) => [k, s.optional()])) as {
  [K in ClaimName]: z.ZodOptional<(typeof claimFields)[K]>
}).describe('OIDC Core §5.1 standard claims of the user.').meta({ id: 'UserClaimsInput' });
export type UserClaimsInput = z.output<typeof UserClaimsSchema>;

/**
 * A change of claims, as a JSON merge patch (RFC 7396): a claim given is set, a claim given as
 * null is removed, a claim left out stays; in `address`, the same member by member.
 */
export const UserClaimsPatchSchema = z.strictObject({
  ...Object.fromEntries(Object.entries(claimFields).filter(([k]) => k !== 'address').map(([k, s]) => [k, s.nullable().optional()])) as {
    [K in Exclude<ClaimName, 'address'>]: z.ZodOptional<z.ZodNullable<(typeof claimFields)[K]>>
  },
  address: z.strictObject(Object.fromEntries(Object.entries(addressFields).map(([k, s]) => [k, s.nullable().optional()])) as {
    [K in keyof typeof addressFields]: z.ZodOptional<z.ZodNullable<(typeof addressFields)[K]>>
  }).nullable().optional().describe('Members to set (a value), remove (null) or keep (left out); null removes the whole address.'),
}).refine((p) => Object.keys(p).length > 0, 'give at least one claim to change')
  .describe('Claims to change (RFC 7396 JSON merge patch): a value sets a claim, null removes it, a claim left out stays as it is.')
  .meta({ id: 'UserClaimsPatch' });
export type UserClaimsPatch = z.output<typeof UserClaimsPatchSchema>;

/** The claims as shown (what the user has; `updated_at` and directory groups included). */
export const UserClaimsViewSchema = z.object({
  ...Object.fromEntries(Object.entries(claimFields).filter(([k]) => k !== 'email_verified').map(([k, s]) => [k, s.optional()])) as {
    [K in Exclude<ClaimName, 'email_verified'>]: z.ZodOptional<(typeof claimFields)[K]>
  },
  email_verified: claimFields.email_verified,
  groups: z.array(z.string()).optional().describe('Group names from the user\'s directory (sorted); not an OIDC Core claim.'),
  updated_at: z.int().describe('When the user\'s information last changed, in seconds since the epoch (OIDC Core §5.1 updated_at).'),
}).describe('The user\'s claims as relying parties get them (given the scopes).').meta({ id: 'UserClaims' });
export type UserClaimsView = z.output<typeof UserClaimsViewSchema>;

/**
 * The policy schema: one schema per YAML file, the TypeScript types inferred from it
 * (STYLE.md §5). Unknown keys are errors, so a misspelt key cannot silently do nothing.
 * Every option is documented here, where its default is set (STYLE.md §12).
 */
import { z } from 'zod';
import { DETECTOR_NAMES } from './keystroke.ts';

export const RISK_LEVELS = ['low', 'medium', 'high', 'critical'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

/**
 * `enforce`: the part acts on logins. `monitor`: it is computed, recorded with the login event
 * and counted (/metrics, `idp simulate`), but not acted on, so an administrator can trial it
 * on live traffic before enforcing it (policies/monitor.ts).
 */
export const POLICY_MODES = ['enforce', 'monitor'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];
const mode = z.enum(POLICY_MODES).default('enforce');

const weight = z.number().min(-1).max(1);
const factor = <T extends z.ZodRawShape>(params: T) =>
  z.strictObject({
    /** Contribution to the score when the factor fires; negative weights lower it. */
    weight,
    /** A disabled factor never fires. */
    enabled: z.boolean().default(true),
    /**
     * `monitor`: the factor is evaluated and listed in the reasons (`monitor: true`), but its
     * contribution is left out of the score that decides; the login event records what the
     * policy would have decided with it enforced.
     */
    mode,
    ...params,
  });

/** Names of the rule factors, also the ids that appear in reasons. */
export const FACTOR_IDS = [
  'new_device', 'new_ip', 'new_asn', 'new_country', 'new_city', 'new_browser', 'new_os', 'unusual_hour',
  'impossible_travel', 'country_hopping', 'account_failures', 'ip_failures', 'credential_stuffing',
  'tor_exit', 'vpn_proxy', 'hosting_network', 'trusted_network', 'keystroke_anomaly', 'unknown_location',
  'pointer_anomaly', 'device_proven', 'device_unproven', 'keystroke_match',
] as const;
export type FactorId = (typeof FACTOR_IDS)[number];

/** How a behavioural template is built and when it starts to count. */
const templateShape = {
  /** Usable samples the template collects before it is checked (learning mode). */
  learn: z.int().min(2).max(200),
  /** Newest samples kept: a new sample replaces the oldest, so the template follows slow change. */
  keep: z.int().min(2).max(200),
};

export const riskSchema = z.strictObject({
  /**
   * `monitor`: the whole policy is a trial. Every login is assessed and the decision the
   * policy implies is recorded and counted, but the decision enforced is the one for risk
   * level `low`: what the relying party asks for (acr_values, max_age, a client's minimum)
   * and the `clients` / `operations` maps at `low` still apply, since they are not risk.
   * An error in a rule or the model is recorded, not acted on.
   */
  mode,
  model: z.strictObject({
    /** The random-forest model file, relative to the policy directory. */
    file: z.string().min(1),
    /** sha256 (hex) of that file: a model that does not match is refused. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters'),
    /** score = weight × P(attack) + Σ rule contributions, clamped to [0, 1]. */
    weight: z.number().min(0).max(1),
    /** `monitor`: P(attack) is computed and listed in the reasons, but left out of the score that decides. */
    mode,
  }),
  /** Lower bounds of each level above `low`; must rise strictly. */
  levels: z.strictObject({
    medium: z.number().gt(0).lt(1),
    high: z.number().gt(0).lt(1),
    critical: z.number().gt(0).lte(1),
  }),
  cold_start: z.strictObject({
    /** Fewer trusted logins than this makes a login "low confidence". */
    min_events: z.int().min(0).max(1000),
    /** History younger than this (days since the first trusted login) is low confidence too. */
    min_history_days: z.number().min(0).max(365),
    /** Level floor for low-confidence logins (`low` = no floor). */
    minimum_level: z.enum(RISK_LEVELS),
    /** Novelty factors (new_*) only fire once the history is confident: for a first login everything is new. */
    novelty_needs_confidence: z.boolean().default(true),
  }),
  history: z.strictObject({
    /** Entries kept per kind (IPs, networks, places, devices, browsers): constant memory per user. */
    max_entries: z.int().min(1).max(1000),
    /** Failures older than this no longer count. */
    failure_window_minutes: z.int().min(1).max(7 * 24 * 60),
    /** Failures remembered per account and per IP address. */
    max_failures: z.int().min(1).max(10_000),
  }),
  /**
   * Failures from the login's address (ip_failures, credential_stuffing, and the model's
   * per-IP features) are evidence about the address, shared by everyone behind it (an office
   * or carrier-grade NAT), not about the account. They can raise the level at most to
   * `max_level`; only the account's own evidence (scored without them) can go higher. With
   * the default `high` (a step-up in the shipped assurance map), strangers failing from a
   * user's address can make them prove a second factor, never lock them out.
   */
  shared_address: z.strictObject({
    max_level: z.enum(RISK_LEVELS),
    /**
     * The same cap for a login from a browser the user has logged in with (device cookie in
     * the trusted history) on a network (AS) or address they have used: by default `low`,
     * i.e. address evidence counts for nothing there and only the account's own evidence
     * decides.
     */
    recognised_max_level: z.enum(RISK_LEVELS).default('low'),
  }).default({ max_level: 'high', recognised_max_level: 'low' }),
  /**
   * Behavioural templates (policies/behaviour.ts): per user, the samples of trusted logins
   * that were at most `join_max_level` or passed a step-up (an attacker holding only the
   * password must not be able to train them). Confidence is 0 while learning, then rises from
   * 0.5 at `learn` samples to 1 at `keep`.
   */
  behaviour: z.strictObject({
    join_max_level: z.enum(RISK_LEVELS).default('low'),
    keystroke: z.strictObject({ ...templateShape, detector: z.enum(DETECTOR_NAMES).default('nearest_neighbour') }).default({ learn: 10, keep: 30, detector: 'nearest_neighbour' }),
    pointer: z.strictObject(templateShape).default({ learn: 10, keep: 30 }),
  }).default({ join_max_level: 'low', keystroke: { learn: 10, keep: 30, detector: 'nearest_neighbour' }, pointer: { learn: 10, keep: 30 } }),
  factors: z.strictObject({
    new_device: factor({
      /**
       * Share of the user's trusted logins that came from a browser never seen before (private
       * windows, cleared cookies) at or above which a new browser is their habit, not news: the
       * factor does not fire. 1 = always fires.
       */
      habitual_churn: z.number().min(0).max(1).default(0.5),
      /** Trusted logins before that share is judged: every user's first browser is new. */
      habitual_after: z.int().min(1).max(1000).default(5),
    }),
    new_ip: factor({}),
    new_asn: factor({}),
    new_country: factor({}),
    new_city: factor({}),
    new_browser: factor({}),
    new_os: factor({}),
    unusual_hour: factor({
      /** Fires when fewer than this fraction of the user's logins fell within ±1 h of this hour of the day. */
      below_fraction: z.number().min(0).max(1),
    }),
    impossible_travel: factor({
      /** Implied speed since the last trusted login above which travel is impossible (vendors use 800–1000). */
      max_speed_kmh: z.number().min(100).max(5000),
      /** Distances below this never count (geolocation error). */
      min_distance_km: z.number().min(0).max(5000),
      /**
       * Not from a city the user's trusted logins have come from: a mobile carrier's addresses
       * often geolocate to a city far from the phone, which the user then "visits" again and
       * again, minutes after a login from home.
       */
      except_known_city: z.boolean().default(true),
    }),
    country_hopping: factor({
      /** Distinct countries within the last hour, this login included, at which it fires. */
      countries_per_hour: z.int().min(2).max(50),
    }),
    account_failures: factor({ at_least: z.int().min(1).max(10_000) }),
    ip_failures: factor({ at_least: z.int().min(1).max(100_000) }),
    credential_stuffing: factor({
      /** Distinct accounts that failed from this IP within the failure window. */
      distinct_accounts: z.int().min(2).max(100_000),
    }),
    tor_exit: factor({}),
    vpn_proxy: factor({}),
    hosting_network: factor({}),
    trusted_network: factor({}),
    keystroke_anomaly: factor({
      /** Keystroke scores below this confidence are ignored. */
      min_confidence: z.number().min(0).max(1),
      /** Anomaly score (0 = typical, 1 = unlike the user) above which it fires. */
      above: z.number().min(0).max(1),
    }),
    /** A public address the geolocation database cannot place. */
    unknown_location: factor({}),
    /**
     * The password was typed with the user's own rhythm, against a confident template: with a
     * negative weight, evidence for the user that an attacker holding only the password can
     * rarely produce (README "Keystroke dynamics": impostors' median score is near 1).
     */
    keystroke_match: factor({
      min_confidence: z.number().min(0).max(1),
      /** Anomaly score at or below which it fires. */
      at_most: z.number().min(0).max(1),
    }),
    pointer_anomaly: factor({
      /** Pointer scores below this confidence are ignored. */
      min_confidence: z.number().min(0).max(1),
      /** Anomaly score (0 = typical, 1 = unlike the user) above which it fires. */
      above: z.number().min(0).max(1),
    }),
    /** The browser proved a device key (WebCrypto, non-extractable) seen at the user's trusted logins. */
    device_proven: factor({}),
    /**
     * The device cookie of a browser that proved a key before, without a proof of that key:
     * a copied cookie looks like this (or a browser whose site data was partly cleared).
     */
    device_unproven: factor({}),
  }),
});

const cidr = z.string().refine((s) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(s), 'must be an IP address or CIDR (e.g. 192.0.2.0/24)');

export const listsSchema = z.strictObject({
  /** Tor exit relay addresses (IPs or CIDRs), exported by the admin from the Tor bulk exit list. */
  tor_exit_addresses: z.array(cidr).default([]),
  /** Known VPN / proxy networks (CIDRs). */
  vpn_proxy_networks: z.array(cidr).default([]),
  /** Autonomous systems of hosting and cloud providers: logins rarely come from datacentres. */
  hosting_asns: z.array(z.int().min(1).max(4_294_967_295)).default([]),
  /** The organisation's own networks (CIDRs): lowers the score. */
  trusted_networks: z.array(cidr).default([]),
});

const requirement = z.string().min(1);
const levelMap = z.strictObject({ low: requirement, medium: requirement, high: requirement, critical: requirement });
const partialLevelMap = levelMap.partial();

const assuranceLevel = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]+$/),
  /** The ACR value the provider asserts for this level (OIDC Core §2 `acr`). */
  acr: z.string().min(1),
  /**
   * Distinct authentication factors the methods used must add up to (NIST SP 800-63B-4 §2.1:
   * AAL1 one, AAL2 two). Counted from the session's `amr` (RFC 8176): something known (pwd),
   * something held (otp, hwk, swk) and the user verification a passkey performs (`user`).
   * The risk check (`rba`) never counts: it may raise the level required, never award one.
   */
  factors: z.int().min(1).max(3).default(1),
  /**
   * Only a phishing-resistant authenticator meets it: a passkey / security key (WebAuthn,
   * `hwk` or `swk`) with user verification (`user`) (NIST SP 800-63B-4 §2.3: AAL3).
   */
  phishing_resistant: z.boolean().default(false),
  /**
   * Reauthentication (NIST SP 800-63B-4 §2.1.3, §2.2.3, §2.3.3): a session meets this level for
   * at most `max_hours` after its authentication and `idle_minutes` after its last use. Past
   * either, the next request that needs the level asks again: after the overall limit for
   * every factor, after the idle limit for the held one (the password is not asked again).
   */
  reauth: z.strictObject({
    max_hours: z.number().gt(0).max(24 * 366),
    idle_minutes: z.number().gt(0).max(24 * 60 * 366).optional(),
  }).optional(),
});

export const assuranceSchema = z.strictObject({
  /** Assurance levels, weakest first. Each must demand at least what the one before it does. */
  levels: z.array(assuranceLevel).min(1),
  /** Risk level → required assurance level name, or `block`. */
  default: levelMap,
  /** Per client_id: overrides, combined with the default by taking the stricter. */
  clients: z.record(z.string(), partialLevelMap).default({}),
  /** Per requested scope ("operation", e.g. payments:write): the same, strictest wins. */
  operations: z.record(z.string(), partialLevelMap).default({}),
  /**
   * Second-factor enrolment at login.
   * `prompt`: a user who has no second factor, after a login that needed none: `off` (never
   * asked), `offer` (asked, may skip), `require` (must enrol one before going on).
   * `missing_factor`: a login requires a factor the account does not have. `refuse` ends it
   * (the same answer as a wrong password); `enroll` lets the user enrol one there and then,
   * but only while the login's risk is at most `enroll_max_level`: whoever holds only the
   * password at a riskier moment must not bind their own authenticator. Such enrolments are
   * flagged in the audit trail (event `mfa.enrolled`, `flagged: true`).
   */
  enrolment: z.strictObject({
    prompt: z.enum(['off', 'offer', 'require']).default('offer'),
    missing_factor: z.strictObject({
      action: z.enum(['refuse', 'enroll']).default('enroll'),
      enroll_max_level: z.enum(RISK_LEVELS).default('medium'),
    }).default({ action: 'enroll', enroll_max_level: 'medium' }),
  }).default({ prompt: 'offer', missing_factor: { action: 'enroll', enroll_max_level: 'medium' } }),
});

export type RiskPolicy = z.infer<typeof riskSchema>;
export type ListsPolicy = z.infer<typeof listsSchema>;
export type AssurancePolicy = z.infer<typeof assuranceSchema>;

/** The files of a policy directory and the schema of each. */
export const POLICY_FILES = {
  'risk.yml': riskSchema,
  'lists.yml': listsSchema,
  'assurance.yml': assuranceSchema,
} as const;

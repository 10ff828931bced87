/**
 * User-facing failures: one table of stable codes (STYLE.md §4). Protocol errors stay
 * oidc-provider's `errors.*`; misconfiguration is ConfigError at start.
 * Messages here are shown to end users: they never carry secrets, stack traces or
 * anything that tells whether a username exists.
 */
export const ERROR_CODES = {
  // One message for a wrong password, an unknown username and a login the risk engine
  // blocked: none of them may tell which it was.
  invalid_credentials: { status: 200, message: 'The username or password is incorrect.' },
  // Throttled attempts are not checked at all, and unknown usernames are throttled exactly
  // like real ones, so saying so reveals neither whether the account exists nor whether the
  // password was right (NIST 800-63B-4 §3.2.2).
  login_paused: { status: 429, message: 'Sign-in is paused after too many failed attempts.' },
  // A directory did not answer: says so, without saying which or why (the log does).
  directory_unavailable: { status: 503, message: 'Sign-in is temporarily unavailable. Please try again in a few minutes.' },
  missing_username: { status: 400, message: 'Enter your username.' },
  missing_password: { status: 400, message: 'Enter your password.' },
  interaction_not_found: {
    status: 400,
    message: 'This sign-in page has expired or was already used. Go back to the application and start again.',
  },
  interaction_out_of_date: {
    status: 400,
    message: 'This page is out of date: the sign-in has moved on. Go back to the application and start again.',
  },
  csrf_failed: {
    status: 403,
    message: 'The form could not be verified (it may have been open too long or sent from another site). Reload the page and try again.',
  },
  invalid_form: { status: 400, message: 'The form was incomplete or malformed.' },
  // The account page (interactions/account.ts).
  account_signed_out: { status: 401, message: 'You are signed out. Open your account page again to sign in.' },
  account_signin_expired: {
    status: 400,
    message: 'This sign-in to your account page has expired or was already used. Open your account page again.',
  },
  account_signin_failed: { status: 400, message: 'Signing in to your account page did not complete. Open your account page again to retry.' },
  account_reauth_required: {
    status: 403,
    message: 'Confirm it is you before changing how you sign in: reload your account page and try again.',
  },
  account_out_of_date: { status: 400, message: 'This page is out of date. Open your account page again.' },
  factor_not_found: { status: 404, message: 'This sign-in method is not on your account. It may have been removed already.' },
  payload_too_large: { status: 413, message: 'The form was too large.' },
  unsupported_media_type: { status: 415, message: 'The form was sent in an unsupported format.' },
  not_found: { status: 404, message: 'There is nothing here.' },
  method_not_allowed: { status: 405, message: 'This page does not accept that request.' },
  internal: { status: 500, message: 'Something went wrong on our side. Please try again later.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error meant for the end user, rendered as a page with its code. */
export class UserError extends Error {
  override name = 'UserError';
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode) {
    super(ERROR_CODES[code].message);
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

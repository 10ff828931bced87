/**
 * The account page's own relying party: a built-in OAuth client through which /account signs
 * the user in, with the same authorization (login steps, risk engine, assurance check) as any
 * application. It is static oidc-provider configuration, not a stored client: `idp client add`
 * cannot register or overwrite it (the id is reserved) and `idp client list` does not show it.
 * Public, code flow with PKCE only (RFC 9700 §2.1.1), and its one redirect URI is the
 * provider's own callback.
 */

export const ACCOUNT_CLIENT_ID = 'account';
export const ACCOUNT_CALLBACK_PATH = '/account/callback';

/** The redirect URI, derived from ISSUER like every URL the provider emits. */
export function accountCallbackUrl(issuer: string): string {
  return new URL(ACCOUNT_CALLBACK_PATH, issuer).href;
}

/** Client metadata (RFC 7591 §2) for oidc-provider's static `clients`. */
export function accountClientMetadata(issuer: string): Record<string, unknown> & { client_id: string } {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'Your account',
    application_type: 'web',
    token_endpoint_auth_method: 'none',
    redirect_uris: [accountCallbackUrl(issuer)],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    scope: 'openid',
  };
}

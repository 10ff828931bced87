/**
 * Telling a relying party that a session an administrator ended is over: OpenID Connect
 * Back-Channel Logout 1.0 (§2.5, a logout token POSTed to the client's
 * `backchannel_logout_uri`). oidc-provider sends these itself only from its end-session
 * endpoint; for a session ended here we ask the client model to do what that endpoint does
 * (`client.backchannelLogout(sub, sid)`, as lib/actions/end_session.js calls it), so the
 * token is signed, typed (`logout+jwt`) and carries `sid` exactly as there, and the request
 * goes through the provider's outbound fetch (its SSRF guard, OUTBOUND_PRIVATE_HOSTS).
 */
import type Provider from 'oidc-provider';

/** One relying party to tell: the client, the user (`sub`) and the session id it knows (`sid`). */
export interface LogoutNotice {
  clientId: string;
  accountId: string;
  sid: string;
}

/**
 * `sent`: the client answered 200/204; `none`: the client has no back-channel logout URI (or
 * no longer exists); `failed`: it did not answer as §2.8 asks (the session is ended anyway).
 */
export type LogoutResult = 'sent' | 'none' | 'failed';

export type LogoutNotifier = (notice: LogoutNotice) => Promise<LogoutResult>;

type ClientWithLogout = { backchannelLogoutUri?: string | undefined; backchannelLogout(sub: string, sid: string): Promise<void> };

/** A notifier that sends through `provider` (the running server's, or one the CLI builds). */
export function backchannelNotifier(provider: Provider, onError?: (notice: LogoutNotice, err: Error) => void): LogoutNotifier {
  return async (notice) => {
    const client = (await provider.Client.find(notice.clientId)) as unknown as ClientWithLogout | undefined;
    if (!client?.backchannelLogoutUri) return 'none';
    try {
      await client.backchannelLogout(notice.accountId, notice.sid);
      return 'sent';
    } catch (err) {
      onError?.(notice, err as Error);
      return 'failed';
    }
  };
}

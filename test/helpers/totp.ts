/** What an authenticator app shows: the RFC 6238 code of a secret at a time. */
import { generateSync } from 'otplib';

export function totpCode(secret: string, atMs = Date.now()): string {
  return generateSync({ secret, epoch: Math.floor(atMs / 1000), period: 30, digits: 6, algorithm: 'sha1' });
}

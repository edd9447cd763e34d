import { createHash, randomBytes } from 'node:crypto';

/** A new plaintext enrolment token: 32 random bytes, url-safe, with a prefix that makes leaked tokens recognisable. */
export function generateEnrolmentToken(): string {
  return `ctet_${randomBytes(32).toString('base64url')}`;
}

/** Only this hash is stored (SPEC §4): SHA-256, hex. */
export function hashEnrolmentToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

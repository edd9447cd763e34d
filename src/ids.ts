import { randomBytes } from 'node:crypto';

/** A new row id: 24 random url-safe characters (SPEC §4). */
export function newId(): string {
  return randomBytes(18).toString('base64url');
}

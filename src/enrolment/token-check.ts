import type { Queryable } from './queryable.ts';

export interface UsableToken {
  readonly id: string;
  readonly organisationId: string;
  readonly autoApprove: boolean;
  readonly metadata: unknown;
}

export type TokenFailureReason = 'unknown' | 'revoked' | 'expired' | 'used_up' | 'organisation_deleted' | 'wrong_organisation';

interface TokenRow {
  id: string;
  organisation_id: string;
  auto_approve: boolean;
  metadata: unknown;
}

const toToken = (row: TokenRow): UsableToken => ({ id: row.id, organisationId: row.organisation_id, autoApprove: row.auto_approve, metadata: row.metadata });

// The validity rule lives in SQL so checking and consuming happen in one statement (SPEC §5.2 step 1).
const VALID = `t.deleted_at IS NULL
  AND (t.expires_at IS NULL OR t.expires_at > now())
  AND (t.max_uses IS NULL OR t.usage_count < t.max_uses)
  AND EXISTS (SELECT 1 FROM organisations o WHERE o.id = t.organisation_id AND o.deleted_at IS NULL)`;

/**
 * Checks the token and consumes one use in the same statement: the row lock makes concurrent registrations
 * re-check `usage_count` after each other, so `max_uses` can never be exceeded. Undefined when unusable.
 */
export async function consumeTokenUse(db: Queryable, tokenHash: string): Promise<UsableToken | undefined> {
  const result = await db.query<TokenRow>(
    `UPDATE agent_enrolment_tokens t SET usage_count = t.usage_count + 1, updated_at = now()
      WHERE t.token_hash = $1::text AND ${VALID}
      RETURNING t.id, t.organisation_id, t.auto_approve, t.metadata`,
    [tokenHash],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toToken(row);
}

/** The same validity rule without consuming a use (a known agent refreshing without a CSR, SPEC §5.3). */
export async function findUsableToken(db: Queryable, tokenHash: string): Promise<UsableToken | undefined> {
  const result = await db.query<TokenRow>(`SELECT t.id, t.organisation_id, t.auto_approve, t.metadata FROM agent_enrolment_tokens t WHERE t.token_hash = $1::text AND ${VALID}`, [tokenHash]);
  const row = result.rows[0];
  return row === undefined ? undefined : toToken(row);
}

/** Why a token was refused — for the log and the metric only; clients always get the same message. */
export async function tokenFailureReason(db: Queryable, tokenHash: string): Promise<TokenFailureReason> {
  const result = await db.query<{ revoked: boolean; expired: boolean; used_up: boolean; organisation_live: boolean }>(
    `SELECT t.deleted_at IS NOT NULL AS revoked,
            t.expires_at IS NOT NULL AND t.expires_at <= now() AS expired,
            t.max_uses IS NOT NULL AND t.usage_count >= t.max_uses AS used_up,
            EXISTS (SELECT 1 FROM organisations o WHERE o.id = t.organisation_id AND o.deleted_at IS NULL) AS organisation_live
       FROM agent_enrolment_tokens t WHERE t.token_hash = $1::text`,
    [tokenHash],
  );
  const row = result.rows[0];
  if (row === undefined) return 'unknown';
  if (row.revoked) return 'revoked';
  if (row.expired) return 'expired';
  if (row.used_up) return 'used_up';
  if (!row.organisation_live) return 'organisation_deleted';
  // Valid again by now (e.g. raced with an edit); still refused, the check that counted failed.
  return 'used_up';
}

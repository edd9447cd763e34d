import { newId } from '../ids.ts';
import { IngestError } from '../errors.ts';
import type { Queryable } from './queryable.ts';
import type { TagInput } from './tags.ts';
import { generateEnrolmentToken, hashEnrolmentToken } from './token-secret.ts';

export interface NewEnrolmentToken {
  readonly organisationName: string;
  readonly label?: string;
  readonly maxUses?: number | undefined;
  readonly expiresAt?: Date | undefined;
  readonly autoApprove?: boolean;
  readonly tags?: readonly TagInput[];
}

export interface CreatedEnrolmentToken {
  readonly id: string;
  /** Plaintext; shown once and never stored. */
  readonly token: string;
  readonly organisationId: string;
  readonly organisationName: string;
  readonly label: string;
  readonly autoApprove: boolean;
  readonly maxUses: number | null;
  readonly expiresAt: string | null;
}

export interface EnrolmentTokenSummary {
  readonly id: string;
  readonly organisation_id: string;
  readonly organisation_name: string;
  readonly label: string;
  readonly auto_approve: boolean;
  readonly max_uses: number | null;
  readonly usage_count: number;
  readonly expires_at: string | null;
  readonly revoked_at: string | null;
  readonly created_at: string;
  readonly state: 'valid' | 'expired' | 'used_up' | 'revoked';
}

/** Finds the live organisation of that name or creates it; concurrent callers end up with one row. */
export async function ensureOrganisation(db: Queryable, name: string): Promise<string> {
  const inserted = await db.query<{ id: string }>(
    `INSERT INTO organisations (id, name) VALUES ($1::text, $2::text)
     ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING RETURNING id`,
    [newId(), name],
  );
  if (inserted.rows[0] !== undefined) return inserted.rows[0].id;
  const existing = await db.query<{ id: string }>('SELECT id FROM organisations WHERE name = $1::text AND deleted_at IS NULL', [name]);
  const row = existing.rows[0];
  if (row === undefined) throw new Error(`organisation "${name}" could not be created`);
  return row.id;
}

export async function createEnrolmentToken(db: Queryable, input: NewEnrolmentToken): Promise<CreatedEnrolmentToken> {
  const name = input.organisationName.trim();
  if (name === '') throw new IngestError('INVALID_ARGUMENT', 'organisation name must not be empty');
  const organisationId = await ensureOrganisation(db, name);
  const token = generateEnrolmentToken();
  const id = newId();
  const label = input.label ?? '';
  const tags = (input.tags ?? []).map((t) => ({ key: t.key, value: t.value }));
  const result = await db.query<{ expires_at: Date | null }>(
    `INSERT INTO agent_enrolment_tokens (id, organisation_id, label, token_hash, auto_approve, max_uses, expires_at, metadata)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::boolean, $6::integer, $7::timestamptz, $8::jsonb)
     RETURNING expires_at`,
    [id, organisationId, label, hashEnrolmentToken(token), input.autoApprove === true, input.maxUses ?? null, input.expiresAt ?? null, JSON.stringify(tags.length > 0 ? { tags } : {})],
  );
  const expiresAt = result.rows[0]?.expires_at ?? null;
  return {
    id,
    token,
    organisationId,
    organisationName: name,
    label,
    autoApprove: input.autoApprove === true,
    maxUses: input.maxUses ?? null,
    expiresAt: expiresAt === null ? null : expiresAt.toISOString(),
  };
}

export async function listEnrolmentTokens(db: Queryable): Promise<EnrolmentTokenSummary[]> {
  const result = await db.query<EnrolmentTokenSummary>(
    `SELECT t.id, t.organisation_id, o.name AS organisation_name, t.label, t.auto_approve, t.max_uses, t.usage_count,
            to_json(t.expires_at) #>> '{}' AS expires_at, to_json(t.deleted_at) #>> '{}' AS revoked_at,
            to_json(t.created_at) #>> '{}' AS created_at,
            CASE WHEN t.deleted_at IS NOT NULL THEN 'revoked'
                 WHEN t.expires_at IS NOT NULL AND t.expires_at <= now() THEN 'expired'
                 WHEN t.max_uses IS NOT NULL AND t.usage_count >= t.max_uses THEN 'used_up'
                 ELSE 'valid' END AS state
       FROM agent_enrolment_tokens t JOIN organisations o ON o.id = t.organisation_id
      ORDER BY t.created_at, t.id`,
  );
  return result.rows;
}

/** Revoking sets deleted_at; agents enrolled with the token keep working (SPEC §5.3). False when unknown or already revoked. */
export async function revokeEnrolmentToken(db: Queryable, id: string): Promise<boolean> {
  const result = await db.query('UPDATE agent_enrolment_tokens SET deleted_at = now(), updated_at = now() WHERE id = $1::text AND deleted_at IS NULL', [id]);
  return (result.rowCount ?? 0) > 0;
}

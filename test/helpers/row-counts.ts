import type pg from 'pg';

/** Row count of every table in the public schema, to show a request wrote nothing. */
export async function rowCounts(pool: pg.Pool): Promise<Record<string, number>> {
  const tables = await pool.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name");
  const counts: Record<string, number> = {};
  for (const { table_name: table } of tables.rows) {
    const result = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`);
    counts[table] = result.rows[0]?.n ?? 0;
  }
  return counts;
}

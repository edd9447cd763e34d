/** The part of a pg pool or client the enrolment SQL needs; keeps the domain free of pg types. */
export interface Queryable {
  query<Row extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: Row[]; rowCount: number | null }>;
}

// Test entry point (`npm test`): uses TEST_DATABASE_URL when given (never DATABASE_URL), otherwise starts a
// throwaway embedded PostgreSQL for this run and removes it afterwards. Each test file then creates its own
// database from a migrated template (test/helpers/database.ts).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, takeOverSignals, type EmbeddedPostgresHandle } from '../src/dev/embedded-postgres.ts';
import { migrate } from '../src/db/migrate.ts';
import { TEMPLATE_DATABASE } from './helpers/database.ts';

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));

let embedded: EmbeddedPostgresHandle | undefined;
let scratch: string | undefined;
let adminUrl = process.env['TEST_DATABASE_URL'];
if (adminUrl === undefined || adminUrl === '') {
  scratch = await mkdtemp(path.join(tmpdir(), 'ingest-test-pg-'));
  embedded = await startEmbeddedPostgres({ dataDir: path.join(scratch, 'data'), persistent: false });
  adminUrl = embedded.url;
  process.stdout.write(`test database: embedded PostgreSQL on 127.0.0.1:${embedded.port}\n`);
} else {
  process.stdout.write('test database: TEST_DATABASE_URL\n');
}

await prepareTemplate(adminUrl);

// From here a Ctrl-C stops the test files first, then the embedded server and its scratch directory (below).
takeOverSignals();
const concurrency = process.env['TEST_CONCURRENCY'] ?? '3';
const child = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...flags, ...(files.length > 0 ? files : ['test/**/*.test.ts'])],
  { stdio: 'inherit', env: { ...process.env, TEST_DATABASE_URL: adminUrl, DATABASE_URL: '' } },
);
const stopChild = (signal: NodeJS.Signals): void => void child.kill(signal);
process.on('SIGINT', stopChild);
process.on('SIGTERM', stopChild);
const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal === null ? 1 : 1))));
await embedded?.stop();
if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
process.exit(code);

async function prepareTemplate(url: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const templateUrl = new URL(url);
  templateUrl.pathname = `/${TEMPLATE_DATABASE}`;
  const pool = new pg.Pool({ connectionString: templateUrl.toString(), max: 1 });
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
}

import { InvalidArgumentError, type Command } from 'commander';
import { withAdminPool } from './admin-database.ts';
import { PostgresOutboxConsumer } from '../queue/postgres-outbox.ts';
import { METRICS_RAW_TOPIC, type QueueEvent } from '../queue/queue.ts';

interface ConsumeOptions {
  json?: boolean;
  batch: number;
  follow?: boolean;
  topic: string;
  limit?: number;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/**
 * `ingest consume`: claims events from the outbox, prints one JSON object per line and acks them by
 * deleting them once written to stdout. Without --follow it exits when the queue is empty.
 */
export function runConsume(options: ConsumeOptions): Promise<void> {
  return withAdminPool(async (pool, databaseUrl) => {
    const consumer = new PostgresOutboxConsumer(pool, databaseUrl);
    let stopping = false;
    const stop = (): void => {
      stopping = true;
      void consumer.close();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let delivered = 0;
    try {
      while (!stopping) {
        const room = options.limit === undefined ? options.batch : Math.min(options.batch, options.limit - delivered);
        if (room <= 0) break;
        const claimed = await consumer.consumeBatch(options.topic, room, async (events) => writeLines(events, options.json === true));
        delivered += claimed;
        if (claimed > 0) continue;
        if (options.follow !== true) break;
        await consumer.waitForEvents(5_000);
      }
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await consumer.close();
    }
  });
}

/** Resolves once the lines are handed to stdout, so an ack never precedes the output. */
function writeLines(events: QueueEvent[], envelope: boolean): Promise<void> {
  const text = events
    .map((e) => JSON.stringify(envelope ? { id: e.id, topic: e.topic, created_at: e.createdAt, payload: e.payload } : e.payload))
    .join('\n');
  return new Promise((resolve, reject) => process.stdout.write(`${text}\n`, (error) => (error ? reject(error) : resolve())));
}

export function registerConsumeCommand(program: Command): void {
  program
    .command('consume')
    .description('print queued events as JSON lines and ack them (claims with FOR UPDATE SKIP LOCKED)')
    .option('--json', 'print the full envelope {id, topic, created_at, payload} instead of the payload')
    .option('--batch <n>', 'events claimed per transaction', positiveInteger, 100)
    .option('--follow', 'keep waiting for new events (LISTEN/NOTIFY) instead of exiting when the queue is empty')
    .option('--topic <topic>', 'topic to consume', METRICS_RAW_TOPIC)
    .option('--limit <n>', 'stop after this many events', positiveInteger)
    .action((options: ConsumeOptions) => runConsume(options));
}

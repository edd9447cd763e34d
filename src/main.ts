// Entry point of the `ingest` executable. Tracing must start before anything it instruments is loaded,
// so the rest of the program is imported dynamically afterwards.
import { startTracing, stopTracing } from './telemetry/tracing.ts';

await startTracing();
const { runCli } = await import('./cli/index.ts');
const code = await runCli(process.argv.slice(2));
// Buffered spans are flushed once the command (e.g. a drained `serve`) has finished.
await stopTracing().catch(() => undefined);
if (code !== 0) process.exitCode = code;

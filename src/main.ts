// Entry point of the `ingest` executable. Tracing must start before anything it instruments is loaded,
// so the rest of the program is imported dynamically afterwards.
import { startTracing } from './telemetry/tracing.ts';

await startTracing();
const { runCli } = await import('./cli/index.ts');
const code = await runCli(process.argv.slice(2));
if (code !== 0) process.exitCode = code;

#!/usr/bin/env node
// `npx ingest <command>`: runs the TypeScript sources directly where Node strips types (Node 24). An older
// Node (the machines ship 20) hands over to the Node 24 that `npm ci` pins in node_modules/.bin, and only
// without that falls back to the compiled build in dist/ (`make ingest`).
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}src/main.ts`;
const built = `${root}dist/main.js`;
const pinnedNode = `${root}node_modules/.bin/node`;
const canStripTypes = Boolean(process.features?.typescript);

const isSelf = (file) => {
  try {
    return realpathSync(file) === realpathSync(process.execPath);
  } catch {
    return false;
  }
};

if (canStripTypes && existsSync(source)) {
  await import(source);
} else if (existsSync(pinnedNode) && !isSelf(pinnedNode) && (existsSync(source) || existsSync(built))) {
  const child = spawn(pinnedNode, [existsSync(source) ? source : built, ...process.argv.slice(2)], { stdio: 'inherit' });
  // Ctrl-C in a terminal reaches the child directly (same process group); SIGTERM (e.g. from Kubernetes) is sent
  // to this process only, so pass it on. Either way the child decides when to exit, and this process follows.
  process.on('SIGINT', () => undefined);
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal === null ? 1 : 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15));
  });
} else if (existsSync(built)) {
  await import(built);
} else {
  process.stderr.write(`ingest: Node.js ${process.version} cannot run the TypeScript sources; run \`npm ci\` (it installs Node 24) or \`make ingest\`\n`);
  process.exitCode = 1;
}

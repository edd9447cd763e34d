#!/usr/bin/env node
// `npx ingest <command>`: runs the TypeScript sources directly where Node strips types (Node 24),
// otherwise the compiled build in dist/ (`make ingest`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}src/main.ts`;
const built = `${root}dist/main.js`;
const canStripTypes = Boolean(process.features?.typescript);
await import(canStripTypes && existsSync(source) ? source : built);

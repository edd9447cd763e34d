import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { createTestDatabase } from '../helpers/database.ts';
import { createTestPki } from '../helpers/tls.ts';
import { ingestClient } from '../helpers/client.ts';
import { openHeartbeat } from '../helpers/heartbeat.ts';
import { insertAgents, eventually } from '../helpers/fleet.ts';
import { freePort } from '../../src/dev/embedded-postgres.ts';
import { FileKeySource } from '../../src/keys/file-key-source.ts';
import { KeyRing } from '../../src/keys/key-ring.ts';
import { AgentTokens } from '../../src/keys/jwt.ts';
import { systemClock } from '../../src/clock.ts';
import { NODE, MAIN } from '../helpers/cli.ts';

describe('Graceful shutdown', () => {
  it('should drain on SIGTERM under load: not ready, acknowledged heartbeats all stored, streams ended UNAVAILABLE, exit 0', async () => {
    const db = await createTestDatabase();
    const pki = await createTestPki();
    const dir = await mkdtemp(path.join(tmpdir(), 'ingest-sigterm-'));
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const keyFile = path.join(dir, 'jwt_key.pem');
    const child = spawn(NODE, [MAIN, 'serve'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        DATABASE_URL: db.url,
        INGEST_TLS_CERT: pki.certFile,
        INGEST_TLS_KEY: pki.keyFile,
        INGEST_JWT_KEY_FILE: keyFile,
        INGEST_GRPC_PORT: String(grpcPort),
        INGEST_HTTP_PORT: String(httpPort),
        INGEST_BIND_ADDRESS: '127.0.0.1',
        INGEST_SHUTDOWN_GRACE_SECONDS: '10',
        INGEST_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    try {
      await eventually(async () => ((await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), 30_000, 'the server to be ready');
      const tokens = new AgentTokens(new KeyRing(await new FileKeySource(keyFile, { keyGenerated: () => undefined, reloadFailed: () => undefined }).load()), {
        issuer: 'ct-ops-ingest',
        ttlSeconds: 3600,
        clock: systemClock,
      });
      const agents = await insertAgents(db.pool, tokens, 20);
      const client = ingestClient(grpcPort, { caPem: pki.ca.certPem });
      const acked = new Map<string, number>();
      let stopSending = false;
      let acksSoFar = 0;
      const loops = agents.map(async (agent) => {
        const stream = openHeartbeat(client, { jwt: agent.jwt });
        let ok = 0;
        try {
          while (!stopSending) {
            if ((await stream.send({ cpu_percent: ok % 100 })).ok) {
              ok += 1;
              acksSoFar += 1;
            }
          }
        } catch {
          // the server ended the stream
        }
        acked.set(agent.agentId, ok);
        return stream.ended;
      });
      // SIGTERM once the load is really flowing.
      await eventually(async () => (acksSoFar >= 200 ? true : undefined), 30_000, 'heartbeats to flow');
      child.kill('SIGTERM');
      const notReady = await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
        return res === undefined || res.status === 503 ? true : undefined;
      }, 10_000, 'readiness to drop');
      assert.equal(notReady, true);
      const statuses = await Promise.all(loops);
      stopSending = true;
      const { code, signal } = await exited;
      assert.equal(signal, null, output);
      assert.equal(code, 0, output);
      for (const s of statuses) assert.equal(s.code, status.UNAVAILABLE, `stream status ${s.code} ${s.details}`);
      let total = 0;
      for (const agent of agents) {
        const ok = acked.get(agent.agentId) ?? 0;
        total += ok;
        const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM host_metrics WHERE host_id = $1', [agent.hostId]);
        assert.ok(rows[0].n >= ok, `agent ${agent.agentId}: ${ok} acknowledged, ${rows[0].n} stored`);
      }
      assert.ok(total > 20, `load was running (${total} acknowledged)`);
      client.close();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await db.drop();
      await rm(dir, { recursive: true, force: true });
      await rm(pki.dir, { recursive: true, force: true });
    }
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { startTestService, type TestService } from '../helpers/service.ts';
import { expectGrpcError } from '../helpers/client.ts';
import { generateAgentKey, registerRequest } from '../helpers/agent-keys.ts';

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('admin commands: token and agent', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.stop();
  });

  const ingest = (args: string[], env: Record<string, string> = { DATABASE_URL: svc.db.url }): Promise<CliResult> =>
    new Promise((resolve) => {
      execFile('node_modules/.bin/node', ['src/main.ts', ...args], { env: { ...process.env, INGEST_LOG_LEVEL: 'warn', ...env } }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
      });
    });

  async function ok(args: string[]): Promise<string> {
    const result = await ingest(args);
    assert.equal(result.code, 0, `ingest ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout;
  }

  async function createToken(args: string[]): Promise<{ id: string; token: string; organisation_id: string }> {
    return JSON.parse(await ok(['token', 'create', ...args, '--json'])) as { id: string; token: string; organisation_id: string };
  }

  it('should create a token (and its organisation) printing id, token and organisation_id, storing only the hash', async () => {
    const created = await createToken(['--org', 'acme', '--label', 'rack 7', '--max-uses', '3', '--expires-in', '24h', '--auto-approve', '--tag', 'env=prod', '--tag', 'team=core']);
    assert.match(created.token, /^ctet_/);
    const row = await svc.db.pool.query(
      `SELECT t.token_hash, t.label, t.max_uses, t.auto_approve, t.metadata, o.name,
              t.expires_at > now() + interval '23 hours' AND t.expires_at < now() + interval '25 hours' AS expires_in_a_day
         FROM agent_enrolment_tokens t JOIN organisations o ON o.id = t.organisation_id WHERE t.id = $1`,
      [created.id],
    );
    assert.deepEqual(row.rows[0], {
      token_hash: createHash('sha256').update(created.token).digest('hex'),
      label: 'rack 7',
      max_uses: 3,
      auto_approve: true,
      metadata: { tags: [{ key: 'env', value: 'prod' }, { key: 'team', value: 'core' }] },
      name: 'acme',
      expires_in_a_day: true,
    });
    const again = await createToken(['--org', 'acme']);
    assert.equal(again.organisation_id, created.organisation_id);
  });

  it('should print the plaintext token once in text mode and never in token list', async () => {
    const text = await ok(['token', 'create', '--org', 'listing']);
    const token = /token \(shown only now, store it safely\): (\S+)/.exec(text)?.[1];
    assert.ok(token !== undefined);
    const listed = await ok(['token', 'list']);
    const listedJson = JSON.parse(await ok(['token', 'list', '--json'])) as Array<{ id: string; organisation_id: string; state: string }>;
    assert.ok(!listed.includes(token) && !JSON.stringify(listedJson).includes(token));
    assert.ok(listedJson.some((t) => t.state === 'valid' && typeof t.id === 'string' && typeof t.organisation_id === 'string'));
  });

  it('should revoke a token so Register refuses it, and fail clearly for an unknown id', async () => {
    const created = await createToken(['--org', 'revoking', '--auto-approve']);
    assert.match(await ok(['token', 'revoke', created.id]), /revoked enrolment token/);
    const error = await expectGrpcError(svc.client().register(await registerRequest(created.token, await generateAgentKey())));
    assert.equal(error.code, status.UNAUTHENTICATED);
    const unknown = await ingest(['token', 'revoke', created.id]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no live enrolment token with id/);
    const listed = JSON.parse(await ok(['token', 'list', '--json'])) as Array<{ id: string; state: string }>;
    assert.equal(listed.find((t) => t.id === created.id)?.state, 'revoked');
  });

  it('should accept ids that begin with a dash', async () => {
    const created = await createToken(['--org', 'dashes', '--auto-approve']);
    await svc.db.pool.query("UPDATE agent_enrolment_tokens SET id = '-dash-token' WHERE id = $1", [created.id]);
    assert.match(await ok(['token', 'revoke', '-dash-token']), /revoked enrolment token -dash-token/);
    const pending = await createToken(['--org', 'dashes']);
    const first = await svc.client().register(await registerRequest(pending.token, await generateAgentKey()));
    await svc.db.pool.query("INSERT INTO agents (id, organisation_id, hostname, public_key, status) SELECT '-dash-agent', organisation_id, 'dash', 'dash-key', 'pending' FROM agents WHERE id = $1", [first.agent_id]);
    assert.match(await ok(['agent', 'approve', '-dash-agent']), /approved agent -dash-agent/);
  });

  it('should refuse bad option values with a non-zero exit', async () => {
    for (const args of [
      ['token', 'create', '--org', 'x', '--max-uses', '0'],
      ['token', 'create', '--org', 'x', '--expires-in', 'soon'],
      ['token', 'create', '--org', 'x', '--tag', 'novalue'],
      ['agent', 'list', '--status', 'sleeping'],
    ]) {
      const result = await ingest(args);
      assert.notEqual(result.code, 0, args.join(' '));
    }
    const missingUrl = await ingest(['token', 'list'], { DATABASE_URL: '' });
    assert.notEqual(missingUrl.code, 0);
    assert.match(missingUrl.stderr, /DATABASE_URL is required/);
  });

  it('should list a pending agent, approve it, and then Register returns active with a JWT', async () => {
    const created = await createToken(['--org', 'approvals']);
    const key = await generateAgentKey();
    const request = await registerRequest(created.token, key, { agent_info: { agent_id: '', version: '1.0.0', hostname: 'needs-approval' } });
    const first = await svc.client().register(request);
    assert.equal(first.status, 'pending');

    const pending = JSON.parse(await ok(['agent', 'list', '--status', 'pending', '--json'])) as Array<Record<string, unknown>>;
    const listed = pending.find((a) => a['id'] === first.agent_id);
    assert.deepEqual({ id: listed?.['id'], hostname: listed?.['hostname'], status: listed?.['status'], organisation_id: listed?.['organisation_id'] }, {
      id: first.agent_id,
      hostname: 'needs-approval',
      status: 'pending',
      organisation_id: created.organisation_id,
    });
    const active = JSON.parse(await ok(['agent', 'list', '--status', 'active', '--json'])) as Array<{ id: string }>;
    assert.ok(!active.some((a) => a.id === first.agent_id));

    assert.match(await ok(['agent', 'approve', first.agent_id]), /approved agent/);
    const second = await svc.client().register(request);
    assert.equal(second.status, 'active');
    const jwks = (await (await svc.http('/.well-known/jwks.json')).json()) as JSONWebKeySet;
    const { payload } = await jwtVerify(second.jwt_token, createLocalJWKSet(jwks), { issuer: 'ct-ops-ingest' });
    assert.deepEqual([payload.sub, payload['org']], [first.agent_id, created.organisation_id]);
    const history = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY created_at DESC LIMIT 1', [first.agent_id]);
    assert.deepEqual(history.rows[0], { status: 'active', reason: 'approved by an administrator (CLI)' });
  });

  it('should revoke an agent so Register answers revoked, writing a history row', async () => {
    const created = await createToken(['--org', 'revocations', '--auto-approve']);
    const key = await generateAgentKey();
    const request = await registerRequest(created.token, key);
    const first = await svc.client().register(request);
    assert.match(await ok(['agent', 'revoke', first.agent_id]), /revoked agent/);
    const second = await svc.client().register(request);
    assert.deepEqual([second.status, second.jwt_token], ['revoked', '']);
    const history = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY created_at DESC LIMIT 1', [first.agent_id]);
    assert.deepEqual(history.rows[0], { status: 'revoked', reason: 'revoked by an administrator (CLI)' });
  });

  it('should delete an agent and its host so the machine can enrol again as a new agent', async () => {
    const created = await createToken(['--org', 'deletions', '--auto-approve']);
    const key = await generateAgentKey();
    const request = await registerRequest(created.token, key, { agent_info: { agent_id: '', version: '', hostname: 'to-delete' } });
    const first = await svc.client().register(request);
    await svc.db.pool.query("UPDATE hosts SET status = 'online' WHERE agent_id = $1", [first.agent_id]);
    assert.match(await ok(['agent', 'delete', first.agent_id]), /deleted agent .* and 1 host/);
    const rows = await svc.db.pool.query('SELECT (SELECT deleted_at IS NOT NULL FROM agents WHERE id = $1) AS agent_deleted, (SELECT bool_and(deleted_at IS NOT NULL) FROM hosts WHERE agent_id = $1) AS hosts_deleted', [first.agent_id]);
    assert.deepEqual(rows.rows[0], { agent_deleted: true, hosts_deleted: true });
    const history = await svc.db.pool.query('SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY created_at DESC LIMIT 1', [first.agent_id]);
    assert.deepEqual(history.rows[0], { status: 'deleted', reason: 'deleted by an administrator (CLI)' });
    const listed = JSON.parse(await ok(['agent', 'list', '--json'])) as Array<{ id: string }>;
    assert.ok(!listed.some((a) => a.id === first.agent_id));
    const again = await svc.client().register(request);
    assert.equal(again.status, 'active');
    assert.notEqual(again.agent_id, first.agent_id);
  });

  it('should exit non-zero with a message for an unknown agent id', async () => {
    for (const command of ['approve', 'revoke', 'delete']) {
      const result = await ingest(['agent', command, 'no-such-agent']);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /no agent with id "no-such-agent"/);
    }
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { generateKeyPairSync } from 'node:crypto';
import { experimental, logVerbosity } from '@grpc/grpc-js';
import { createLogger, type Logger } from '../../src/telemetry/logger.ts';
import { routeGrpcLogs } from '../../src/telemetry/grpc-logging.ts';

const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhZ2VudC0xIiwib3JnIjoibzEifQ.bG9uZy1zaWduYXR1cmUtYnl0ZXMtaGVyZQ';
const TOKEN = 'ctet_Q2hhbmdlTWVQbGVhc2VUaGlzSXNBVGVzdFRva2VuVmFsdWU';
const PRIVATE_KEY_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PEM_BODY_LINE = PRIVATE_KEY_PEM.split('\n')[5] ?? '';

function capturingLogger(level = 'debug'): { logger: Logger; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const logger = createLogger(level, sink);
  const text = (): string => {
    logger.flush();
    return chunks.join('');
  };
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function settled(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

describe('JSON logs', () => {
  it('should write one JSON object per line with level, time, service and message', async () => {
    const { logger, lines } = capturingLogger('info');
    logger.info({ grpcPort: 9443 }, 'ct-ops ingest serving');
    logger.debug('not at info');
    await settled();
    const [line, ...rest] = lines();
    assert.equal(rest.length, 0);
    assert.equal(line?.['level'], 'info');
    assert.equal(line?.['service'], 'ct-ops-ingest');
    assert.equal(line?.['msg'], 'ct-ops ingest serving');
    assert.equal(line?.['grpcPort'], 9443);
    assert.ok(!Number.isNaN(Date.parse(String(line?.['time']))));
  });

  it('should redact secret fields by name', async () => {
    const { logger, text } = capturingLogger();
    logger.info({ token: 'plain-token-value', request: { org_token: 'org-token-value', password: 'pw-value' }, authorization: 'opaque-auth-value' }, 'fields');
    await settled();
    assert.doesNotMatch(text(), /plain-token-value|org-token-value|pw-value|opaque-auth-value/);
    assert.match(text(), /\[REDACTED\]/);
  });

  it('should mask JWTs, PEM keys, enrolment tokens and URL passwords inside messages, error messages and nested strings', async () => {
    const { logger, text, lines } = capturingLogger();
    logger.warn({ err: new Error(`verification failed for ${JWT}`) }, 'bad jwt');
    logger.error({ detail: { nested: [`key was ${PRIVATE_KEY_PEM}`] } }, 'bad key');
    logger.info(`token ${TOKEN} rejected; header Bearer ${JWT}`);
    logger.info({ target: 'postgres://ingest:s3cr3t-pw@db:5432/ingest' }, 'connecting');
    logger.child({ peerToken: TOKEN }).info('child bindings are masked too');
    await settled();
    const all = text();
    for (const secret of [JWT, JWT.split('.')[1] ?? '', TOKEN, PEM_BODY_LINE, 's3cr3t-pw']) assert.ok(!all.includes(secret), `leaked ${secret.slice(0, 12)}…`);
    const [jwtLine, keyLine, tokenLine, urlLine] = lines();
    assert.equal((jwtLine?.['err'] as { message: string }).message, 'verification failed for [REDACTED JWT]');
    assert.match(String((jwtLine?.['err'] as { stack: string }).stack), /^Error: verification failed for \[REDACTED JWT\]/);
    assert.deepEqual((keyLine?.['detail'] as { nested: string[] }).nested, ['key was [REDACTED PEM]\n']);
    assert.equal(tokenLine?.['msg'], 'token ctet_[REDACTED] rejected; header Bearer [REDACTED JWT]');
    assert.equal(urlLine?.['target'], 'postgres://ingest:REDACTED@db:5432/ingest');
  });

  it('should log an Error passed first under err, masked, with its message as msg', async () => {
    const { logger, lines } = capturingLogger();
    logger.error(new Error(`cannot verify ${JWT}`));
    logger.warn(new Error('second'), 'explicit message');
    await settled();
    const [first, second] = lines();
    assert.equal(first?.['msg'], 'cannot verify [REDACTED JWT]');
    assert.equal((first?.['err'] as { message: string; type: string }).message, 'cannot verify [REDACTED JWT]');
    assert.equal((first?.['err'] as { type: string }).type, 'Error');
    assert.equal(second?.['msg'], 'explicit message');
    assert.equal((second?.['err'] as { message: string }).message, 'second');
  });

  it("should route grpc-js's own log lines into the JSON log at the matching level", async () => {
    const debug = capturingLogger('debug');
    routeGrpcLogs(debug.logger, {});
    experimental.log(logVerbosity.ERROR, 'subchannel failure for', JWT);
    experimental.log(logVerbosity.DEBUG, 'a debug detail');
    await settled();
    const routed = debug.lines().filter((l) => l['module'] === 'grpc-js');
    assert.deepEqual(
      routed.map((l) => [l['level'], l['msg']]),
      [
        ['error', 'subchannel failure for [REDACTED JWT]'],
        ['debug', 'a debug detail'],
      ],
    );

    const warn = capturingLogger('warn');
    routeGrpcLogs(warn.logger, {});
    experimental.log(logVerbosity.INFO, 'an info line grpc-js would print');
    experimental.log(logVerbosity.ERROR, 'an error line');
    await settled();
    assert.deepEqual(
      warn.lines().map((l) => l['msg']),
      ['an error line'],
    );
  });
});

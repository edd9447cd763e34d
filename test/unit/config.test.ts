import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError, unknownIngestVariables, type Config } from '../../src/config/config.ts';
import { databaseUrlFromEnv } from '../../src/config/database-url.ts';

const minimal = { DATABASE_URL: 'postgres://u:secret-pw@db/ingest', INGEST_TLS_CERT: '/tls/tls.crt', INGEST_TLS_KEY: '/tls/tls.key' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_INVALID_CONFIG');
    return [...error.problems];
  }
  assert.fail('expected loadConfig to throw');
}

describe('configuration', () => {
  it('should report DATABASE_URL, INGEST_TLS_CERT and INGEST_TLS_KEY missing together', () => {
    const problems = problemsOf({});
    assert.equal(problems.length, 3);
    assert.match(problems[0] ?? '', /^DATABASE_URL is required/);
    assert.match(problems[1] ?? '', /^INGEST_TLS_CERT is required/);
    assert.match(problems[2] ?? '', /^INGEST_TLS_KEY is required/);
  });

  it('should treat empty and blank required variables as missing', () => {
    const problems = problemsOf({ DATABASE_URL: '', INGEST_TLS_CERT: '   ', INGEST_TLS_KEY: '/k' });
    assert.deepEqual(problems.map((p) => p.split(' ')[0]), ['DATABASE_URL', 'INGEST_TLS_CERT']);
  });

  it('should apply the exact seed defaults', () => {
    const config = loadConfig(minimal);
    assert.equal(config.jwt.keyFile, '/var/lib/ct-ops/jwt_key.pem');
    assert.equal(config.grpcPort, 9443);
    assert.equal(config.httpPort, 8080);
    assert.equal(config.agentDownloadBaseUrl, 'http://localhost:3000');
    assert.equal(config.databaseUrl, minimal.DATABASE_URL);
    assert.equal(config.tls.certFile, '/tls/tls.crt');
    assert.equal(config.tls.keyFile, '/tls/tls.key');
    assert.equal(config.tls.clientAuth, 'none');
    assert.equal(config.migrate, true);
    assert.equal(config.jwt.issuer, 'ct-ops-ingest');
    assert.equal(config.jwt.ttlSeconds, 86_400);
    assert.equal(config.shutdownGraceMs, 25_000);
    assert.equal(config.grpc.keepaliveTimeMs, 60_000);
    assert.equal(config.grpc.keepaliveTimeoutMs, 20_000);
    assert.equal(config.grpc.maxMessageBytes, 1_048_576);
    assert.equal(config.httpRequestTimeoutMs, 10_000);
  });

  it('should treat an empty optional variable as unset and use its default', () => {
    const config = loadConfig({ ...minimal, INGEST_HTTP_PORT: '', INGEST_GRPC_PORT: ' ', INGEST_MIGRATE: '', INGEST_JWT_KEY_FILE: '' });
    assert.equal(config.httpPort, 8080);
    assert.equal(config.grpcPort, 9443);
    assert.equal(config.migrate, true);
    assert.equal(config.jwt.keyFile, '/var/lib/ct-ops/jwt_key.pem');
  });

  it('should read ports, booleans and seconds into typed values', () => {
    const config = loadConfig({
      ...minimal,
      INGEST_GRPC_PORT: '0',
      INGEST_HTTP_PORT: '65535',
      INGEST_MIGRATE: 'false',
      INGEST_HTTP_REQUEST_TIMEOUT_SECONDS: '2',
      INGEST_AGENT_DOWNLOAD_BASE_URL: 'https://app.example.com/',
    });
    assert.equal(config.grpcPort, 0);
    assert.equal(config.httpPort, 65535);
    assert.equal(config.migrate, false);
    assert.equal(config.httpRequestTimeoutMs, 2_000);
    assert.equal(config.agentDownloadBaseUrl, 'https://app.example.com');
  });

  for (const value of ['abc', '70000', '-1', '1.5', '1e3', '0x10', '80 80']) {
    it(`should refuse INGEST_GRPC_PORT=${JSON.stringify(value)} as not an integer port 0-65535`, () => {
      const problems = problemsOf({ ...minimal, INGEST_GRPC_PORT: value });
      assert.deepEqual(problems, [`INGEST_GRPC_PORT must be an integer port 0-65535 (got ${JSON.stringify(value)})`]);
    });
  }

  it('should refuse a boolean that is not true or false', () => {
    assert.deepEqual(problemsOf({ ...minimal, INGEST_MIGRATE: 'maybe' }), ['INGEST_MIGRATE must be true or false (got "maybe")']);
  });

  it('should accept 1/0 and yes/no as booleans', () => {
    assert.equal(loadConfig({ ...minimal, INGEST_MIGRATE: '0' }).migrate, false);
    assert.equal(loadConfig({ ...minimal, INGEST_MIGRATE: 'yes' }).migrate, true);
  });

  it('should refuse INGEST_TLS_CLIENT_AUTH without INGEST_TLS_CLIENT_CA', () => {
    const problems = problemsOf({ ...minimal, INGEST_TLS_CLIENT_AUTH: 'require' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^INGEST_TLS_CLIENT_AUTH requires INGEST_TLS_CLIENT_CA/);
  });

  it('should refuse an INGEST_TLS_CLIENT_AUTH mode that does not exist', () => {
    const problems = problemsOf({ ...minimal, INGEST_TLS_CLIENT_CA: '/ca.pem', INGEST_TLS_CLIENT_AUTH: 'sometimes' });
    assert.deepEqual(problems, ['INGEST_TLS_CLIENT_AUTH must be one of optional, require (got "sometimes")']);
  });

  it('should default mTLS to optional when a client CA is set, and to none without one', () => {
    assert.equal(loadConfig({ ...minimal, INGEST_TLS_CLIENT_CA: '/ca.pem' }).tls.clientAuth, 'optional');
    assert.equal(loadConfig({ ...minimal, INGEST_TLS_CLIENT_CA: '/ca.pem', INGEST_TLS_CLIENT_AUTH: 'require' }).tls.clientAuth, 'require');
    assert.equal(loadConfig(minimal).tls.clientAuth, 'none');
  });

  it('should refuse a keepalive timeout that is not shorter than the keepalive time', () => {
    for (const timeout of ['30', '31']) {
      const problems = problemsOf({ ...minimal, INGEST_KEEPALIVE_TIME_SECONDS: '30', INGEST_KEEPALIVE_TIMEOUT_SECONDS: timeout });
      assert.equal(problems.length, 1);
      assert.match(problems[0] ?? '', /^INGEST_KEEPALIVE_TIMEOUT_SECONDS must be less than INGEST_KEEPALIVE_TIME_SECONDS/);
    }
    assert.equal(loadConfig({ ...minimal, INGEST_KEEPALIVE_TIME_SECONDS: '30', INGEST_KEEPALIVE_TIMEOUT_SECONDS: '29' }).grpc.keepaliveTimeoutMs, 29_000);
  });

  it('should refuse seconds too large for a timer instead of letting the timer fire at once', () => {
    const problems = problemsOf({ ...minimal, INGEST_MAX_CONNECTION_AGE_SECONDS: '9999999' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^INGEST_MAX_CONNECTION_AGE_SECONDS must be a whole number of seconds from 1 to 2147483/);
  });

  it('should refuse zero where a positive number is needed', () => {
    assert.deepEqual(problemsOf({ ...minimal, INGEST_DB_POOL_MAX: '0' }), ['INGEST_DB_POOL_MAX must be a whole number ≥ 1 (got "0")']);
  });

  it('should refuse a download base URL that is not an absolute http(s) URL', () => {
    for (const value of ['localhost:3000/x', 'ftp://example.com']) {
      const problems = problemsOf({ ...minimal, INGEST_AGENT_DOWNLOAD_BASE_URL: value });
      assert.equal(problems.length, 1, value);
      assert.match(problems[0] ?? '', /^INGEST_AGENT_DOWNLOAD_BASE_URL must be an absolute http\(s\) URL/);
    }
  });

  it('should report every problem together, including the cross-variable ones', () => {
    const problems = problemsOf({
      INGEST_GRPC_PORT: 'abc',
      INGEST_MIGRATE: 'maybe',
      INGEST_TLS_CLIENT_AUTH: 'optional',
      INGEST_KEEPALIVE_TIME_SECONDS: '10',
      INGEST_KEEPALIVE_TIMEOUT_SECONDS: '20',
      INGEST_LOG_LEVEL: 'loud',
    });
    const names = problems.map((p) => p.split(' ')[0]).sort();
    assert.deepEqual(names, [
      'DATABASE_URL',
      'INGEST_GRPC_PORT',
      'INGEST_KEEPALIVE_TIMEOUT_SECONDS',
      'INGEST_LOG_LEVEL',
      'INGEST_MIGRATE',
      'INGEST_TLS_CERT',
      'INGEST_TLS_CLIENT_AUTH',
      'INGEST_TLS_KEY',
    ]);
  });

  it('should list the problems in the error message and never echo the database URL', () => {
    let error: unknown;
    try {
      loadConfig({ DATABASE_URL: 'postgres://u:secret-pw@db/ingest', INGEST_HTTP_PORT: 'x' });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /^invalid configuration:\n {2}- INGEST_TLS_CERT is required/m);
    assert.match(error.message, /INGEST_HTTP_PORT must be an integer port 0-65535/);
    assert.doesNotMatch(error.message, /secret-pw/);
  });

  it('should return a deeply frozen configuration', () => {
    const config = loadConfig(minimal) as { -readonly [K in keyof Config]: unknown } & { tls: { certFile: string } };
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.tls));
    assert.throws(() => {
      config.httpPort = 1;
    }, TypeError);
    assert.throws(() => {
      config.tls.certFile = '/elsewhere';
    }, TypeError);
  });

  it('should name INGEST_* variables nothing reads, and only those', () => {
    assert.deepEqual(
      unknownIngestVariables({ ...minimal, INGEST_GRCP_PORT: '1', INGEST_HTTP_PORT: '1', INGEST_DEV_DATA_DIR: '/d', OTEL_SERVICE_NAME: 'x', HOME: '/root', INGEST_A: '' }),
      ['INGEST_A', 'INGEST_GRCP_PORT'],
    );
    assert.deepEqual(unknownIngestVariables(minimal), []);
  });

  it('should give admin commands the database URL without the serve-only variables', () => {
    assert.equal(databaseUrlFromEnv({ DATABASE_URL: 'postgres://db/x' }), 'postgres://db/x');
    assert.throws(() => databaseUrlFromEnv({ DATABASE_URL: ' ' }), (e: unknown) => e instanceof ConfigError && /DATABASE_URL is required/.test(e.message));
  });
});

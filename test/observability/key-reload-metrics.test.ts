import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { startTestService, type TestService } from '../helpers/service.ts';
import { parsePrometheusText, sampleValue } from './prometheus-text.ts';

describe('signing key reload metrics', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.stop();
  });

  async function reloads(result: string): Promise<number | undefined> {
    return sampleValue(parsePrometheusText(await (await svc.http('/metrics')).text()), 'ingest_key_reloads_total', { result });
  }

  it('should count the initial load as a success and expose the failure series at zero', async () => {
    assert.equal(await reloads('success'), 1);
    assert.equal(await reloads('failure'), 0);
  });

  it('should count a failed reload of a corrupted key file as a failure', async () => {
    await writeFile(svc.config.jwt.keyFile, '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
    // The file is polled every INGEST_TLS_RELOAD_INTERVAL_SECONDS (1 s here): wait for the counter, not for a time.
    let failures = 0;
    for (let attempt = 0; attempt < 600 && failures === 0; attempt++) {
      failures = (await reloads('failure')) ?? 0;
      if (failures === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(failures >= 1, 'a failed reload was counted');
    assert.match(svc.logs(), /signing key reload failed/);
    assert.doesNotMatch(svc.logs(), /not a key/);
  });
});

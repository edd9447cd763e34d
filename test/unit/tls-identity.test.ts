import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { identityFromSubjectAltName, peerKey } from '../../src/grpc/tls-listener.ts';

describe('client certificate identity', () => {
  it('should read organisation and agent from the spiffe://ct-ops URI SAN', () => {
    assert.deepEqual(identityFromSubjectAltName('URI:spiffe://ct-ops/org/org_1/agent/agent_1'), { organisationId: 'org_1', agentId: 'agent_1' });
  });

  it('should find the URI among other names', () => {
    assert.deepEqual(
      identityFromSubjectAltName('DNS:host.example, IP Address:10.0.0.1, URI:https://example.com, URI:spiffe://ct-ops/org/o/agent/a'),
      { organisationId: 'o', agentId: 'a' },
    );
  });

  it('should decode percent-encoded segments', () => {
    assert.deepEqual(identityFromSubjectAltName('URI:spiffe://ct-ops/org/org%201/agent/a%2Db'), { organisationId: 'org 1', agentId: 'a-b' });
  });

  it('should give no identity for other trust domains, other paths, or no URI', () => {
    for (const san of [
      undefined,
      '',
      'DNS:localhost',
      'URI:spiffe://other/org/o/agent/a',
      'URI:spiffe://ct-ops/org/o/agent/a/extra',
      'URI:spiffe://ct-ops/org//agent/a',
      'URI:spiffe://ct-ops/agent/a',
      'URI:https://ct-ops/org/o/agent/a',
    ]) {
      assert.equal(identityFromSubjectAltName(san), undefined, String(san));
    }
  });

  it('should give no identity, and not throw, for malformed percent-encoding or an encoded slash', () => {
    assert.equal(identityFromSubjectAltName('URI:spiffe://ct-ops/org/%E0%A4%A/agent/a'), undefined);
    assert.equal(identityFromSubjectAltName('URI:spiffe://ct-ops/org/o/agent/a%2Fb'), undefined);
  });

  it('should key connections the way grpc-js names peers', () => {
    assert.equal(peerKey({ remoteAddress: '127.0.0.1', remotePort: 5000 }), '127.0.0.1:5000');
  });
});

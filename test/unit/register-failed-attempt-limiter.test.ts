import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FailedAttemptLimiter } from '../../src/enrolment/failed-attempt-limiter.ts';
import { clientAddressOf } from '../../src/grpc/register-handler.ts';

const manualClock = (start = 1_000_000) => {
  let now = start;
  return { nowMs: () => now, advance: (ms: number) => void (now += ms) };
};

describe('FailedAttemptLimiter', () => {
  it('should limit an address after the allowed failures and free it once they are a minute old', () => {
    const clock = manualClock();
    const limiter = new FailedAttemptLimiter({ failuresPerMinute: 2, clock });
    limiter.recordFailure('10.0.0.1');
    assert.equal(limiter.isLimited('10.0.0.1'), false);
    clock.advance(30_000);
    limiter.recordFailure('10.0.0.1');
    assert.equal(limiter.isLimited('10.0.0.1'), true);
    assert.equal(limiter.isLimited('10.0.0.2'), false);
    clock.advance(30_001);
    assert.equal(limiter.isLimited('10.0.0.1'), false);
    clock.advance(30_000);
    assert.equal(limiter.isLimited('10.0.0.1'), false);
    // An address whose failures all aged out is forgotten, not kept as an empty entry.
    assert.equal(limiter.trackedAddresses, 0);
  });

  it('should forget the least recently failing addresses beyond its bound', () => {
    const clock = manualClock();
    const limiter = new FailedAttemptLimiter({ failuresPerMinute: 1, clock, maxAddresses: 3 });
    for (const address of ['a', 'b', 'c', 'd']) limiter.recordFailure(address);
    assert.equal(limiter.trackedAddresses, 3);
    assert.equal(limiter.isLimited('a'), false);
    assert.equal(limiter.isLimited('d'), true);
  });

  it('should refuse a non-positive limit when constructed', () => {
    assert.throws(() => new FailedAttemptLimiter({ failuresPerMinute: 0, clock: manualClock() }));
  });
});

describe('clientAddressOf', () => {
  it('should strip the port from IPv4, bracketed IPv6 and IPv4-mapped peers', () => {
    assert.equal(clientAddressOf('127.0.0.1:5000'), '127.0.0.1');
    assert.equal(clientAddressOf('[::1]:5000'), '::1');
    assert.equal(clientAddressOf('::ffff:10.1.2.3:443'), '10.1.2.3');
    assert.equal(clientAddressOf('ipv4:10.0.0.9:1'), '10.0.0.9');
  });
});

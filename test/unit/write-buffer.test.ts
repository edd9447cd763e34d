import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WriteBuffer, type PendingWrite, type WriteOutcome } from '../../src/heartbeat/write-buffer.ts';
import type { HeartbeatSample } from '../../src/heartbeat/heartbeat-sample.ts';

function write(agentId: string, cpu: number, outcomes: Map<string, WriteOutcome>): PendingWrite {
  const sample = { agentId, cpuPercent: cpu } as unknown as HeartbeatSample;
  return { sample, dropped: false, settle: (o) => outcomes.set(`${agentId}:${cpu}`, o) };
}

describe('WriteBuffer', () => {
  it('should keep arrival order and hand out at most the batch size', () => {
    const outcomes = new Map<string, WriteOutcome>();
    const buffer = new WriteBuffer(10);
    for (const [agent, cpu] of [['a', 1], ['b', 1], ['a', 2]] as const) buffer.add(write(agent, cpu, outcomes));
    assert.deepEqual(buffer.take(2).map((w) => `${w.sample.agentId}:${w.sample.cpuPercent}`), ['a:1', 'b:1']);
    assert.equal(buffer.size, 1);
  });

  it("should drop the agent's own older sample first when full", () => {
    const outcomes = new Map<string, WriteOutcome>();
    const buffer = new WriteBuffer(2);
    buffer.add(write('a', 1, outcomes));
    buffer.add(write('b', 1, outcomes));
    buffer.add(write('a', 2, outcomes));
    assert.equal(outcomes.get('a:1'), 'dropped');
    assert.deepEqual(buffer.take(10).map((w) => `${w.sample.agentId}:${w.sample.cpuPercent}`), ['b:1', 'a:2']);
  });

  it("should drop another agent's older sample rather than a new agent's only one", () => {
    const outcomes = new Map<string, WriteOutcome>();
    const buffer = new WriteBuffer(2);
    buffer.add(write('a', 1, outcomes));
    buffer.add(write('a', 2, outcomes));
    buffer.add(write('c', 1, outcomes));
    assert.equal(outcomes.get('a:1'), 'dropped');
    assert.deepEqual(buffer.take(10).map((w) => `${w.sample.agentId}:${w.sample.cpuPercent}`), ['a:2', 'c:1']);
  });

  it('should report samples already waiting that trimming drops after a failed batch is put back', () => {
    const outcomes = new Map<string, WriteOutcome>();
    const buffer = new WriteBuffer(2);
    buffer.add(write('b', 1, outcomes));
    const batch = buffer.take(10);
    buffer.add(write('a', 1, outcomes));
    buffer.add(write('a', 2, outcomes));
    const dropped = buffer.restore(batch);
    assert.deepEqual(dropped.map((w) => `${w.sample.agentId}:${w.sample.cpuPercent}`), ['a:1']);
    assert.equal(outcomes.get('a:1'), 'dropped');
    assert.equal(buffer.size, 2);
  });

  it('should put a failed batch back in front and trim it to the bound', () => {
    const outcomes = new Map<string, WriteOutcome>();
    const buffer = new WriteBuffer(3);
    buffer.add(write('a', 1, outcomes));
    buffer.add(write('a', 2, outcomes));
    const batch = buffer.take(10);
    buffer.add(write('a', 3, outcomes));
    buffer.add(write('b', 1, outcomes));
    const dropped = buffer.restore(batch);
    assert.deepEqual(dropped.map((w) => `${w.sample.agentId}:${w.sample.cpuPercent}`), ['a:1']);
    assert.equal(buffer.size, 3);
    assert.equal(outcomes.get('a:1'), 'dropped');
    assert.deepEqual(buffer.take(10).map((w) => `${w.sample.agentId}:${w.sample.cpuPercent}`), ['a:2', 'a:3', 'b:1']);
  });
});

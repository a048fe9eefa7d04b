import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { indexRetained, type RetainedPacket, type RetainedPersistence } from './retained-index.ts';

/** A persistence that records which scans ran (the real one is exercised through the broker tests). */
function recordingPersistence() {
  const stored: RetainedPacket[] = [];
  const scans: string[][] = [];
  const persistence: RetainedPersistence = {
    storeRetained: (packet, cb) => {
      stored.push(packet);
      cb(null);
    },
    createRetainedStreamCombi: (patterns) => {
      scans.push(patterns);
      return Readable.from([]);
    },
    createRetainedStream: (pattern) => {
      scans.push([pattern]);
      return Readable.from([]);
    },
  };
  return { persistence, stored, scans };
}

const retained = (topic: string, payload: string): RetainedPacket => ({
  topic,
  payload: Buffer.from(payload),
  retain: true,
});

async function topicsOf(stream: Readable): Promise<string[]> {
  const out: string[] = [];
  for await (const packet of stream)
    out.push(`${(packet as RetainedPacket).topic}=${String((packet as RetainedPacket).payload)}`);
  return out;
}

describe('indexRetained', () => {
  it('answers filters without wildcards from the index, in order, without a scan', async () => {
    const { persistence, stored, scans } = recordingPersistence();
    const index = indexRetained(persistence);
    const done: unknown[] = [];
    persistence.storeRetained(retained('a/1/desired', 'v1'), (err) => done.push(err));
    persistence.storeRetained(retained('a/2/desired', 'v2'), (err) => done.push(err));
    persistence.storeRetained(retained('a/1/desired', 'v3'), (err) => done.push(err));
    expect(done).toEqual([null, null, null]);
    expect(stored).toHaveLength(3);
    expect(index.size).toBe(2);
    expect(
      await topicsOf(persistence.createRetainedStreamCombi(['a/2/desired', 'x', 'a/1/desired'])),
    ).toEqual(['a/2/desired=v2', 'a/1/desired=v3']);
    expect(await topicsOf(persistence.createRetainedStream('a/1/desired'))).toEqual([
      'a/1/desired=v3',
    ]);
    expect(scans).toEqual([]);
  });

  it('forgets a topic cleared with an empty payload', async () => {
    const { persistence } = recordingPersistence();
    const index = indexRetained(persistence);
    persistence.storeRetained(retained('a/1/desired', 'v1'), () => undefined);
    persistence.storeRetained(retained('a/1/desired', ''), () => undefined);
    expect(index.size).toBe(0);
    expect(await topicsOf(persistence.createRetainedStream('a/1/desired'))).toEqual([]);
  });

  it('leaves filters with wildcards to the full scan', () => {
    const { persistence, scans } = recordingPersistence();
    indexRetained(persistence);
    persistence.createRetainedStreamCombi(['a/1/desired', 'a/+/reported']);
    persistence.createRetainedStream('a/#');
    expect(scans).toEqual([['a/1/desired', 'a/+/reported'], ['a/#']]);
  });
});

import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  decodeEdgeBatch,
  encodeEdgeBatch,
  VerdictBatchSchema,
  type VerdictBatch,
} from './edge-data.ts';
import { isLinesightError } from './errors.ts';

const batch: VerdictBatch = {
  schema: 'linesight.verdicts/v1',
  deviceId: 'd1',
  records: [
    {
      boot: 1,
      seq: 0,
      frameSeq: 7,
      at: '2026-01-01T00:00:00.000Z',
      modelName: 'tile',
      modelVersion: '1.0.0',
      score: 0.4,
      verdict: 'good',
      latencyMs: 9.5,
    },
  ],
};

describe('edge batches', () => {
  it('round-trips gzip-compressed JSON', () => {
    const encoded = encodeEdgeBatch(VerdictBatchSchema, batch, 'verdicts');
    expect(encoded[0]).toBe(0x1f);
    expect(decodeEdgeBatch(VerdictBatchSchema, encoded, 'verdicts')).toEqual(batch);
  });

  it('refuses a batch with a wrong schema, plain JSON or a decompression bomb', () => {
    const wrong = gzipSync(JSON.stringify({ ...batch, records: [{ boot: -1 }] }));
    const plain = Buffer.from(JSON.stringify(batch));
    const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20));
    for (const payload of [wrong, plain, bomb]) {
      let caught: unknown;
      try {
        decodeEdgeBatch(VerdictBatchSchema, payload, 'verdicts');
      } catch (err) {
        caught = err;
      }
      expect(isLinesightError(caught, 'ERR_PROTOCOL_PAYLOAD')).toBe(true);
    }
  });

  it('never encodes an invalid batch', () => {
    expect(() =>
      encodeEdgeBatch(VerdictBatchSchema, { ...batch, deviceId: 'a/b' }, 'verdicts'),
    ).toThrow(/invalid verdicts/);
  });
});

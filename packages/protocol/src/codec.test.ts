import { describe, expect, it } from 'vitest';
import { decodePayload, encodePayload, MAX_PAYLOAD_BYTES } from './codec.ts';
import { CHANNEL_SCHEMAS, DesiredStateSchema, FrameResultSchema } from './schemas.ts';

const result = {
  schema: 'linesight.result/v1' as const,
  deviceId: 'd1',
  seq: 3,
  capturedAt: '2026-11-23T10:00:00.000Z',
  verdict: 'defect' as const,
  score: 0.9,
  threshold: 0.5,
  model: { name: 'tile', version: '1.0.0' },
  latencyMs: { capture: 0.5, queue: 0, preprocess: 1, inference: 2, total: 3.5 },
};

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return `${(err as { code: string }).code} ${(err as Error).message}`;
  }
  return 'accepted';
}

describe('payload codec', () => {
  it('round-trips a valid payload', () => {
    expect(
      decodePayload(
        FrameResultSchema,
        encodePayload(FrameResultSchema, result, 'result'),
        'result',
      ),
    ).toEqual(result);
  });

  it('rejects malformed payloads with a clear error', () => {
    expect(problem(() => decodePayload(FrameResultSchema, '{not json', 'result'))).toMatch(
      /ERR_PROTOCOL_PAYLOAD invalid result: not JSON/,
    );
    expect(
      problem(() =>
        decodePayload(FrameResultSchema, JSON.stringify({ ...result, verdict: 'maybe' }), 'result'),
      ),
    ).toMatch(/ERR_PROTOCOL_PAYLOAD.*\/verdict/);
    expect(
      problem(() =>
        decodePayload(FrameResultSchema, JSON.stringify({ ...result, seq: -1 }), 'result'),
      ),
    ).toMatch(/\/seq/);
    expect(
      problem(() =>
        decodePayload(FrameResultSchema, JSON.stringify({ ...result, extra: 1 }), 'result'),
      ),
    ).toMatch(/ERR_PROTOCOL_PAYLOAD/);
    expect(
      problem(() =>
        decodePayload(
          FrameResultSchema,
          JSON.stringify({ ...result, capturedAt: 'yesterday' }),
          'result',
        ),
      ),
    ).toMatch(/capturedAt/);
    expect(
      problem(() => decodePayload(FrameResultSchema, 'x'.repeat(MAX_PAYLOAD_BYTES + 1), 'result')),
    ).toMatch(/exceeds/);
    expect(
      problem(() =>
        decodePayload(
          DesiredStateSchema,
          JSON.stringify({
            schema: 'linesight.desired/v1',
            deviceId: 'a/b',
            revision: 1,
            issuedAt: '2026-11-23T10:00:00Z',
            model: null,
          }),
          'desired',
        ),
      ),
    ).toMatch(/deviceId/);
  });

  it('refuses to send an invalid payload', () => {
    expect(
      problem(() =>
        encodePayload(
          FrameResultSchema,
          { ...result, score: Number.NaN } as typeof result,
          'result',
        ),
      ),
    ).toMatch(/ERR_PROTOCOL_PAYLOAD/);
  });

  it('has a schema for every channel', () => {
    expect(Object.keys(CHANNEL_SCHEMAS).sort()).toEqual([
      'desired',
      'events',
      'reported',
      'results',
      'status',
      'telemetry',
    ]);
  });
});

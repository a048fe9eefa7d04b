import { describe, expect, it } from 'vitest';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { Kind, type TSchema } from '@sinclair/typebox';
import * as protocol from '../index.ts';

// Every REST schema the protocol exports: each must compile, so the cloud and clients can use it.
const API_SCHEMAS = Object.entries(protocol as Record<string, unknown>).filter(
  (entry): entry is [string, TSchema] =>
    entry[0].endsWith('Schema') &&
    typeof entry[1] === 'object' &&
    entry[1] !== null &&
    Kind in entry[1],
);

describe('REST contract schemas', () => {
  it('each exported schema compiles with the TypeBox compiler', () => {
    expect(API_SCHEMAS.length).toBeGreaterThan(20);
    for (const [name, schema] of API_SCHEMAS)
      expect([name, typeof TypeCompiler.Compile(schema).Check]).toEqual([name, 'function']);
  });

  it('a device view with a reported error checks; one missing a counter does not', () => {
    const device = {
      id: 'line-1',
      labels: { line: '1' },
      online: true,
      lastSeen: '2026-01-01T00:00:00.000Z',
      phase: 'running',
      model: { name: 'tile', version: '1.0.0' },
      desiredModel: null,
      framesProcessed: 10,
      framesCaptured: 11,
      defects: 1,
      fps: 9.5,
      lastError: {
        code: 'ERR_AGENT_MODEL_VERIFY',
        message: 'bad signature',
        at: '2026-01-01T00:00:00.000Z',
      },
    };
    expect(Value.Check(protocol.DeviceViewSchema, device)).toBe(true);
    const missing: Partial<typeof device> = { ...device };
    delete missing.defects;
    expect(Value.Check(protocol.DeviceViewSchema, missing)).toBe(false);
  });

  it('the rollout body refuses unknown fields and a wave past 100 %', () => {
    const body = { model: 'tile', version: '1.0.0', waves: [{ percent: 100, soakSec: 0 }] };
    expect(Value.Check(protocol.CreateRolloutBodySchema, body)).toBe(true);
    expect(Value.Check(protocol.CreateRolloutBodySchema, { ...body, extra: 1 })).toBe(false);
    expect(
      Value.Check(protocol.CreateRolloutBodySchema, {
        ...body,
        waves: [{ percent: 101, soakSec: 0 }],
      }),
    ).toBe(false);
  });

  it('a rollout status names only the known per-device states', () => {
    const status = {
      id: 'r1',
      modelName: 'tile',
      modelVersion: '1.0.0',
      deviceIds: ['a'],
      state: 'completed',
      createdAt: '2026-01-01T00:00:00.000Z',
      createdBy: 'admin',
      spec: null,
      reason: null,
      updatedAt: null,
      waves: [],
      shadow: null,
      devices: [{ id: 'a', wave: 1, state: 'done', running: 'tile@1.0.0', online: true }],
      counts: { waiting: 0, pending: 0, done: 1, failed: 0, rolled_back: 0 },
      publish: { toPublish: 1, published: 1 },
    };
    expect(Value.Check(protocol.RolloutStatusSchema, status)).toBe(true);
    // Every route answers how far the background publishes are.
    expect(Value.Check(protocol.RolloutStatusSchema, { ...status, publish: undefined })).toBe(
      false,
    );
    const odd = { ...status, devices: [{ ...status.devices[0], state: 'lost' }] };
    expect(Value.Check(protocol.RolloutStatusSchema, odd)).toBe(false);
  });
});

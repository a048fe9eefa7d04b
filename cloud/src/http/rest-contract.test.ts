// The REST contract in @linesight/protocol against a started cloud: real answers, checked
// with TypeBox, and cleaned of anything the contract does not name (so an extra field fails too).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConnectionViewSchema,
  CreatedTokenSchema,
  DeviceEdgeSettingsSchema,
  DeviceViewSchema,
  EnrolmentTokenSchema,
  HealthSchema,
  KeyRetirementSchema,
  KeyRotationSchema,
  ReadinessSchema,
  SigningKeyStateSchema,
  TrustedKeySchema,
  ModelViewSchema,
  ProvisionedDeviceSchema,
  RetrainJobListSchema,
  ReviewDatasetManifestSchema,
  ReviewQualitySchema,
  ReviewQueuePageSchema,
  RolloutStatusSchema,
  TokenViewSchema,
  TrainingDatasetListSchema,
} from '@linesight/protocol';
import { Cloud } from '../cloud.ts';
import { meanScoreOnnx } from '@linesight/testkit/onnx';

let dir: string;
let cloud: Cloud;

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${cloud.urls.http}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${cloud.adminToken.token}`,
      ...(body instanceof FormData || body === undefined
        ? {}
        : { 'content-type': 'application/json' }),
    },
    body: body instanceof FormData ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  expect([method, path, res.status < 300 ? 'ok' : text]).toEqual([method, path, 'ok']);
  return JSON.parse(text) as unknown;
}

/** Fails with the schema's complaints, or with the fields the contract does not name. */
function expectContract(schema: TSchema, value: unknown): void {
  expect([...Value.Errors(schema, value)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
  expect(Value.Clean(schema, Value.Clone(value))).toEqual(value);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-rest-contract-'));
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
  await cloud.start();
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

describe('REST contract (@linesight/protocol api) against a started cloud', () => {
  it('models, devices and a staged rollout answer what the contract says', async () => {
    const form = new FormData();
    form.set('name', 'm');
    form.set('version', '1.0.0');
    form.set('file', new Blob([meanScoreOnnx({ side: 16, threshold: 0.5 })]), 'm.onnx');
    expectContract(ModelViewSchema, await call('POST', '/v1/models', form));
    expectContract(Type.Array(ModelViewSchema), await call('GET', '/v1/models'));

    for (const id of ['a', 'b'])
      expectContract(
        ProvisionedDeviceSchema,
        await call('POST', '/v1/devices', { id, labels: { line: '1' } }),
      );
    expectContract(EnrolmentTokenSchema, await call('POST', '/v1/devices/c/enrolment-token', {}));
    expectContract(Type.Array(DeviceViewSchema), await call('GET', '/v1/devices'));
    expectContract(DeviceViewSchema, await call('GET', '/v1/devices/a'));
    expectContract(DeviceEdgeSettingsSchema, await call('GET', '/v1/devices/a/edge-data'));

    const created = await call('POST', '/v1/rollouts', {
      model: 'm',
      version: '1.0.0',
      selector: { labels: { line: '1' } },
      waves: [
        { percent: 50, soakSec: 60 },
        { percent: 100, soakSec: 60 },
      ],
      gates: { maxDefectRateChange: 0.1 },
      shadow: { durationSec: 60 },
    });
    expectContract(RolloutStatusSchema, created);
    const id = (created as { id: string }).id;
    expectContract(RolloutStatusSchema, await call('POST', `/v1/rollouts/${id}/abort`));
    // An all-at-once rollout has a spec without shadow, and a wave in progress.
    const direct = await call('POST', '/v1/rollouts', { model: 'm', version: '1.0.0' });
    expectContract(RolloutStatusSchema, direct);
    expectContract(Type.Array(RolloutStatusSchema), await call('GET', '/v1/rollouts'));
  });

  it('tokens, connection, review and retraining answer what the contract says', async () => {
    expectContract(ConnectionViewSchema, await call('GET', '/v1/connection'));
    expectContract(CreatedTokenSchema, await call('POST', '/v1/tokens', { actor: 'ann' }));
    expectContract(Type.Array(TokenViewSchema), await call('GET', '/v1/tokens'));
    expectContract(ReviewQueuePageSchema, await call('GET', '/v1/review/queue'));
    expectContract(ReviewQualitySchema, await call('GET', '/v1/review/quality'));
    expectContract(ReviewDatasetManifestSchema, await call('GET', '/v1/review/export'));
    expectContract(RetrainJobListSchema, await call('GET', '/v1/retrain/jobs'));
    expectContract(TrainingDatasetListSchema, await call('GET', '/v1/retrain/datasets'));
  });

  it('probes and signing keys answer what the contract says', async () => {
    expectContract(HealthSchema, await call('GET', '/healthz'));
    expectContract(ReadinessSchema, await call('GET', '/readyz'));
    const [first] = (await call('GET', '/v1/keys/ring')) as { keyId: string }[];
    expectContract(KeyRotationSchema, await call('POST', '/v1/keys/rotate'));
    expectContract(Type.Array(TrustedKeySchema), await call('GET', '/v1/keys'));
    expectContract(
      KeyRetirementSchema,
      await call('POST', `/v1/keys/${first?.keyId ?? 'none'}/retire`),
    );
    const ring = await call('GET', '/v1/keys/ring');
    expectContract(Type.Array(SigningKeyStateSchema), ring);
    expect(ring).toContainEqual(expect.objectContaining({ keyId: first?.keyId, active: false }));
    expect((ring as { retiredAt?: string }[]).some((k) => k.retiredAt !== undefined)).toBe(true);
  });
});

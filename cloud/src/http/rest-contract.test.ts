// The REST contract in @linesight/protocol against a started cloud: real answers, checked
// with TypeBox, and cleaned of anything the contract does not name (so an extra field fails too).
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlertListSchema,
  AuditEntryListSchema,
  BlobUploadAnswerSchema,
  ConnectionViewSchema,
  DeviceEventListSchema,
  DeviceEventSchema,
  DriftRunSummarySchema,
  DriftSeriesViewSchema,
  DriftStatusSchema,
  EdgeEventListSchema,
  EdgeIngestStatsSchema,
  EdgeSampleDownloadSchema,
  EdgeSampleListSchema,
  EdgeVerdictCountListSchema,
  EdgeVerdictListSchema,
  EdgeWindowListSchema,
  EventBatchSchema,
  FleetViewSchema,
  SampleBatchSchema,
  UploadsAnswerSchema,
  VerdictBatchSchema,
  WindowBatchSchema,
  deviceTopic,
  encodeEdgeBatch,
  encodePayload,
  type DeviceEvent,
  type DriftSeriesView,
  type EdgeIngestStats,
  type EdgeSampleDownload,
  type EventRecord,
  type FleetView,
  type ReviewDatasetManifest,
  type ReviewQuality,
  type SampleRecord,
  type VerdictRecord,
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
  ReviewLabelSchema,
  ReviewQualitySchema,
  ReviewQueuePageSchema,
  RolloutStatusSchema,
  SampleLabelsSchema,
  TokenViewSchema,
  TrainingDatasetDetailSchema,
  TrainingDatasetListSchema,
  TrainingImageStoredSchema,
} from '@linesight/protocol';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud } from '../cloud.ts';
import { NORMAL_LOOK, seededRandom, windowOf } from '../drift/drift-fixtures.ts';
import { eventually } from '@linesight/testkit/eventually';
import { meanScoreOnnx } from '@linesight/testkit/onnx';

let dir: string;
let cloud: Cloud;

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const url = path.startsWith('http') ? path : `${cloud.urls.http}${path}`;
  const res = await fetch(url, {
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
  // The drift job's schedule fires only on 29 February: the drift status checked below counts
  // the test's own run alone (every five minutes, a boundary crossed under load counted two).
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: dir, drift: { schedule: '0 0 29 2 *' } },
    pino({ level: 'silent' }),
  );
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

  it('training images and datasets answer what the contract says', async () => {
    const images = [1, 2].map((n) => Buffer.alloc(64, n));
    const hashes = images.map((b) => createHash('sha256').update(b).digest('hex'));
    const put = async (i: number) => {
      const res = await fetch(`${cloud.urls.http}/v1/retrain/datasets/images/${hashes[i]}`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${cloud.adminToken.token}`,
          'content-type': 'application/octet-stream',
        },
        body: images[i],
      });
      const answer: unknown = await res.json();
      expectContract(TrainingImageStoredSchema, answer);
      return [res.status, answer];
    };
    expect(await put(0)).toEqual([201, { sha256: hashes[0], stored: true }]);
    expect(await put(0)).toEqual([200, { sha256: hashes[0], stored: false }]);
    await put(1);
    const items = [
      { sha256: hashes[0], label: 'good', className: 'good' },
      { sha256: hashes[1], label: 'defect', className: 'scratch' },
    ];
    const dataset = (await call('POST', '/v1/retrain/datasets', { name: 'd', items })) as {
      fingerprint: string;
    };
    const detail = await call('GET', `/v1/retrain/datasets/${dataset.fingerprint}`);
    expectContract(TrainingDatasetDetailSchema, detail);
    expect(detail).toEqual({ ...dataset, items });
    const api = new CloudApiClient({
      baseUrl: cloud.urls.http,
      adminToken: cloud.adminToken.token,
    });
    expect(await api.getTrainingDataset(dataset.fingerprint)).toEqual(detail);
    expect(await api.putTrainingImage(hashes[1]!, images[1]!)).toBe(false);
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

  it('edge data, review, drift, the dashboard, audit, device events and blobs answer what the contract says', async () => {
    const deviceId = 'edge-1';
    const creds = (await call('POST', '/v1/devices', { id: deviceId })) as {
      username: string;
      password: string;
    };
    // A sampled image, uploaded the way an agent does: ask for a URL, PUT the bytes.
    const image = Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7) & 0xff));
    const sha256 = createHash('sha256').update(image).digest('hex');
    const uploads = await call('POST', `/v1/devices/${deviceId}/uploads`, {
      objects: [{ name: '1-0.jpg', contentType: 'image/jpeg', bytes: image.length, sha256 }],
    });
    expectContract(UploadsAnswerSchema, uploads);
    const [target] = (uploads as Static<typeof UploadsAnswerSchema>).uploads;
    const put = await fetch(target!.url!, { method: 'PUT', headers: target!.headers, body: image });
    expect(put.status).toBe(200);
    expectContract(BlobUploadAnswerSchema, await put.json());

    // What the device sends, with every optional field somewhere.
    const nowMs = Date.now();
    const at = (agoMs: number) => new Date(nowMs - agoMs).toISOString();
    const frame = { boot: 1, frameSeq: 0, at: at(5000), modelName: 'm', modelVersion: '1.0.0' };
    const verdicts: VerdictRecord[] = [
      { ...frame, seq: 0, score: 0.2, verdict: 'good', latencyMs: 4 },
      { ...frame, seq: 1, score: null, verdict: 'unknown', reason: 'decode', latencyMs: 1 },
    ];
    // Two windows without a model, the newer from a frozen camera: a camera alert.
    const windows = [0, 1].map((seq) =>
      windowOf({
        seq,
        startMs: nowMs - (3 - seq) * 60_000,
        durationMs: 60_000,
        frameCount: 600,
        look: { ...NORMAL_LOOK, frozen: seq === 1 },
        next: seededRandom(seq + 1),
        model: null,
      }),
    );
    const events: EventRecord[] = [
      { boot: 1, seq: 0, at: at(4000), level: 'warn', type: 'camera.frozen', message: 'frozen' },
      {
        ...{ boot: 1, seq: 1, at: at(3000), level: 'error', type: 'model.refused' },
        ...{ message: 'bad signature', code: 'ERR_AGENT_MODEL_VERIFY' },
      },
    ];
    const samples: SampleRecord[] = [
      {
        ...{ ...frame, seq: 0, class: 'uncertain', score: 0.45, verdict: 'good' },
        ...{ objectKey: target!.key, bytes: image.length, sha256 },
      },
    ];
    const event: DeviceEvent = {
      ...{ schema: 'linesight.event/v1', deviceId, at: at(1000), level: 'info' },
      ...{ type: 'model.activated', message: 'm@1.0.0', model: { name: 'm', version: '1.0.0' } },
    };
    const device = await mqtt.connectAsync(cloud.urls.mqtt, {
      clientId: deviceId,
      username: creds.username,
      password: creds.password,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    try {
      const publish = (channel: Parameters<typeof deviceTopic>[1], payload: Buffer) =>
        device.publishAsync(deviceTopic(deviceId, channel), payload, { qos: 1 });
      const batch = { deviceId };
      await publish(
        'verdicts',
        encodeEdgeBatch(
          VerdictBatchSchema,
          { ...batch, schema: 'linesight.verdicts/v1', records: verdicts },
          'verdicts',
        ),
      );
      await publish(
        'windows',
        encodeEdgeBatch(
          WindowBatchSchema,
          { ...batch, schema: 'linesight.windows/v1', records: windows },
          'windows',
        ),
      );
      await publish(
        'event-log',
        encodeEdgeBatch(
          EventBatchSchema,
          { ...batch, schema: 'linesight.event-log/v1', records: events },
          'events',
        ),
      );
      await publish(
        'samples',
        encodeEdgeBatch(
          SampleBatchSchema,
          { ...batch, schema: 'linesight.samples/v1', records: samples },
          'samples',
        ),
      );
      await publish('events', encodePayload(DeviceEventSchema, event, 'event'));
    } finally {
      await device.endAsync();
    }
    await eventually(
      async () => {
        const { stored } = (await call('GET', '/v1/edge/ingest-stats')) as EdgeIngestStats;
        return (
          stored.verdicts === 2 &&
          stored.windows === 2 &&
          stored.events === 2 &&
          stored.samples === 1
        );
      },
      { what: 'the edge batches stored' },
    );
    expectContract(EdgeIngestStatsSchema, await call('GET', '/v1/edge/ingest-stats'));

    // The answers hold what was sent, field for field: a schema that dropped one fails here.
    const q = `?deviceId=${deviceId}`;
    const mine = <T extends object>(records: T[]) => records.map((r) => ({ deviceId, ...r }));
    const read = async (schema: TSchema, path: string): Promise<unknown> => {
      const answer = await call('GET', path);
      expectContract(schema, answer);
      return answer;
    };
    expect(await read(EdgeVerdictListSchema, `/v1/edge/verdicts${q}`)).toEqual({
      records: mine(verdicts),
    });
    expect(await read(EdgeVerdictCountListSchema, `/v1/edge/verdict-counts${q}`)).toEqual({
      buckets: [expect.objectContaining({ deviceId, good: 1, defect: 0, unknown: 1 })],
    });
    expect(await read(EdgeWindowListSchema, `/v1/edge/windows${q}`)).toEqual({
      windows: mine(windows),
    });
    expect(await read(EdgeEventListSchema, `/v1/edge/events${q}`)).toEqual({
      events: mine(events),
    });
    const indexed = mine(samples).map((s) => ({ ...s, id: '1-0' }));
    expect(await read(EdgeSampleListSchema, `/v1/samples${q}`)).toEqual({ samples: indexed });
    const download = (await read(
      EdgeSampleDownloadSchema,
      `/v1/samples/${deviceId}/1-0`,
    )) as EdgeSampleDownload;
    expect(download).toMatchObject({ sample: indexed[0], mapUrl: null });
    const blob = await fetch(download.downloadUrl!);
    expect([blob.status, Buffer.from(await blob.arrayBuffer()).equals(image)]).toEqual([200, true]);

    const kept = await eventually(
      async () => {
        const list = (await call('GET', `/v1/devices/${deviceId}/events`)) as unknown[];
        return list.length > 0 ? list : undefined;
      },
      { what: 'the device event kept' },
    );
    expectContract(DeviceEventListSchema, kept);
    expect(kept).toEqual([event]);

    const run = await call('POST', '/v1/drift/runs');
    expectContract(DriftRunSummarySchema, run);
    expect(run).toMatchObject({ devices: 1, windows: 2, transitions: { opened: 1 } });
    expect(await read(DriftStatusSchema, '/v1/drift/status')).toMatchObject({
      runs: 1,
      lastRun: run,
    });
    expect(await read(AlertListSchema, `/v1/alerts${q}`)).toEqual({
      alerts: [
        expect.objectContaining({
          kind: 'camera',
          feature: 'frozen',
          modelName: '',
          state: 'open',
        }),
      ],
    });

    const fleet = (await read(FleetViewSchema, '/v1/dashboard/fleet')) as FleetView;
    expect(fleet.devices).toContainEqual(
      expect.objectContaining({ id: deviceId, camera: 'alert', drift: 'ok' }),
    );
    const series = (await read(
      DriftSeriesViewSchema,
      `/v1/dashboard/drift/series${q}`,
    )) as DriftSeriesView;
    expect(series).toMatchObject({ deviceId, windows: 2 });
    expect(series.points.length).toBeGreaterThan(0);

    const audit = (await read(AuditEntryListSchema, `/v1/audit?subject=${deviceId}`)) as unknown[];
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'device.provision',
        subject: deviceId,
        details: { labels: {} },
      }),
    ]);

    // The sample in review: queued, labelled, counted and exported.
    const queue = await read(ReviewQueuePageSchema, `/v1/review/queue${q}`);
    expect(queue).toMatchObject({ total: 1, items: [{ sample: indexed[0], label: null }] });
    const labels = `/v1/review/samples/${deviceId}/1-0/labels`;
    const label = await call('POST', labels, {
      label: 'defect',
      defectClass: 'scratch',
      note: 'n',
    });
    expectContract(ReviewLabelSchema, label);
    expect(await read(SampleLabelsSchema, labels)).toEqual({ current: label, history: [label] });
    const labelled = await read(ReviewQueuePageSchema, `/v1/review/queue${q}&labelled=true`);
    expect(labelled).toMatchObject({ items: [{ label }] });
    const quality = (await read(ReviewQualitySchema, `/v1/review/quality${q}`)) as ReviewQuality;
    expect(quality.versions).toHaveLength(1);
    const exported = await read(ReviewDatasetManifestSchema, `/v1/review/export${q}&urls=true`);
    expect(exported).toMatchObject({ count: 1, items: [{ className: 'scratch' }] });
    expect((exported as ReviewDatasetManifest).items[0]?.imageUrl).toEqual(expect.any(String));

    // The api-client's typed reads give the same answers.
    const api = new CloudApiClient({
      baseUrl: cloud.urls.http,
      adminToken: cloud.adminToken.token,
    });
    const filter = { deviceId };
    expect(await api.listVerdicts(filter)).toEqual(mine(verdicts));
    expect(await api.verdictCounts(filter)).toHaveLength(1);
    expect(await api.listWindows(filter)).toEqual(mine(windows));
    expect(await api.listEdgeEvents(filter)).toEqual(mine(events));
    expect(await api.listSamples(filter)).toEqual(indexed);
    expect((await api.getSample(deviceId, '1-0')).sample).toEqual(indexed[0]);
    expect((await api.edgeIngestStats()).stored.samples).toBe(1);
    expect(await api.deviceEvents(deviceId)).toEqual([event]);
    expect(await api.listAlerts(filter)).toHaveLength(1);
    expect((await api.driftStatus()).runs).toBe(1);
    expect(await api.listAudit({ subject: deviceId })).toEqual(audit);
  });
});

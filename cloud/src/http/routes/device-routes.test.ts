import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient, CloudApiError } from '@linesight/api-client';
import { MAX_DEVICES_PER_BATCH } from '@linesight/protocol';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';

let testCloud: TestCloud;
let api: CloudApiClient;

beforeAll(async () => {
  testCloud = await startTestCloud();
  api = testCloud.api;
});

afterAll(async () => {
  await testCloud.close();
});

async function refusal(p: Promise<unknown>): Promise<CloudApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CloudApiError);
  return err as CloudApiError;
}

describe('POST /v1/devices/batch', () => {
  it('provisions every device of the batch, each with its own secret that logs in to the broker', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `batch-a-${i}`);
    const answer = await api.provisionDevices(
      ids.map((id, i) => ({ id, ...(i === 0 ? { labels: { line: 'L1' } } : {}) })),
    );
    expect(answer.map((d) => d.deviceId)).toEqual(ids);
    expect(new Set(answer.map((d) => d.password)).size).toBe(ids.length);
    for (const d of answer) {
      expect(d.username).toBe(d.deviceId);
      expect(d.mqttUrl).toBe(testCloud.cloud.urls.mqtt);
      expect(d.trustedKeys.length).toBeGreaterThan(0);
    }
    const listed = new Map((await api.listDevices()).map((d) => [d.id, d]));
    expect(listed.get('batch-a-0')?.labels).toEqual({ line: 'L1' });
    expect(listed.get('batch-a-39')?.labels).toEqual({});

    const last = answer.at(-1)!;
    const client = await mqtt.connectAsync(testCloud.cloud.urls.mqtt, {
      clientId: last.deviceId,
      username: last.username,
      password: last.password,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    await client.endAsync(true);
    // Another device's secret is not this one's.
    await expect(
      mqtt.connectAsync(testCloud.cloud.urls.mqtt, {
        clientId: last.deviceId,
        username: last.username,
        password: answer[0]!.password,
        reconnectPeriod: 0,
        protocolVersion: 4,
      }),
    ).rejects.toThrow();

    const audit = await api.listAudit({ action: 'device.provision', limit: 500 });
    const batchEntries = audit.filter((e) => e.subject.startsWith('batch-a-'));
    expect(batchEntries.map((e) => e.subject).sort()).toEqual([...ids].sort());
    expect(batchEntries[0]?.details).toMatchObject({ batch: 40 });
  });

  it('refuses the whole batch when one id is taken or listed twice, naming it', async () => {
    await api.provisionDevice('batch-b-taken');
    const taken = await refusal(
      api.provisionDevices([{ id: 'batch-b-new' }, { id: 'batch-b-taken' }]),
    );
    expect(taken.status).toBe(409);
    expect(taken.message).toMatch(/batch-b-taken/);
    const twice = await refusal(
      api.provisionDevices([{ id: 'batch-b-two' }, { id: 'batch-b-other' }, { id: 'batch-b-two' }]),
    );
    expect(twice.status).toBe(409);
    expect(twice.message).toMatch(/1 device\(s\).*batch-b-two; nothing was provisioned/);
    const ids = (await api.listDevices()).map((d) => d.id);
    expect(ids).toContain('batch-b-taken');
    expect(ids).not.toContain('batch-b-new');
    expect(ids).not.toContain('batch-b-two');
    expect(ids).not.toContain('batch-b-other');
  });

  it('refuses an empty batch, one over the limit, a reserved id, and a token below admin', async () => {
    expect((await refusal(api.provisionDevices([]))).status).toBe(400);
    const tooMany = Array.from({ length: MAX_DEVICES_PER_BATCH + 1 }, (_, i) => ({
      id: `batch-c-${i}`,
    }));
    expect((await refusal(api.provisionDevices(tooMany))).status).toBe(400);
    const reserved = await refusal(
      api.provisionDevices([{ id: 'batch-c-fine' }, { id: 'linesight-ingest' }]),
    );
    expect(reserved.status).toBe(400);
    expect(reserved.message).toMatch(/reserved/);
    const operator = new CloudApiClient({
      baseUrl: testCloud.cloud.urls.http,
      adminToken: (await api.createToken('batch-operator', 'operator')).token,
    });
    expect((await refusal(operator.provisionDevices([{ id: 'batch-c-op' }]))).status).toBe(403);
    const ids = (await api.listDevices()).map((d) => d.id);
    expect(ids.filter((id) => id.startsWith('batch-c-'))).toEqual([]);
  });
});

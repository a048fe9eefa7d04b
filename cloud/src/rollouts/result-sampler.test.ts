import mqtt, { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deviceTopic, type FrameResult } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { EmbeddedBroker } from '../broker/embedded-broker.ts';
import { ResultSampler } from './result-sampler.ts';

let broker: EmbeddedBroker;
let url: string;
let publisher: MqttClient;
let sampler: ResultSampler;
const logger = pino({ level: 'silent' });

beforeEach(async () => {
  broker = new EmbeddedBroker({
    host: '127.0.0.1',
    port: 0,
    logger,
    authenticate: (_clientId, username, password) =>
      username === 'service' && password === 'service-secret' ? { kind: 'service' } : undefined,
  });
  url = `mqtt://127.0.0.1:${await broker.start()}`;
  publisher = await mqtt.connectAsync(url, {
    clientId: 'publisher',
    username: 'service',
    password: 'service-secret',
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  sampler = new ResultSampler({
    mqttUrl: url,
    username: 'service',
    password: 'service-secret',
    logger,
  });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await sampler.close();
  await publisher.endAsync(true);
  await broker.close();
});

/** A result of `deviceId` scored by m@2.0.0 (or `model`), with its inference and total latency. */
function result(
  deviceId: string,
  seq: number,
  options: { model?: FrameResult['model']; inferenceMs?: number } = {},
): FrameResult {
  const inference = options.inferenceMs ?? 7;
  return {
    schema: 'linesight.result/v1',
    deviceId,
    seq,
    capturedAt: new Date().toISOString(),
    verdict: 'good',
    score: 0.1,
    threshold: 0.5,
    model: options.model === undefined ? { name: 'm', version: '2.0.0' } : options.model,
    latencyMs: { capture: 1, queue: 0, preprocess: 3, inference, total: inference + 4 },
  };
}

/** Publishes on `deviceId`'s results topic (a result object, or raw text). */
async function publish(deviceId: string, payload: FrameResult | string): Promise<void> {
  await publisher.publishAsync(
    deviceTopic(deviceId, 'results'),
    typeof payload === 'string' ? payload : JSON.stringify(payload),
  );
}

/** Waits until `key` holds `count` frames of `deviceId` (while frames keep coming in, however slowly). */
async function framesOf(key: string, deviceId: string, count: number) {
  return eventually(
    () => {
      const list = sampler.samples(key).get(deviceId);
      return list !== undefined && list.length >= count ? list : undefined;
    },
    {
      timeoutMs: 20_000,
      intervalMs: 20,
      what: `${count} frames of ${deviceId} under ${key}`,
      progress: () => String([...sampler.samples(key).values()].flat().length),
    },
  );
}

describe('ResultSampler', () => {
  it("collects the watched devices' results as name@version with inference and total latency and when they came", async () => {
    await sampler.start();
    await sampler.watch('r1', ['d1', 'd2']);
    expect(sampler.samples('r1')).toEqual(
      new Map([
        ['d1', []],
        ['d2', []],
      ]),
    );
    const before = Date.now();
    await publish('d3', result('d3', 1));
    await publish('d1', result('d1', 1, { inferenceMs: 12 }));
    await publish('d2', result('d2', 1));
    const [d2] = await framesOf('r1', 'd2', 1);
    expect(sampler.samples('r1').get('d1')).toEqual([
      { model: 'm@2.0.0', atMs: expect.any(Number), inferenceMs: 12, totalMs: 16 },
    ]);
    expect(d2?.atMs).toBeGreaterThanOrEqual(before);
    expect(d2?.atMs).toBeLessThanOrEqual(Date.now());
    expect([...sampler.samples('r1').keys()]).toEqual(['d1', 'd2']);
    expect(sampler.samples('other')).toEqual(new Map());
  });

  it("ignores results without a model, naming another device than their topic's, and invalid or empty payloads", async () => {
    await sampler.start();
    await sampler.watch('r1', ['d1']);
    await publish('d1', result('d1', 1, { model: null }));
    await publish('d1', result('d2', 2));
    await publish('d1', 'not json');
    await publish('d1', '');
    await publish('d1', { ...result('d1', 3), verdict: 'maybe' } as unknown as FrameResult);
    await publish('d1', result('d1', 4, { inferenceMs: 30 }));
    await framesOf('r1', 'd1', 1);
    // The valid result came last: everything before it was looked at and dropped.
    expect(
      sampler
        .samples('r1')
        .get('d1')
        ?.map((f) => f.inferenceMs),
    ).toEqual([30]);
  });

  it('feeds a device watched under two keys to both, and unsubscribes it once no key watches it', async () => {
    await sampler.start();
    const subscribe = vi.spyOn(MqttClient.prototype, 'subscribeAsync');
    const unsubscribe = vi.spyOn(MqttClient.prototype, 'unsubscribeAsync');
    await sampler.watch('a', ['d1', 'd2']);
    await sampler.watch('b', ['d2']);
    expect(subscribe.mock.calls.map(([topics]) => topics)).toEqual([
      [deviceTopic('d1', 'results'), deviceTopic('d2', 'results')],
    ]);
    await publish('d1', result('d1', 1));
    await publish('d2', result('d2', 1));
    await framesOf('a', 'd2', 1);
    await framesOf('b', 'd2', 1);
    expect(sampler.samples('a').get('d1')).toHaveLength(1);
    await sampler.unwatch('a');
    expect(sampler.samples('a')).toEqual(new Map());
    expect(unsubscribe.mock.calls.map(([topics]) => topics)).toEqual([
      [deviceTopic('d1', 'results')],
    ]);
    await publish('d2', result('d2', 2));
    await framesOf('b', 'd2', 2);
    await sampler.unwatch('b');
    await sampler.unwatch('b');
    expect(unsubscribe.mock.calls.map(([topics]) => topics)).toEqual([
      [deviceTopic('d1', 'results')],
      [deviceTopic('d2', 'results')],
    ]);
    // Watched again, a device is subscribed again.
    await sampler.watch('c', ['d1']);
    expect(subscribe.mock.calls.at(-1)?.[0]).toEqual([deviceTopic('d1', 'results')]);
    await publish('d1', result('d1', 2));
    await framesOf('c', 'd1', 1);
  });

  it('starts a key over when it is watched again, with the new devices only', async () => {
    await sampler.start();
    const unsubscribe = vi.spyOn(MqttClient.prototype, 'unsubscribeAsync');
    await sampler.watch('r1', ['d1']);
    await publish('d1', result('d1', 1));
    await framesOf('r1', 'd1', 1);
    await sampler.watch('r1', ['d2']);
    expect(sampler.samples('r1')).toEqual(new Map([['d2', []]]));
    expect(unsubscribe.mock.calls.map(([topics]) => topics)).toEqual([
      [deviceTopic('d1', 'results')],
    ]);
  });

  it('keeps at most 5000 frames per device', async () => {
    await sampler.start();
    await sampler.watch('r1', ['d1', 'd2']);
    const topic = deviceTopic('d1', 'results');
    for (let seq = 0; seq < 5001; seq++)
      publisher.publish(topic, JSON.stringify(result('d1', seq)));
    // One connection delivers in order: once d2's result is in, every one of d1's is.
    await publish('d2', result('d2', 0));
    await framesOf('r1', 'd2', 1);
    expect(sampler.samples('r1').get('d1')).toHaveLength(5000);
  });

  it('watches before it is started, closes twice, and holds nothing once closed', async () => {
    await sampler.watch('r1', ['d1']);
    expect(sampler.samples('r1')).toEqual(new Map([['d1', []]]));
    await sampler.unwatch('r1');
    await sampler.watch('r1', ['d1']);
    await sampler.close();
    await sampler.close();
    expect(sampler.samples('r1')).toEqual(new Map());
  });

  it('fails to start on a refused login', async () => {
    const refused = new ResultSampler({
      mqttUrl: url,
      username: 'service',
      password: 'wrong',
      logger,
    });
    try {
      await expect(refused.start()).rejects.toThrow(/Not authorized|Bad username or password/);
    } finally {
      await refused.close();
    }
  });
});

import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopic, isLinesightError } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { loadCloudConfig } from './config.ts';

let testCloud: TestCloud;

beforeAll(async () => {
  // A rate no agent would reach in a test, so only this test's flood is throttled.
  testCloud = await startTestCloud({
    config: { mqttDeviceMessagesPerSec: 20, mqttDeviceMessageBurst: 5 },
  });
});

afterAll(async () => {
  await testCloud?.close();
});

function throttled(metrics: string): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith('linesight_mqtt_throttled_publishes_total'));
  return Number(line?.split(' ').at(-1) ?? Number.NaN);
}

describe('the embedded broker limits from the cloud config', () => {
  it('throttles a device at its configured rate and burst, not at the default', async () => {
    const { deviceId, password } = await testCloud.api.provisionDevice('rate-1');
    const client = await mqtt.connectAsync(testCloud.mqttUrl, {
      clientId: deviceId,
      username: deviceId,
      password,
      reconnectPeriod: 0,
    });
    try {
      const metricsUrl = `${testCloud.httpUrl}/metrics`;
      const before = throttled(await (await fetch(metricsUrl)).text());

      expect(before).toBe(0);
      // 30 publishes at once: 5 go at once, the rest at 20/s (about 1.3 s).
      for (let i = 0; i < 30; i++)
        client.publish(deviceTopic(deviceId, 'results'), JSON.stringify({ i }));
      // Up to 25 over the burst (fewer if a slow machine spreads the 30 out); the default
      // limits (200/s, burst 1000) would throttle none of them.
      await eventually(async () => throttled(await (await fetch(metricsUrl)).text()) > 0, {
        timeoutMs: 10_000,
      });
    } finally {
      await client.endAsync(true);
    }
  });

  it('refuses a rate or burst that is not positive', () => {
    for (const bad of [{ mqttDeviceMessagesPerSec: 0 }, { mqttDeviceMessageBurst: 0.5 }]) {
      let caught: unknown;
      try {
        loadCloudConfig(bad);
      } catch (err) {
        caught = err;
      }
      expect(isLinesightError(caught, 'ERR_CLOUD_CONFIG')).toBe(true);
    }
    const config = loadCloudConfig({});
    expect(config.mqttDeviceMessagesPerSec).toBe(200);
    expect(config.mqttDeviceMessageBurst).toBe(1000);
  });
});

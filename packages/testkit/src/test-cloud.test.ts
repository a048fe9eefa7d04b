import { access } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { startTestCloud } from './test-cloud.ts';

describe('startTestCloud', () => {
  it('serves on free local ports with an admin token, and close() removes its folder', async () => {
    const cloud = await startTestCloud();
    try {
      expect(cloud.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(cloud.mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
      expect(await cloud.api.listDevices()).toEqual([]);
      const res = await fetch(`${cloud.httpUrl}/v1/devices`, {
        headers: { authorization: 'Bearer wrong' },
      });
      expect(res.status).toBe(401);
    } finally {
      await cloud.close();
      await cloud.close();
    }
    await expect(access(cloud.dir)).rejects.toThrow(/ENOENT/);
  });
});

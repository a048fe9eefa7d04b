import { access } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { pem, startTlsTestCloud } from './test-tls-cloud.ts';

describe('startTlsTestCloud', () => {
  it('serves HTTPS and mqtts to clients pinning its CA, logs devices in, survives a restart, and close() removes its folders', async () => {
    const tls = await startTlsTestCloud();
    try {
      expect(tls.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(tls.mqttUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
      const provisioned = await tls.https('POST', '/v1/devices', {
        token: tls.adminToken,
        body: { id: 'kit-dev-1' },
      });
      expect(provisioned.status).toBe(201);
      const { password, caPem } = provisioned.body as { password: string; caPem: string };
      expect(caPem).toBe(pem(tls.ca.certPath));
      expect((await tls.https('GET', '/v1/devices', { token: 'wrong' })).status).toBe(401);
      expect(await tls.metric('linesight_mqtt_auth_failures_total')).toBe(0);

      expect(await tls.deviceLogin('kit-dev-1', { password })).toBe('accepted');
      const cert = await tls.deviceCa.issue('kit-dev-1', { client: true });
      expect(await tls.deviceLogin('kit-dev-1', { client: cert })).toBe('accepted');
      expect(await tls.deviceLogin('kit-dev-1', { password: 'wrong' })).toMatch(
        /Bad username or password|Not authorized/i,
      );
      expect(await tls.metric('linesight_mqtt_auth_failures_total')).toBe(1);
      // Pinning a CA that did not sign the server certificate fails the handshake.
      expect(
        await tls.deviceLogin('kit-dev-1', { password, caPath: tls.otherCa.certPath }),
      ).toMatch(/certificate/i);
      await expect(
        tls.https('GET', '/healthz', { caPath: tls.otherCa.certPath }),
      ).rejects.toThrow();
      expect(await tls.metric('no_such_metric')).toBeNaN();

      const before = tls.httpUrl;
      const first = tls.cloud;
      await tls.restart();
      expect(tls.cloud).not.toBe(first);
      expect(tls.httpUrl).not.toBe(before);
      const live = await tls.connectDevice('kit-dev-1', { password });
      expect(live.connected).toBe(true);
      await live.endAsync(true);
    } finally {
      await tls.close();
      await tls.close();
    }
    await expect(access(tls.dir)).rejects.toThrow(/ENOENT/);
    await expect(access(tls.ca.certPath)).rejects.toThrow(/ENOENT/);
  }, 60_000);
});

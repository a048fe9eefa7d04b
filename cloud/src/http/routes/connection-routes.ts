import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { CloudServices } from '../services.ts';

/** The addresses devices and clients must use, so cached ones can be refreshed. */
export const ConnectionView = Type.Object({
  cloudUrl: Type.String({ description: 'HTTP base URL (advertised, else bound)' }),
  mqttUrl: Type.String({ description: 'MQTT URL devices connect to (advertised, else bound)' }),
});

/** GET /v1/connection: where the running cloud is reachable now. */
export async function connectionRoutes(
  app: FastifyInstance,
  services: CloudServices,
): Promise<void> {
  app.get(
    '/v1/connection',
    {
      config: { auth: 'token-or-device' },
      schema: {
        tags: ['devices'],
        summary:
          'Where the cloud is reachable now (HTTP and MQTT URLs); a device or simulator with stored URLs checks them here',
        response: { 200: ConnectionView },
      },
    },
    async () => ({ cloudUrl: services.httpUrl(), mqttUrl: services.mqttUrl() }),
  );
}

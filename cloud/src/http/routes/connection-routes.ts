import type { FastifyInstance } from 'fastify';
import { ConnectionViewSchema } from '@linesight/protocol';
import type { CloudServices } from '../services.ts';

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
        response: { 200: ConnectionViewSchema },
      },
    },
    async () => ({ cloudUrl: services.httpUrl(), mqttUrl: services.mqttUrl() }),
  );
}

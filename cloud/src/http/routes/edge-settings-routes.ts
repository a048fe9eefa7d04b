import type { FastifyInstance } from 'fastify';
import {
  DeviceEdgeSettingsSchema,
  DeviceIdParamsSchema,
  EdgeDataSettingsSchema,
  type DeviceEdgeSettings,
  type EdgeDataSettings,
} from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { actorOf } from '../auth.ts';

/**
 * A device's edge-data settings (telemetry window and sampling policy): read
 * what is asked and what the device reports it runs; set them as part of its
 * signed desired state, keeping the model and the rest of the document.
 */
export async function edgeSettingsRoutes(
  app: FastifyInstance,
  services: CloudServices,
): Promise<void> {
  const view = (deviceId: string): DeviceEdgeSettings => {
    const device = services.devices.get(deviceId);
    return {
      deviceId,
      desired: services.desired.current(deviceId)?.edgeData ?? null,
      revision: device.desired?.revision ?? null,
      reported: device.reported?.edgeData ?? null,
    };
  };

  app.get<{ Params: { id: string } }>(
    '/v1/devices/:id/edge-data',
    {
      schema: {
        tags: ['edge data'],
        summary: "A device's telemetry window and sampling policy: asked for, and reported",
        params: DeviceIdParamsSchema,
        response: { 200: DeviceEdgeSettingsSchema },
      },
    },
    async (request) => view(request.params.id),
  );

  app.put<{ Params: { id: string }; Body: EdgeDataSettings }>(
    '/v1/devices/:id/edge-data',
    {
      schema: {
        tags: ['edge data'],
        summary:
          "Set a device's telemetry window and sampling policy (replaces the previous settings; fields left out take the agent's defaults); published in its signed desired state",
        params: DeviceIdParamsSchema,
        body: EdgeDataSettingsSchema,
        response: { 200: DeviceEdgeSettingsSchema },
      },
    },
    async (request) => {
      const id = request.params.id;
      services.devices.get(id);
      services.desired.patchMany([[id, { edgeData: request.body }]]);
      services.audit.record(actorOf(request), 'device.edge_data', id, { edgeData: request.body });
      return view(id);
    },
  );
}

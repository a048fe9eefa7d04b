// REST contract of /v1/devices/:id/edge-data: a device's telemetry window and sampling policy.
import { Type, type Static } from '@sinclair/typebox';
import { EdgeDataReportSchema, EdgeDataSettingsSchema } from '../edge-data.ts';

/** A device's edge-data settings: asked for in its desired state, and what it reports it runs. */
export const DeviceEdgeSettingsSchema = Type.Object({
  deviceId: Type.String(),
  desired: Type.Union([EdgeDataSettingsSchema, Type.Null()], {
    description: 'what the cloud asks the device to run (null: the agent’s defaults)',
  }),
  revision: Type.Union([Type.Integer(), Type.Null()], {
    description: 'revision of the desired-state document that carries it',
  }),
  reported: Type.Union([EdgeDataReportSchema, Type.Null()], {
    description: 'the policy the device reports it runs, with its store state',
  }),
});
/** A device's edge-data settings, asked for and reported. */
export type DeviceEdgeSettings = Static<typeof DeviceEdgeSettingsSchema>;

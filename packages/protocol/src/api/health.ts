// REST contract of the open probes: /healthz and /readyz.
import { Type, type Static } from '@sinclair/typebox';

/** Answer of GET /healthz. */
export const HealthSchema = Type.Object({ status: Type.Literal('ok'), uptimeSec: Type.Number() });
/** Liveness. */
export type Health = Static<typeof HealthSchema>;

/** Answer of GET /readyz (200 when ready, 503 when not). */
export const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready')]),
  ready: Type.Boolean(),
  checks: Type.Record(Type.String(), Type.String(), {
    description: 'per dependency (broker, database, blobStore): "ok" or why it is not ready',
  }),
});
/** Readiness, per dependency. */
export type Readiness = Static<typeof ReadinessSchema>;

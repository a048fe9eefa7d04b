// REST contract of the dashboard's device history: /v1/dashboard/devices/:id/series and .../timeline.
import { Type, type Static } from '@sinclair/typebox';
import { DEVICE_ID_PATTERN } from './devices.ts';

/** Path parameters of /v1/dashboard/devices/:id/... */
export const DashboardDeviceParamsSchema = Type.Object({
  id: Type.String({ pattern: DEVICE_ID_PATTERN }),
});

const Hours = Type.Number({
  minimum: 0.01,
  maximum: 720,
  default: 24,
  description: 'how far back',
});

/** Query of GET /v1/dashboard/devices/:id/series. */
export const DeviceSeriesQuerySchema = Type.Object(
  {
    hours: Type.Optional(Hours),
    points: Type.Optional(
      Type.Integer({ minimum: 2, maximum: 1000, default: 240, description: 'buckets at most' }),
    ),
  },
  { additionalProperties: false },
);
/** Range and resolution of a device's series. */
export type DeviceSeriesQuery = Static<typeof DeviceSeriesQuerySchema>;

/** Query of GET /v1/dashboard/devices/:id/timeline. */
export const DeviceTimelineQuerySchema = Type.Object(
  {
    hours: Type.Optional({ ...Hours, default: 168 }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
  },
  { additionalProperties: false },
);
/** Range and length of a device's timeline. */
export type DeviceTimelineQuery = Static<typeof DeviceTimelineQuerySchema>;

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()]);

/** A device's stored telemetry in time buckets, and the model versions it ran. */
export const DeviceSeriesViewSchema = Type.Object({
  deviceId: Type.String(),
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time' }),
  bucketSec: Type.Number(),
  windows: Type.Integer(),
  truncated: Type.Boolean(),
  points: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      windows: Type.Integer(),
      frames: Type.Integer(),
      fps: Nullable(Type.Number()),
      p50Ms: Nullable(Type.Number()),
      p99Ms: Nullable(Type.Number()),
      defectRate: Nullable(Type.Number()),
      unknownRate: Nullable(Type.Number()),
      errors: Type.Integer(),
      droppedFrames: Type.Integer(),
      camera: Nullable(
        Type.Object({
          frames: Type.Integer(),
          frozenShare: Type.Number(),
          darkShare: Type.Number(),
          clippedShare: Type.Number(),
        }),
      ),
    }),
  ),
  versions: Type.Array(
    Type.Object({
      name: Nullable(Type.String()),
      version: Nullable(Type.String()),
      from: Type.String({ format: 'date-time' }),
      to: Type.String({ format: 'date-time' }),
      windows: Type.Integer(),
      frames: Type.Integer(),
    }),
  ),
});

/** A device's timeline, newest first. */
export const DeviceTimelineViewSchema = Type.Object({
  deviceId: Type.String(),
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time' }),
  entries: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      kind: Type.Union(['model', 'event', 'alert', 'rollout', 'audit'].map((k) => Type.Literal(k))),
      level: Type.Union(['info', 'warn', 'error'].map((k) => Type.Literal(k))),
      title: Type.String(),
      detail: Type.Optional(Type.String()),
      ref: Type.Optional(
        Type.Object({
          rollout: Type.Optional(Type.String()),
          alert: Type.Optional(Type.Integer()),
        }),
      ),
    }),
  ),
  omitted: Type.Integer(),
});

/** A device's stored telemetry over time. */
export type DeviceSeriesView = Static<typeof DeviceSeriesViewSchema>;
/** A device's timeline. */
export type DeviceTimelineView = Static<typeof DeviceTimelineViewSchema>;

/** What GET /v1/dashboard/session answers: the caller, its role and the rollout gate defaults. */
export const DashboardSessionSchema = Type.Object({
  actor: Type.String(),
  role: Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]),
  canWrite: Type.Boolean(),
  gateDefaults: Type.Record(Type.String(), Type.Number()),
});
/** The dashboard's session. */
export type DashboardSession = Static<typeof DashboardSessionSchema>;

/** Query of GET /v1/dashboard/drift/series. */
export const DriftSeriesQuerySchema = Type.Object(
  {
    deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
    hours: Type.Optional(
      Type.Number({ minimum: 0.01, maximum: 168, default: 24, description: 'how far back' }),
    ),
    points: Type.Optional(
      Type.Integer({ minimum: 2, maximum: 500, default: 120, description: 'points at most' }),
    ),
  },
  { additionalProperties: false },
);
/** Device, range and resolution of a drift series. */
export type DriftSeriesQuery = Static<typeof DriftSeriesQuerySchema>;

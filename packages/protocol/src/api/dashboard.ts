// REST contract of the dashboard's device history: /v1/dashboard/devices/:id/series and .../timeline.
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId } from '../schema-primitives.ts';

/** Path parameters of /v1/dashboard/devices/:id/... */
export const DashboardDeviceParamsSchema = Type.Object({
  id: DeviceId,
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
    deviceId: DeviceId,
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

const Level = Type.Union([Type.Literal('ok'), Type.Literal('warning'), Type.Literal('alert')]);
const Limits = Type.Object({ warning: Type.Number(), alert: Type.Number() });

/** One judged statistic at one point of a drift series. */
export const DriftSeriesValueSchema = Type.Object({
  value: Type.Number(),
  level: Level,
  pValue: Nullable(Type.Number()),
  frames: Type.Integer(),
});

/** What GET /v1/dashboard/drift/series answers: a device's product drift over time. */
export const DriftSeriesViewSchema = Type.Object({
  deviceId: Type.String(),
  lookbackSec: Type.Number(),
  minFrames: Type.Integer(),
  alpha: Type.Number(),
  levels: Type.Object({
    psi: Limits,
    ks: Limits,
    shift: Limits,
    camera: Type.Object({ frozenShare: Limits, darkShare: Limits, clippedShare: Limits }),
  }),
  windows: Type.Integer({ description: 'windows read' }),
  truncated: Type.Boolean({ description: 'the range held more windows than the cap' }),
  points: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      model: Nullable(Type.Object({ name: Type.String(), version: Type.String() })),
      values: Type.Record(Type.String(), DriftSeriesValueSchema, {
        description: 'by feature/statistic, e.g. brightness/psi',
      }),
      skipped: Type.Array(Type.String(), { description: 'why features were not judged' }),
    }),
  ),
});
/** A device's product drift over time. */
export type DriftSeriesView = Static<typeof DriftSeriesViewSchema>;

/** One row of the fleet table. */
export const FleetRowSchema = Type.Object({
  id: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  online: Type.Boolean(),
  lastSeen: Nullable(Type.String()),
  phase: Nullable(Type.String()),
  version: Nullable(Type.String({ description: 'the version the device reports running' })),
  model: Nullable(Type.String()),
  desiredVersion: Nullable(Type.String({ description: 'the version the cloud asked for' })),
  fps: Nullable(Type.Number()),
  p50Ms: Nullable(Type.Number()),
  p99Ms: Nullable(Type.Number()),
  framesCaptured: Type.Integer(),
  framesScored: Type.Integer(),
  defectRate: Nullable(Type.Number({ description: 'defects per scored frame since start' })),
  unknownRate: Nullable(Type.Number({ description: 'unknown verdicts per captured frame' })),
  errors: Type.Integer(),
  lastError: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
  camera: { ...Level, description: "the worst open camera alert ('ok' when none)" },
  drift: { ...Level, description: "the worst open product-drift alert ('ok' when none)" },
});
/** One row of the fleet table. */
export type FleetRowView = Static<typeof FleetRowSchema>;

/** Counts for the fleet page's header. */
export const FleetTotalsSchema = Type.Object({
  devices: Type.Integer(),
  online: Type.Integer(),
  moving: Type.Integer({ description: 'running another version than the desired one' }),
  withErrors: Type.Integer(),
});

/**
 * What GET /v1/dashboard/fleet answers, and the data of each fleet stream
 * event ("snapshot": every row; "update": the rows that changed).
 */
export const FleetViewSchema = Type.Object({
  at: Type.String({ format: 'date-time' }),
  totals: FleetTotalsSchema,
  devices: Type.Array(FleetRowSchema),
});
/** The fleet table. */
export type FleetView = Static<typeof FleetViewSchema>;

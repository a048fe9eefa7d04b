import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { EventRecord, TelemetryWindow } from '@linesight/protocol';
import type { AuditEntry } from '../registry/audit-log.ts';
import type { DriftAlert } from '../drift/alert-store.ts';
import type { RolloutRecord } from '../registry/rollout-store.ts';
import { deviceSeries } from './device-series.ts';
import { deviceTimeline } from './device-timeline.ts';

/** What the device history routes read. */
export interface DeviceHistoryRoutesOptions {
  /** Throws the registry's not-found error for an unknown device. */
  assertDevice: (deviceId: string) => void;
  /** A device's windows that ended in [fromMs, toMs), oldest first, at most `limit`. */
  windows: (deviceId: string, fromMs: number, toMs: number, limit: number) => TelemetryWindow[];
  /** A device's stored events in [fromMs, toMs), newest first, at most `limit` (so a cut keeps the newest). */
  events: (deviceId: string, fromMs: number, toMs: number, limit: number) => EventRecord[];
  alerts: (deviceId: string) => DriftAlert[];
  /** Rollouts whose targets include the device. */
  rollouts: (deviceId: string) => RolloutRecord[];
  /** Audit entries about the device, newest first. */
  audit: (deviceId: string) => AuditEntry[];
  /** Windows read per request at most; a range with more is narrowed to its newest part. */
  maxWindows?: number;
  now?: () => number;
}

const Params = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
});
type ParamsT = Static<typeof Params>;

const Hours = Type.Number({
  minimum: 0.01,
  maximum: 720,
  default: 24,
  description: 'how far back',
});

const SeriesQuery = Type.Object(
  {
    hours: Type.Optional(Hours),
    points: Type.Optional(
      Type.Integer({ minimum: 2, maximum: 1000, default: 240, description: 'buckets at most' }),
    ),
  },
  { additionalProperties: false },
);
type SeriesQueryT = Static<typeof SeriesQuery>;

const TimelineQuery = Type.Object(
  {
    hours: Type.Optional({ ...Hours, default: 168 }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
  },
  { additionalProperties: false },
);
type TimelineQueryT = Static<typeof TimelineQuery>;

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()]);

const SeriesView = Type.Object({
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

const TimelineView = Type.Object({
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

/**
 * GET /v1/dashboard/devices/:id/series (a device's stored telemetry in time
 * buckets: throughput, latency, defect rate, camera health, and the model
 * versions it ran) and GET /v1/dashboard/devices/:id/timeline (model
 * versions, events, alerts, rollouts and changes, newest first). Both read
 * what the cloud stored, so they cover the past, not only an open page.
 */
export async function deviceHistoryRoutes(
  app: FastifyInstance,
  o: DeviceHistoryRoutesOptions,
): Promise<void> {
  const maxWindows = o.maxWindows ?? 20_000;
  const now = o.now ?? Date.now;

  /** The newest windows of the range, halving the range until they fit the cap. */
  const readWindows = (deviceId: string, hours: number) => {
    const toMs = now() + 1;
    let fromMs = toMs - hours * 3_600_000;
    let windows = o.windows(deviceId, fromMs, toMs, maxWindows + 1);
    let truncated = false;
    while (windows.length > maxWindows && toMs - fromMs > 1000) {
      truncated = true;
      fromMs = toMs - (toMs - fromMs) / 2;
      windows = o.windows(deviceId, fromMs, toMs, maxWindows + 1);
    }
    return { windows: windows.slice(-maxWindows), fromMs, toMs, truncated };
  };

  app.get<{ Params: ParamsT; Querystring: SeriesQueryT }>(
    '/v1/dashboard/devices/:id/series',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          "A device's stored telemetry over time: frames/s, latency p50/p99, defect and unknown rates, errors and camera health per bucket, and the model versions it ran",
        params: Params,
        querystring: SeriesQuery,
        response: { 200: SeriesView },
      },
    },
    async (request) => {
      const id = request.params.id;
      o.assertDevice(id);
      const read = readWindows(id, request.query.hours ?? 24);
      return deviceSeries({
        deviceId: id,
        ...read,
        maxPoints: request.query.points ?? 240,
      });
    },
  );

  app.get<{ Params: ParamsT; Querystring: TimelineQueryT }>(
    '/v1/dashboard/devices/:id/timeline',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          "A device's timeline, newest first: the model versions it ran, its events, drift and camera alerts, rollouts that targeted it, and changes to it",
        params: Params,
        querystring: TimelineQuery,
        response: { 200: TimelineView },
      },
    },
    async (request) => {
      const id = request.params.id;
      o.assertDevice(id);
      const limit = request.query.limit ?? 200;
      const hours = request.query.hours ?? 168;
      const read = readWindows(id, hours);
      const versions = deviceSeries({ deviceId: id, ...read, maxPoints: 2 }).versions;
      // Only the versions narrow with a capped window read; the rest covers the whole range.
      const fromMs = read.toMs - hours * 3_600_000;
      return deviceTimeline({
        deviceId: id,
        versions,
        events: o.events(id, fromMs, read.toMs, 5000),
        alerts: o.alerts(id),
        rollouts: o.rollouts(id),
        audit: o.audit(id),
        fromMs,
        toMs: read.toMs,
        limit,
      });
    },
  );
}

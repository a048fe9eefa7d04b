import type { FastifyInstance } from 'fastify';
import {
  DashboardDeviceParamsSchema,
  DeviceSeriesQuerySchema,
  DeviceSeriesViewSchema,
  DeviceTimelineQuerySchema,
  DeviceTimelineViewSchema,
  type DeviceSeriesQuery,
  type DeviceSeriesView,
  type DeviceTimelineQuery,
  type DeviceTimelineView,
  type EventRecord,
  type TelemetryWindow,
} from '@linesight/protocol';
import type { Static } from '@sinclair/typebox';
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

  app.get<{ Params: Static<typeof DashboardDeviceParamsSchema>; Querystring: DeviceSeriesQuery }>(
    '/v1/dashboard/devices/:id/series',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          "A device's stored telemetry over time: frames/s, latency p50/p99, defect and unknown rates, errors and camera health per bucket, and the model versions it ran",
        params: DashboardDeviceParamsSchema,
        querystring: DeviceSeriesQuerySchema,
        response: { 200: DeviceSeriesViewSchema },
      },
    },
    async (request): Promise<DeviceSeriesView> => {
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

  app.get<{ Params: Static<typeof DashboardDeviceParamsSchema>; Querystring: DeviceTimelineQuery }>(
    '/v1/dashboard/devices/:id/timeline',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          "A device's timeline, newest first: the model versions it ran, its events, drift and camera alerts, rollouts that targeted it, and changes to it",
        params: DashboardDeviceParamsSchema,
        querystring: DeviceTimelineQuerySchema,
        response: { 200: DeviceTimelineViewSchema },
      },
    },
    async (request): Promise<DeviceTimelineView> => {
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

import type { FastifyInstance } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import {
  DriftSeriesQuerySchema,
  DriftSeriesViewSchema,
  WindowReferenceSchema,
  type DriftSeriesQuery,
  type DriftSeriesView,
  type TelemetryWindow,
} from '@linesight/protocol';
import type { DriftSettings } from '../drift/drift-settings.ts';
import { serializeAsIs } from '../http/serialize-as-is.ts';
import { driftSeries, type SeriesReference } from './drift-series.ts';

/** What the drift series route reads. */
export interface DriftSeriesRouteOptions {
  settings: DriftSettings;
  /** A device's windows that ended in [fromMs, toMs), oldest first, at most `limit`. */
  windows: (deviceId: string, fromMs: number, toMs: number, limit: number) => TelemetryWindow[];
  /** A model version's threshold and contract reference profile; undefined when unknown. */
  model: (
    name: string,
    version: string,
  ) => { threshold: number; referenceProfile?: Record<string, unknown> } | undefined;
  /** Windows read per request at most; a range with more is narrowed to its newest part. */
  maxWindows?: number;
  now?: () => number;
}

/**
 * GET /v1/dashboard/drift/series: a device's PSI, KS and defect-rate shift
 * over time, each point what the drift job would have judged at the end of a
 * window, with the levels alerts open at (for the drift page's charts).
 */
export async function driftSeriesRoute(
  app: FastifyInstance,
  o: DriftSeriesRouteOptions,
): Promise<void> {
  const maxWindows = o.maxWindows ?? 20_000;
  const now = o.now ?? Date.now;
  // Contracts do not change once registered, so each version is checked once.
  const references = new Map<string, SeriesReference | undefined>();
  const reference = (name: string, version: string): SeriesReference | undefined => {
    const key = `${name}@${version}`;
    if (references.has(key)) return references.get(key);
    const model = o.model(name, version);
    if (model === undefined) return undefined; // not cached: it may be registered later
    const window = model.referenceProfile?.['window'];
    const ref = {
      threshold: model.threshold,
      window:
        window !== undefined && Value.Check(WindowReferenceSchema, window) ? window : undefined,
    };
    references.set(key, ref);
    return ref;
  };

  app.get<{ Querystring: DriftSeriesQuery }>(
    '/v1/dashboard/drift/series',
    {
      // Statistics may be NaN (written as null, as JSON.stringify does) where the schema says number.
      ...serializeAsIs,
      schema: {
        tags: ['dashboard'],
        summary:
          "A device's product drift over time (PSI, KS, defect-rate shift per feature) as the drift job judges it, with the alert levels",
        querystring: DriftSeriesQuerySchema,
        response: { 200: DriftSeriesViewSchema },
      },
    },
    async (request): Promise<DriftSeriesView> => {
      const q = request.query;
      const toMs = now() + 1;
      const rangeMs = (q.hours ?? 24) * 3_600_000;
      const lookbackMs = o.settings.lookbackSec * 1000;
      let fromMs = toMs - rangeMs;
      let windows = o.windows(q.deviceId, fromMs - lookbackMs, toMs, maxWindows + 1);
      let truncated = false;
      // Too many: keep the newest part of the range, halving it until it fits.
      while (windows.length > maxWindows && toMs - fromMs > 1000) {
        truncated = true;
        fromMs = toMs - (toMs - fromMs) / 2;
        windows = o.windows(q.deviceId, fromMs - lookbackMs, toMs, maxWindows + 1);
      }
      return driftSeries({
        deviceId: q.deviceId,
        windows,
        truncated,
        reference,
        settings: o.settings,
        maxPoints: q.points ?? 120,
        fromMs,
      });
    },
  );
}

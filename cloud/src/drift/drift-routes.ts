import type { FastifyInstance } from 'fastify';
import {
  AlertFilterQuerySchema,
  AlertListSchema,
  DriftRunSummarySchema,
  DriftStatusSchema,
  LinesightError,
  type AlertFilterQuery,
  type AlertList,
  type DriftRunSummaryView,
  type DriftStatus,
} from '@linesight/protocol';
import type { AlertStore } from './alert-store.ts';
import type { DriftJob } from './drift-job.ts';

/** What the drift routes use. */
export interface DriftRouteDeps {
  alerts: AlertStore;
  job: DriftJob;
}

/**
 * Drift REST (operator auth, as every /v1 route): the alert list with
 * filters, the last run's summary, and a run on demand.
 */
export async function driftRoutes(app: FastifyInstance, deps: DriftRouteDeps): Promise<void> {
  app.get<{ Querystring: AlertFilterQuery }>(
    '/v1/alerts',
    {
      schema: {
        tags: ['drift'],
        summary: 'Drift and camera alerts, newest first, by device, state, level and kind',
        querystring: AlertFilterQuerySchema,
        response: { 200: AlertListSchema },
      },
    },
    async (request): Promise<AlertList> => ({ alerts: deps.alerts.list(request.query) }),
  );

  app.get(
    '/v1/drift/status',
    {
      schema: {
        tags: ['drift'],
        summary: 'The drift job: counters and the last run',
        response: { 200: DriftStatusSchema },
      },
    },
    async (): Promise<DriftStatus> => {
      const stats = deps.job.stats;
      return {
        running: deps.job.running,
        runs: stats.runs,
        failed: stats.failed,
        overlapped: stats.overlapped,
        lastRun: stats.lastRun ?? null,
      };
    },
  );

  app.post(
    '/v1/drift/runs',
    {
      schema: {
        tags: ['drift'],
        summary: 'Runs the drift job now (or waits for the run under way) and returns its summary',
        response: { 200: DriftRunSummarySchema },
      },
    },
    async (): Promise<DriftRunSummaryView> => {
      try {
        return await deps.job.run();
      } catch (cause) {
        throw new LinesightError('ERR_INTERNAL', 'drift run failed', { cause });
      }
    },
  );
}

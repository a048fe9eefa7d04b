import type { FastifyInstance } from 'fastify';
import {
  EdgeEventListSchema,
  EdgeFilterQuerySchema,
  EdgeIngestStatsSchema,
  EdgeSampleDownloadSchema,
  EdgeSampleListSchema,
  EdgeSampleParamsSchema,
  EdgeSamplesQuerySchema,
  EdgeVerdictCountListSchema,
  EdgeVerdictCountsQuerySchema,
  EdgeVerdictListSchema,
  EdgeWindowListSchema,
  LinesightError,
  type EdgeFilterQuery,
  type EdgeEventList,
  type EdgeIngestStats,
  type EdgeSampleDownload,
  type EdgeSampleList,
  type EdgeSampleParams,
  type EdgeSamplesQuery,
  type EdgeVerdictCountList,
  type EdgeVerdictList,
  type EdgeWindowList,
  type EdgeVerdictCountsQuery,
} from '@linesight/protocol';
import type { EdgeDataStore, EdgeQuery } from './edge-data-store.ts';
import type { EdgeIngest } from './edge-ingest.ts';

/** What the edge-data routes use. */
export interface EdgeDataRouteDeps {
  store: EdgeDataStore;
  ingest: EdgeIngest;
  /** A short-lived URL to read an object; undefined when the blob store cannot issue one. */
  createDownloadUrl?: (key: string, ttlSec: number) => Promise<string>;
  /** Lifetime of sample download URLs (default 300 s). */
  downloadTtlSec?: number;
}

function toQuery(q: EdgeFilterQuery): EdgeQuery {
  const out: EdgeQuery = {};
  if (q.deviceId !== undefined) out.deviceId = q.deviceId;
  if (q.model !== undefined) out.modelName = q.model;
  if (q.version !== undefined) out.modelVersion = q.version;
  if (q.from !== undefined) out.fromMs = Date.parse(q.from);
  if (q.to !== undefined) out.toMs = Date.parse(q.to);
  if (q.limit !== undefined) out.limit = q.limit;
  return out;
}

/**
 * Edge-data REST: the verdict log, verdict counts per device / model /
 * time bucket, telemetry windows, events, the sample index (with a
 * short-lived download URL per sample) and ingest counters. Operator auth.
 */
export async function edgeDataRoutes(app: FastifyInstance, deps: EdgeDataRouteDeps): Promise<void> {
  app.get<{ Querystring: EdgeFilterQuery }>(
    '/v1/edge/verdicts',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Verdict-log records by device, model version and time range, oldest first',
        querystring: EdgeFilterQuerySchema,
        response: { 200: EdgeVerdictListSchema },
      },
    },
    async (request): Promise<EdgeVerdictList> => ({
      records: deps.store.verdicts(toQuery(request.query)),
    }),
  );

  app.get<{ Querystring: EdgeVerdictCountsQuery }>(
    '/v1/edge/verdict-counts',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Verdict counts per device, model version and time bucket',
        querystring: EdgeVerdictCountsQuerySchema,
        response: { 200: EdgeVerdictCountListSchema },
      },
    },
    async (request): Promise<EdgeVerdictCountList> => ({
      buckets: deps.store.verdictCounts({
        ...toQuery(request.query),
        bucketSec: request.query.bucketSec ?? 3600,
      }),
    }),
  );

  app.get<{ Querystring: EdgeFilterQuery }>(
    '/v1/edge/windows',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Telemetry windows by device, model version and time range, oldest first',
        querystring: EdgeFilterQuerySchema,
        response: { 200: EdgeWindowListSchema },
      },
    },
    async (request): Promise<EdgeWindowList> => ({
      windows: deps.store.windows(toQuery(request.query)),
    }),
  );

  app.get<{ Querystring: EdgeFilterQuery }>(
    '/v1/edge/events',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Device events kept in device stores, oldest first',
        querystring: EdgeFilterQuerySchema,
        response: { 200: EdgeEventListSchema },
      },
    },
    async (request): Promise<EdgeEventList> => ({
      events: deps.store.events(toQuery(request.query)),
    }),
  );

  app.get<{ Querystring: EdgeSamplesQuery }>(
    '/v1/samples',
    {
      schema: {
        tags: ['edge data'],
        summary: 'The sample index, newest first',
        querystring: EdgeSamplesQuerySchema,
        response: { 200: EdgeSampleListSchema },
      },
    },
    async (request): Promise<EdgeSampleList> => ({
      samples: deps.store.samples({
        ...toQuery(request.query),
        ...(request.query.class !== undefined ? { class: request.query.class } : {}),
      }),
    }),
  );

  app.get<{ Params: EdgeSampleParams }>(
    '/v1/samples/:deviceId/:id',
    {
      schema: {
        tags: ['edge data'],
        summary: 'One sample with short-lived download URLs for its image and anomaly map',
        params: EdgeSampleParamsSchema,
        response: { 200: EdgeSampleDownloadSchema },
      },
    },
    async (request): Promise<EdgeSampleDownload> => {
      const [boot, seq] = request.params.id.split('-').map(Number) as [number, number];
      const sample = deps.store.sample(request.params.deviceId, boot, seq);
      if (sample === undefined)
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          `no sample ${request.params.id} from device ${request.params.deviceId}`,
        );
      const ttlSec = deps.downloadTtlSec ?? 300;
      const create = deps.createDownloadUrl;
      if (create === undefined) return { sample, downloadUrl: null, mapUrl: null, expiresAt: null };
      return {
        sample,
        downloadUrl: await create(sample.objectKey, ttlSec),
        mapUrl: sample.mapKey === undefined ? null : await create(sample.mapKey, ttlSec),
        expiresAt: new Date(Date.now() + ttlSec * 1000).toISOString(),
      };
    },
  );

  app.get(
    '/v1/edge/ingest-stats',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Edge-data ingest counters and stored rows',
        response: { 200: EdgeIngestStatsSchema },
      },
    },
    async (): Promise<EdgeIngestStats> => ({
      ingest: deps.ingest.stats,
      stored: deps.store.counts(),
    }),
  );
}

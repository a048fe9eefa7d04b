import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { LinesightError } from '@linesight/protocol';
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

const Filter = Type.Object(
  {
    deviceId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'model name' })),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
type FilterQuery = Static<typeof Filter>;

function toQuery(q: FilterQuery): EdgeQuery {
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
  app.get<{ Querystring: FilterQuery }>(
    '/v1/edge/verdicts',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Verdict-log records by device, model version and time range, oldest first',
        querystring: Filter,
      },
    },
    async (request) => ({ records: deps.store.verdicts(toQuery(request.query)) }),
  );

  app.get<{ Querystring: FilterQuery & { bucketSec?: number } }>(
    '/v1/edge/verdict-counts',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Verdict counts per device, model version and time bucket',
        querystring: Type.Composite(
          [
            Filter,
            Type.Object({
              bucketSec: Type.Optional(
                Type.Integer({ minimum: 60, maximum: 31 * 86_400, default: 3600 }),
              ),
            }),
          ],
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      buckets: deps.store.verdictCounts({
        ...toQuery(request.query),
        bucketSec: request.query.bucketSec ?? 3600,
      }),
    }),
  );

  app.get<{ Querystring: FilterQuery }>(
    '/v1/edge/windows',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Telemetry windows by device, model version and time range, oldest first',
        querystring: Filter,
      },
    },
    async (request) => ({ windows: deps.store.windows(toQuery(request.query)) }),
  );

  app.get<{ Querystring: FilterQuery }>(
    '/v1/edge/events',
    {
      schema: {
        tags: ['edge data'],
        summary: 'Device events kept in device stores, oldest first',
        querystring: Filter,
      },
    },
    async (request) => ({ events: deps.store.events(toQuery(request.query)) }),
  );

  app.get<{ Querystring: FilterQuery & { class?: string } }>(
    '/v1/samples',
    {
      schema: {
        tags: ['edge data'],
        summary: 'The sample index, newest first',
        querystring: Type.Composite(
          [
            Filter,
            Type.Object({
              class: Type.Optional(
                Type.Union([
                  Type.Literal('defect'),
                  Type.Literal('uncertain'),
                  Type.Literal('random'),
                  Type.Literal('unknown'),
                ]),
              ),
            }),
          ],
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      samples: deps.store.samples({
        ...toQuery(request.query),
        ...(request.query.class !== undefined ? { class: request.query.class } : {}),
      }),
    }),
  );

  app.get<{ Params: { deviceId: string; id: string } }>(
    '/v1/samples/:deviceId/:id',
    {
      schema: {
        tags: ['edge data'],
        summary: 'One sample with short-lived download URLs for its image and anomaly map',
        params: Type.Object({
          deviceId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
          id: Type.String({ pattern: '^[0-9]+-[0-9]+$', description: '<boot>-<seq>' }),
        }),
      },
    },
    async (request) => {
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
    { schema: { tags: ['edge data'], summary: 'Edge-data ingest counters and stored rows' } },
    async () => ({ ingest: deps.ingest.stats, stored: deps.store.counts() }),
  );
}

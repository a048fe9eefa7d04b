import type { FastifyInstance } from 'fastify';
import {
  LinesightError,
  ReviewDatasetManifestSchema,
  ReviewExportQuerySchema,
  ReviewLabelBodySchema,
  ReviewLabelSchema,
  ReviewQualityQuerySchema,
  ReviewQualitySchema,
  ReviewQueuePageSchema,
  ReviewQueueQuerySchema,
  ReviewSampleParamsSchema,
  SampleLabelsSchema,
  type ReviewDatasetManifest,
  type ReviewExportQuery,
  type ReviewFilter,
  type ReviewLabel,
  type ReviewLabelBody,
  type ReviewQuality,
  type ReviewQueuePage,
  type ReviewQueueQuery,
  type ReviewSampleParams,
  type SampleLabels,
} from '@linesight/protocol';
import { actorOf } from '../http/auth.ts';
import { serializeAsIs } from '../http/serialize-as-is.ts';
import { datasetManifest } from './review-export.ts';
import { summarizeQuality } from './review-quality.ts';
import type { QueueQuery, ReviewStore } from './review-store.ts';

/** What the review routes use. */
export interface ReviewRouteDeps {
  store: ReviewStore;
  /** A short-lived URL to read an object; undefined when the blob store cannot issue one. */
  createDownloadUrl?: (key: string, ttlSec: number) => Promise<string>;
  /** Lifetime of image and map download URLs (default 300 s). */
  downloadTtlSec?: number;
}

/** Parses `from`/`to`; a range that ends before it starts is a 400. */
function timeRange(q: { from?: string; to?: string }): { fromMs?: number; toMs?: number } {
  const out: { fromMs?: number; toMs?: number } = {};
  if (q.from !== undefined) out.fromMs = Date.parse(q.from);
  if (q.to !== undefined) out.toMs = Date.parse(q.to);
  if (out.fromMs !== undefined && out.toMs !== undefined && out.toMs < out.fromMs)
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      `"to" (${q.to}) is before "from" (${q.from})`,
    );
  return out;
}

/** Every field a label body may have; fastify strips unknown ones, so they are refused before. */
const LABEL_FIELDS = new Set(Object.keys(ReviewLabelBodySchema.properties));

function refuseUnknownFields(body: unknown): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
  const unknown = Object.keys(body).filter((k) => !LABEL_FIELDS.has(k));
  if (unknown.length > 0)
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      `unknown field${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')} (known: ${[...LABEL_FIELDS].join(', ')})`,
    );
}

function sampleKey(p: ReviewSampleParams): { deviceId: string; boot: number; seq: number } {
  const [boot, seq] = p.sampleId.split('-').map(Number) as [number, number];
  if (!Number.isSafeInteger(boot) || !Number.isSafeInteger(seq))
    throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `sample id ${p.sampleId} is out of range`);
  return { deviceId: p.deviceId, boot, seq };
}

/**
 * The review queue: sampled images waiting for a human label (most
 * uncertain first, then defects, then random), labels with history, and the
 * precision and recall the labels give each model version. Operator auth.
 * Answers are sent whole (serializeAsIs); the review schemas document them.
 */
export async function reviewRoutes(app: FastifyInstance, deps: ReviewRouteDeps): Promise<void> {
  const ttlSec = deps.downloadTtlSec ?? 300;

  app.get<{ Querystring: ReviewQueueQuery }>(
    '/v1/review/queue',
    {
      ...serializeAsIs,
      schema: {
        tags: ['review'],
        summary:
          'Samples waiting for a label: uncertain (score closest to the threshold first), then defects, then random; with image and map download URLs',
        querystring: ReviewQueueQuerySchema,
        response: { 200: ReviewQueuePageSchema },
      },
    },
    async (request): Promise<ReviewQueuePage> => {
      const q = request.query;
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      const query: QueueQuery = { ...timeRange(q), labelled: q.labelled ?? false, limit, offset };
      if (q.deviceId !== undefined) query.deviceId = q.deviceId;
      if (q.model !== undefined) query.modelName = q.model;
      if (q.version !== undefined) query.modelVersion = q.version;
      if (q.reason !== undefined) query.sampleClass = q.reason;
      const { total, entries } = deps.store.queue(query);
      const create = deps.createDownloadUrl;
      const items = await Promise.all(
        entries.map(async (e) => ({
          ...e,
          imageUrl: create === undefined ? null : await create(e.sample.objectKey, ttlSec),
          mapUrl:
            create === undefined || e.sample.mapKey === undefined
              ? null
              : await create(e.sample.mapKey, ttlSec),
        })),
      );
      return {
        total,
        offset,
        limit,
        urlsExpireAt:
          create === undefined ? null : new Date(Date.now() + ttlSec * 1000).toISOString(),
        items,
      };
    },
  );

  app.post<{ Params: ReviewSampleParams; Body: ReviewLabelBody }>(
    '/v1/review/samples/:deviceId/:sampleId/labels',
    {
      ...serializeAsIs,
      schema: {
        tags: ['review'],
        summary:
          'Label a sample good or defect; a second label corrects the first and both stay in the history',
        params: ReviewSampleParamsSchema,
        body: ReviewLabelBodySchema,
        response: { 201: ReviewLabelSchema },
      },
      // A misspelt field (defect_class) must not be dropped silently with the label stored.
      preValidation: async (request) => refuseUnknownFields(request.body),
    },
    async (request, reply): Promise<ReviewLabel> => {
      const body = request.body;
      if (body.label === 'good' && body.defectClass !== undefined)
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          'defectClass is for label "defect" only; a good sample has no defect class',
        );
      const actor = actorOf(request);
      const entry = deps.store.addLabel({
        ...sampleKey(request.params),
        label: body.label,
        ...(body.defectClass !== undefined ? { defectClass: body.defectClass } : {}),
        ...(body.note !== undefined ? { note: body.note } : {}),
        reviewer: body.reviewer ?? actor,
        actor,
      });
      void reply.status(201);
      return entry;
    },
  );

  app.get<{ Params: ReviewSampleParams }>(
    '/v1/review/samples/:deviceId/:sampleId/labels',
    {
      ...serializeAsIs,
      schema: {
        tags: ['review'],
        summary: "A sample's labels, oldest first; the newest is the current one",
        params: ReviewSampleParamsSchema,
        response: { 200: SampleLabelsSchema },
      },
    },
    async (request): Promise<SampleLabels> => {
      const key = sampleKey(request.params);
      const history = deps.store.history(key.deviceId, key.boot, key.seq);
      // Labels outlive the sample index's retention, so only a sample never seen is a 404.
      if (history.length === 0 && !deps.store.hasSample(key.deviceId, key.boot, key.seq))
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          `no sample ${request.params.sampleId} from device ${key.deviceId}`,
        );
      return { current: history.at(-1) ?? null, history };
    },
  );

  app.get<{ Querystring: ReviewFilter }>(
    '/v1/review/quality',
    {
      ...serializeAsIs,
      schema: {
        tags: ['review'],
        summary:
          'Precision and recall of each model version on labelled samples, overall and per device, in daily buckets of capture time',
        querystring: ReviewQualityQuerySchema,
        response: { 200: ReviewQualitySchema },
      },
    },
    async (request): Promise<ReviewQuality> => {
      const q = request.query;
      const rows = deps.store.labelCounts({
        ...timeRange(q),
        ...(q.deviceId !== undefined ? { deviceId: q.deviceId } : {}),
        ...(q.model !== undefined ? { modelName: q.model } : {}),
        ...(q.version !== undefined ? { modelVersion: q.version } : {}),
      });
      return { bucket: 'day', versions: summarizeQuality(rows) };
    },
  );

  app.get<{ Querystring: ReviewExportQuery }>(
    '/v1/review/export',
    {
      ...serializeAsIs,
      schema: {
        tags: ['review'],
        summary:
          "Labelled samples as a dataset manifest (image keys, sha256, current label) with the trainer's dataset fingerprint",
        querystring: ReviewExportQuerySchema,
        response: { 200: ReviewDatasetManifestSchema },
      },
    },
    async (request): Promise<ReviewDatasetManifest> => {
      const q = request.query;
      const filter: Record<string, string> = {};
      for (const key of ['deviceId', 'model', 'version', 'from', 'to'] as const) {
        const value = q[key];
        if (value !== undefined) filter[key] = value;
      }
      const asOfMs = q.asOf === undefined ? undefined : Date.parse(q.asOf);
      const samples = deps.store.labelledSamples({
        ...timeRange(q),
        ...(q.deviceId !== undefined ? { deviceId: q.deviceId } : {}),
        ...(q.model !== undefined ? { modelName: q.model } : {}),
        ...(q.version !== undefined ? { modelVersion: q.version } : {}),
        ...(asOfMs !== undefined ? { asOfMs } : {}),
      });
      const manifest = datasetManifest(samples, {
        filter,
        labelsAsOf: asOfMs === undefined ? null : new Date(asOfMs).toISOString(),
      });
      const create = deps.createDownloadUrl;
      if (q.urls === true && create !== undefined)
        for (const item of manifest.items) item.imageUrl = await create(item.objectKey, ttlSec);
      return manifest;
    },
  );
}

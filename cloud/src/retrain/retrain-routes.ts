import type { FastifyInstance } from 'fastify';
import {
  LinesightError,
  RegisterDatasetBodySchema,
  RetrainJobListSchema,
  RetrainJobParamsSchema,
  RetrainJobQuerySchema,
  RetrainJobSchema,
  RetrainLineageParamsSchema,
  StartRetrainBodySchema,
  TrainingDatasetListSchema,
  TrainingDatasetParamsSchema,
  TrainingDatasetDetailSchema,
  TrainingDatasetSchema,
  TrainingImageParamsSchema,
  TrainingImageStoredSchema,
  type RegisterDatasetBody,
  type RetrainJobQuery,
  type StartRetrainBody,
  type TrainingDatasetDetail,
  type TrainingImageStored,
} from '@linesight/protocol';
import type { Static } from '@sinclair/typebox';
import type { BlobStore } from '../blobs/blob-store.ts';
import { actorOf } from '../http/auth.ts';
import type { RetrainService } from './retrain-service.ts';
import { putDatasetImage, registerDataset } from './training-datasets.ts';

/** What the retraining routes use. */
export interface RetrainRouteDeps {
  service: RetrainService;
  blobs: BlobStore;
  /** Largest training image accepted (default 32 MiB). */
  maxImageBytes?: number;
}

const TAGS = ['retrain'];

/** Refuses fields a body schema does not know (fastify would strip them silently). */
function refuseUnknownFields(known: Set<string>) {
  return async (request: { body: unknown }): Promise<void> => {
    const body = request.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
    const unknown = Object.keys(body).filter((k) => !known.has(k));
    if (unknown.length > 0)
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `unknown field${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')} (known: ${[...known].join(', ')})`,
      );
  };
}

/**
 * Retraining: jobs (start, list, show, cancel), the lineage of a retrained
 * version, and the training datasets jobs start from (images by content
 * hash, then the list of images and labels). Reads need `viewer`, changes `operator`.
 */
export async function retrainRoutes(app: FastifyInstance, deps: RetrainRouteDeps): Promise<void> {
  const { service } = deps;
  const maxImageBytes = deps.maxImageBytes ?? 32 * 1024 * 1024;
  // Raw image bodies for dataset uploads, in this plugin only.
  app.addContentTypeParser(
    ['application/octet-stream', 'image/jpeg', 'image/png'],
    { parseAs: 'buffer', bodyLimit: maxImageBytes },
    (_request, body, done) => done(null, body),
  );

  app.post<{ Body: StartRetrainBody }>(
    '/v1/retrain/jobs',
    {
      schema: {
        tags: TAGS,
        summary:
          'Start a retraining job: parent training data plus labelled samples, the challenger registered as candidate only if it beats the champion on held-out samples',
        body: StartRetrainBodySchema,
        response: { 202: RetrainJobSchema },
      },
      preValidation: refuseUnknownFields(new Set(Object.keys(StartRetrainBodySchema.properties))),
    },
    async (request, reply) => {
      const b = request.body;
      const job = service.startJob({
        model: b.model,
        ...(b.parentVersion !== undefined ? { parentVersion: b.parentVersion } : {}),
        ...(b.rollout !== undefined ? { rollout: b.rollout } : {}),
        ...(b.epochs !== undefined ? { epochs: b.epochs } : {}),
        ...(b.seed !== undefined ? { seed: b.seed } : {}),
        ...(b.devices !== undefined ? { devices: b.devices } : {}),
        trigger: 'api',
        actor: actorOf(request),
      });
      void reply.status(202);
      return job;
    },
  );

  app.get<{ Querystring: RetrainJobQuery }>(
    '/v1/retrain/jobs',
    {
      schema: {
        tags: TAGS,
        summary: 'Retraining jobs, newest first, with progress and results',
        querystring: RetrainJobQuerySchema,
        response: { 200: RetrainJobListSchema },
      },
    },
    async (request) => ({
      jobs: service.store.list({
        ...(request.query.model !== undefined ? { model: request.query.model } : {}),
        ...(request.query.state !== undefined ? { state: request.query.state } : {}),
        limit: request.query.limit ?? 50,
      }),
    }),
  );

  app.get<{ Params: Static<typeof RetrainJobParamsSchema> }>(
    '/v1/retrain/jobs/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'One retraining job: state, progress, metrics of champion and challenger, lineage',
        params: RetrainJobParamsSchema,
        response: { 200: RetrainJobSchema },
      },
    },
    async (request) => service.store.get(request.params.id),
  );

  app.post<{ Params: Static<typeof RetrainJobParamsSchema> }>(
    '/v1/retrain/jobs/:id/cancel',
    {
      schema: {
        tags: TAGS,
        summary:
          'Cancel a queued or running job (its trainer process is stopped; the registry stays unchanged)',
        params: RetrainJobParamsSchema,
        response: { 200: RetrainJobSchema },
      },
    },
    async (request) => service.cancel(request.params.id, actorOf(request)),
  );

  app.get<{ Params: Static<typeof RetrainLineageParamsSchema> }>(
    '/v1/retrain/lineage/:name/:version',
    {
      schema: {
        tags: TAGS,
        summary:
          'The job that registered a retrained version: parent, dataset fingerprints, label set, metrics of both models',
        params: RetrainLineageParamsSchema,
        response: { 200: RetrainJobSchema },
      },
    },
    async (request) => service.lineage(request.params.name, request.params.version),
  );

  app.put<{ Params: Static<typeof TrainingImageParamsSchema>; Body: Buffer }>(
    '/v1/retrain/datasets/images/:sha256',
    {
      schema: {
        tags: TAGS,
        summary:
          'Upload one training image (raw body) under its sha256; an image already stored is kept',
        params: TrainingImageParamsSchema,
        body: {
          content: {
            'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            'image/jpeg': { schema: { type: 'string', format: 'binary' } },
            'image/png': { schema: { type: 'string', format: 'binary' } },
          },
        },
        response: { 200: TrainingImageStoredSchema, 201: TrainingImageStoredSchema },
      },
      // The body is bytes; its hash is checked against the path instead of a JSON schema.
      validatorCompiler: () => () => true,
    },
    async (request, reply): Promise<TrainingImageStored> => {
      if (!Buffer.isBuffer(request.body))
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          'send the image as the raw body (Content-Type application/octet-stream, image/jpeg or image/png)',
        );
      const { stored } = await putDatasetImage(deps.blobs, request.params.sha256, request.body);
      void reply.status(stored ? 201 : 200);
      return { sha256: request.params.sha256, stored };
    },
  );

  app.post<{ Body: RegisterDatasetBody }>(
    '/v1/retrain/datasets',
    {
      schema: {
        tags: TAGS,
        summary:
          'Register a training dataset (images uploaded first); its fingerprint is the one `linesight model train` records',
        body: RegisterDatasetBodySchema,
        response: { 201: TrainingDatasetSchema },
      },
      preValidation: refuseUnknownFields(
        new Set(Object.keys(RegisterDatasetBodySchema.properties)),
      ),
    },
    async (request, reply) => {
      const dataset = await registerDataset(service.store, deps.blobs, {
        name: request.body.name,
        items: request.body.items,
        actor: actorOf(request),
      });
      void reply.status(201);
      return dataset;
    },
  );

  app.get(
    '/v1/retrain/datasets',
    {
      schema: {
        tags: TAGS,
        summary: 'Registered training datasets, newest first',
        response: { 200: TrainingDatasetListSchema },
      },
    },
    async () => ({ datasets: service.store.datasets() }),
  );

  app.get<{ Params: Static<typeof TrainingDatasetParamsSchema> }>(
    '/v1/retrain/datasets/:fingerprint',
    {
      schema: {
        tags: TAGS,
        summary: 'One training dataset with its images and labels',
        params: TrainingDatasetParamsSchema,
        response: { 200: TrainingDatasetDetailSchema },
      },
    },
    async (request): Promise<TrainingDatasetDetail> => {
      const dataset = service.store.dataset(request.params.fingerprint);
      if (dataset === undefined)
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          `dataset ${request.params.fingerprint} is not registered`,
        );
      return { ...dataset, items: service.store.datasetItems(dataset.fingerprint) };
    },
  );
}

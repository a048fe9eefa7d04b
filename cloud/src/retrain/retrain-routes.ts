import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { LinesightError } from '@linesight/protocol';
import type { BlobStore } from '../blobs/blob-store.ts';
import { actorOf } from '../http/auth.ts';
import type { RetrainService } from './retrain-service.ts';
import { ROLLOUT_MODES } from './retrain-settings.ts';
import { JOB_STATES } from './retrain-store.ts';
import { putDatasetImage, registerDataset } from './training-datasets.ts';

/** What the retraining routes use. */
export interface RetrainRouteDeps {
  service: RetrainService;
  blobs: BlobStore;
  /** Largest training image accepted (default 32 MiB). */
  maxImageBytes?: number;
}

const ModelName = Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' });
const Version = Type.String({ minLength: 1, maxLength: 64 });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

const StartBody = Type.Object(
  {
    model: ModelName,
    parentVersion: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description:
          'the champion to start from; default: the production version, else the newest staging, else the newest not archived',
      }),
    ),
    rollout: Type.Optional(
      Type.Union(
        ROLLOUT_MODES.map((m) => Type.Literal(m)),
        { description: 'what a registered candidate starts (default: the configured mode)' },
      ),
    ),
    epochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    seed: Type.Optional(Type.Integer({ minimum: 0 })),
    devices: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'devices the rollout targets (default: those running the champion)',
      }),
    ),
  },
  { additionalProperties: false },
);
type StartBodyT = Static<typeof StartBody>;

const Metrics = Type.Object({
  auroc: Nullable(Type.Number()),
  ap: Nullable(Type.Number()),
  f1: Nullable(Type.Number()),
  precision: Nullable(Type.Number()),
  recall: Nullable(Type.Number()),
  threshold: Type.Number(),
  images: Type.Integer(),
});

/** A job as the API answers it (also the OpenAPI response schema). */
export const RetrainJobSchema = Type.Object(
  {
    id: Type.String(),
    model: Type.String(),
    parentVersion: Type.Union([Type.String(), Type.Null()]),
    state: Type.Union(JOB_STATES.map((s) => Type.Literal(s))),
    trigger: Type.Union(
      (['api', 'schedule', 'alert', 'labels'] as const).map((t) => Type.Literal(t)),
    ),
    triggerDetail: Type.Union([Type.String(), Type.Null()]),
    actor: Type.String(),
    options: Type.Object({
      rollout: Type.String(),
      epochs: Type.Integer(),
      seed: Type.Integer(),
      members: Type.Integer(),
      size: Type.Optional(Type.Integer()),
      devices: Type.Optional(Type.Array(Type.String())),
    }),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    progress: Type.Union([
      Type.Object({
        step: Type.String(),
        done: Type.Integer(),
        total: Type.Integer(),
        epoch: Type.Optional(Type.Integer()),
        epochs: Type.Optional(Type.Integer()),
        loss: Type.Optional(Type.Number()),
      }),
      Type.Null(),
    ]),
    result: Type.Union([
      Type.Object({
        championVersion: Type.String(),
        candidateVersion: Type.Union([Type.String(), Type.Null()]),
        metric: Type.String(),
        minImprovement: Type.Number(),
        champion: Metrics,
        challenger: Metrics,
        improvement: Nullable(Type.Number()),
        parentDatasetFingerprint: Type.String(),
        datasetFingerprint: Type.String(),
        labels: Type.Object({
          train: Type.Array(Type.Integer()),
          holdout: Type.Array(Type.Integer()),
        }),
        counts: Type.Object({
          parent: Type.Integer(),
          labelledTrain: Type.Integer(),
          holdoutGood: Type.Integer(),
          holdoutDefect: Type.Integer(),
          duplicates: Type.Integer(),
          missingImages: Type.Optional(Type.Integer()),
        }),
        trainingMs: Type.Number(),
        rolloutId: Type.Union([Type.String(), Type.Null()]),
        rolloutError: Type.Union([Type.String(), Type.Null()]),
      }),
      Type.Null(),
    ]),
    error: Type.Union([Type.String(), Type.Null()]),
  },
  { description: 'a retraining job' },
);

const JobList = Type.Object({ jobs: Type.Array(RetrainJobSchema) });

const ListQuery = Type.Object(
  {
    model: Type.Optional(ModelName),
    state: Type.Optional(Type.Union(JOB_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  },
  { additionalProperties: false },
);
type ListQueryT = Static<typeof ListQuery>;

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
type IdParamsT = Static<typeof IdParams>;
const ModelParams = Type.Object({ name: ModelName, version: Version });
type ModelParamsT = Static<typeof ModelParams>;
const ShaParams = Type.Object({ sha256: Sha256 });
type ShaParamsT = Static<typeof ShaParams>;
const FingerprintParams = Type.Object({ fingerprint: Sha256 });
type FingerprintParamsT = Static<typeof FingerprintParams>;

const DatasetSchema = Type.Object(
  {
    fingerprint: Type.String(),
    name: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    createdBy: Type.String(),
    source: Type.Union([Type.Literal('upload'), Type.Literal('retrain')]),
    jobId: Type.Union([Type.String(), Type.Null()]),
    count: Type.Integer(),
    good: Type.Integer(),
    defect: Type.Integer(),
  },
  { description: 'a registered training dataset' },
);

const DatasetBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    items: Type.Array(
      Type.Object(
        {
          sha256: Sha256,
          label: Type.Union([Type.Literal('good'), Type.Literal('defect')]),
          className: Type.String({ minLength: 1, maxLength: 64 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 2, maxItems: 200_000 },
    ),
  },
  { additionalProperties: false },
);
type DatasetBodyT = Static<typeof DatasetBody>;

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

  app.post<{ Body: StartBodyT }>(
    '/v1/retrain/jobs',
    {
      schema: {
        tags: TAGS,
        summary:
          'Start a retraining job: parent training data plus labelled samples, the challenger registered as candidate only if it beats the champion on held-out samples',
        body: StartBody,
        response: { 202: RetrainJobSchema },
      },
      preValidation: refuseUnknownFields(new Set(Object.keys(StartBody.properties))),
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

  app.get<{ Querystring: ListQueryT }>(
    '/v1/retrain/jobs',
    {
      schema: {
        tags: TAGS,
        summary: 'Retraining jobs, newest first, with progress and results',
        querystring: ListQuery,
        response: { 200: JobList },
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

  app.get<{ Params: IdParamsT }>(
    '/v1/retrain/jobs/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'One retraining job: state, progress, metrics of champion and challenger, lineage',
        params: IdParams,
        response: { 200: RetrainJobSchema },
      },
    },
    async (request) => service.store.get(request.params.id),
  );

  app.post<{ Params: IdParamsT }>(
    '/v1/retrain/jobs/:id/cancel',
    {
      schema: {
        tags: TAGS,
        summary:
          'Cancel a queued or running job (its trainer process is stopped; the registry stays unchanged)',
        params: IdParams,
        response: { 200: RetrainJobSchema },
      },
    },
    async (request) => service.cancel(request.params.id, actorOf(request)),
  );

  app.get<{ Params: ModelParamsT }>(
    '/v1/retrain/lineage/:name/:version',
    {
      schema: {
        tags: TAGS,
        summary:
          'The job that registered a retrained version: parent, dataset fingerprints, label set, metrics of both models',
        params: ModelParams,
        response: { 200: RetrainJobSchema },
      },
    },
    async (request) => service.lineage(request.params.name, request.params.version),
  );

  app.put<{ Params: ShaParamsT; Body: Buffer }>(
    '/v1/retrain/datasets/images/:sha256',
    {
      schema: {
        tags: TAGS,
        summary:
          'Upload one training image (raw body) under its sha256; an image already stored is kept',
        params: ShaParams,
        body: {
          content: {
            'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            'image/jpeg': { schema: { type: 'string', format: 'binary' } },
            'image/png': { schema: { type: 'string', format: 'binary' } },
          },
        },
      },
      // The body is bytes; its hash is checked against the path instead of a JSON schema.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
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

  app.post<{ Body: DatasetBodyT }>(
    '/v1/retrain/datasets',
    {
      schema: {
        tags: TAGS,
        summary:
          'Register a training dataset (images uploaded first); its fingerprint is the one `linesight model train` records',
        body: DatasetBody,
        response: { 201: DatasetSchema },
      },
      preValidation: refuseUnknownFields(new Set(Object.keys(DatasetBody.properties))),
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
        response: { 200: Type.Object({ datasets: Type.Array(DatasetSchema) }) },
      },
    },
    async () => ({ datasets: service.store.datasets() }),
  );

  app.get<{ Params: FingerprintParamsT }>(
    '/v1/retrain/datasets/:fingerprint',
    {
      schema: {
        tags: TAGS,
        summary: 'One training dataset with its images and labels',
        params: FingerprintParams,
      },
    },
    async (request) => {
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

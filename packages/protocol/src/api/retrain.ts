// REST contract of /v1/retrain: retraining jobs, lineage and training datasets.
import { Type, type Static } from '@sinclair/typebox';

/** Where a retraining job stands; the last four are final. */
export const RETRAIN_JOB_STATES = [
  'queued',
  'running',
  'registered',
  'rejected',
  'failed',
  'cancelled',
] as const;

/** What a registered challenger starts: nothing, a shadow rollout or a canary wave. */
export const RETRAIN_ROLLOUT_MODES = ['none', 'shadow', 'canary'] as const;

/** What can start a retraining job. */
export const RETRAIN_TRIGGERS = ['api', 'schedule', 'alert', 'labels'] as const;

const ModelName = Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' });
const Version = Type.String({ minLength: 1, maxLength: 64 });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

/** Body of POST /v1/retrain/jobs. */
export const StartRetrainBodySchema = Type.Object(
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
        RETRAIN_ROLLOUT_MODES.map((m) => Type.Literal(m)),
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
/** What starting a retraining job takes. */
export type StartRetrainBody = Static<typeof StartRetrainBodySchema>;

/** Metrics of one model on a job's held-out set. */
export const RetrainMetricsSchema = Type.Object({
  auroc: Nullable(Type.Number()),
  ap: Nullable(Type.Number()),
  f1: Nullable(Type.Number()),
  precision: Nullable(Type.Number()),
  recall: Nullable(Type.Number()),
  threshold: Type.Number(),
  images: Type.Integer(),
});
/** Metrics of one model on a job's held-out set. */
export type RetrainMetrics = Static<typeof RetrainMetricsSchema>;

/** How far a running job got. */
export const RetrainProgressSchema = Type.Object({
  step: Type.String(),
  done: Type.Integer(),
  total: Type.Integer(),
  epoch: Type.Optional(Type.Integer()),
  epochs: Type.Optional(Type.Integer()),
  loss: Type.Optional(Type.Number()),
});
/** How far a running job got. */
export type RetrainProgress = Static<typeof RetrainProgressSchema>;

/**
 * What a finished job found and did: the lineage of the challenger.
 * `candidateVersion` is null when the challenger did not win; `labels` holds
 * the label ids it trained on and those it was compared on (held out);
 * `counts.duplicates` are labelled samples dropped because the parent dataset
 * holds the same image, `counts.missingImages` those left out because their
 * image is gone from storage (absent in older results).
 */
export const RetrainResultSchema = Type.Object({
  championVersion: Type.String(),
  candidateVersion: Type.Union([Type.String(), Type.Null()]),
  metric: Type.String(),
  minImprovement: Type.Number(),
  /** Largest held-out F1 loss a winner may show (null: not checked; absent in older results). */
  maxF1Drop: Type.Optional(Nullable(Type.Number())),
  champion: RetrainMetricsSchema,
  challenger: RetrainMetricsSchema,
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
  /**
   * Share of the held-out images on which champion and challenger gave the
   * same verdict, each at its own threshold (absent in older results).
   */
  agreement: Type.Optional(Nullable(Type.Number())),
  rolloutId: Type.Union([Type.String(), Type.Null()]),
  rolloutError: Type.Union([Type.String(), Type.Null()]),
  /** Gate limits the candidate's rollout was started with (docs/retraining.md); absent without one. */
  rolloutGates: Type.Optional(
    Type.Object({ minAgreement: Type.Number(), maxDefectRateChange: Type.Number() }),
  ),
});
/** What a finished job found and did. */
export type RetrainResult = Static<typeof RetrainResultSchema>;

/** A retraining job as the API answers it. */
export const RetrainJobSchema = Type.Object(
  {
    id: Type.String(),
    model: Type.String(),
    parentVersion: Type.Union([Type.String(), Type.Null()]),
    state: Type.Union(RETRAIN_JOB_STATES.map((s) => Type.Literal(s))),
    trigger: Type.Union(RETRAIN_TRIGGERS.map((t) => Type.Literal(t))),
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
    progress: Type.Union([RetrainProgressSchema, Type.Null()]),
    result: Type.Union([RetrainResultSchema, Type.Null()]),
    error: Type.Union([Type.String(), Type.Null()]),
  },
  { description: 'a retraining job' },
);
/** A retraining job as GET /v1/retrain/jobs/:id answers it. */
export type RetrainJobView = Static<typeof RetrainJobSchema>;

/** What GET /v1/retrain/jobs answers. */
export const RetrainJobListSchema = Type.Object({ jobs: Type.Array(RetrainJobSchema) });
/** Retraining jobs, newest first. */
export type RetrainJobList = Static<typeof RetrainJobListSchema>;

/** Query of GET /v1/retrain/jobs. */
export const RetrainJobQuerySchema = Type.Object(
  {
    model: Type.Optional(ModelName),
    state: Type.Optional(Type.Union(RETRAIN_JOB_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  },
  { additionalProperties: false },
);
/** Filters of the job list. */
export type RetrainJobQuery = Static<typeof RetrainJobQuerySchema>;

/** Path parameters of /v1/retrain/jobs/:id. */
export const RetrainJobParamsSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
});
/** Path parameters of /v1/retrain/lineage/:name/:version. */
export const RetrainLineageParamsSchema = Type.Object({ name: ModelName, version: Version });
/** Path parameters of /v1/retrain/datasets/images/:sha256. */
export const TrainingImageParamsSchema = Type.Object({ sha256: Sha256 });
/** Path parameters of /v1/retrain/datasets/:fingerprint. */
export const TrainingDatasetParamsSchema = Type.Object({ fingerprint: Sha256 });

/** A registered training dataset: its fingerprint is the trainer's `datasetFingerprint`. */
export const TrainingDatasetSchema = Type.Object(
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
/** A registered training dataset. */
export type TrainingDatasetView = Static<typeof TrainingDatasetSchema>;

/** What GET /v1/retrain/datasets answers. */
export const TrainingDatasetListSchema = Type.Object({
  datasets: Type.Array(TrainingDatasetSchema),
});
/** Registered training datasets, newest first. */
export type TrainingDatasetList = Static<typeof TrainingDatasetListSchema>;

/** One image of a training dataset, by hash, with its label and the trainer's class name. */
export const TrainingDatasetItemSchema = Type.Object({
  sha256: Type.String(),
  label: Type.Union([Type.Literal('good'), Type.Literal('defect')]),
  className: Type.String(),
});
/** One image of a training dataset. */
export type TrainingDatasetItem = Static<typeof TrainingDatasetItemSchema>;

/** What GET /v1/retrain/datasets/:fingerprint answers: the dataset and its images. */
export const TrainingDatasetDetailSchema = Type.Object(
  { ...TrainingDatasetSchema.properties, items: Type.Array(TrainingDatasetItemSchema) },
  { description: 'a registered training dataset with its images and labels' },
);
/** A training dataset with its images. */
export type TrainingDatasetDetail = Static<typeof TrainingDatasetDetailSchema>;

/** What PUT /v1/retrain/datasets/images/:sha256 answers (201 when stored now, 200 when kept). */
export const TrainingImageStoredSchema = Type.Object({
  sha256: Type.String(),
  stored: Type.Boolean({ description: 'false when the image was already stored' }),
});
/** What a training image upload did. */
export type TrainingImageStored = Static<typeof TrainingImageStoredSchema>;

/** Body of POST /v1/retrain/datasets: uploaded images by hash, with their labels. */
export const RegisterDatasetBodySchema = Type.Object(
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
/** What registering a training dataset takes. */
export type RegisterDatasetBody = Static<typeof RegisterDatasetBodySchema>;

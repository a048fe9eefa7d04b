// REST contract of /v1/review: the labelling queue, labels, quality and the dataset export.
import { Type, type Static } from '@sinclair/typebox';
import { SampleRecordSchema } from '../edge-data.ts';
import { DeviceId } from '../schema-primitives.ts';

/** Why a device kept a frame, in queue order (the sample classes). */
export const REVIEW_SAMPLE_CLASSES = ['uncertain', 'defect', 'random', 'unknown'] as const;

const Label = Type.Union([Type.Literal('good'), Type.Literal('defect')]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

/** Path parameters of /v1/review/samples/:deviceId/:sampleId/labels. */
export const ReviewSampleParamsSchema = Type.Object({
  deviceId: DeviceId,
  sampleId: Type.String({ pattern: '^[0-9]+-[0-9]+$', description: '<boot>-<seq>' }),
});
/** A sample's address. */
export type ReviewSampleParams = Static<typeof ReviewSampleParamsSchema>;

const Range = {
  deviceId: Type.Optional(DeviceId),
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'model name' })),
  version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'capture time, inclusive' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'capture time, exclusive' })),
};

/** Query of GET /v1/review/queue. */
export const ReviewQueueQuerySchema = Type.Object(
  {
    ...Range,
    reason: Type.Optional(
      Type.Union(
        REVIEW_SAMPLE_CLASSES.map((c) => Type.Literal(c)),
        { description: 'why the device kept the frame (the sample class)' },
      ),
    ),
    labelled: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'false: samples waiting for a label; true: labelled ones, newest label first',
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    offset: Type.Optional(
      Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 }),
    ),
  },
  { additionalProperties: false },
);
/** Filters and page of the review queue. */
export type ReviewQueueQuery = Static<typeof ReviewQueueQuerySchema>;

/** Query of GET /v1/review/quality: the filters of the review queue. */
export const ReviewQualityQuerySchema = Type.Object(Range, { additionalProperties: false });
/** Filters of the review queue and quality routes. */
export type ReviewFilter = Static<typeof ReviewQualityQuerySchema>;

/** Query of GET /v1/review/export. */
export const ReviewExportQuerySchema = Type.Object(
  {
    ...Range,
    asOf: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'only labels given before this time (reproduces an earlier export)',
      }),
    ),
    urls: Type.Optional(
      Type.Boolean({ default: false, description: 'add a short-lived imageUrl to each item' }),
    ),
  },
  { additionalProperties: false },
);
/** Filters of the dataset export. */
export type ReviewExportQuery = Static<typeof ReviewExportQuerySchema>;

/** Body of POST /v1/review/samples/:deviceId/:sampleId/labels. */
export const ReviewLabelBodySchema = Type.Object(
  {
    label: Label,
    defectClass: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9 _./-]{0,63}$',
        description: 'kind of defect (only with label defect), e.g. "scratch"',
      }),
    ),
    note: Type.Optional(Type.String({ maxLength: 2000, description: 'free text' })),
    reviewer: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description:
          'who looked at the image, when the token is shared (the admin token); default: the authenticated actor',
      }),
    ),
  },
  { additionalProperties: false },
);
/** A label to give. */
export type ReviewLabelBody = Static<typeof ReviewLabelBodySchema>;

/** A sampled image as the sample index lists it: the device's record with its device and `<boot>-<seq>` id. */
export const SampleViewSchema = Type.Object({
  ...SampleRecordSchema.properties,
  deviceId: Type.String(),
  id: Type.String(),
});
/** A sampled image as the sample index lists it. */
export type SampleView = Static<typeof SampleViewSchema>;

/** One label of a sample: `reviewer` looked at the image, `actor` authenticated the request. */
export const ReviewLabelSchema = Type.Object({
  labelId: Type.Integer(),
  deviceId: Type.String(),
  sampleId: Type.String(),
  label: Label,
  defectClass: NullableString,
  note: NullableString,
  reviewer: Type.String(),
  actor: Type.String(),
  at: Type.String(),
});
/** One label of a sample. */
export type ReviewLabel = Static<typeof ReviewLabelSchema>;

/** A sample's labels, oldest first, and the current (newest) one. */
export const SampleLabelsSchema = Type.Object({
  current: Type.Union([ReviewLabelSchema, Type.Null()]),
  history: Type.Array(ReviewLabelSchema),
});
/** A sample's labels. */
export type SampleLabels = Static<typeof SampleLabelsSchema>;

/** One entry of the review queue; `distance` is |score - threshold| / threshold, 0 the most uncertain. */
export const ReviewQueueItemSchema = Type.Object({
  sample: SampleViewSchema,
  threshold: NullableNumber,
  distance: NullableNumber,
  label: Type.Union([ReviewLabelSchema, Type.Null()]),
  imageUrl: NullableString,
  mapUrl: NullableString,
});
/** One entry of the review queue. */
export type ReviewQueueItem = Static<typeof ReviewQueueItemSchema>;

/** A page of the review queue (GET /v1/review/queue). */
export const ReviewQueuePageSchema = Type.Object({
  total: Type.Integer(),
  offset: Type.Integer(),
  limit: Type.Integer(),
  urlsExpireAt: NullableString,
  items: Type.Array(ReviewQueueItemSchema),
});
/** A page of the review queue. */
export type ReviewQueuePage = Static<typeof ReviewQueuePageSchema>;

/** Confusion counts with precision and recall (null when 0/0). */
export const ReviewQualityCountsSchema = Type.Object({
  labelled: Type.Integer(),
  tp: Type.Integer(),
  fp: Type.Integer(),
  fn: Type.Integer(),
  tn: Type.Integer(),
  unscored: Type.Integer(),
  precision: NullableNumber,
  recall: NullableNumber,
});
/** Confusion counts with precision and recall. */
export type ReviewQualityCounts = Static<typeof ReviewQualityCountsSchema>;

const QualityDay = Type.Object({ ...ReviewQualityCountsSchema.properties, day: Type.String() });

/** A model version's quality on labelled samples, overall and per device, per day. */
export const ReviewVersionQualitySchema = Type.Object({
  modelName: NullableString,
  modelVersion: NullableString,
  total: ReviewQualityCountsSchema,
  daily: Type.Array(QualityDay),
  devices: Type.Array(
    Type.Object({
      deviceId: Type.String(),
      total: ReviewQualityCountsSchema,
      daily: Type.Array(QualityDay),
    }),
  ),
});
/** A model version's quality on labelled samples. */
export type ReviewVersionQuality = Static<typeof ReviewVersionQualitySchema>;

/** What GET /v1/review/quality answers. */
export const ReviewQualitySchema = Type.Object({
  bucket: Type.Literal('day'),
  versions: Type.Array(ReviewVersionQualitySchema),
});
/** Quality of each model version. */
export type ReviewQuality = Static<typeof ReviewQualitySchema>;

/**
 * Labelled samples as a dataset manifest (GET /v1/review/export). `fingerprint`
 * is the SHA-256 over the sorted "<image sha256> <label>" lines, as
 * `linesight model train` records it.
 */
export const ReviewDatasetManifestSchema = Type.Object({
  schema: Type.Literal('linesight.review-dataset/v1'),
  createdAt: Type.String(),
  labelsAsOf: NullableString,
  filter: Type.Record(Type.String(), Type.String()),
  count: Type.Integer(),
  counts: Type.Object({ good: Type.Integer(), defect: Type.Integer() }),
  fingerprint: Type.String(),
  items: Type.Array(
    Type.Object({
      deviceId: Type.String(),
      sampleId: Type.String(),
      label: Label,
      defectClass: NullableString,
      className: Type.String(),
      objectKey: Type.String(),
      mapKey: NullableString,
      sha256: Type.String(),
      bytes: Type.Integer(),
      capturedAt: Type.String(),
      sampleClass: Type.String(),
      modelName: NullableString,
      modelVersion: NullableString,
      score: NullableNumber,
      verdict: Type.String(),
      labelId: Type.Integer(),
      labelledAt: Type.String(),
      reviewer: Type.String(),
      imageUrl: Type.Optional(Type.String()),
    }),
  ),
});
/** Labelled samples as a dataset manifest. */
export type ReviewDatasetManifest = Static<typeof ReviewDatasetManifestSchema>;

// REST contract of the cloud's edge-data reads: /v1/edge/* and /v1/samples.
import { Type, type Static } from '@sinclair/typebox';
import { DEVICE_ID_PATTERN } from './devices.ts';

/** Query of the /v1/edge and /v1/samples reads: device, model version, time range, count. */
export const EdgeFilterQuerySchema = Type.Object(
  {
    deviceId: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'model name' })),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
/** Filters of the edge-data reads. */
export type EdgeFilterQuery = Static<typeof EdgeFilterQuerySchema>;

/** Query of GET /v1/edge/verdict-counts: the filters and a bucket size. */
export const EdgeVerdictCountsQuerySchema = Type.Composite(
  [
    EdgeFilterQuerySchema,
    Type.Object({
      bucketSec: Type.Optional(Type.Integer({ minimum: 60, maximum: 31 * 86_400, default: 3600 })),
    }),
  ],
  { additionalProperties: false },
);
/** Filters and bucket size of the verdict counts. */
export type EdgeVerdictCountsQuery = Static<typeof EdgeVerdictCountsQuerySchema>;

/** Query of GET /v1/samples: the filters and a sample class. */
export const EdgeSamplesQuerySchema = Type.Composite(
  [
    EdgeFilterQuerySchema,
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
);
/** Filters of the sample index. */
export type EdgeSamplesQuery = Static<typeof EdgeSamplesQuerySchema>;

/** Path parameters of GET /v1/samples/:deviceId/:id. */
export const EdgeSampleParamsSchema = Type.Object({
  deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
  id: Type.String({ pattern: '^[0-9]+-[0-9]+$', description: '<boot>-<seq>' }),
});

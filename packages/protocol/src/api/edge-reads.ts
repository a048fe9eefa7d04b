// REST contract of the cloud's edge-data reads: /v1/edge/* and /v1/samples.
import { Type, type Static } from '@sinclair/typebox';
import { EventRecordSchema, TelemetryWindowSchema, VerdictRecordSchema } from '../edge-data.ts';
import { DeviceId } from '../schema-primitives.ts';
import { SampleViewSchema } from './review.ts';

/** Query of the /v1/edge and /v1/samples reads: device, model version, time range, count. */
export const EdgeFilterQuerySchema = Type.Object(
  {
    deviceId: Type.Optional(DeviceId),
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
  deviceId: DeviceId,
  id: Type.String({ pattern: '^[0-9]+-[0-9]+$', description: '<boot>-<seq>' }),
});
/** Path parameters of a sample. */
export type EdgeSampleParams = Static<typeof EdgeSampleParamsSchema>;

const DeviceIdField = { deviceId: Type.String() };

/** A verdict-log record with the device it came from. */
export const EdgeVerdictViewSchema = Type.Object({
  ...DeviceIdField,
  ...VerdictRecordSchema.properties,
});
/** A stored verdict-log record. */
export type EdgeVerdictView = Static<typeof EdgeVerdictViewSchema>;

/** Answer of GET /v1/edge/verdicts. */
export const EdgeVerdictListSchema = Type.Object({ records: Type.Array(EdgeVerdictViewSchema) });
/** Verdict-log records, oldest first. */
export type EdgeVerdictList = Static<typeof EdgeVerdictListSchema>;

const NullableName = Type.Union([Type.String(), Type.Null()]);

/** Verdict counts of one device and model version in one time bucket. */
export const EdgeVerdictCountSchema = Type.Object({
  ...DeviceIdField,
  modelName: NullableName,
  modelVersion: NullableName,
  bucketStart: Type.String({ format: 'date-time' }),
  good: Type.Integer(),
  defect: Type.Integer(),
  unknown: Type.Integer(),
});
/** One bucket of verdict counts. */
export type EdgeVerdictCount = Static<typeof EdgeVerdictCountSchema>;

/** Answer of GET /v1/edge/verdict-counts. */
export const EdgeVerdictCountListSchema = Type.Object({
  buckets: Type.Array(EdgeVerdictCountSchema),
});
/** Verdict counts per bucket, oldest first. */
export type EdgeVerdictCountList = Static<typeof EdgeVerdictCountListSchema>;

/** A telemetry window with the device it came from. */
export const EdgeWindowViewSchema = Type.Object({
  ...DeviceIdField,
  ...TelemetryWindowSchema.properties,
});
/** A stored telemetry window. */
export type EdgeWindowView = Static<typeof EdgeWindowViewSchema>;

/** Answer of GET /v1/edge/windows. */
export const EdgeWindowListSchema = Type.Object({ windows: Type.Array(EdgeWindowViewSchema) });
/** Telemetry windows, oldest first. */
export type EdgeWindowList = Static<typeof EdgeWindowListSchema>;

/** A device-store event with the device it came from. */
export const EdgeEventViewSchema = Type.Object({
  ...DeviceIdField,
  ...EventRecordSchema.properties,
});
/** A stored event. */
export type EdgeEventView = Static<typeof EdgeEventViewSchema>;

/** Answer of GET /v1/edge/events. */
export const EdgeEventListSchema = Type.Object({ events: Type.Array(EdgeEventViewSchema) });
/** Stored events, oldest first. */
export type EdgeEventList = Static<typeof EdgeEventListSchema>;

/** Answer of GET /v1/samples. */
export const EdgeSampleListSchema = Type.Object({ samples: Type.Array(SampleViewSchema) });
/** The sample index, newest first. */
export type EdgeSampleList = Static<typeof EdgeSampleListSchema>;

const NullableString = Type.Union([Type.String(), Type.Null()]);

/** Answer of GET /v1/samples/:deviceId/:id: null URLs when the blob store cannot issue them. */
export const EdgeSampleDownloadSchema = Type.Object({
  sample: SampleViewSchema,
  downloadUrl: NullableString,
  mapUrl: { ...NullableString, description: 'null also when the sample has no anomaly map' },
  expiresAt: { ...NullableString, description: 'when the URLs stop working (ISO 8601)' },
});
/** One sample and short-lived URLs to its image and anomaly map. */
export type EdgeSampleDownload = Static<typeof EdgeSampleDownloadSchema>;

const Count = Type.Integer({ minimum: 0 });

/** Answer of GET /v1/edge/ingest-stats: ingest counters since start and stored rows per table. */
export const EdgeIngestStatsSchema = Type.Object({
  ingest: Type.Object({
    batches: Type.Object({
      verdicts: Count,
      windows: Count,
      'event-log': Count,
      samples: Count,
    }),
    records: Count,
    stored: Count,
    duplicates: { ...Count, description: 'records already stored (replays): dropped' },
    invalid: { ...Count, description: 'batches that did not decode or match their schema' },
    foreignDevice: { ...Count, description: 'batches naming another device than their topic' },
    unknownDevice: { ...Count, description: 'batches from devices not provisioned' },
    failedWrites: Count,
    failedRecords: Count,
    samplesMissing: { ...Count, description: 'sample records whose object was not in storage' },
    samplesMismatch: { ...Count, description: "stored object's size or sha256 differs" },
    samplesUnverified: { ...Count, description: 'storage could not be asked' },
  }),
  stored: Type.Object({
    verdicts: Count,
    verdict_minutes: Count,
    windows: Count,
    events: Count,
    samples: Count,
  }),
});
/** Edge-data ingest counters and stored rows. */
export type EdgeIngestStats = Static<typeof EdgeIngestStatsSchema>;

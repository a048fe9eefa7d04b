import { gunzipSync, gzipSync } from 'node:zlib';
import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox';
import { assertSchema, MAX_PAYLOAD_BYTES } from './codec.ts';
import { LinesightError } from './errors.ts';
import { DeviceId, IsoTime, VerdictSchema } from './schema-primitives.ts';
import { CameraHealthSchema } from './window-profile.ts';

const Count = Type.Integer({ minimum: 0 });
const ModelName = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()]);
const ModelVersion = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()]);

/**
 * The stable identity of every stored record: the device, the agent's boot
 * number (grows with every start, kept in the store) and a sequence number
 * that grows within the boot. The cloud stores a record once per identity.
 */
const RecordId = {
  boot: Type.Integer({ minimum: 0, description: 'agent start counter, kept in the device store' }),
  seq: Type.Integer({ minimum: 0, description: 'grows within one boot' }),
};

/** Largest decompressed edge batch the cloud accepts. */
export const MAX_EDGE_BATCH_BYTES = 8 * 1024 * 1024;
/** Most records in one edge batch. */
export const MAX_EDGE_BATCH_RECORDS = 5000;

/**
 * A device -> cloud batch: its schema name, the device and at most
 * MAX_EDGE_BATCH_RECORDS records; `extra` adds properties (none by default).
 */
function edgeBatchSchema<Name extends string, R extends TSchema, X extends TProperties>(
  name: Name,
  record: R,
  extra: X,
) {
  return Type.Object(
    {
      schema: Type.Literal(name),
      deviceId: DeviceId,
      records: Type.Array(record, { maxItems: MAX_EDGE_BATCH_RECORDS }),
      ...extra,
    },
    { additionalProperties: false },
  );
}

/** One scored frame as the verdict log keeps it: the plant's traceability record. */
export const VerdictRecordSchema = Type.Object(
  {
    ...RecordId,
    frameSeq: Type.Integer({ minimum: 0, description: 'camera frame sequence number' }),
    at: IsoTime,
    modelName: ModelName,
    modelVersion: ModelVersion,
    score: Type.Union([Type.Number(), Type.Null()]),
    verdict: VerdictSchema,
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    latencyMs: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);
/** A verdict-log record. */
export type VerdictRecord = Static<typeof VerdictRecordSchema>;

/**
 * Verdict-log rows the device compacted into per-minute counts before they
 * were sent (its disk quota ran short). `seq` is the first compacted row's.
 */
export const VerdictMinuteSchema = Type.Object(
  {
    ...RecordId,
    minute: IsoTime,
    modelName: ModelName,
    modelVersion: ModelVersion,
    good: Count,
    defect: Count,
    unknown: Count,
  },
  { additionalProperties: false },
);
/** Per-minute verdict counts. */
export type VerdictMinute = Static<typeof VerdictMinuteSchema>;

/** A device -> cloud batch of verdict-log records (gzip-compressed JSON). */
export const VerdictBatchSchema = edgeBatchSchema('linesight.verdicts/v1', VerdictRecordSchema, {
  minutes: Type.Optional(Type.Array(VerdictMinuteSchema, { maxItems: MAX_EDGE_BATCH_RECORDS })),
});
/** A verdict batch. */
export type VerdictBatch = Static<typeof VerdictBatchSchema>;

/**
 * A histogram over fixed bucket upper bounds: `counts[i]` counts values
 * <= `le[i]` (and above the previous bound); the last count is the overflow.
 */
export const HistogramSchema = Type.Object(
  {
    le: Type.Array(Type.Number(), { maxItems: 64 }),
    counts: Type.Array(Count, { maxItems: 65 }),
  },
  { additionalProperties: false },
);
/** A histogram. */
export type Histogram = Static<typeof HistogramSchema>;

/** Evictions the device's disk quota forced, by what was evicted (cumulative per store). */
export const EvictionCountsSchema = Type.Object(
  {
    defect: Count,
    uncertain: Count,
    random: Count,
    unknown: Count,
    verdictRowsCompacted: Count,
    records: Count,
  },
  {
    additionalProperties: false,
    description: 'records = windows, events and minute counts dropped',
  },
);
/** Eviction counters. */
export type EvictionCounts = Static<typeof EvictionCountsSchema>;

/** The device store's state as the device reports it. */
export const StoreStateSchema = Type.Object(
  {
    bytes: Count,
    quotaBytes: Count,
    imageBytes: Count,
    diskFull: Type.Boolean({ description: 'a write failed or the quota could not be met' }),
    evictions: EvictionCountsSchema,
    backlog: Type.Object(
      { verdicts: Count, windows: Count, events: Count, samples: Count },
      { additionalProperties: false, description: 'records not yet acknowledged by the broker' },
    ),
    lostWrites: Type.Integer({
      minimum: 0,
      description: 'records that could not be written (disk full) and were dropped',
    }),
  },
  { additionalProperties: false },
);
/** Store state. */
export type StoreState = Static<typeof StoreStateSchema>;

/** One telemetry window: what happened on the device in `[start, end)`. */
export const TelemetryWindowSchema = Type.Object(
  {
    ...RecordId,
    start: IsoTime,
    end: IsoTime,
    modelName: ModelName,
    modelVersion: ModelVersion,
    counts: Type.Object(
      { good: Count, defect: Count, unknown: Count },
      { additionalProperties: false },
    ),
    droppedFrames: Count,
    errors: Count,
    latencyMs: HistogramSchema,
    score: HistogramSchema,
    brightness: HistogramSchema,
    contrast: HistogramSchema,
    sharpness: HistogramSchema,
    cpuCores: Type.Number({ minimum: 0, description: 'agent process CPU over the window' }),
    rssMb: Type.Number({ minimum: 0 }),
    samples: Count,
    store: Type.Optional(StoreStateSchema),
    camera: Type.Optional(CameraHealthSchema),
  },
  { additionalProperties: false },
);
/** A telemetry window. */
export type TelemetryWindow = Static<typeof TelemetryWindowSchema>;

/** A device -> cloud batch of telemetry windows. */
export const WindowBatchSchema = edgeBatchSchema('linesight.windows/v1', TelemetryWindowSchema, {});
/** A window batch. */
export type WindowBatch = Static<typeof WindowBatchSchema>;

/** An event as the device store keeps it. */
export const EventRecordSchema = Type.Object(
  {
    ...RecordId,
    at: IsoTime,
    level: Type.Union([Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')]),
    type: Type.String({ pattern: '^[a-z]+(\\.[a-z_]+)+$' }),
    message: Type.String({ maxLength: 2000 }),
    code: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
/** An event record. */
export type EventRecord = Static<typeof EventRecordSchema>;

/** A device -> cloud batch of events from the store. */
export const EventBatchSchema = edgeBatchSchema('linesight.event-log/v1', EventRecordSchema, {});
/** An event batch. */
export type EventBatch = Static<typeof EventBatchSchema>;

/** Why a frame was sampled. */
export const SampleClassSchema = Type.Union([
  Type.Literal('defect'),
  Type.Literal('uncertain'),
  Type.Literal('random'),
  Type.Literal('unknown'),
]);
/** A sample class. */
export type SampleClass = Static<typeof SampleClassSchema>;

/** A sampled frame whose image (and anomaly map) is in object storage. */
export const SampleRecordSchema = Type.Object(
  {
    ...RecordId,
    frameSeq: Type.Integer({ minimum: 0 }),
    at: IsoTime,
    class: SampleClassSchema,
    modelName: ModelName,
    modelVersion: ModelVersion,
    score: Type.Union([Type.Number(), Type.Null()]),
    verdict: VerdictSchema,
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    objectKey: Type.String({ minLength: 1, maxLength: 300 }),
    mapKey: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    bytes: Count,
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false },
);
/** A sample record. */
export type SampleRecord = Static<typeof SampleRecordSchema>;

/** A device -> cloud batch of sample index records (sent after the images are uploaded). */
export const SampleBatchSchema = edgeBatchSchema('linesight.samples/v1', SampleRecordSchema, {});
/** A sample batch. */
export type SampleBatch = Static<typeof SampleBatchSchema>;

/** Which frames a device samples and how it stores them; every field has a default on the device. */
export const SamplingPolicySchema = Type.Object(
  {
    defects: Type.Optional(Type.Boolean({ description: 'keep every defect (up to its cap)' })),
    uncertaintyBand: Type.Optional(
      Type.Number({
        minimum: 0,
        description: 'frames whose |score - threshold| is at most this are sampled as uncertain',
      }),
    ),
    randomShare: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: 'share of the other frames sampled' }),
    ),
    capsPerHour: Type.Optional(
      Type.Object(
        {
          defect: Type.Optional(Count),
          uncertain: Type.Optional(Count),
          random: Type.Optional(Count),
          unknown: Type.Optional(Count),
        },
        { additionalProperties: false },
      ),
    ),
    jpegQuality: Type.Optional(Type.Integer({ minimum: 10, maximum: 100 })),
    maxSide: Type.Optional(Type.Integer({ minimum: 32, maximum: 8192 })),
    anomalyMap: Type.Optional(
      Type.Boolean({ description: 'store the anomaly map as a PNG heatmap' }),
    ),
  },
  { additionalProperties: false },
);
/** A sampling policy (fields optional). */
export type SamplingPolicy = Static<typeof SamplingPolicySchema>;

/** The edge-data settings a desired-state document may carry. */
export const EdgeDataSettingsSchema = Type.Object(
  {
    windowSec: Type.Optional(Type.Number({ minimum: 0.2, maximum: 3600 })),
    sampling: Type.Optional(SamplingPolicySchema),
  },
  { additionalProperties: false },
);
/** Edge-data settings. */
export type EdgeDataSettings = Static<typeof EdgeDataSettingsSchema>;

/** The edge-data settings a device runs and its store state, in its reported state. */
export const EdgeDataReportSchema = Type.Object(
  {
    windowSec: Type.Number({ minimum: 0 }),
    sampling: SamplingPolicySchema,
    store: StoreStateSchema,
  },
  { additionalProperties: false },
);
/** An edge-data report. */
export type EdgeDataReport = Static<typeof EdgeDataReportSchema>;

/** The batch schema of each edge-data channel. */
export const EDGE_CHANNEL_SCHEMAS = {
  verdicts: VerdictBatchSchema,
  windows: WindowBatchSchema,
  'event-log': EventBatchSchema,
  samples: SampleBatchSchema,
} as const satisfies Record<string, TSchema>;

/** An edge-data channel. */
export type EdgeChannel = keyof typeof EDGE_CHANNEL_SCHEMAS;

/** The stable id of a record as text, e.g. for logs: `<device>/<boot>/<seq>`. */
export function recordIdOf(deviceId: string, record: { boot: number; seq: number }): string {
  return `${deviceId}/${record.boot}/${record.seq}`;
}

/** Validates a batch and gzips its JSON (what a device publishes). */
export function encodeEdgeBatch<T extends TSchema>(
  schema: T,
  value: Static<T>,
  what: string,
): Buffer {
  assertSchema(schema, value, what);
  return gzipSync(JSON.stringify(value), { level: 6 });
}

/**
 * Gunzips (capped at MAX_EDGE_BATCH_BYTES), parses and validates a batch;
 * throws ERR_PROTOCOL_PAYLOAD on any defect.
 */
export function decodeEdgeBatch<T extends TSchema>(
  schema: T,
  payload: Uint8Array,
  what: string,
): Static<T> {
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    throw new LinesightError(
      'ERR_PROTOCOL_PAYLOAD',
      `invalid ${what}: ${payload.byteLength} bytes exceeds ${MAX_PAYLOAD_BYTES}`,
    );
  }
  let text: string;
  try {
    text = gunzipSync(payload, { maxOutputLength: MAX_EDGE_BATCH_BYTES }).toString('utf8');
  } catch (cause) {
    throw new LinesightError('ERR_PROTOCOL_PAYLOAD', `invalid ${what}: not gzip or too large`, {
      cause,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new LinesightError('ERR_PROTOCOL_PAYLOAD', `invalid ${what}: not JSON`, { cause });
  }
  return assertSchema(schema, value, what);
}

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { EdgeDataReportSchema, EdgeDataSettingsSchema } from './edge-data.ts';
import { DeviceId, IsoTime, VerdictSchema } from './schema-primitives.ts';

// Semantic Versioning 2.0.0 (semver.org's own expression): pre-release and build identifiers are
// dot-separated and never empty, and numeric pre-release identifiers have no leading zeros.
const NUMERIC = '0|[1-9]\\d*';
const PRERELEASE_ID = `(?:${NUMERIC}|\\d*[A-Za-z-][0-9A-Za-z-]*)`;
const BUILD_ID = '[0-9A-Za-z-]+';
/** The pattern of a semantic version (SemVer 2.0.0), build metadata included. */
export const SEMVER_PATTERN =
  `^(${NUMERIC})\\.(${NUMERIC})\\.(${NUMERIC})` +
  `(?:-${PRERELEASE_ID}(?:\\.${PRERELEASE_ID})*)?` +
  `(?:\\+${BUILD_ID}(?:\\.${BUILD_ID})*)?$`;
/** Longest version accepted (it appears in URLs, logs and storage keys). */
export const MAX_VERSION_LENGTH = 64;
const SEMVER = new RegExp(SEMVER_PATTERN);

/** True when `version` is a semantic version (SemVer 2.0.0) of at most 64 characters. */
export function isSemver(version: string): boolean {
  return version.length <= MAX_VERSION_LENGTH && SEMVER.test(version);
}

const Semver = Type.String({
  pattern: SEMVER_PATTERN,
  maxLength: MAX_VERSION_LENGTH,
  description: 'semantic version (SemVer 2.0.0), e.g. 1.2.0, 1.3.0-rc.1 or 1.2.0+build.7',
});
const ModelName = Type.String({
  pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$',
  description: 'lower-case model name, 1-64 of a-z 0-9 _ . -',
});
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const KeyId = Type.String({ pattern: '^[0-9a-f]{16}$' });
const Signature = Type.String({
  minLength: 80,
  maxLength: 100,
  description: 'base64 Ed25519 signature',
});

/** How a frame becomes the model's input tensor; the model carries it in its contract. */
export const InputSpecSchema = Type.Object(
  {
    inputName: Type.String({ minLength: 1 }),
    width: Type.Integer({ minimum: 8, maximum: 4096 }),
    height: Type.Integer({ minimum: 8, maximum: 4096 }),
    channels: Type.Union([Type.Literal(1), Type.Literal(3)]),
    layout: Type.Literal('NCHW'),
    resize: Type.Union([Type.Literal('fill'), Type.Literal('cover'), Type.Literal('contain')], {
      description: 'sharp fit: fill stretches, cover crops, contain pads',
    }),
    scale: Type.Number({ exclusiveMinimum: 0, description: 'pixel value multiplier, e.g. 1/255' }),
    mean: Type.Array(Type.Number(), { minItems: 1, maxItems: 3 }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1, maxItems: 3 }),
    resizeKernel: Type.Optional(
      Type.Union(
        [
          Type.Literal('nearest'),
          Type.Literal('linear'),
          Type.Literal('cubic'),
          Type.Literal('mitchell'),
          Type.Literal('lanczos2'),
          Type.Literal('lanczos3'),
        ],
        {
          description:
            'sharp resize kernel, colour conversion after the resize (at the input size). Absent: the pipeline models were trained with before it existed (lanczos3, conversion before the resize), kept exactly',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
/** Input spec of a model. */
export type InputSpec = Static<typeof InputSpecSchema>;

/** Names of a model's outputs: a per-image score, optionally an anomaly map. */
export const ModelOutputsSchema = Type.Object(
  {
    score: Type.String({ minLength: 1 }),
    map: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
/** Output names of a model. */
export type ModelOutputs = Static<typeof ModelOutputsSchema>;

/** The signed description of one model version: what a device checks before loading it. */
export const ManifestSchema = Type.Object(
  {
    schema: Type.Literal('linesight.manifest/v1'),
    name: ModelName,
    version: Semver,
    sha256: Sha256,
    sizeBytes: Type.Integer({ minimum: 1 }),
    inputSpec: InputSpecSchema,
    outputs: ModelOutputsSchema,
    threshold: Type.Number(),
    issuedAt: IsoTime,
    expiresAt: Type.Optional(IsoTime),
    keyId: KeyId,
    golden: Type.Optional(
      Type.Object(
        {
          scores: Type.Array(Type.Number(), {
            minItems: 1,
            maxItems: 16,
            description: 'reference scores of the standard golden inputs (vision goldenInputs)',
          }),
          tolerance: Type.Number({
            exclusiveMinimum: 0,
            description: 'allowed |score - reference| / max(1, |reference|)',
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
/** A model manifest. */
export type Manifest = Static<typeof ManifestSchema>;

/** A manifest with its Ed25519 signature over the manifest's canonical JSON. */
export const SignedManifestSchema = Type.Object(
  {
    manifest: ManifestSchema,
    signature: Signature,
  },
  { additionalProperties: false },
);
/** A signed manifest. */
export type SignedManifest = Static<typeof SignedManifestSchema>;

/** A model a device should run: its signed manifest and where to fetch the artifact. */
export const ModelAssignmentSchema = Type.Object(
  {
    signed: SignedManifestSchema,
    artifactUrl: Type.String({
      minLength: 1,
      description: 'absolute URL, or a path on the cloud URL',
    }),
  },
  { additionalProperties: false },
);
/** A model assignment in a desired-state document. */
export type ModelAssignment = Static<typeof ModelAssignmentSchema>;

/** A public key a device trusts for manifests and desired state. */
export const TrustedKeySchema = Type.Object(
  { keyId: KeyId, publicKeyPem: Type.String({ minLength: 40, maxLength: 400 }) },
  { additionalProperties: false },
);

/**
 * The keys devices should trust, versioned, signed by a key the device already
 * trusts: how a signing key is rotated without re-provisioning devices.
 */
export const TrustListSchema = Type.Object(
  {
    schema: Type.Literal('linesight.trust/v1'),
    version: Type.Integer({
      minimum: 1,
      description: 'increases with every change of the key set',
    }),
    keys: Type.Array(TrustedKeySchema, { minItems: 1, maxItems: 8 }),
    issuedAt: IsoTime,
    keyId: KeyId,
    signature: Signature,
  },
  { additionalProperties: false },
);
/** A signed trust list. */
export type TrustList = Static<typeof TrustListSchema>;

/**
 * Retained cloud -> device document: what the device should be running. It is
 * signed (over its canonical JSON without `signature`), carries a revision
 * that only grows and an expiry, so a device rejects replayed, altered or
 * stale documents.
 */
export const DesiredStateSchema = Type.Object(
  {
    schema: Type.Literal('linesight.desired/v1'),
    deviceId: DeviceId,
    revision: Type.Integer({ minimum: 1, description: 'increases with every change' }),
    issuedAt: IsoTime,
    expiresAt: IsoTime,
    keyId: KeyId,
    signature: Signature,
    trust: Type.Optional(TrustListSchema),
    model: Type.Union([ModelAssignmentSchema, Type.Null()]),
    shadow: Type.Optional(
      Type.Union([ModelAssignmentSchema, Type.Null()], {
        description:
          'a candidate that scores the same frames off the critical path; never changes live verdicts',
      }),
    ),
    telemetryIntervalSec: Type.Optional(Type.Number({ minimum: 0.2, maximum: 3600 })),
    edgeData: Type.Optional(EdgeDataSettingsSchema),
  },
  { additionalProperties: false },
);
/** A desired-state document. */
export type DesiredState = Static<typeof DesiredStateSchema>;

/** Identity of a model version. */
export const ModelRefSchema = Type.Object(
  { name: ModelName, version: Semver, sha256: Type.Optional(Sha256) },
  { additionalProperties: false },
);
/** A model reference. */
export type ModelRef = Static<typeof ModelRefSchema>;

/** Cumulative frame counters since the agent started. */
export const FrameCountersSchema = Type.Object(
  {
    captured: Type.Integer({ minimum: 0, description: 'frames the camera delivered' }),
    scored: Type.Integer({ minimum: 0, description: 'frames a model scored' }),
    unknown: Type.Integer({ minimum: 0, description: 'frames published as unknown (no verdict)' }),
    droppedOverload: Type.Integer({
      minimum: 0,
      description: 'frames dropped because scoring lagged',
    }),
    defects: Type.Integer({ minimum: 0, description: 'frames with a defect verdict' }),
  },
  { additionalProperties: false },
);
/** Frame counters. */
export type FrameCounters = Static<typeof FrameCountersSchema>;

/** A structured error as devices report it. */
export const ReportedErrorSchema = Type.Object(
  {
    code: Type.String(),
    message: Type.String(),
    at: IsoTime,
    model: Type.Optional(ModelRefSchema),
  },
  { additionalProperties: false },
);
/** A reported error. */
export type ReportedError = Static<typeof ReportedErrorSchema>;

/** Phases of an agent's model lifecycle. */
export const AgentPhaseSchema = Type.Union([
  Type.Literal('starting'),
  Type.Literal('idle'),
  Type.Literal('downloading'),
  Type.Literal('verifying'),
  Type.Literal('loading'),
  Type.Literal('running'),
]);
/** An agent phase. */
export type AgentPhase = Static<typeof AgentPhaseSchema>;

/** Retained device -> cloud document: what the device is actually running. */
export const ReportedStateSchema = Type.Object(
  {
    schema: Type.Literal('linesight.reported/v1'),
    deviceId: DeviceId,
    phase: AgentPhaseSchema,
    desiredRevision: Type.Integer({ minimum: 0, description: 'last desired revision handled' }),
    model: Type.Union([ModelRefSchema, Type.Null()]),
    shadowModel: Type.Optional(Type.Union([ModelRefSchema, Type.Null()])),
    lastError: Type.Optional(ReportedErrorSchema),
    frames: FrameCountersSchema,
    framesByVersion: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
    agentVersion: Type.String(),
    updatedAt: IsoTime,
    edgeData: Type.Optional(EdgeDataReportSchema),
  },
  { additionalProperties: false },
);
/** A reported-state document. */
export type ReportedState = Static<typeof ReportedStateSchema>;

/** How a shadow model compares with the live one on the same frames (cumulative). */
export const ShadowStatsSchema = Type.Object(
  {
    model: ModelRefSchema,
    scored: Type.Integer({ minimum: 0, description: 'frames the shadow scored' }),
    skipped: Type.Integer({
      minimum: 0,
      description:
        'frames not scored: the shadow was still busy, or it gave way to the live model (a live frame waiting, or no idle time before the next one)',
    }),
    errors: Type.Integer({ minimum: 0 }),
    agreementRate: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], {
      description: 'share of frames with the same verdict',
    }),
    meanAbsScoreDiff: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    latencyMs: Type.Object(
      {
        p50: Type.Number({ minimum: 0 }),
        p99: Type.Number({ minimum: 0 }),
        max: Type.Number({ minimum: 0 }),
      },
      {
        additionalProperties: false,
        description:
          "the shadow's inference time, decoding excluded (comparable with the live inference stage)",
      },
    ),
  },
  { additionalProperties: false },
);
/** Shadow comparison statistics. */
export type ShadowStats = Static<typeof ShadowStatsSchema>;

/** One local output of a device (plant MQTT, Modbus, webhook, command, SSE), cumulative since start. */
export const OutputTelemetrySchema = Type.Object(
  {
    name: Type.String(),
    kind: Type.String({ description: 'mqtt, modbus, webhook, command or sse' }),
    up: Type.Boolean(),
    written: Type.Integer({ minimum: 0 }),
    skipped: Type.Integer({
      minimum: 0,
      description: 'passed over on purpose (filter, rate limit)',
    }),
    dropped: Type.Integer({ minimum: 0, description: 'dropped because the queue was full' }),
    stale: Type.Integer({ minimum: 0, description: 'dropped because they waited too long' }),
    failures: Type.Integer({ minimum: 0, description: 'failed write attempts' }),
    outages: Type.Integer({ minimum: 0 }),
    downMs: Type.Integer({ minimum: 0 }),
    queued: Type.Integer({ minimum: 0 }),
    reconnects: Type.Integer({ minimum: 0 }),
    latencyMs: Type.Object(
      {
        p50: Type.Number({ minimum: 0 }),
        p99: Type.Number({ minimum: 0 }),
        max: Type.Number({ minimum: 0 }),
      },
      { additionalProperties: false, description: 'verdict to written' },
    ),
  },
  { additionalProperties: false },
);
/** Telemetry of one local output. */
export type OutputTelemetry = Static<typeof OutputTelemetrySchema>;

/** Periodic device -> cloud health and performance summary. */
export const TelemetrySchema = Type.Object(
  {
    schema: Type.Literal('linesight.telemetry/v1'),
    deviceId: DeviceId,
    at: IsoTime,
    intervalSec: Type.Number({ minimum: 0 }),
    model: Type.Union([ModelRefSchema, Type.Null()]),
    frames: FrameCountersSchema,
    fps: Type.Number({ minimum: 0 }),
    latencyMs: Type.Object(
      {
        p50: Type.Number({ minimum: 0 }),
        p99: Type.Number({ minimum: 0 }),
        max: Type.Number({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    errors: Type.Integer({ minimum: 0 }),
    watchdogTrips: Type.Optional(Type.Integer({ minimum: 0 })),
    circuitOpenFrames: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'frames published as unknown without a run because their model version kept exceeding the watchdog',
      }),
    ),
    stageLatencyMs: Type.Optional(
      Type.Record(
        Type.Union([
          Type.Literal('capture'),
          Type.Literal('queue'),
          Type.Literal('preprocess'),
          Type.Literal('inference'),
          Type.Literal('publish'),
        ]),
        Type.Object(
          {
            p50: Type.Number({ minimum: 0 }),
            p99: Type.Number({ minimum: 0 }),
            max: Type.Number({ minimum: 0 }),
          },
          { additionalProperties: false },
        ),
        {
          description:
            'per-stage latency over the recent frames; publish = validating, encoding and handing a result to MQTT',
        },
      ),
    ),
    shadow: Type.Optional(ShadowStatsSchema),
    outputs: Type.Optional(
      Type.Array(OutputTelemetrySchema, {
        description: 'local outputs to the line, verdict-to-written latency and gaps',
      }),
    ),
  },
  { additionalProperties: false },
);
/** A telemetry message. */
export type Telemetry = Static<typeof TelemetrySchema>;

export { VerdictSchema };
/** A verdict. */
export type Verdict = Static<typeof VerdictSchema>;

/** Device -> line result of one frame. */
export const FrameResultSchema = Type.Object(
  {
    schema: Type.Literal('linesight.result/v1'),
    deviceId: DeviceId,
    seq: Type.Integer({ minimum: 0, description: 'camera frame sequence number' }),
    capturedAt: IsoTime,
    verdict: VerdictSchema,
    score: Type.Union([Type.Number(), Type.Null()]),
    threshold: Type.Union([Type.Number(), Type.Null()]),
    model: Type.Union([ModelRefSchema, Type.Null()]),
    reason: Type.Optional(Type.String({ description: 'why the verdict is unknown' })),
    latencyMs: Type.Object(
      {
        capture: Type.Number({
          minimum: 0,
          description: 'from capture until the agent had the frame',
        }),
        queue: Type.Number({ minimum: 0, description: 'waiting before preprocessing' }),
        preprocess: Type.Number({ minimum: 0 }),
        inference: Type.Number({ minimum: 0 }),
        total: Type.Number({ minimum: 0, description: 'from arrival at the agent to the verdict' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
/** A frame result. */
export type FrameResult = Static<typeof FrameResultSchema>;

/** Device -> cloud notable event (model refused, activated, camera failure...). */
export const DeviceEventSchema = Type.Object(
  {
    schema: Type.Literal('linesight.event/v1'),
    deviceId: DeviceId,
    at: IsoTime,
    level: Type.Union([Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')]),
    type: Type.String({ pattern: '^[a-z]+(\\.[a-z_]+)+$', description: 'e.g. model.refused' }),
    message: Type.String(),
    code: Type.Optional(Type.String()),
    model: Type.Optional(ModelRefSchema),
  },
  { additionalProperties: false },
);
/** A device event. */
export type DeviceEvent = Static<typeof DeviceEventSchema>;

/** Retained device presence, set online on connect and offline by the will message. */
export const DeviceStatusSchema = Type.Object(
  {
    schema: Type.Literal('linesight.status/v1'),
    deviceId: DeviceId,
    online: Type.Boolean(),
    at: IsoTime,
  },
  { additionalProperties: false },
);
/** A device status. */
export type DeviceStatus = Static<typeof DeviceStatusSchema>;

/** Every payload schema, by the channel it travels on. */
export const CHANNEL_SCHEMAS = {
  desired: DesiredStateSchema,
  reported: ReportedStateSchema,
  telemetry: TelemetrySchema,
  events: DeviceEventSchema,
  results: FrameResultSchema,
  status: DeviceStatusSchema,
} as const satisfies Record<string, TSchema>;

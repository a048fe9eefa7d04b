// REST contract of /v1/rollouts: waves, gates, shadow phase and progress.
import { Type, type Static } from '@sinclair/typebox';

/** Which devices a rollout targets; both parts must match, an empty selector means every device. */
export const DeviceSelectorSchema = Type.Object(
  {
    ids: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    labels: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String())),
  },
  { additionalProperties: false },
);

/** What a phase that passes its deadline does. */
export const DeadlineActionSchema = Type.Union([Type.Literal('fail'), Type.Literal('pause')]);

/** Body of POST /v1/rollouts. */
export const CreateRolloutBodySchema = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    version: Type.String({ minLength: 1 }),
    devices: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description: 'shorthand for selector.ids',
      }),
    ),
    selector: Type.Optional(DeviceSelectorSchema),
    waves: Type.Optional(
      Type.Array(
        Type.Object(
          {
            percent: Type.Number({ exclusiveMinimum: 0, maximum: 100 }),
            soakSec: Type.Number({ minimum: 0, maximum: 86_400 }),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 20, description: 'cumulative percent of the selected devices' },
      ),
    ),
    gates: Type.Optional(
      Type.Object(
        {
          maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          maxP99LatencyRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          maxP50LatencyRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          minLatencyIncreaseMs: Type.Optional(Type.Number({ minimum: 0 })),
          maxDefectRateChange: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          maxRefusedOrCrashed: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    shadow: Type.Optional(
      Type.Object(
        {
          durationSec: Type.Number({ exclusiveMinimum: 0, maximum: 86_400 }),
          minAgreement: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          maxLatencyRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    waveTimeoutSec: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 86_400 })),
    onDeadline: Type.Optional(
      Type.Union([Type.Literal('fail'), Type.Literal('pause')], {
        description:
          'what a phase that passes its deadline (waveTimeoutSec) does: fail the wave (default) or pause the rollout',
      }),
    ),
  },
  { additionalProperties: false },
);
/** What POST /v1/rollouts takes. */
export type CreateRolloutBody = Static<typeof CreateRolloutBodySchema>;

/** Path parameters of /v1/rollouts/:id. */
export const RolloutIdParamsSchema = Type.Object({ id: Type.String({ minLength: 1 }) });

/** Per-device rollout states. */
export const RolloutDeviceStateSchema = Type.Union([
  Type.Literal('waiting'),
  Type.Literal('pending'),
  Type.Literal('done'),
  Type.Literal('failed'),
  Type.Literal('rolled_back'),
]);
/** A device's state in a rollout. */
export type RolloutDeviceState = Static<typeof RolloutDeviceStateSchema>;

/** How many devices are in each rollout state. */
export const RolloutCountsSchema = Type.Object({
  waiting: Type.Integer(),
  pending: Type.Integer(),
  done: Type.Integer(),
  failed: Type.Integer(),
  rolled_back: Type.Integer(),
});

/** One health gate's verdict; `value` is null when there was not enough data. */
export const GateResultSchema = Type.Object({
  gate: Type.String(),
  passed: Type.Boolean(),
  value: Type.Union([Type.Number(), Type.Null()]),
  limit: Type.Number(),
  detail: Type.String(),
});
/** One health gate's verdict. */
export type GateResult = Static<typeof GateResultSchema>;

/** A device that had not reached the version when a deadline passed, and why. */
export const LateDeviceSchema = Type.Object({
  id: Type.String(),
  online: Type.Boolean(),
  reason: Type.String(),
});

/** One wave of a rollout with its progress. */
export const RolloutWaveSchema = Type.Object({
  index: Type.Integer(),
  percent: Type.Number(),
  soakSec: Type.Number(),
  size: Type.Integer(),
  state: Type.Union([
    Type.Literal('waiting'),
    Type.Literal('applying'),
    Type.Literal('soaking'),
    Type.Literal('passed'),
    Type.Literal('failed'),
    Type.Literal('rolled_back'),
  ]),
  startedAt: Type.Union([Type.String(), Type.Null()]),
  soakStartedAt: Type.Union([Type.String(), Type.Null()]),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
  gates: Type.Array(GateResultSchema),
  counts: RolloutCountsSchema,
  /** Devices that had not reached the version when the wave's deadline passed. */
  late: Type.Optional(Type.Array(LateDeviceSchema)),
});
/** One wave of a rollout with its progress. */
export type RolloutWave = Static<typeof RolloutWaveSchema>;

/** Health limits a wave must stay within (docs/rollouts.md), with the cloud's defaults applied. */
export const GateLimitsSchema = Type.Object({
  maxErrorRate: Type.Number(),
  maxP99LatencyRatio: Type.Number(),
  maxP50LatencyRatio: Type.Number(),
  minLatencyIncreaseMs: Type.Number(),
  maxDefectRateChange: Type.Number(),
  maxRefusedOrCrashed: Type.Number(),
});

/** A rollout's request with defaults applied. */
export const RolloutSpecSchema = Type.Object({
  selector: Type.Object({
    ids: Type.Optional(Type.Array(Type.String())),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  }),
  waves: Type.Array(Type.Object({ percent: Type.Number(), soakSec: Type.Number() })),
  gates: GateLimitsSchema,
  shadow: Type.Union([
    Type.Object({
      durationSec: Type.Number(),
      minAgreement: Type.Number(),
      maxLatencyRatio: Type.Number(),
    }),
    Type.Null(),
  ]),
  /** All at once: no waves, gates or rollback. */
  direct: Type.Boolean(),
  waveTimeoutSec: Type.Number(),
  /** Absent on rollouts stored before it existed: fail. */
  onDeadline: Type.Optional(DeadlineActionSchema),
});
/** A rollout's request with defaults applied. */
export type RolloutSpecView = Static<typeof RolloutSpecSchema>;

/** Where the shadow phase stands. */
export const ShadowProgressSchema = Type.Object({
  state: Type.Union([
    Type.Literal('waiting'),
    Type.Literal('running'),
    Type.Literal('passed'),
    Type.Literal('failed'),
    Type.Literal('skipped'),
  ]),
  startedAt: Type.Union([Type.String(), Type.Null()]),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
  gates: Type.Array(GateResultSchema),
});

/** One device's progress in a rollout. */
export const RolloutDeviceSchema = Type.Object({
  id: Type.String(),
  wave: Type.Integer(),
  state: RolloutDeviceStateSchema,
  running: Type.Union([Type.String(), Type.Null()]),
  online: Type.Boolean(),
  error: Type.Optional(Type.String()),
  /** Why the device was late when its wave's deadline passed, while it still is. */
  late: Type.Optional(Type.String()),
});

/** A rollout with per-wave and per-device progress, as every /v1/rollouts route answers it. */
export const RolloutStatusSchema = Type.Object({
  id: Type.String(),
  modelName: Type.String(),
  modelVersion: Type.String(),
  deviceIds: Type.Array(Type.String()),
  /** pending, shadow, in_progress, paused, completed, rolled_back, aborted or failed. */
  state: Type.String(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  /** What the rollout was asked to do (null for rollouts stored before waves existed). */
  spec: Type.Union([RolloutSpecSchema, Type.Null()]),
  /** Why the rollout ended as it did (rolled back, aborted, failed). */
  reason: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.Union([Type.String(), Type.Null()]),
  waves: Type.Array(RolloutWaveSchema),
  shadow: Type.Union([ShadowProgressSchema, Type.Null()]),
  devices: Type.Optional(
    Type.Array(RolloutDeviceSchema, {
      description: 'each device of the rollout; left out when asked with ?devices=false',
    }),
  ),
  counts: RolloutCountsSchema,
  /**
   * Desired-state publishes of the steps so far, which go out in the background, paced:
   * devices given a document, and how many of those the broker has acknowledged.
   */
  publish: Type.Object({
    toPublish: Type.Integer({ minimum: 0 }),
    published: Type.Integer({ minimum: 0 }),
  }),
});
/** A rollout with per-wave and per-device progress. */
export type RolloutStatusView = Static<typeof RolloutStatusSchema>;

/** Query of GET /v1/rollouts and GET /v1/rollouts/:id. */
export const RolloutViewQuerySchema = Type.Object({
  devices: Type.Optional(
    Type.Boolean({
      default: true,
      description:
        'false: leave out the per-device list, which for a large fleet is most of the answer and of its cost (the counts stay)',
    }),
  ),
});
/** What GET /v1/rollouts and /v1/rollouts/:id may be asked. */
export type RolloutViewQuery = Static<typeof RolloutViewQuerySchema>;

import { Type, type Static } from '@sinclair/typebox';
import { RETRAIN_ROLLOUT_MODES } from '@linesight/protocol';

/**
 * Training is background work that can take every core for minutes: at a low
 * CPU priority the control plane (and whatever else shares the machine, such
 * as a line's agent) comes first. Not the lowest (19): against two busy
 * processes that leaves a job about 1.5 % of a core (a 60 s e2e job took over
 * 600 s); at 10 it keeps about a tenth when contended, all of an idle machine.
 */
export const TRAINER_NICE = 10;

/** How a registered challenger goes to the fleet: not at all, shadow first, or a canary wave. */
export const ROLLOUT_MODES = RETRAIN_ROLLOUT_MODES;
/** A rollout mode of a retraining job. */
export type RetrainRolloutMode = (typeof ROLLOUT_MODES)[number];

/** The metrics a challenger and its champion are compared on. */
export const COMPARE_METRICS = ['auroc', 'ap', 'f1'] as const;
/** A comparison metric. */
export type CompareMetric = (typeof COMPARE_METRICS)[number];

const literals = <T extends string>(values: readonly T[], def: T, description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { default: def, description },
  );

/**
 * Settings of the retraining loop (docs/retraining.md). Automatic triggers
 * apply only to the model names listed in `models`; the API and CLI can start
 * a job for any model.
 */
export const RetrainSettingsSchema = Type.Object(
  {
    models: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'model names the automatic triggers (schedule, alerts, new labels) retrain; none by default',
    }),
    schedule: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'node-cron schedule that retrains every model in `models` (off when absent)',
      }),
    ),
    onAlert: Type.Boolean({
      default: false,
      description:
        'an open product-drift alert at alert level on a device running a model in `models` starts a job (camera alerts never do: retraining on a broken camera teaches the model the fault)',
    }),
    newLabels: Type.Integer({
      minimum: 0,
      default: 0,
      description:
        'this many labels given since the model’s last job start one (0: off); counted over samples of that model name',
    }),
    triggerCheckSec: Type.Number({
      minimum: 1,
      default: 60,
      description: 'how often the alert and label triggers are checked',
    }),
    metric: literals(COMPARE_METRICS, 'auroc', 'metric champion and challenger are compared on'),
    minImprovement: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.02,
      description:
        'the challenger is registered only when its metric exceeds the champion’s by at least this much',
    }),
    maxF1Drop: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], {
      default: null,
      description:
        'a challenger that wins on `metric` is still refused when its held-out F1 is more than this below the champion’s (null: off; not applied when `metric` is f1)',
    }),
    holdoutShare: Type.Number({
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
      default: 0.3,
      description:
        'share of the labelled samples of each label, newest first, kept out of training to compare champion and challenger on',
    }),
    minHoldoutPerLabel: Type.Integer({
      minimum: 1,
      default: 5,
      description: 'good and defect samples the held-out set needs at least, else the job fails',
    }),
    maxLabelledSamples: Type.Integer({
      minimum: 10,
      default: 20_000,
      description: 'newest labelled samples a job reads at most',
    }),
    training: Type.Object(
      {
        epochs: Type.Integer({ minimum: 1, maximum: 1000, default: 30 }),
        seed: Type.Integer({ minimum: 0, default: 1 }),
        members: Type.Integer({ minimum: 1, maximum: 8, default: 1 }),
        nice: Type.Integer({
          minimum: 0,
          maximum: 19,
          default: TRAINER_NICE,
          description:
            'CPU priority of the trainer process: 10 lets the control plane and anything else on the machine come first; 0 on a machine kept for training',
        }),
        size: Type.Optional(
          Type.Integer({
            minimum: 32,
            maximum: 1024,
            multipleOf: 8,
            description: 'model input side; the parent’s when absent',
          }),
        ),
      },
      { default: {}, additionalProperties: false, description: 'options of the trainer' },
    ),
    timeoutSec: Type.Number({
      minimum: 10,
      default: 3600,
      description: 'a job still training after this long is stopped and marked failed',
    }),
    maxQueued: Type.Integer({
      minimum: 1,
      default: 16,
      description: 'jobs waiting for the trainer at most; more are refused with 503',
    }),
    rollout: Type.Object(
      {
        mode: literals(
          ROLLOUT_MODES,
          'none',
          'what a registered challenger starts: nothing, a shadow rollout or a canary wave',
        ),
        shadowSec: Type.Number({
          exclusiveMinimum: 0,
          maximum: 86_400,
          default: 3600,
          description: 'length of the shadow phase',
        }),
        canaryPercent: Type.Number({
          exclusiveMinimum: 0,
          maximum: 100,
          default: 10,
          description: 'share of the champion’s devices in the canary wave',
        }),
        soakSec: Type.Number({
          minimum: 0,
          maximum: 86_400,
          default: 3600,
          description: 'soak time of each wave before its gates',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
  },
  { default: {}, additionalProperties: false },
);

/** Validated retraining settings. */
export type RetrainSettings = Static<typeof RetrainSettingsSchema>;
/** Retraining settings as given (defaults not applied). */
export type RetrainSettingsInput = Partial<
  Omit<RetrainSettings, 'training' | 'rollout' | 'metric'>
> & {
  metric?: CompareMetric;
  training?: Partial<RetrainSettings['training']>;
  rollout?: Partial<RetrainSettings['rollout']>;
};

import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { LinesightError } from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { actorOf } from '../auth.ts';

const SelectorSchema = Type.Object(
  {
    ids: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    labels: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String())),
  },
  { additionalProperties: false },
);

const CreateRolloutBody = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    version: Type.String({ minLength: 1 }),
    devices: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description: 'shorthand for selector.ids',
      }),
    ),
    selector: Type.Optional(SelectorSchema),
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

const IdParams = Type.Object({ id: Type.String({ minLength: 1 }) });

/** Rollout routes: waves, gates, shadow phase, progress, pause, resume and abort. */
export async function rolloutRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Body: Static<typeof CreateRolloutBody> }>(
    '/v1/rollouts',
    {
      schema: {
        tags: ['rollouts'],
        summary:
          'Roll a model version out to the selected devices (all when no selector), in waves with health gates and an optional shadow phase',
        body: CreateRolloutBody,
      },
    },
    async (request, reply) => {
      const {
        devices,
        selector,
        model,
        version,
        waves,
        gates,
        shadow,
        waveTimeoutSec,
        onDeadline,
      } = request.body;
      if (devices !== undefined && selector?.ids !== undefined)
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          'give device ids either as "devices" or as "selector.ids", not both',
        );
      const merged = devices === undefined ? selector : { ...selector, ids: devices };
      const status = await services.rollouts.create({
        model,
        version,
        ...(merged !== undefined ? { selector: merged } : {}),
        ...(waves !== undefined ? { waves } : {}),
        ...(gates !== undefined ? { gates } : {}),
        ...(shadow !== undefined ? { shadow } : {}),
        ...(waveTimeoutSec !== undefined ? { waveTimeoutSec } : {}),
        ...(onDeadline !== undefined ? { onDeadline } : {}),
        actor: actorOf(request),
      });
      void reply.status(201);
      return status;
    },
  );

  app.get(
    '/v1/rollouts',
    { schema: { tags: ['rollouts'], summary: 'List rollouts with progress' } },
    async () => services.rollouts.list(),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/rollouts/:id',
    {
      schema: {
        tags: ['rollouts'],
        summary: 'Show a rollout with per-wave and per-device progress',
        params: IdParams,
      },
    },
    async (request) => services.rollouts.status(request.params.id),
  );

  for (const action of ['pause', 'resume', 'abort'] as const) {
    app.post<{ Params: Static<typeof IdParams> }>(
      `/v1/rollouts/:id/${action}`,
      {
        schema: {
          tags: ['rollouts'],
          summary:
            action === 'pause'
              ? 'Hold a rollout (no new wave, no gate evaluation)'
              : action === 'resume'
                ? 'Continue a paused rollout'
                : 'Stop a rollout and send the devices it moved back to their previous version',
          params: IdParams,
        },
      },
      async (request) => services.rollouts[action](request.params.id, actorOf(request)),
    );
  }
}

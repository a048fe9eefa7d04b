import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import {
  CreateRolloutBodySchema,
  LinesightError,
  RolloutIdParamsSchema,
  RolloutStatusSchema,
  RolloutViewQuerySchema,
  type RolloutStatusView,
  type RolloutViewQuery,
} from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { actorOf } from '../auth.ts';
import { serializeAsIs } from '../serialize-as-is.ts';

/**
 * What the routes answer: the status schema's type, but with the service's read-only
 * device list (the rollout store's own, not copied per read); JSON.stringify writes it
 * the same.
 */
type RolloutAnswer = Omit<RolloutStatusView, 'deviceIds'> & { deviceIds: readonly string[] };

/**
 * Rollout routes: waves, gates, shadow phase, progress, pause, resume and abort.
 * Their answers are sent whole (serializeAsIs); the status schema documents them.
 */
export async function rolloutRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Body: Static<typeof CreateRolloutBodySchema> }>(
    '/v1/rollouts',
    {
      ...serializeAsIs,
      schema: {
        tags: ['rollouts'],
        summary:
          'Roll a model version out to the selected devices (all when no selector), in waves with health gates and an optional shadow phase',
        body: CreateRolloutBodySchema,
        response: { 201: RolloutStatusSchema },
      },
    },
    async (request, reply): Promise<RolloutAnswer> => {
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

  app.get<{ Querystring: RolloutViewQuery }>(
    '/v1/rollouts',
    {
      ...serializeAsIs,
      schema: {
        tags: ['rollouts'],
        summary: 'List rollouts with progress',
        querystring: RolloutViewQuerySchema,
        response: { 200: Type.Array(RolloutStatusSchema) },
      },
    },
    async (request): Promise<RolloutAnswer[]> => services.rollouts.list(request.query),
  );

  app.get<{ Params: Static<typeof RolloutIdParamsSchema>; Querystring: RolloutViewQuery }>(
    '/v1/rollouts/:id',
    {
      ...serializeAsIs,
      schema: {
        tags: ['rollouts'],
        summary: 'Show a rollout with per-wave and per-device progress',
        params: RolloutIdParamsSchema,
        querystring: RolloutViewQuerySchema,
        response: { 200: RolloutStatusSchema },
      },
    },
    async (request): Promise<RolloutAnswer> =>
      services.rollouts.status(request.params.id, request.query),
  );

  for (const action of ['pause', 'resume', 'abort'] as const) {
    app.post<{ Params: Static<typeof RolloutIdParamsSchema> }>(
      `/v1/rollouts/:id/${action}`,
      {
        ...serializeAsIs,
        schema: {
          tags: ['rollouts'],
          summary:
            action === 'pause'
              ? 'Hold a rollout (no new wave, no gate evaluation)'
              : action === 'resume'
                ? 'Continue a paused rollout'
                : 'Stop a rollout and send the devices it moved back to their previous version',
          params: RolloutIdParamsSchema,
          response: { 200: RolloutStatusSchema },
        },
      },
      async (request): Promise<RolloutAnswer> =>
        services.rollouts[action](request.params.id, actorOf(request)),
    );
  }
}

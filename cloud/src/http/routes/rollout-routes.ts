import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { CloudServices } from '../services.ts';
import { actorOf } from '../auth.ts';

/** Rollout routes: send a model version to devices and follow progress. */
export async function rolloutRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Body: { model: string; version: string; devices?: string[] } }>(
    '/v1/rollouts',
    {
      schema: {
        tags: ['rollouts'],
        summary: 'Roll a model version out to devices (all devices when "devices" is omitted)',
        body: Type.Object(
          {
            model: Type.String({ minLength: 1 }),
            version: Type.String({ minLength: 1 }),
            devices: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const status = await services.rollouts.create({
        model: request.body.model,
        version: request.body.version,
        ...(request.body.devices ? { deviceIds: request.body.devices } : {}),
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

  app.get<{ Params: { id: string } }>(
    '/v1/rollouts/:id',
    {
      schema: {
        tags: ['rollouts'],
        summary: 'Show a rollout with per-device progress',
        params: Type.Object({ id: Type.String() }),
      },
    },
    async (request) => services.rollouts.status(request.params.id),
  );
}

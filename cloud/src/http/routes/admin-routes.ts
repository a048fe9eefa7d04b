import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { LinesightError } from '@linesight/protocol';
import { actorOf } from '../auth.ts';
import type { CloudServices } from '../services.ts';

/** Operator routes: named tokens and the audit log. */
export async function adminRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Body: { actor: string } }>(
    '/v1/tokens',
    {
      schema: {
        tags: ['operators'],
        summary: 'Create a named operator token (admin only); the token is shown only once',
        body: Type.Object(
          { actor: Type.String({ minLength: 1, maxLength: 64 }) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ actor: Type.String(), token: Type.String() }) },
      },
    },
    async (request, reply) => {
      const by = actorOf(request);
      if (by !== 'admin')
        throw new LinesightError(
          'ERR_CLOUD_FORBIDDEN',
          'only the admin token can create operator tokens',
        );
      const created = services.tokens.create(request.body.actor, by);
      services.audit.record(by, 'token.create', request.body.actor);
      void reply.status(201);
      return created;
    },
  );

  app.get(
    '/v1/tokens',
    {
      schema: {
        tags: ['operators'],
        summary: 'List named operator tokens (actor, created when and by whom; never the token)',
        response: {
          200: Type.Array(
            Type.Object({
              actor: Type.String(),
              createdAt: Type.String(),
              createdBy: Type.String(),
            }),
          ),
        },
      },
    },
    async () => services.tokens.list(),
  );

  app.delete<{ Params: { actor: string } }>(
    '/v1/tokens/:actor',
    {
      schema: {
        tags: ['operators'],
        summary: "Revoke an actor's token (admin only); it stops working at once",
        params: Type.Object({ actor: Type.String() }),
        response: { 200: Type.Object({ actor: Type.String(), revoked: Type.Literal(true) }) },
      },
    },
    async (request) => {
      const by = actorOf(request);
      if (by !== 'admin')
        throw new LinesightError('ERR_CLOUD_FORBIDDEN', 'only the admin token can revoke tokens');
      services.tokens.revoke(request.params.actor);
      services.audit.record(by, 'token.revoke', request.params.actor);
      return { actor: request.params.actor, revoked: true as const };
    },
  );

  app.get<{
    Querystring: {
      action?: string;
      subject?: string;
      actor?: string;
      limit?: number;
      beforeId?: number;
    };
  }>(
    '/v1/audit',
    {
      schema: {
        tags: ['operators'],
        summary: 'The append-only audit log, newest first',
        querystring: Type.Object({
          action: Type.Optional(Type.String()),
          subject: Type.Optional(Type.String()),
          actor: Type.Optional(Type.String()),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          beforeId: Type.Optional(Type.Integer({ minimum: 1 })),
        }),
      },
    },
    async (request) => services.audit.list(request.query),
  );
}

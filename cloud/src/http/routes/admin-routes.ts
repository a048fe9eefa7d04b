import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  AuditEntryListSchema,
  AuditQuerySchema,
  CreateTokenBodySchema,
  CreatedTokenSchema,
  RevokedTokenSchema,
  TokenViewSchema,
  type AuditEntryView,
  type AuditQuery,
} from '@linesight/protocol';
import { actorOf } from '../auth.ts';
import type { CloudServices } from '../services.ts';
import type { Role } from '../../registry/roles.ts';

/** Operator routes: named tokens and the audit log. */
export async function adminRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Body: { actor: string; role?: Role } }>(
    '/v1/tokens',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['operators'],
        summary: 'Create a named API token with a role (admin only); the token is shown only once',
        description:
          'Roles include the ones before them: viewer reads (and may ask for central inference), ' +
          'operator also changes models, rollouts and labels, admin also manages devices, keys and tokens.',
        body: CreateTokenBodySchema,
        response: { 201: CreatedTokenSchema },
      },
    },
    async (request, reply) => {
      const by = actorOf(request);
      const created = services.tokens.create(request.body.actor, by, request.body.role);
      services.audit.record(by, 'token.create', request.body.actor, { role: created.role });
      void reply.status(201);
      return created;
    },
  );

  app.get(
    '/v1/tokens',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['operators'],
        summary: 'List named API tokens (actor, role, created when and by whom; never the token)',
        response: { 200: Type.Array(TokenViewSchema) },
      },
    },
    async () => services.tokens.list(),
  );

  app.delete<{ Params: { actor: string } }>(
    '/v1/tokens/:actor',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['operators'],
        summary: "Revoke an actor's token (admin only); it stops working at once",
        params: Type.Object({ actor: Type.String() }),
        response: { 200: RevokedTokenSchema },
      },
    },
    async (request) => {
      const by = actorOf(request);
      services.tokens.revoke(request.params.actor);
      services.audit.record(by, 'token.revoke', request.params.actor);
      return { actor: request.params.actor, revoked: true as const };
    },
  );

  app.get<{ Querystring: AuditQuery }>(
    '/v1/audit',
    {
      schema: {
        tags: ['operators'],
        summary: 'The append-only audit log, newest first',
        querystring: AuditQuerySchema,
        response: { 200: AuditEntryListSchema },
      },
    },
    async (request): Promise<AuditEntryView[]> => services.audit.list(request.query),
  );
}

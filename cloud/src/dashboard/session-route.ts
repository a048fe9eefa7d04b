import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { DEFAULT_GATES } from '../rollouts/rollout-types.ts';
import { actorOf, roleOf } from '../http/auth.ts';

const SessionView = Type.Object({
  actor: Type.String(),
  role: Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]),
  canWrite: Type.Boolean(),
  gateDefaults: Type.Record(Type.String(), Type.Number()),
});

/**
 * GET /v1/dashboard/session: who the token belongs to and what it may do,
 * plus the rollout gate defaults the create form shows. The API decides; the
 * page only hides what the role would be refused.
 */
export async function sessionRoute(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/dashboard/session',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'The caller, its role and the rollout gate defaults, for the dashboard',
        response: { 200: SessionView },
      },
    },
    async (request) => {
      const actor = actorOf(request);
      const role = roleOf(request) ?? 'viewer';
      return { actor, role, canWrite: role !== 'viewer', gateDefaults: { ...DEFAULT_GATES } };
    },
  );
}

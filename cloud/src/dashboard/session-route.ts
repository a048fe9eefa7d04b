import type { FastifyInstance } from 'fastify';
import { DashboardSessionSchema, type DashboardSession } from '@linesight/protocol';
import { DEFAULT_GATES } from '../rollouts/rollout-types.ts';
import { actorOf, roleOf } from '../http/auth.ts';

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
        response: { 200: DashboardSessionSchema },
      },
    },
    async (request): Promise<DashboardSession> => {
      const actor = actorOf(request);
      const role = roleOf(request) ?? 'viewer';
      return { actor, role, canWrite: role !== 'viewer', gateDefaults: { ...DEFAULT_GATES } };
    },
  );
}

import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { DEFAULT_GATES } from '../rollouts/rollout-types.ts';
import { actorOf } from '../http/auth.ts';

/** What a signed-in page may offer: the API decides, the page only hides what would be refused. */
export type DashboardRole = 'viewer' | 'operator' | 'admin';

/** Every operator token may change things until tokens carry roles. */
function roleOf(actor: string): DashboardRole {
  return actor === 'admin' ? 'admin' : 'operator';
}

const SessionView = Type.Object({
  actor: Type.String(),
  role: Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]),
  canWrite: Type.Boolean(),
  gateDefaults: Type.Record(Type.String(), Type.Number()),
});

/**
 * GET /v1/dashboard/session: who the token belongs to and what it may do,
 * plus the rollout gate defaults the create form shows. Every operator token
 * may change things today; the role names a viewer once tokens carry roles.
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
      const role = roleOf(actor);
      return { actor, role, canWrite: role !== 'viewer', gateDefaults: { ...DEFAULT_GATES } };
    },
  );
}

import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { CloudServices } from '../services.ts';
import { renderPrometheus } from '../../metrics.ts';

const startedAt = Date.now();

/** /healthz and /metrics: open, for load balancers and Prometheus. */
export async function healthRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Liveness: answers 200 while the cloud serves requests',
        response: { 200: Type.Object({ status: Type.Literal('ok'), uptimeSec: Type.Number() }) },
      },
    },
    async () => ({
      status: 'ok' as const,
      uptimeSec: Math.round((Date.now() - startedAt) / 100) / 10,
    }),
  );

  app.get(
    '/metrics',
    {
      config: { auth: 'public' },
      schema: { tags: ['health'], summary: 'Prometheus metrics (text format 0.0.4)' },
    },
    async (_request, reply) => {
      void reply.type('text/plain; version=0.0.4; charset=utf-8');
      return renderPrometheus(services.metrics());
    },
  );
}

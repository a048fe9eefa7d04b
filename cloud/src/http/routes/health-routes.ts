import type { FastifyInstance } from 'fastify';
import { HealthSchema, ReadinessSchema } from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import type { HttpMetrics } from '../http-metrics.ts';

const startedAt = Date.now();

/** /healthz, /readyz and /metrics: open, for load balancers, orchestrators and Prometheus. */
export async function healthRoutes(
  app: FastifyInstance,
  services: CloudServices,
  metrics: HttpMetrics,
): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Liveness: answers 200 while the cloud serves requests',
        response: { 200: HealthSchema },
      },
    },
    async () => ({
      status: 'ok' as const,
      uptimeSec: Math.round((Date.now() - startedAt) / 100) / 10,
    }),
  );

  app.get(
    '/readyz',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary:
          'Readiness: 200 when the broker, database and blob store can serve, else 503 naming what is not ready',
        response: {
          200: ReadinessSchema,
          503: ReadinessSchema,
        },
      },
    },
    async (_request, reply) => {
      const report = await services.readiness();
      void reply.status(report.ready ? 200 : 503);
      return { status: report.ready ? ('ready' as const) : ('not ready' as const), ...report };
    },
  );

  app.get(
    '/metrics',
    {
      // Open on purpose by default (a scraper inside the plant network); metricsAuth 'token' closes it.
      config: { auth: services.metricsAuth === 'token' ? 'viewer' : 'public' },
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text format 0.0.4)',
        produces: ['text/plain'],
        response: {
          200: {
            description: 'Metrics in the Prometheus text format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (_request, reply) => {
      void reply.type('text/plain; version=0.0.4; charset=utf-8');
      return metrics.render(services.metrics());
    },
  );
}

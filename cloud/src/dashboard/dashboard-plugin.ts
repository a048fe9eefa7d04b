import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import type { CloudServices } from '../http/services.ts';
import { FleetWatch } from './fleet-watch.ts';
import { fleetRoutes } from './fleet-routes.ts';
import { sessionRoute } from './session-route.ts';
import { vendorRoutes } from './vendor-assets.ts';

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

/**
 * The fleet dashboard: its pages at `/` (plain ES modules, no build step),
 * the browser libraries at `/vendor/`, and the few read routes the pages need
 * beyond the REST API (`/v1/dashboard/...`, behind the same tokens).
 */
export async function dashboardPlugin(
  app: FastifyInstance,
  services: Pick<CloudServices, 'devices' | 'alertLevels'>,
): Promise<void> {
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    // One route per file that exists, so unknown paths stay the API's 404s.
    wildcard: false,
    index: 'index.html',
    // The OpenAPI viewer registers @fastify/static too; only one may decorate reply.
    decorateReply: false,
    cacheControl: true,
    maxAge: 0,
  });
  await app.register(vendorRoutes);
  await app.register(sessionRoute);
  const watch = new FleetWatch({
    devices: services.devices,
    alerts: services.alertLevels,
    pollMs: 1000,
    logger: app.log,
  });
  await app.register(fleetRoutes, {
    watch,
    maxBufferedBytes: 4 * 1024 * 1024,
    keepAliveMs: 15_000,
  });
}

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import { LinesightError } from '@linesight/protocol';
import { actorOf, makeAuthenticator } from './auth.ts';
import { errorHandler } from './error-handler.ts';
import { REQUEST_ID_HEADER, requestIdGenerator } from './request-ids.ts';
import { drainUnreadBody } from './unread-body.ts';
import { registerRateLimits, type RateLimits, type RateLimitStats } from './rate-limits.ts';
import { documentRoute, ErrorResponse, toOpenApi30Schemas } from './openapi.ts';
import type { CloudServices } from './services.ts';
import { healthRoutes } from './routes/health-routes.ts';
import { HttpMetrics } from './http-metrics.ts';
import { modelRoutes } from './routes/model-routes.ts';
import { deviceRoutes } from './routes/device-routes.ts';
import { edgeSettingsRoutes } from './routes/edge-settings-routes.ts';
import { rolloutRoutes } from './routes/rollout-routes.ts';
import { keyRoutes } from './routes/key-routes.ts';
import { adminRoutes } from './routes/admin-routes.ts';
import { readerRoutes } from './routes/reader-routes.ts';
import { enrolmentRoutes } from './routes/enrolment-routes.ts';
import { predictRoutes } from './routes/predict-routes.ts';
import { uploadRoutes } from './routes/upload-routes.ts';
import { blobRoutes } from './routes/blob-routes.ts';
import { dashboardPlugin } from '../dashboard/dashboard-plugin.ts';
import { connectionRoutes } from './routes/connection-routes.ts';

const PROBE_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/** Builds the cloud's HTTP API (not yet listening). */
export async function buildHttpServer(options: {
  services: CloudServices;
  adminToken: string;
  logger: Logger;
  /** Per-caller request budgets (default: none), and where refusals are counted. */
  rateLimits?: RateLimits | false;
  rateLimitStats?: RateLimitStats;
  /** Serve HTTPS with this certificate and key; with `clientCa`, devices may log in with client certificates. */
  https?: { cert: string; key: string; clientCa?: string };
}): Promise<FastifyInstance> {
  // The fastify instance is typed with the base logger so routes stay logger-agnostic.
  const { services, https } = options;
  const app = Fastify({
    ...(https !== undefined
      ? {
          https: {
            cert: https.cert,
            key: https.key,
            // Asked, not required: operators send tokens; a device's certificate is checked by auth.ts.
            ...(https.clientCa !== undefined
              ? { ca: https.clientCa, requestCert: true, rejectUnauthorized: false }
              : {}),
          },
        }
      : {}),
    // Fastify's own lines (framework warnings, request errors) at warn unless debugging;
    // requests go to the access log below.
    loggerInstance: options.logger.child(
      { component: 'http' },
      {
        level:
          options.logger.level === 'debug' || options.logger.level === 'trace'
            ? options.logger.level
            : 'warn',
      },
    ) as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
    genReqId: requestIdGenerator(),
    // The access log below replaces fastify's two lines per request.
    logController: new LogController({ disableRequestLogging: true }),
    // The HTTPS server's type differs only in its node server; routes never touch it.
  }) as unknown as FastifyInstance;
  // Access log: one line per request; the probes at debug, since orchestrators poll them.
  const access = options.logger.child({ component: 'access' });
  const httpMetrics = new HttpMetrics();
  app.addHook('onResponse', async (request, reply) => {
    drainUnreadBody(request.raw);
    httpMetrics.observe(
      request.method,
      request.routeOptions.url,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    const probe = PROBE_ROUTES.has(request.routeOptions.url ?? '');
    access[probe ? 'debug' : 'info'](
      {
        reqId: request.id,
        method: request.method,
        url: request.url,
        statusCode: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
        actor: actorOf(request),
        remoteAddress: request.ip,
      },
      'request',
    );
  });
  app.decorateRequest('caller', null);
  app.setErrorHandler(errorHandler);
  app.addHook('onRequest', async (request, reply) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    // An unknown route answers 404 before its body is read. Fastify's default reads it
    // first, so a body over the limit got a 413 and a closed connection while the client
    // was still sending (it saw EPIPE and no answer).
    if (request.is404)
      throw new LinesightError(
        'ERR_CLOUD_NOT_FOUND',
        `no route ${request.method} ${request.url.split('?', 1)[0]?.slice(0, 200)}: see /docs for the API`,
      );
  });
  app.addHook(
    'onRequest',
    makeAuthenticator(
      options.adminToken,
      services.devices,
      services.tokens,
      services.enrolmentTokens,
      services.revokedCertificates,
    ),
  );
  // After authentication (it keys budgets by caller), before any route.
  await registerRateLimits(
    app,
    options.rateLimits ?? false,
    options.rateLimitStats ?? { refused: { control: 0, predict: 0 } },
  );
  await app.register(multipart);
  app.addSchema(ErrorResponse);
  // Before any route: completes each route's documentation (security, errors, operationId).
  app.addHook('onRoute', documentRoute);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Linesight cloud API',
        version: '1',
        description: `Model registry, device provisioning, rollouts and fleet state. Operator routes take "Authorization: Bearer <token>" (the admin token or a named token); the artifact, key and connection routes also take a device's HTTP Basic credentials (device id and secret)${https?.clientCa !== undefined ? ' or its client certificate' : ''}; ${services.metricsAuth === 'token' ? '/healthz and /readyz are open, /metrics needs a token of the viewer role' : '/healthz, /readyz and /metrics are open'}.`,
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'the admin token or a named API token; its role (viewer, operator, admin) decides which routes it may call',
          },
          device: {
            type: 'http',
            scheme: 'basic',
            description: 'a device id and the secret it was provisioned with',
          },
        },
      },
      security: [{ bearer: [] }],
    },
    // Shared schemas appear under their own names in components.schemas.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    // Built on the first request (after listen), so the advertised URL is known.
    transformObject: (documentObject) => {
      const doc = toOpenApi30Schemas(
        'openapiObject' in documentObject
          ? documentObject.openapiObject
          : documentObject.swaggerObject,
      );
      return { ...doc, servers: [{ url: services.httpUrl() }] };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  app.get('/openapi.json', { config: { auth: 'public' }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
  await app.register(async (scope) => healthRoutes(scope, services, httpMetrics));
  await app.register(async (scope) => modelRoutes(scope, services));
  await app.register(async (scope) => deviceRoutes(scope, services));
  await app.register(async (scope) => edgeSettingsRoutes(scope, services));
  await app.register(async (scope) => rolloutRoutes(scope, services));
  await app.register(async (scope) => keyRoutes(scope, services));
  await app.register(async (scope) => adminRoutes(scope, services));
  await app.register(async (scope) => readerRoutes(scope, services));
  await app.register(async (scope) => enrolmentRoutes(scope, services));
  await app.register(async (scope) => predictRoutes(scope, services));
  await app.register(async (scope) => uploadRoutes(scope, services));
  const localBlobs = services.localBlobs;
  if (localBlobs !== undefined)
    await app.register(async (scope) => blobRoutes(scope, localBlobs, services.uploadStats));
  await app.register(async (scope) => dashboardPlugin(scope, services));
  await app.register(async (scope) => connectionRoutes(scope, services));
  return app;
}

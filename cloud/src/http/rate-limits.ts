import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { LinesightError } from '@linesight/protocol';

/** Requests per minute each caller may make; `false` turns limiting off. */
export interface RateLimits {
  /** Control-plane routes (everything under /v1 but central inference), per token or device. */
  perMinute: number;
  /** POST /v1/predict, per token, counted apart so central inference cannot starve the control plane. */
  predictPerMinute: number;
}

/** Counts of refused requests, for /metrics. */
export interface RateLimitStats {
  refused: { control: number; predict: number };
}

const WINDOW_MS = 60_000;
const PREDICT_ROUTE = '/v1/predict';

/** The budget a request counts against: the token's actor or the device, never the address. */
function callerKey(request: FastifyRequest): string {
  const caller = request.caller;
  if (caller?.kind === 'operator') return `token:${caller.actor}`;
  if (caller?.kind === 'device') return `device:${caller.deviceId}`;
  if (caller?.kind === 'enrolment') return `enrolment:${caller.tokenId}`;
  return `ip:${request.ip}`;
}

/**
 * Per-caller rate limits on the REST API (@fastify/rate-limit, fixed one-minute
 * windows, in memory). The check runs after authentication and before the body
 * is read, so a caller over its budget costs a header parse. Anonymous requests
 * (health probes, signed blob URLs, the dashboard's static files) are not
 * counted: they are cheap or bounded elsewhere. Register before the routes.
 */
export async function registerRateLimits(
  app: FastifyInstance,
  limits: RateLimits | false,
  stats: RateLimitStats,
): Promise<void> {
  if (limits === false) return;
  const refuse =
    (budget: 'control' | 'predict') =>
    (_request: FastifyRequest, context: { max: number; after: string; ttl: number }) => {
      stats.refused[budget]++;
      return new LinesightError(
        'ERR_CLOUD_RATE_LIMITED',
        `over the ${budget === 'predict' ? 'central inference' : 'API'} rate limit of ${context.max} requests per minute for this caller; retry in ${context.after}`,
        { details: { limitPerMinute: context.max, retryAfterSec: Math.ceil(context.ttl / 1000) } },
      );
    };
  // Central inference gets its own budget: a route-level config has its own counters.
  app.addHook('onRoute', (route) => {
    if (route.url !== PREDICT_ROUTE) return;
    route.config = {
      ...route.config,
      rateLimit: {
        max: limits.predictPerMinute,
        timeWindow: WINDOW_MS,
        errorResponseBuilder: refuse('predict'),
      },
    };
  });
  await app.register(rateLimit, {
    global: true,
    hook: 'preParsing',
    max: limits.perMinute,
    timeWindow: WINDOW_MS,
    keyGenerator: callerKey,
    allowList: (request) => request.caller === null || request.caller.kind === 'anonymous',
    errorResponseBuilder: refuse('control'),
  });
}

import type { RouteOptions } from 'fastify';
import { Type } from '@sinclair/typebox';
import { routeAuthFor } from './auth.ts';

/** What every error answer looks like (see error-handler.ts). */
export const ErrorResponse = Type.Object(
  {
    error: Type.String({ description: 'error code, e.g. ERR_CLOUD_NOT_FOUND' }),
    message: Type.String({ description: 'what was wrong, for a person' }),
    details: Type.Optional(Type.Unknown({ description: 'machine-readable details, when any' })),
  },
  { $id: 'ErrorResponse', title: 'ErrorResponse' },
);

/**
 * Operation ids for client generators, one per route. A route missing here
 * gets one derived from its method and URL, so the document stays valid.
 */
const OPERATION_IDS: Record<string, string> = {
  'GET /healthz': 'getHealth',
  'GET /readyz': 'getReadiness',
  'GET /metrics': 'getMetrics',
  'GET /v1/connection': 'getConnection',
  'POST /v1/models': 'publishModel',
  'GET /v1/models': 'listModels',
  'GET /v1/models/:name/:version': 'getModel',
  'GET /v1/models/:name/:version/artifact': 'downloadModelArtifact',
  'POST /v1/models/:name/:version/approve': 'approveModel',
  'POST /v1/models/:name/:version/stage': 'stageModel',
  'POST /v1/devices': 'provisionDevice',
  'POST /v1/devices/batch': 'provisionDevices',
  'GET /v1/devices': 'listDevices',
  'GET /v1/devices/:id': 'getDevice',
  'GET /v1/devices/:id/events': 'listDeviceEvents',
  'POST /v1/devices/:id/credentials': 'rotateDeviceCredentials',
  'DELETE /v1/devices/:id': 'decommissionDevice',
  'POST /v1/rollouts': 'createRollout',
  'GET /v1/rollouts': 'listRollouts',
  'GET /v1/rollouts/:id': 'getRollout',
  'POST /v1/rollouts/:id/pause': 'pauseRollout',
  'POST /v1/rollouts/:id/resume': 'resumeRollout',
  'POST /v1/rollouts/:id/abort': 'abortRollout',
  'GET /v1/keys': 'listTrustedKeys',
  'GET /v1/keys/ring': 'getKeyRing',
  'POST /v1/keys/rotate': 'rotateKeys',
  'POST /v1/keys/:keyId/retire': 'retireKey',
  'POST /v1/tokens': 'createToken',
  'GET /v1/tokens': 'listTokens',
  'DELETE /v1/tokens/:actor': 'revokeToken',
  'POST /v1/mqtt-readers': 'createMqttReader',
  'GET /v1/mqtt-readers': 'listMqttReaders',
  'DELETE /v1/mqtt-readers/:name': 'revokeMqttReader',
  'GET /v1/audit': 'listAuditEntries',
  'POST /v1/predict': 'predict',
  'POST /v1/devices/:deviceId/uploads': 'createDeviceUploadUrls',
  'PUT /v1/blobs/upload': 'uploadSignedBlob',
  'GET /v1/blobs/download': 'downloadSignedBlob',
};

/** Answers beyond 400/401/404 that a route can give (status codes the error handler maps). */
const EXTRA_ERRORS: Record<string, number[]> = {
  // 503: the concurrent model uploads the cloud accepts are all in progress.
  'POST /v1/models': [403, 409, 413, 503],
  'POST /v1/models/:name/:version/approve': [403, 409],
  'POST /v1/models/:name/:version/stage': [403, 409],
  'POST /v1/devices': [409],
  'POST /v1/rollouts': [409],
  'POST /v1/rollouts/:id/pause': [409],
  'POST /v1/rollouts/:id/resume': [409],
  'POST /v1/rollouts/:id/abort': [409],
  'POST /v1/keys/rotate': [409],
  'POST /v1/keys/:keyId/retire': [409],
  'POST /v1/tokens': [403, 409],
  'POST /v1/mqtt-readers': [409],
  // 503: all artifact download slots are busy (Retry-After says when to come back).
  'GET /v1/models/:name/:version/artifact': [403, 503],
  'DELETE /v1/tokens/:actor': [403],
  // Open routes authenticated by their signed query (upload/download URLs).
  'PUT /v1/blobs/upload': [400, 403, 413],
  'GET /v1/blobs/download': [400, 403, 404],
  'POST /v1/devices/:deviceId/uploads': [403],
};

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad request: the message says what was wrong',
  401: 'Missing or wrong credentials',
  403: 'Not allowed for this caller or in this state',
  404: 'Not found',
  409: 'Conflicts with the current state (exists already, wrong state)',
  413: 'Body too large',
  503: 'Busy: the cloud is at its limit for this kind of request; retry after the seconds in Retry-After',
};

/** Headers an error answer carries, by status. */
const ERROR_HEADERS: Record<number, Record<string, unknown>> = {
  503: {
    'retry-after': {
      type: 'integer',
      minimum: 1,
      description:
        'seconds to wait before retrying (for artifact downloads it grows with the callers waiting)',
    },
  },
};

function derivedOperationId(method: string, url: string): string {
  const words = url
    .split('/')
    .filter((s) => s !== '' && s !== 'v1')
    .map((s) => (s.startsWith(':') ? `by-${s.slice(1)}` : s))
    .flatMap((s) => s.split(/[^A-Za-z0-9]+/));
  return [method.toLowerCase(), ...words]
    .filter(Boolean)
    .map((w, i) => (i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1)))
    .join('');
}

/**
 * onRoute hook: completes each documented route's schema from what the server
 * already knows, so the OpenAPI document says the truth: which credentials it
 * takes (the same rule auth.ts enforces), its error answers, an operationId.
 */
export function documentRoute(route: RouteOptions): void {
  const schema = (route.schema ?? {}) as Record<string, unknown>;
  if (schema.hide === true) return;
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (methods.length !== 1 || methods[0] === 'HEAD') return;
  const method = String(methods[0]);
  const key = `${method} ${route.url}`;
  const auth = routeAuthFor(route.url, method, route.config?.auth);
  schema.operationId ??= OPERATION_IDS[key] ?? derivedOperationId(method, route.url);
  schema.security ??=
    auth === 'public'
      ? []
      : auth === 'token-or-device'
        ? [{ bearer: [] }, { device: [] }]
        : [{ bearer: [] }];
  const role =
    auth === 'public'
      ? undefined
      : auth === 'token-or-device'
        ? `${method === 'GET' ? 'viewer' : 'operator'} role, or the device's own credentials`
        : auth === 'admin-or-enrolment'
          ? 'admin role, or a one-device enrolment token for the device id in the body'
          : `${auth} role`;
  if (role !== undefined && typeof schema.description === 'string')
    schema.description = `${schema.description}\n\nNeeds a token with the ${role}.`;
  else if (role !== undefined) schema.description = `Needs a token with the ${role}.`;
  const responses = { ...((schema.response ?? {}) as Record<string, unknown>) };
  // Declaring errors would hide the default 200: keep a success answer documented.
  // A schema without a type serializes as JSON.stringify does.
  if (!Object.keys(responses).some((code) => code.startsWith('2')))
    responses[200] = { description: 'Success' };
  // Open routes answer only the errors listed for them (the probes none).
  const codes = new Set<number>(EXTRA_ERRORS[key] ?? []);
  if (auth !== 'public') {
    codes.add(400).add(401);
    // A token without the role the route needs is refused.
    if (auth !== 'viewer') codes.add(403);
    if (route.url.includes(':')) codes.add(404);
  }
  if (codes.size === 0) {
    route.schema = schema;
    return;
  }
  for (const code of codes) {
    responses[code] ??= {
      description: ERROR_DESCRIPTIONS[code] ?? 'Error',
      ...(ERROR_HEADERS[code] !== undefined ? { headers: ERROR_HEADERS[code] } : {}),
      ...Type.Ref(ErrorResponse),
    };
  }
  schema.response = responses;
  route.schema = schema;
}

/**
 * Makes the generated document valid OpenAPI 3.0: JSON Schema's numeric
 * exclusiveMinimum/exclusiveMaximum (what TypeBox and the validator use)
 * become 3.0's minimum/maximum plus a boolean. Returns a converted copy.
 */
export function toOpenApi30Schemas<T>(node: T): T {
  if (Array.isArray(node)) return node.map((n: unknown) => toOpenApi30Schemas(n)) as T;
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = toOpenApi30Schemas(v);
  for (const [exclusive, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    const value = out[exclusive];
    if (typeof value === 'number') {
      out[bound] = value;
      out[exclusive] = true;
    }
  }
  return out as T;
}

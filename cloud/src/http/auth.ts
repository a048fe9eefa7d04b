import type { FastifyRequest } from 'fastify';
import { LinesightError } from '@linesight/protocol';
import type { ApiTokens } from '../registry/api-tokens.ts';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import { sameSecret } from '../registry/same-secret.ts';

/** Who may call a route: an operator (admin or named token), or also a device's own credentials, or anyone. */
export type RouteAuth = 'admin' | 'admin-or-device' | 'public';

/** The caller a request authenticated as. */
export type Caller =
  | { kind: 'operator'; actor: string }
  | { kind: 'device'; deviceId: string }
  | { kind: 'anonymous' };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    caller: Caller | null;
  }
}

/** The operator who made a request (routes that change things record it in the audit log). */
export function actorOf(request: FastifyRequest): string {
  const caller = request.caller;
  if (caller?.kind === 'operator') return caller.actor;
  if (caller?.kind === 'device') return `device:${caller.deviceId}`;
  return 'anonymous';
}

/**
 * Builds the onRequest check: a bearer token (the bootstrap admin token is
 * actor "admin"; named operator tokens carry their actor), or, where a route
 * allows it, HTTP Basic device id and secret.
 */
export function makeAuthenticator(adminToken: string, devices: DeviceRegistry, tokens: ApiTokens) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    // Every /v1 route is admin-only unless it says otherwise; docs and health are open.
    const auth: RouteAuth =
      request.routeOptions.config.auth ??
      ((request.routeOptions.url ?? '').startsWith('/v1/') ? 'admin' : 'public');
    request.caller = { kind: 'anonymous' };
    if (auth === 'public') return;
    const header = request.headers.authorization ?? '';
    const [scheme, value = ''] = header.split(' ', 2);
    if (scheme?.toLowerCase() === 'bearer') {
      const actor = sameSecret(value, adminToken) ? 'admin' : tokens.actorOf(value);
      if (actor !== undefined) {
        request.caller = { kind: 'operator', actor };
        return;
      }
    }
    if (auth === 'admin-or-device' && scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const id = decoded.slice(0, colon);
      if (colon > 0 && devices.checkSecret(id, decoded.slice(colon + 1))) {
        request.caller = { kind: 'device', deviceId: id };
        return;
      }
    }
    throw new LinesightError(
      'ERR_CLOUD_UNAUTHORIZED',
      auth === 'admin'
        ? 'this route needs an operator token: send "Authorization: Bearer <token>"'
        : 'this route needs the admin token or device credentials (HTTP Basic device id and secret)',
    );
  };
}

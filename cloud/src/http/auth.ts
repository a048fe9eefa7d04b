import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { LinesightError } from '@linesight/protocol';
import type { DeviceRegistry } from '../registry/device-registry.ts';

/** Who may call a route: the admin token, or also a device's own credentials, or anyone. */
export type RouteAuth = 'admin' | 'admin-or-device' | 'public';

/** The caller a request authenticated as. */
export type Caller =
  { kind: 'admin' } | { kind: 'device'; deviceId: string } | { kind: 'anonymous' };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    caller: Caller | null;
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Builds the onRequest check: bearer admin token, or HTTP Basic device id and secret. */
export function makeAuthenticator(adminToken: string, devices: DeviceRegistry) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    // Every /v1 route is admin-only unless it says otherwise; docs and health are open.
    const auth: RouteAuth =
      request.routeOptions.config.auth ??
      ((request.routeOptions.url ?? '').startsWith('/v1/') ? 'admin' : 'public');
    request.caller = { kind: 'anonymous' };
    if (auth === 'public') return;
    const header = request.headers.authorization ?? '';
    const [scheme, value = ''] = header.split(' ', 2);
    if (scheme?.toLowerCase() === 'bearer' && sameSecret(value, adminToken)) {
      request.caller = { kind: 'admin' };
      return;
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
        ? 'this route needs the admin token: send "Authorization: Bearer <token>"'
        : 'this route needs the admin token or device credentials (HTTP Basic device id and secret)',
    );
  };
}

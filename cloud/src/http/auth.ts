import type { FastifyRequest } from 'fastify';
import { LinesightError } from '@linesight/protocol';
import type { ApiTokens } from '../registry/api-tokens.ts';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import type { RevokedCertificates } from '../registry/revoked-certificates.ts';
import { EnrolmentTokens, type IssuedEnrolmentGrant } from '../registry/enrolment-tokens.ts';
import { roleAllows, type Role } from '../registry/roles.ts';
import { sameSecret } from '../registry/same-secret.ts';
import { clientCertificateOf } from '../tls/client-certificate.ts';

/**
 * Who may call a route: a token holding at least a role; a token of at least
 * `viewer` (reads) or `operator` (changes), or a device's own credentials; an
 * admin token or a one-device enrolment token (provisioning); or anyone.
 */
export type RouteAuth = Role | 'token-or-device' | 'admin-or-enrolment' | 'public';

/** The caller a request authenticated as. */
export type Caller =
  | { kind: 'operator'; actor: string; role: Role }
  | { kind: 'device'; deviceId: string }
  /** An installer's one-device enrolment token: it may provision exactly this device. */
  | ({ kind: 'enrolment' } & IssuedEnrolmentGrant)
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
  if (caller?.kind === 'enrolment') return `enrolment:${caller.deviceId}`;
  return 'anonymous';
}

/** The role of the token that made a request; undefined for a device or no token. */
export function roleOf(request: FastifyRequest): Role | undefined {
  return request.caller?.kind === 'operator' ? request.caller.role : undefined;
}

const READS = new Set(['GET', 'HEAD']);

/**
 * The credentials a route takes: its own `auth`, else, for every /v1 route,
 * a token of role `viewer` to read and `operator` to change; docs and health
 * are open. The OpenAPI document states the same rule.
 */
export function routeAuthFor(
  url: string,
  method: string,
  declared: RouteAuth | undefined,
): RouteAuth {
  if (declared !== undefined) return declared;
  if (!url.startsWith('/v1/')) return 'public';
  return READS.has(method) ? 'viewer' : 'operator';
}

/** The credentials the route of a request takes (see routeAuthFor). */
export function routeAuthOf(request: FastifyRequest): RouteAuth {
  return routeAuthFor(
    request.routeOptions.url ?? '',
    request.method,
    request.routeOptions.config.auth,
  );
}

/**
 * Builds the onRequest check: a bearer token (the bootstrap admin token is
 * actor "admin" with role admin; named tokens carry their actor and role),
 * or, where a route allows it, HTTP Basic device id and secret, or a client
 * certificate from the configured client CA naming a device (HTTPS only). A token
 * without the role a route needs gets 403, and the message says which. A revoked
 * client certificate refuses device credentials outright (logged and counted), as
 * the broker does.
 */
export function makeAuthenticator(
  adminToken: string,
  devices: DeviceRegistry,
  tokens: ApiTokens,
  enrolment: EnrolmentTokens,
  revoked: RevokedCertificates,
) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const auth = routeAuthOf(request);
    request.caller = { kind: 'anonymous' };
    if (auth === 'public') return;
    const header = request.headers.authorization ?? '';
    const [scheme, value = ''] = header.split(' ', 2);
    if (scheme?.toLowerCase() === 'bearer') {
      const holder = sameSecret(value, adminToken)
        ? { actor: 'admin', role: 'admin' as const }
        : tokens.holderOf(value);
      if (holder !== undefined) {
        request.caller = { kind: 'operator', ...holder };
        const needed: Role =
          auth === 'token-or-device'
            ? READS.has(request.method)
              ? 'viewer'
              : 'operator'
            : auth === 'admin-or-enrolment'
              ? 'admin'
              : auth;
        if (!roleAllows(holder.role, needed))
          throw new LinesightError(
            'ERR_CLOUD_FORBIDDEN',
            `${request.method} ${request.routeOptions.url ?? request.url} needs the ${needed} role; the token of ${holder.actor} has the ${holder.role} role`,
          );
        return;
      }
      if (auth === 'admin-or-enrolment' && EnrolmentTokens.looksLikeOne(value)) {
        const grant = enrolment.verify(value);
        if (grant === undefined)
          throw new LinesightError(
            'ERR_CLOUD_UNAUTHORIZED',
            'this enrolment token is expired or was not signed by this cloud: ask for a new one (linesight device enrolment-token)',
          );
        request.caller = { kind: 'enrolment', ...grant };
        return;
      }
    }
    // Only a server given a client CA asks for certificates; TLS verified this one against it.
    const certificate =
      auth === 'token-or-device' ? clientCertificateOf(request.raw.socket) : undefined;
    if (certificate?.verified === true && revoked.refuses(certificate.fingerprintSha256, 'https')) {
      request.log.warn(
        {
          event: 'device.revoked_certificate_refused',
          protocol: 'https',
          certificateNames: certificate.names,
          fingerprintSha256: certificate.fingerprintSha256,
        },
        'https request refused: its client certificate is revoked',
      );
      throw new LinesightError(
        'ERR_CLOUD_UNAUTHORIZED',
        "this client certificate is revoked: use the device's new certificate or its password",
      );
    }
    if (auth === 'token-or-device' && scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const id = decoded.slice(0, colon);
      if (colon > 0 && devices.checkSecret(id, decoded.slice(colon + 1))) {
        request.caller = { kind: 'device', deviceId: id };
        return;
      }
    }
    if (auth === 'token-or-device' && header === '') {
      const id = certificate?.verified ? certificate.names.find((n) => devices.has(n)) : undefined;
      if (id !== undefined) {
        request.caller = { kind: 'device', deviceId: id };
        return;
      }
    }
    throw new LinesightError(
      'ERR_CLOUD_UNAUTHORIZED',
      auth === 'token-or-device'
        ? 'this route needs an API token or device credentials (HTTP Basic device id and secret)'
        : 'this route needs an API token: send "Authorization: Bearer <token>"',
    );
  };
}

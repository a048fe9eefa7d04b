import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { EnrolmentParamsSchema, EnrolmentTokenSchema, LinesightError } from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { actorOf, type Caller } from '../auth.ts';
import { MAX_ENROLMENT_TTL_SEC } from '../../registry/enrolment-tokens.ts';

const DEFAULT_TTL_SEC = 24 * 3600;

/**
 * `POST /v1/devices/{id}/enrolment-token` (admin): a token an installer uses
 * to provision exactly that device, once, before it expires. The admin
 * token never has to reach the box.
 */
export async function enrolmentRoutes(
  app: FastifyInstance,
  services: CloudServices,
): Promise<void> {
  app.post<{ Params: { id: string }; Body: { ttlSec?: number; labels?: Record<string, string> } }>(
    '/v1/devices/:id/enrolment-token',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['devices'],
        summary:
          'Issue a one-device enrolment token: it may provision this device id once (with these labels) until it expires',
        params: EnrolmentParamsSchema,
        body: Type.Object(
          {
            ttlSec: Type.Optional(
              Type.Integer({
                minimum: 60,
                maximum: MAX_ENROLMENT_TTL_SEC,
                default: DEFAULT_TTL_SEC,
              }),
            ),
            labels: Type.Optional(Type.Record(Type.String(), Type.String())),
          },
          { additionalProperties: false },
        ),
        response: { 201: EnrolmentTokenSchema },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      if (services.devices.has(id))
        throw new LinesightError(
          'ERR_CLOUD_CONFLICT',
          `device ${id} is already provisioned: an enrolment token could not be used (rotate its credentials instead)`,
        );
      const nowSec = Math.floor(Date.now() / 1000);
      const expiresAtSec = nowSec + (request.body.ttlSec ?? DEFAULT_TTL_SEC);
      const labels = request.body.labels ?? {};
      const { token, tokenId } = services.enrolmentTokens.issue(
        { deviceId: id, labels, expiresAtSec },
        nowSec,
      );
      const expiresAt = new Date(expiresAtSec * 1000).toISOString();
      services.audit.record(actorOf(request), 'device.enrolment_token', id, {
        tokenId,
        expiresAt,
        labels,
      });
      void reply.status(201);
      return { deviceId: id, token, tokenId, expiresAt };
    },
  );
}

/**
 * The labels a provisioning by enrolment token gets (the token's), after the
 * checks that make the token good for one device, once: the id in the body is
 * the token's; the labels, if given, are the token's; no provisioning used
 * this token before; the device was not decommissioned after it was issued.
 */
export function enrolmentProvisioning(
  caller: Extract<Caller, { kind: 'enrolment' }>,
  body: { id: string; labels?: Record<string, string> },
  services: Pick<CloudServices, 'audit'>,
): { labels: Record<string, string>; details: Record<string, unknown> } {
  const refuse = (why: string) => new LinesightError('ERR_CLOUD_FORBIDDEN', why);
  if (body.id !== caller.deviceId)
    throw refuse(`this enrolment token is for device ${caller.deviceId}, not ${body.id}`);
  if (body.labels !== undefined && !sameLabels(body.labels, caller.labels))
    throw refuse(
      'the labels of a device enrolled by token are the ones the token was issued with: leave them out',
    );
  const used = services.audit
    .list({
      action: 'device.provision',
      subject: body.id,
      actor: `enrolment:${body.id}`,
      limit: 1000,
    })
    .some((e) => e.details.enrolmentTokenId === caller.tokenId);
  if (used)
    throw refuse(
      `enrolment token ${caller.tokenId} was used already: ask for a new one (linesight device enrolment-token)`,
    );
  const removed = services.audit.list({
    action: 'device.decommission',
    subject: body.id,
    limit: 1,
  })[0];
  if (removed !== undefined && Date.parse(removed.at) / 1000 >= caller.issuedAtSec)
    throw refuse(
      `device ${body.id} was decommissioned after enrolment token ${caller.tokenId} was issued: it cannot bring it back`,
    );
  return { labels: caller.labels, details: { enrolmentTokenId: caller.tokenId } };
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

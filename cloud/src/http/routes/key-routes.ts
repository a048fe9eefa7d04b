import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  KeyIdParamsSchema,
  KeyRetirementSchema,
  KeyRotationSchema,
  SigningKeyStateSchema,
  TrustedKeySchema,
} from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { actorOf } from '../auth.ts';

/** Signing-key routes: the trust list, rotation and retirement. */
export async function keyRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.get(
    '/v1/keys',
    {
      config: { auth: 'token-or-device' },
      schema: {
        tags: ['keys'],
        summary: 'Public keys devices should trust for manifests and desired state',
        response: { 200: Type.Array(TrustedKeySchema) },
      },
    },
    async () => services.keys.trusted,
  );

  app.get(
    '/v1/keys/ring',
    {
      schema: {
        tags: ['keys'],
        summary: 'Every signing key with its state (no private parts)',
        response: { 200: Type.Array(SigningKeyStateSchema) },
      },
    },
    async () => services.keys.describe(),
  );

  app.post(
    '/v1/keys/rotate',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['keys'],
        summary:
          'Add a signing key and make it active; devices learn it through a trust list signed by a key they trust',
        response: { 200: KeyRotationSchema },
      },
    },
    async (request) => {
      const result = await services.keyRotation.rotate();
      services.audit.record(actorOf(request), 'key.rotate', result.keyId, {
        devices: result.devices,
      });
      return result;
    },
  );

  app.post<{ Params: { keyId: string } }>(
    '/v1/keys/:keyId/retire',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['keys'],
        summary:
          'Stop trusting a key: manifests it signed are re-signed and devices get new desired state',
        params: KeyIdParamsSchema,
        response: { 200: KeyRetirementSchema },
      },
    },
    async (request) => {
      const result = await services.keyRotation.retire(request.params.keyId);
      services.audit.record(actorOf(request), 'key.retire', request.params.keyId, result);
      return result;
    },
  );
}

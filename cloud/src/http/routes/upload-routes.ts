import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import {
  LinesightError,
  UploadsAnswerSchema,
  UploadsBodySchema,
  UploadsParamsSchema,
} from '@linesight/protocol';
import type { CloudServices } from '../services.ts';

export { MAX_UPLOADS_PER_REQUEST, UPLOAD_CONTENT_TYPES } from '@linesight/protocol';

/** The object key of a device's upload. */
export function sampleKey(deviceId: string, name: string): string {
  return `samples/${deviceId}/${name}`;
}

/** POST /v1/devices/:deviceId/uploads: short-lived upload URLs, one per object. */
export async function uploadRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Params: Static<typeof UploadsParamsSchema>; Body: Static<typeof UploadsBodySchema> }>(
    '/v1/devices/:deviceId/uploads',
    {
      config: { auth: 'token-or-device' },
      schema: {
        tags: ['devices'],
        summary:
          'Upload URLs for sampled images: PUT each body to its url with exactly its method and headers',
        description:
          'A device may ask only for its own id. An object already stored under its key with the same sha256 ' +
          'answers alreadyStored: true and no url (uploads are idempotent by key). The storage refuses an expired ' +
          'or altered URL and a body whose size or sha256 differs from the declaration.',
        security: [{ device: [] }, { bearer: [] }],
        params: UploadsParamsSchema,
        body: UploadsBodySchema,
        response: { 200: UploadsAnswerSchema },
      },
    },
    async (request) => {
      const { deviceId } = request.params;
      const caller = request.caller;
      if (caller?.kind === 'device' && caller.deviceId !== deviceId) {
        throw new LinesightError(
          'ERR_CLOUD_FORBIDDEN',
          `device ${caller.deviceId} may ask for upload URLs only for itself`,
        );
      }
      if (caller?.kind !== 'device' && !services.devices.has(deviceId)) {
        throw new LinesightError('ERR_CLOUD_NOT_FOUND', `device ${deviceId} is not provisioned`);
      }
      const names = new Set<string>();
      for (const o of request.body.objects) {
        if (o.bytes > services.maxUploadObjectBytes) {
          throw new LinesightError(
            'ERR_CLOUD_PAYLOAD_TOO_LARGE',
            `object ${o.name} is ${o.bytes} bytes; the most is ${services.maxUploadObjectBytes} (cloud config maxUploadObjectBytes)`,
          );
        }
        if (names.has(o.name))
          throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `object ${o.name} is listed twice`);
        names.add(o.name);
      }
      const uploads = await Promise.all(
        request.body.objects.map(async (o) => {
          const key = sampleKey(deviceId, o.name);
          if ((await services.blobs.verify(key, o)) === 'ok') {
            services.uploadStats.alreadyStored++;
            return { key, alreadyStored: true };
          }
          const target = await services.blobs.createUploadUrl({
            key,
            contentType: o.contentType,
            bytes: o.bytes,
            sha256: o.sha256,
            ttlSec: services.uploadUrlTtlSec,
          });
          services.uploadStats.urlsIssued++;
          return { key, ...target, alreadyStored: false };
        }),
      );
      return { uploads };
    },
  );
}

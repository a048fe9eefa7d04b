// REST contract of POST /v1/devices/:deviceId/uploads: upload URLs for a device's sampled images.
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId } from '../schema-primitives.ts';

/** Content types a device may upload. */
export const UPLOAD_CONTENT_TYPES = ['image/jpeg', 'image/png', 'application/json'] as const;

/** Most objects one request may ask URLs for (the cloud refuses more). */
export const MAX_UPLOADS_PER_REQUEST = 100;

/** One object a device wants to upload, as declared to the cloud. */
export const UploadObjectSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$',
      description: '1-128 of [A-Za-z0-9_.-], no leading dot; the key is samples/<deviceId>/<name>',
    }),
    contentType: Type.Union(UPLOAD_CONTENT_TYPES.map((t) => Type.Literal(t))),
    bytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'lower-case hex' }),
  },
  { additionalProperties: false },
);
/** One object a device wants to upload. */
export type UploadObject = Static<typeof UploadObjectSchema>;

/** Body of POST /v1/devices/:deviceId/uploads. */
export const UploadsBodySchema = Type.Object(
  { objects: Type.Array(UploadObjectSchema, { minItems: 1, maxItems: MAX_UPLOADS_PER_REQUEST }) },
  { additionalProperties: false },
);

/** Path parameters of /v1/devices/:deviceId/uploads. */
export const UploadsParamsSchema = Type.Object({
  deviceId: DeviceId,
});

/** Where and how to PUT one object; no url when an object with this key and sha256 is already stored. */
export const UploadTargetSchema = Type.Object({
  key: Type.String(),
  url: Type.Optional(Type.String()),
  method: Type.Optional(Type.Literal('PUT')),
  headers: Type.Optional(Type.Record(Type.String(), Type.String())),
  expiresAt: Type.Optional(Type.String()),
  alreadyStored: Type.Boolean(),
});
/** Where and how to PUT one object. */
export type UploadTarget = Static<typeof UploadTargetSchema>;

/** What POST /v1/devices/:deviceId/uploads answers: one target per object, in order. */
export const UploadsAnswerSchema = Type.Object({ uploads: Type.Array(UploadTargetSchema) });

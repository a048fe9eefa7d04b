// REST contract of the local blob store's signed URLs: PUT /v1/blobs/upload, GET /v1/blobs/download.
import { Type, type Static } from '@sinclair/typebox';

/** Query of the signed blob URLs: the signature is the credential (as with S3 presigned URLs). */
export const SignedBlobQuerySchema = Type.Object(
  {
    key: Type.String(),
    exp: Type.String(),
    sig: Type.String(),
    bytes: Type.Optional(Type.String()),
    sha256: Type.Optional(Type.String()),
    type: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
/** A signed blob URL's query. */
export type SignedBlobQuery = Static<typeof SignedBlobQuerySchema>;

/** Answer of PUT /v1/blobs/upload: the object as stored. */
export const BlobUploadAnswerSchema = Type.Object({
  key: Type.String(),
  bytes: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ description: 'lower-case hex of the stored bytes' }),
});
/** What an upload stored. */
export type BlobUploadAnswer = Static<typeof BlobUploadAnswerSchema>;

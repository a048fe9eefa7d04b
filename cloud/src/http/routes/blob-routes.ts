import type { FastifyInstance } from 'fastify';
import {
  BlobUploadAnswerSchema,
  SignedBlobQuerySchema,
  type BlobUploadAnswer,
} from '@linesight/protocol';
import {
  LOCAL_DOWNLOAD_PATH,
  LOCAL_UPLOAD_PATH,
  type LocalBlobStore,
} from '../../blobs/local-blob-store.ts';
import type { UploadStats } from '../../blobs/upload-stats.ts';

/**
 * The local blob store's signed routes: PUT an upload, GET a download. The
 * signature in the URL is the credential (as with S3 presigned URLs), so they
 * take no Authorization header.
 */
export async function blobRoutes(
  app: FastifyInstance,
  store: LocalBlobStore,
  stats: UploadStats,
): Promise<void> {
  // The body is streamed to disk by the handler; no parser may buffer it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => {
    done(null);
  });

  app.put<{ Querystring: Record<string, string> }>(
    LOCAL_UPLOAD_PATH,
    {
      config: { auth: 'public' },
      schema: {
        tags: ['storage'],
        summary: 'Receive an upload to a URL from POST /v1/devices/:deviceId/uploads (local store)',
        security: [],
        querystring: SignedBlobQuerySchema,
        response: { 200: BlobUploadAnswerSchema },
      },
    },
    async (request): Promise<BlobUploadAnswer> => {
      const length = request.headers['content-length'];
      const written = await store
        .acceptUpload({
          query: request.query,
          contentType: request.headers['content-type'],
          contentLength: length === undefined ? undefined : Number(length),
          body: request.raw,
        })
        .catch((err: unknown) => {
          stats.refuse((err as { code?: unknown }).code);
          throw err;
        });
      stats.stored++;
      return { key: written.key, bytes: written.bytes, sha256: written.sha256 };
    },
  );

  app.get<{ Querystring: Record<string, string> }>(
    LOCAL_DOWNLOAD_PATH,
    {
      config: { auth: 'public' },
      schema: {
        tags: ['storage'],
        summary: 'Download an object through a signed, expiring URL (local store)',
        security: [],
        querystring: SignedBlobQuerySchema,
        response: {
          200: {
            description: 'The object, with its stored content type',
            content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
          },
        },
      },
    },
    async (request, reply) => {
      const object = await store.openDownload(request.query);
      void reply.header('content-type', object.contentType).header('content-length', object.bytes);
      return reply.send(object.body);
    },
  );
}

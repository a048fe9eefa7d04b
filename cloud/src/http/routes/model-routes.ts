import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  LinesightError,
  ModelParamsSchema,
  ModelViewSchema,
  StageModelBodySchema,
  type ModelView,
} from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { rm } from 'node:fs/promises';
import { actorOf } from '../auth.ts';
import { checkMultipartContentType, readMultipart } from '../multipart.ts';
import { streamToFile } from '../../blobs/stream-to-file.ts';
import type { ModelVersion } from '../../registry/model-registry.ts';

function view(m: ModelVersion): ModelView {
  return {
    name: m.name,
    version: m.version,
    sha256: m.sha256,
    sizeBytes: m.sizeBytes,
    stage: m.stage,
    parentVersion: m.parentVersion,
    approvedBy: m.approvedBy,
    approvedAt: m.approvedAt,
    datasetFingerprint: m.contract.datasetFingerprint ?? null,
    training: m.contract.training ?? null,
    threshold: m.contract.threshold,
    kind: m.contract.kind,
    inputSpec: m.contract.inputSpec,
    createdAt: m.createdAt,
    createdBy: m.createdBy,
    manifest: m.signed,
  };
}

/**
 * Takes an artifact download slot for the caller, or throws BusyError (503,
 * Retry-After); the slot is given back when the response ends however it ends
 * (sent, client gone, stream error), or by the returned function on an error before.
 */
function admitDownload(
  services: CloudServices,
  request: FastifyRequest,
  reply: FastifyReply,
): () => void {
  const release = services.artifactDownloads.admit(actorOf(request));
  // A client that left while the route awaited has closed the response already, and a
  // closed response emits no more 'close': such a slot is given back at once.
  if (reply.raw.destroyed) release();
  else reply.raw.once('close', release);
  return release;
}

/** Model registry routes: upload, list, show, download. */
export async function modelRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post(
    '/v1/models',
    {
      schema: {
        tags: ['models'],
        summary: 'Register a model version: multipart with fields name, version and the .onnx file',
        consumes: ['multipart/form-data'],
        response: { 201: ModelViewSchema },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) {
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          'send multipart/form-data with fields name, version and a file part holding the .onnx model',
        );
      }
      checkMultipartContentType(request);
      const release = services.modelUploadSlots.acquire('model uploads');
      let tmp: string | undefined;
      try {
        // The file streams to a temp file as it arrives: an upload is never held in memory.
        const { fields, file } = await readMultipart(
          request,
          {
            maxFileBytes: services.maxModelBytes,
            maxFields: 10,
            tooLarge: () =>
              new LinesightError(
                'ERR_CLOUD_PAYLOAD_TOO_LARGE',
                `the model is larger than the ${services.maxModelBytes}-byte limit (cloud config maxModelBytes)`,
              ),
          },
          async (part) => {
            tmp = await services.tempFile();
            return streamToFile(part.file, tmp, services.maxModelBytes);
          },
        );
        const missing = ['name', 'version'].filter((f) => !fields[f]);
        if (file === undefined || tmp === undefined) missing.push('file');
        if (missing.length > 0 || file === undefined || tmp === undefined) {
          throw new LinesightError(
            'ERR_CLOUD_BAD_REQUEST',
            `missing multipart fields: ${missing.join(', ')}`,
          );
        }
        const model = await services.modelService.registerFile({
          name: fields.name as string,
          version: fields.version as string,
          path: tmp,
          sha256: file.sha256,
          actor: actorOf(request),
          ...(fields.parent ? { parentVersion: fields.parent } : {}),
        });
        void reply.status(201);
        return view(model);
      } finally {
        if (tmp !== undefined) await rm(tmp, { force: true });
        release();
      }
    },
  );

  app.get(
    '/v1/models',
    {
      schema: {
        tags: ['models'],
        summary: 'List model versions, newest first',
        response: { 200: Type.Array(ModelViewSchema) },
      },
    },
    async () => services.models.list().map(view),
  );

  app.get<{ Params: { name: string; version: string } }>(
    '/v1/models/:name/:version',
    {
      schema: {
        tags: ['models'],
        summary: 'Show one model version',
        params: ModelParamsSchema,
        response: { 200: ModelViewSchema },
      },
    },
    async (request) => view(services.models.get(request.params.name, request.params.version)),
  );

  app.get<{ Params: { name: string; version: string } }>(
    '/v1/models/:name/:version/artifact',
    {
      config: { auth: 'token-or-device' },
      schema: {
        tags: ['models'],
        summary: 'Download the .onnx artifact; supports HTTP Range for resumed downloads',
        params: ModelParamsSchema,
        response: {
          200: {
            description: 'The whole artifact',
            content: {
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            },
          },
          206: {
            description: 'The requested byte range',
            content: {
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { caller } = request;
      const { name, version } = request.params;
      // Checked first, so a device cannot even learn which other models exist.
      if (
        caller?.kind === 'device' &&
        !services.devices.mayDownload(caller.deviceId, name, version)
      )
        throw new LinesightError(
          'ERR_CLOUD_FORBIDDEN',
          `device ${caller.deviceId} may download only the models its desired state names (live, shadow) and its last-known-good; ${name}@${version} is none of them`,
        );
      const model = services.models.get(name, version);
      const size = (await services.blobs.stat(model.blobKey))?.bytes;
      if (size === undefined)
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          `artifact of ${model.name}@${model.version} is missing from the blob store`,
        );
      // A device downloads an artifact once per version: its connection is not kept alive
      // (a whole fleet's idle sockets would otherwise sit in the cloud for the keep-alive time).
      void reply
        .header('connection', 'close')
        .header('accept-ranges', 'bytes')
        .header('content-type', 'application/octet-stream')
        .header('etag', `"${model.sha256}"`);
      const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
      if (range !== null) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
        if (start >= size || start > end) {
          return reply.status(416).header('content-range', `bytes */${size}`).send();
        }
        const release = admitDownload(services, request, reply);
        try {
          const body = await services.blobs.read(model.blobKey, { start, end });
          void reply
            .status(206)
            .header('content-range', `bytes ${start}-${end}/${size}`)
            .header('content-length', end - start + 1);
          return reply.send(body);
        } catch (err) {
          release();
          throw err;
        }
      }
      const release = admitDownload(services, request, reply);
      try {
        const body = await services.blobs.read(model.blobKey);
        void reply.header('content-length', size);
        return reply.send(body);
      } catch (err) {
        release();
        throw err;
      }
    },
  );

  app.post<{ Params: { name: string; version: string } }>(
    '/v1/models/:name/:version/approve',
    {
      schema: {
        tags: ['models'],
        summary: 'Approve a version for production (by an actor other than its registrant)',
        params: ModelParamsSchema,
        response: { 200: ModelViewSchema },
      },
    },
    async (request) =>
      view(
        services.modelService.approve(
          request.params.name,
          request.params.version,
          actorOf(request),
        ),
      ),
  );

  app.post<{ Params: { name: string; version: string }; Body: { stage: string } }>(
    '/v1/models/:name/:version/stage',
    {
      schema: {
        tags: ['models'],
        summary: 'Move a version to candidate, staging, production (needs approval) or archived',
        params: ModelParamsSchema,
        body: StageModelBodySchema,
        response: { 200: ModelViewSchema },
      },
    },
    async (request) =>
      view(
        services.modelService.setStage(
          request.params.name,
          request.params.version,
          request.body.stage,
          actorOf(request),
        ),
      ),
  );
}

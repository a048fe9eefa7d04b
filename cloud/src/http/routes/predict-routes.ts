import type { IncomingMessage } from 'node:http';
import type {
  FastifyInstance,
  FastifyRequest,
  FastifySchema,
  FastifySchemaCompiler,
} from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  ApiErrorSchema,
  LinesightError,
  PredictQuerySchema,
  PredictionViewSchema,
} from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { readMultipart } from '../multipart.ts';

const IMAGE_TYPES = ['image/jpeg', 'image/png'];

const ModelUnavailableView = Type.Object(
  { error: Type.String(), message: Type.String() },
  {
    description:
      'ERR_CLOUD_MODEL_UNAVAILABLE: the registered version cannot be loaded (artifact missing, corrupt or unloadable); a server fault',
  },
);

const BinaryBody = {
  schema: { type: 'string', format: 'binary', description: 'the encoded image' },
};

/**
 * Body schemas here only document the binary upload (a Buffer is no JSON
 * string, and the handler checks the body itself); other parts are checked
 * with TypeBox.
 */
const validatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) => {
  if (httpPart === 'body') return () => true;
  const check = TypeCompiler.Compile(schema as TSchema);
  return (data: unknown) =>
    check.Check(data)
      ? { value: data }
      : {
          error: [...check.Errors(data)].map((e) => ({
            keyword: 'typebox',
            instancePath: e.path,
            schemaPath: e.path,
            params: {},
            message: e.message,
          })),
        };
};

function tooLarge(limitBytes: number): LinesightError {
  return new LinesightError(
    'ERR_CLOUD_PAYLOAD_TOO_LARGE',
    `image is larger than the ${limitBytes}-byte limit (cloud config maxPredictBytes)`,
  );
}

function notAnImage(contentType: string | undefined): LinesightError {
  return new LinesightError(
    'ERR_IMAGE_DECODE',
    `content type ${contentType ? JSON.stringify(contentType) : '(none)'} is not accepted: send the image as image/jpeg or image/png, or as multipart/form-data with one file part`,
  );
}

/** Reads a raw image body up to `limitBytes`, refusing early on a too-large Content-Length. */
function readBody(payload: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(payload.headers['content-length']);
    if (Number.isFinite(declared) && declared > limitBytes) {
      reject(tooLarge(limitBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = () => {
      payload.off('data', onData);
      payload.off('end', onEnd);
      payload.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limitBytes) {
        cleanup();
        reject(tooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, received));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
  });
}

async function multipartImage(request: FastifyRequest, limitBytes: number): Promise<Buffer> {
  // An image is at most maxPredictBytes, so holding it in memory is bounded.
  const { file: image } = await readMultipart(
    request,
    { maxFileBytes: limitBytes, maxFields: 10, tooLarge: () => tooLarge(limitBytes) },
    (part) => part.toBuffer(),
  );
  if (image === undefined) {
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      'multipart body has no file part: send the image as a file part',
    );
  }
  return image;
}

/** Central inference: POST /v1/predict scores one image with a registered model. */
export async function predictRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  const limitBytes = services.maxPredictBytes;
  // Encapsulated in this plugin: raw image bodies, and a clear 415 for anything unknown.
  app.addContentTypeParser(IMAGE_TYPES, (request, payload, done) => {
    readBody(payload, limitBytes).then(
      (body) => done(null, body),
      (err: Error) => done(err),
    );
  });
  app.addContentTypeParser('*', (request, _payload, done) => {
    done(notAnImage(request.headers['content-type']));
  });

  app.post<{ Querystring: { model?: string } }>(
    '/v1/predict',
    {
      config: { auth: 'viewer' },
      bodyLimit: limitBytes,
      validatorCompiler,
      schema: {
        tags: ['inference'],
        summary: 'Score one image with a registered model',
        description:
          'Send one JPEG or PNG as the raw body (Content-Type image/jpeg or image/png) or as the file part of multipart/form-data. ' +
          'The model is ?model=name@version; ?model=name picks the newest version of that name with stage "production", ' +
          'and while no stage workflow exists, the newest registered version of that name; without ?model, the only registered model name. ' +
          'Models load on first use into worker threads, so the first request for a version is slower.',
        querystring: PredictQuerySchema,
        body: {
          content: {
            'image/jpeg': BinaryBody,
            'image/png': BinaryBody,
            'multipart/form-data': {
              schema: {
                type: 'object',
                properties: { file: { type: 'string', format: 'binary' } },
                required: ['file'],
              },
            },
          },
        },
        response: {
          200: PredictionViewSchema,
          400: ApiErrorSchema,
          404: ApiErrorSchema,
          413: ApiErrorSchema,
          415: ApiErrorSchema,
          500: ModelUnavailableView,
        },
      },
    },
    async (request) => {
      let image: Buffer;
      if (request.isMultipart()) {
        image = await multipartImage(request, limitBytes);
      } else if (Buffer.isBuffer(request.body)) {
        image = request.body;
      } else if (request.body === undefined || request.body === null) {
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          'request has no body: send one JPEG or PNG image',
        );
      } else {
        throw notAnImage(request.headers['content-type']);
      }
      if (image.byteLength === 0)
        throw new LinesightError('ERR_CLOUD_BAD_REQUEST', 'the image is empty (0 bytes)');
      return services.modelServer.predict(image, request.query.model);
    },
  );
}

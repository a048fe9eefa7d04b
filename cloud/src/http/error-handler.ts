import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isLinesightError, type ErrorCode } from '@linesight/protocol';
import { BusyError } from './download-admission.ts';

/** HTTP status of each error code the API can return; anything else is a 500. */
const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  ERR_CLOUD_BAD_REQUEST: 400,
  ERR_PROTOCOL_PAYLOAD: 400,
  ERR_PROTOCOL_TOPIC: 400,
  ERR_MODEL_CONTRACT: 400,
  ERR_MODEL_LOAD: 400,
  ERR_IMAGE_DECODE: 415,
  ERR_CLOUD_UNAUTHORIZED: 401,
  ERR_CLOUD_FORBIDDEN: 403,
  ERR_CLOUD_NOT_FOUND: 404,
  ERR_CLOUD_CONFLICT: 409,
  ERR_CLOUD_PAYLOAD_TOO_LARGE: 413,
  ERR_CLOUD_UPLOAD_EXPIRED: 403,
  ERR_CLOUD_UPLOAD_MISMATCH: 400,
  ERR_CLOUD_STORAGE: 502,
  ERR_CLOUD_BROKER: 502,
  ERR_CLOUD_BUSY: 503,
  ERR_CLOUD_RATE_LIMITED: 429,
};

/** Seconds a client is asked to wait before retrying a request refused as busy (a full upload or job queue). */
export const BUSY_RETRY_AFTER_SEC = 2;

/** The one place that turns thrown errors into HTTP answers. */
export function errorHandler(
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (isLinesightError(err)) {
    const status = STATUS_BY_CODE[err.code] ?? 500;
    if (err instanceof BusyError) {
      // Its thrower chose when to come back and logs its refusals in summary (thousands at once).
      // The connection is closed: the caller comes back seconds later at the earliest, and a
      // fleet refused at once would otherwise hold one idle socket (a file descriptor) each.
      void reply.header('retry-after', String(err.retryAfterSec)).header('connection', 'close');
    } else if (err.code === 'ERR_CLOUD_BUSY') {
      // Back-pressure by design, not a fault: a warning, and when to come back.
      request.log.warn({ code: err.code, reason: err.message }, 'request refused: busy');
      void reply.header('retry-after', String(BUSY_RETRY_AFTER_SEC));
    } else if (status >= 500) request.log.error({ err }, 'request failed');
    void reply.status(status).send({
      error: err.code,
      message: err.message,
      ...(err.details ? { details: err.details } : {}),
    });
    return;
  }
  if (err.validation !== undefined) {
    void reply.status(400).send({ error: 'ERR_CLOUD_BAD_REQUEST', message: err.message });
    return;
  }
  const status = err.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err }, 'request failed');
    void reply
      .status(500)
      .send({ error: 'ERR_INTERNAL', message: 'internal error; see the cloud log' });
    return;
  }
  void reply
    .status(status)
    .send({ error: err.code ?? 'ERR_CLOUD_BAD_REQUEST', message: err.message });
}

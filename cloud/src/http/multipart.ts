import type { FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import { LinesightError, isLinesightError } from '@linesight/protocol';

/** Limits of one multipart body. */
export interface MultipartLimits {
  /** Largest file part. */
  maxFileBytes: number;
  /** Most non-file fields. */
  maxFields: number;
  /** The error for a file over maxFileBytes (a 413 that names the setting). */
  tooLarge: () => LinesightError;
}

/** What a multipart body held: its fields and what the file handler made of its one file. */
export interface MultipartResult<T> {
  fields: Record<string, string>;
  file: T | undefined;
}

/**
 * Throws ERR_CLOUD_BAD_REQUEST unless the request's content type is
 * multipart/form-data with a non-empty boundary (a missing boundary used to
 * surface as a 500 from the parser).
 */
export function checkMultipartContentType(request: FastifyRequest): void {
  const header = request.headers['content-type'] ?? '';
  const boundary = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(header);
  if (boundary === null || (boundary[1] ?? boundary[2] ?? '') === '') {
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      'multipart/form-data needs a boundary parameter (Content-Type: multipart/form-data; boundary=...)',
    );
  }
}

/**
 * Reads a multipart body with at most one file part, handing the file's
 * stream to `onFile` (which must consume it, e.g. to a temp file: nothing is
 * buffered here). Parser and limit errors become 400s with a message (413 for
 * the file size); errors of `onFile` that are not about the request (disk
 * full) pass through as server faults.
 */
export async function readMultipart<T>(
  request: FastifyRequest,
  limits: MultipartLimits,
  onFile: (part: MultipartFile) => Promise<T>,
): Promise<MultipartResult<T>> {
  checkMultipartContentType(request);
  const fields: Record<string, string> = {};
  let file: T | undefined;
  let files = 0;
  try {
    for await (const part of request.parts({
      limits: {
        fileSize: limits.maxFileBytes,
        files: 1,
        fields: limits.maxFields,
        parts: limits.maxFields + 1,
        fieldSize: 64 * 1024,
      },
    })) {
      if (part.type === 'file') {
        files++;
        file = await onFile(part);
        // The parser ends a file stream early at the size limit; never keep a cut-off file.
        if (part.file.truncated) throw limits.tooLarge();
      } else if (typeof part.value === 'string') {
        fields[part.fieldname] = part.value;
      }
    }
  } catch (err) {
    throw requestError(err, limits);
  }
  if (files > 1) throw new LinesightError('ERR_CLOUD_BAD_REQUEST', 'send exactly one file part');
  return { fields, file };
}

function requestError(err: unknown, limits: MultipartLimits): unknown {
  if (isLinesightError(err)) return err;
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  // A file-system error (ENOSPC, EACCES) while storing the file is the server's fault.
  if (typeof e.errno === 'number') return err;
  switch (e.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return limits.tooLarge();
    case 'FST_FILES_LIMIT':
      return bad('send exactly one file part', err);
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return bad(`too many form fields: at most ${limits.maxFields} besides the file`, err);
    case 'FST_PROTO_VIOLATION':
      return bad('a form field name is not allowed (__proto__ or constructor)', err);
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return bad('the request is not multipart/form-data', err);
    default:
      // busboy's errors on a malformed or cut-off body ("Unexpected end of form", "Malformed part header").
      return bad(
        `malformed multipart body${typeof e.message === 'string' ? `: ${e.message}` : ''}`,
        err,
      );
  }
}

function bad(message: string, cause: unknown): LinesightError {
  return new LinesightError('ERR_CLOUD_BAD_REQUEST', message, { cause });
}

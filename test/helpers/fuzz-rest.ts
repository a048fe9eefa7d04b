// REST fuzzing driven by the cloud's own OpenAPI document: every route it
// lists (so a new route is covered without touching the test) gets random
// path and query values, random credentials and random bodies.
import { connect } from 'node:net';
import {
  Rng,
  fromSchema,
  mutateBytes,
  mutateJson,
  nastyString,
  randomJson,
  refResolver,
  type RefResolver,
  type SchemaNode,
} from './fuzz-random.ts';

/** One operation of the OpenAPI document. */
export interface FuzzOperation {
  method: string;
  path: string;
  parameters: { name: string; in: string; schema?: SchemaNode }[];
  /** Declared request body schemas by content type. */
  bodies: Record<string, SchemaNode | undefined>;
}

/** Lists the operations of an OpenAPI 3 document, with a resolver for its `$ref`s. */
export function operationsOf(doc: unknown): { operations: FuzzOperation[]; resolve: RefResolver } {
  const paths = (doc as { paths: Record<string, Record<string, unknown>> }).paths;
  const operations: FuzzOperation[] = [];
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, raw] of Object.entries(item)) {
      if (!['get', 'put', 'post', 'delete', 'patch'].includes(method)) continue;
      const op = raw as {
        parameters?: FuzzOperation['parameters'];
        requestBody?: { content?: Record<string, { schema?: SchemaNode }> };
      };
      const bodies: FuzzOperation['bodies'] = {};
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {}))
        bodies[type] = media.schema;
      operations.push({
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        bodies,
      });
    }
  }
  return { operations, resolve: refResolver(doc) };
}

/** Credentials the fuzzer picks from for each request. */
export interface FuzzCredentials {
  /** Bearer tokens by role (`admin`, `operator`, `viewer`). */
  tokens: Record<string, string>;
  /** A provisioned device's id and secret (HTTP Basic). */
  device: { id: string; secret: string };
}

/** Values the fuzzer sometimes puts in path parameters, so requests reach past the lookups. */
export type KnownValues = Record<string, string[]>;

/** A request the fuzzer built, kept for the failure report. */
export interface FuzzRequest {
  method: string;
  url: string;
  auth: string;
  contentType: string | undefined;
  bodyKind: string;
  bodyBytes: number;
  bodyHead: string;
}

/** What came back. */
export interface FuzzOutcome {
  request: FuzzRequest;
  status?: number;
  /** The start of the answer's body. */
  answer?: string;
  retryAfter?: string | null;
  error?: string;
  /** From sending the request to the end of what was read of the answer. */
  elapsedMs: number;
}

/**
 * True for a server fault: no answer at all, or a 5xx other than the declared
 * back-pressure (503 ERR_CLOUD_BUSY with Retry-After, e.g. all model-upload slots taken).
 */
export function isServerFault(o: FuzzOutcome): boolean {
  if (o.error !== undefined) return !closedOverLimit(o);
  if (o.status === undefined) return true;
  if (o.status < 500) return false;
  return !(
    o.status === 503 &&
    o.answer?.includes('"ERR_CLOUD_BUSY"') === true &&
    Number(o.retryAfter) > 0
  );
}

/** The cloud's body limit for routes that parse their body whole (fastify's `bodyLimit`). */
export const CLOUD_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * True when the connection broke under a body over the cloud's limit: the cloud
 * answers such a body 413 without reading it and closes the connection (what
 * HTTP allows, and what keeps a client from making it read gigabytes), and a
 * client still sending sees EPIPE or a reset instead of the answer.
 */
export function closedOverLimit(o: FuzzOutcome): boolean {
  return (
    o.request.bodyBytes > CLOUD_BODY_LIMIT_BYTES &&
    /\b(EPIPE|ECONNRESET)\b|other side closed/.test(o.error ?? '')
  );
}

const CONTENT_TYPES = [
  'application/json',
  'multipart/form-data',
  'application/octet-stream',
  'image/jpeg',
  'image/png',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=utf-16',
  'garbage/☃',
];

/** Percent-encodes every byte of a string's UTF-8 (a lone surrogate becomes U+FFFD) or of raw bytes. */
function percentEncode(value: string | Buffer): string {
  return [...(typeof value === 'string' ? Buffer.from(value) : value)]
    .map((b) => `%${b.toString(16).padStart(2, '0')}`)
    .join('');
}

/** What fetch lets through in a header value: printable ASCII. */
function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?');
}

function pathValue(rng: Rng, name: string, known: KnownValues, method: string): string {
  const list = known[name];
  // Known ids only for reads and creates: a random DELETE of a known device or token
  // would only make the rest of the run 404.
  if (list !== undefined && list.length > 0 && method !== 'DELETE' && rng.chance(0.5))
    return encodeURIComponent(rng.pick(list));
  switch (rng.int(0, 5)) {
    case 0:
      return percentEncode(nastyString(rng).slice(0, 2000));
    case 1:
      return rng.pick(['..%2F..%2Fkeys', '..', '%2e%2e', percentEncode(rng.bytes(rng.int(1, 40)))]);
    case 2:
      return rng.bytes(32).toString('hex');
    case 3:
      return encodeURIComponent(`${rng.int(0, 9)}.${rng.int(0, 9)}.${rng.int(0, 9)}`);
    default:
      return `id-${rng.int(0, 1e6)}`;
  }
}

function queryValue(rng: Rng, schema: SchemaNode | undefined, resolve: RefResolver): string {
  if (rng.chance(0.6)) {
    const v = fromSchema(schema, rng, resolve);
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
  return rng.chance(0.5) ? nastyString(rng).slice(0, 5000) : String(randomJson(rng, 0));
}

function multipart(rng: Rng, files: readonly Uint8Array[]): { body: Buffer; contentType: string } {
  const boundary = `----fuzz${rng.int(0, 1e9)}`;
  const parts: Buffer[] = [];
  const fields = rng.chance(0.1) ? rng.int(100, 3000) : rng.int(0, 4);
  for (let i = 0; i < fields; i++)
    parts.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="${rng.pick(['name', 'version', 'f', nastyString(rng).slice(0, 30)])}"\r\n\r\n${rng.chance(0.5) ? nastyString(rng).slice(0, 200) : `v${i}`}\r\n`,
      ),
    );
  const fileCount = rng.int(0, 2);
  for (let i = 0; i < fileCount; i++) {
    const file =
      files.length > 0 && rng.chance(0.7)
        ? mutateBytes(rng.pick(files), rng)
        : rng.bytes(rng.int(0, 4096));
    parts.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="${rng.pick(['file', 'image', 'x'])}"; filename="${rng.pick(['a.onnx', 'a.jpg', '../../x', ''])}"\r\ncontent-type: application/octet-stream\r\n\r\n`,
      ),
      file,
      Buffer.from('\r\n'),
    );
  }
  if (!rng.chance(0.2)) parts.push(Buffer.from(`--${boundary}--\r\n`));
  const contentType = rng.pick([
    `multipart/form-data; boundary=${boundary}`,
    `multipart/form-data; boundary=${boundary}`,
    'multipart/form-data',
    `multipart/form-data; boundary=other`,
    `multipart/form-data; boundary="${boundary}"`,
  ]);
  let body = Buffer.concat(parts);
  if (rng.chance(0.15)) body = body.subarray(0, rng.int(0, body.length));
  return { body, contentType };
}

/** Builds a body for an operation: valid, mutated, random, truncated, huge, multipart or bytes. */
function buildBody(
  rng: Rng,
  op: FuzzOperation,
  resolve: RefResolver,
  files: readonly Uint8Array[],
): { kind: string; body?: Buffer; contentType?: string } {
  const declared = Object.keys(op.bodies);
  const jsonSchema = op.bodies['application/json'];
  const kind = rng.pick([
    'none',
    'schema',
    'schema',
    'mutated',
    'mutated',
    'mutated',
    'random-json',
    'truncated-json',
    'huge',
    'multipart',
    'bytes',
    'mutated-file',
  ]);
  const typeFor = (fallback: string) =>
    rng.chance(0.8)
      ? declared.length > 0
        ? rng.pick(declared)
        : fallback
      : rng.pick(CONTENT_TYPES);
  switch (kind) {
    case 'none':
      return { kind, contentType: rng.chance(0.5) ? typeFor('application/json') : undefined };
    case 'schema':
    case 'mutated': {
      let value = fromSchema(jsonSchema, rng, resolve);
      if (kind === 'mutated') value = mutateJson(value, rng);
      return {
        kind,
        body: Buffer.from(JSON.stringify(value) ?? 'null'),
        contentType: rng.chance(0.9) ? 'application/json' : typeFor('application/json'),
      };
    }
    case 'random-json':
      return {
        kind,
        body: Buffer.from(JSON.stringify(randomJson(rng)) ?? 'null'),
        contentType: 'application/json',
      };
    case 'truncated-json': {
      const text = JSON.stringify(fromSchema(jsonSchema, rng, resolve)) ?? '{}';
      return {
        kind,
        body: Buffer.from(text.slice(0, rng.int(0, Math.max(0, text.length - 1)))),
        contentType: 'application/json',
      };
    }
    case 'huge': {
      const size = rng.pick([1024 * 1024 + 1, 3 * 1024 * 1024]);
      const body = rng.chance(0.5)
        ? Buffer.from(JSON.stringify({ pad: 'x'.repeat(size) }))
        : Buffer.alloc(size, 0x7b);
      return { kind, body, contentType: typeFor('application/json') };
    }
    case 'multipart': {
      const m = multipart(rng, files);
      return { kind, body: m.body, contentType: m.contentType };
    }
    case 'mutated-file':
      return {
        kind,
        body: files.length > 0 ? mutateBytes(rng.pick(files), rng) : rng.bytes(100),
        contentType: typeFor('application/octet-stream'),
      };
    default:
      return {
        kind,
        body: rng.bytes(rng.int(0, 8192)),
        contentType: typeFor('application/octet-stream'),
      };
  }
}

function authHeader(rng: Rng, creds: FuzzCredentials): { label: string; value?: string } {
  const roles = Object.keys(creds.tokens);
  switch (rng.int(0, 11)) {
    case 0:
      return { label: 'none' };
    case 1:
      return { label: 'bad-bearer', value: `Bearer ${rng.bytes(24).toString('base64url')}` };
    case 2:
      return {
        label: 'garbage',
        value: rng.pick([
          'Bearer',
          'Basic',
          'Basic !!!',
          `Digest ${headerSafe(nastyString(rng).slice(0, 100))}`,
          'Basic ' + Buffer.from(':').toString('base64'),
        ]),
      };
    case 3:
      return {
        label: 'device',
        value: `Basic ${Buffer.from(`${creds.device.id}:${creds.device.secret}`).toString('base64')}`,
      };
    case 4:
      return {
        label: 'device-wrong-secret',
        value: `Basic ${Buffer.from(`${creds.device.id}:nope`).toString('base64')}`,
      };
    default: {
      const role = rng.pick(roles);
      return { label: role, value: `Bearer ${creds.tokens[role]}` };
    }
  }
}

/** Builds one random request to `op` and sends it; resolves with the status or the transport error. */
export async function fuzzOnce(
  baseUrl: string,
  op: FuzzOperation,
  rng: Rng,
  resolve: RefResolver,
  creds: FuzzCredentials,
  known: KnownValues,
  files: readonly Uint8Array[],
  timeoutMs: number,
  /** Sent as x-request-id, so the cloud's access log line can be found. */
  requestId?: string,
): Promise<FuzzOutcome> {
  let path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) =>
    pathValue(rng, name, known, op.method),
  );
  const query = new URLSearchParams();
  for (const p of op.parameters)
    if (p.in === 'query' && rng.chance(0.5)) query.set(p.name, queryValue(rng, p.schema, resolve));
  if (rng.chance(0.1))
    query.set(nastyString(rng).slice(0, 50) || 'x', nastyString(rng).slice(0, 50));
  if (query.size > 0) path += `?${query.toString()}`;
  const auth = authHeader(rng, creds);
  // fetch sends no body with GET; DELETE gets one now and then.
  const body =
    op.method === 'GET' || (op.method === 'DELETE' && !rng.chance(0.2))
      ? { kind: 'none' as const, body: undefined, contentType: undefined }
      : buildBody(rng, op, resolve, files);
  const headers: Record<string, string> = {};
  if (auth.value !== undefined) headers.authorization = auth.value;
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  if (body.contentType !== undefined) headers['content-type'] = headerSafe(body.contentType);
  const request: FuzzRequest = {
    method: op.method,
    url: path.length > 300 ? `${path.slice(0, 300)}…(${path.length})` : path,
    auth: auth.label,
    contentType: body.contentType,
    bodyKind: body.kind,
    bodyBytes: body.body?.length ?? 0,
    bodyHead: body.body?.subarray(0, 120).toString('latin1') ?? '',
  };
  const started = performance.now();
  const elapsedMs = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(`${baseUrl}${path}`, {
      method: op.method,
      headers,
      body: body.body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Read a little of the answer (an SSE stream never ends), then let go of it.
    const reader = res.body?.getReader();
    let answer = '';
    if (reader !== undefined) {
      let read = 0;
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        read += chunk.value.byteLength;
        if (answer.length < 2048) answer += Buffer.from(chunk.value).toString('utf8', 0, 2048);
        if (
          res.headers.get('content-type')?.startsWith('text/event-stream') ||
          read > 4 * 1024 * 1024
        ) {
          await reader.cancel();
          break;
        }
      }
    }
    return {
      request,
      status: res.status,
      answer,
      retryAfter: res.headers.get('retry-after'),
      elapsedMs: elapsedMs(),
    };
  } catch (err) {
    return {
      request,
      elapsedMs: elapsedMs(),
      error:
        err instanceof Error
          ? `${err.name}: ${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}`
          : String(err),
    };
  }
}

/**
 * Sends a request whose body is cut short at the socket: the declared
 * Content-Length is larger than what arrives before the client half-closes.
 * Resolves with the status line the server answered, if any.
 */
export function truncatedRequest(
  host: string,
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
  declaredBytes: number,
  timeoutMs: number,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let answer = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      resolve(m ? Number(m[1]) : undefined);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('error', done);
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    socket.on('close', done);
    socket.on('connect', () => {
      const head = [
        `${method} ${path} HTTP/1.1`,
        `host: ${host}:${port}`,
        `content-length: ${declaredBytes}`,
        'connection: close',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        '',
        '',
      ].join('\r\n');
      socket.write(head);
      socket.end(body);
    });
  });
}

/** Random bytes with a mutated seed file now and then (images, models). */
export function randomFile(rng: Rng, seeds: readonly Uint8Array[]): Buffer {
  if (seeds.length > 0 && rng.chance(0.75)) {
    let out = mutateBytes(rng.pick(seeds), rng);
    if (rng.chance(0.3)) out = mutateBytes(out, rng);
    return out;
  }
  return rng.bytes(rng.int(0, 64 * 1024));
}

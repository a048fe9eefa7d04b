import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { FormatRegistry } from '@sinclair/typebox';
import { LinesightError } from './errors.ts';

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (v) => ISO_DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));
}

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checkerFor<T extends TSchema>(schema: T): TypeCheck<T> {
  let check = compiled.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(schema);
    compiled.set(schema, check);
  }
  return check as TypeCheck<T>;
}

/** Maximum size of any MQTT payload Linesight decodes. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

/** Checks a value against a schema; throws ERR_PROTOCOL_PAYLOAD listing every problem. */
export function assertSchema<T extends TSchema>(
  schema: T,
  value: unknown,
  what: string,
): Static<T> {
  const check = checkerFor(schema);
  if (check.Check(value)) return value;
  const problems = [...check.Errors(value)]
    .slice(0, 8)
    .map((e) => `${e.path || '/'}: ${e.message}`);
  throw new LinesightError('ERR_PROTOCOL_PAYLOAD', `invalid ${what}: ${problems.join('; ')}`, {
    details: { problems },
  });
}

/** Parses and validates a JSON payload; throws ERR_PROTOCOL_PAYLOAD on any defect. */
export function decodePayload<T extends TSchema>(
  schema: T,
  payload: Uint8Array | string,
  what: string,
): Static<T> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) {
    throw new LinesightError(
      'ERR_PROTOCOL_PAYLOAD',
      `invalid ${what}: ${size} bytes exceeds ${MAX_PAYLOAD_BYTES}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(
      typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'),
    );
  } catch (cause) {
    throw new LinesightError('ERR_PROTOCOL_PAYLOAD', `invalid ${what}: not JSON`, { cause });
  }
  return assertSchema(schema, value, what);
}

/** Validates then serializes a payload, so nothing invalid is ever sent. */
export function encodePayload<T extends TSchema>(
  schema: T,
  value: Static<T>,
  what: string,
): Buffer {
  assertSchema(schema, value, what);
  return Buffer.from(JSON.stringify(value));
}

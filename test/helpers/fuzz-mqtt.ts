// MQTT payloads for the fuzz test: for each channel a device may publish on,
// a value built from the protocol's own schema, then mutated, replaced by noise,
// truncated, wrongly encoded or naming another device. Each payload carries the
// verdict the cloud must reach (accept or reject), decided with the protocol's
// decoders, so the test can hold the cloud's counters to it.
import { gzipSync } from 'node:zlib';
import {
  CHANNEL_SCHEMAS,
  EDGE_CHANNEL_SCHEMAS,
  decodeEdgeBatch,
  decodePayload,
  MAX_PAYLOAD_BYTES,
  type DeviceChannel,
} from '@linesight/protocol';
import {
  Rng,
  fromSchema,
  mutateBytes,
  mutateJson,
  randomJson,
  type SchemaNode,
} from './fuzz-random.ts';

/** Channels the cloud reads through its fleet link (JSON payloads). */
export const LINK_CHANNELS = ['reported', 'telemetry', 'events', 'status'] as const;
/** Channels the cloud's edge-data ingest reads (gzipped JSON batches). */
export const EDGE_CHANNELS = ['verdicts', 'windows', 'event-log', 'samples'] as const;

/** One fuzzed publish. */
export interface FuzzPublish {
  channel: DeviceChannel;
  kind: string;
  payload: Buffer;
  /** True when the cloud must drop it (and count it); false when it is valid. */
  invalid: boolean;
  /** Over the broker's packet limit: the broker must close the connection and count it. */
  oversize: boolean;
}

function withDevice(value: unknown, deviceId: string): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'deviceId' in value)
    return { ...value, deviceId };
  return value;
}

let bomb: Buffer | undefined;
/** 9 MiB of spaces in about 9 KiB of gzip: over the decoder's 8 MiB cap once unpacked. */
function gzipBomb(): Buffer {
  bomb ??= gzipSync(Buffer.alloc(9 * 1024 * 1024, 0x20));
  return bomb;
}

/** Whether the cloud accepts `payload` on `channel` of `deviceId`: the same decoders and owner check. */
export function acceptedBy(channel: DeviceChannel, deviceId: string, payload: Buffer): boolean {
  try {
    if ((EDGE_CHANNELS as readonly string[]).includes(channel)) {
      const schema = EDGE_CHANNEL_SCHEMAS[channel as (typeof EDGE_CHANNELS)[number]];
      return decodeEdgeBatch(schema, payload, channel).deviceId === deviceId;
    }
    const schema = CHANNEL_SCHEMAS[channel as keyof typeof CHANNEL_SCHEMAS];
    return (decodePayload(schema, payload, channel) as { deviceId: string }).deviceId === deviceId;
  } catch {
    return false;
  }
}

/** A random publish on `channel` for `deviceId`. */
export function fuzzPayload(rng: Rng, channel: DeviceChannel, deviceId: string): FuzzPublish {
  const edge = (EDGE_CHANNELS as readonly string[]).includes(channel);
  const schema = (edge
    ? EDGE_CHANNEL_SCHEMAS[channel as (typeof EDGE_CHANNELS)[number]]
    : CHANNEL_SCHEMAS[channel as keyof typeof CHANNEL_SCHEMAS]) as unknown as SchemaNode;
  const base = withDevice(fromSchema(schema, rng), deviceId);
  const encode = (v: unknown) => {
    const json = Buffer.from(JSON.stringify(v) ?? 'null');
    return edge ? gzipSync(json) : json;
  };
  const kind = rng.pick([
    'schema',
    'mutated',
    'mutated',
    'mutated',
    'random-json',
    'bytes',
    'mutated-bytes',
    'truncated',
    'other-device',
    'wrong-encoding',
    'bomb',
  ]);
  let payload: Buffer;
  switch (kind) {
    case 'schema':
      payload = encode(base);
      break;
    case 'mutated':
      payload = encode(mutateJson(base, rng));
      break;
    case 'random-json':
      payload = encode(randomJson(rng));
      break;
    case 'bytes':
      payload = rng.bytes(rng.int(1, 2048));
      break;
    case 'mutated-bytes':
      payload = mutateBytes(encode(base), rng);
      break;
    case 'truncated': {
      const whole = encode(base);
      payload = whole.subarray(0, rng.int(1, Math.max(1, whole.length - 1)));
      break;
    }
    case 'other-device':
      payload = encode(withDevice(base, `${deviceId}-other`));
      break;
    case 'wrong-encoding': {
      // Plain JSON where gzip is expected, and gzip where JSON is.
      const json = Buffer.from(JSON.stringify(base) ?? 'null');
      payload = edge ? json : gzipSync(json);
      break;
    }
    default:
      // Small on the wire, large unpacked (a gzip bomb), or deeply nested JSON.
      payload = edge ? gzipBomb() : Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
  }
  // An empty payload is a retained-topic clear, which the cloud ignores by design.
  if (payload.length === 0) payload = Buffer.from('{');
  // Clear of the broker's limit either way, so the test knows which counter must move.
  if (Math.abs(payload.length - MAX_PAYLOAD_BYTES) < 4096)
    payload = payload.subarray(0, MAX_PAYLOAD_BYTES - 4096);
  return {
    channel,
    kind,
    payload,
    invalid: !acceptedBy(channel, deviceId, payload),
    oversize: payload.length > MAX_PAYLOAD_BYTES,
  };
}

/** A publish over the broker's packet limit (random bytes, up to 1 MiB over). */
export function oversizePayload(rng: Rng, channel: DeviceChannel): FuzzPublish {
  const payload = rng.bytes(MAX_PAYLOAD_BYTES + rng.int(4096, 1024 * 1024));
  return { channel, kind: 'oversize', payload, invalid: true, oversize: true };
}

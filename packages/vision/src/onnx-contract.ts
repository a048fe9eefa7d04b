import onnxProto from 'onnx-proto';
import { LinesightError, canonicalJson } from '@linesight/protocol';
import { CONTRACT_METADATA_KEY, parseModelContract, type ModelContract } from './model-contract.ts';
import onnx = onnxProto.onnx;

// ModelProto.metadata_props is field 14, length-delimited (wire type 2).
const METADATA_PROPS_FIELD = 14;
const LENGTH_DELIMITED = 2;

/** One top-level protobuf field of a serialized ModelProto. */
interface FieldSpan {
  field: number;
  wireType: number;
  /** Offset of the field's tag. */
  start: number;
  /** Offset of the field's payload (after the tag and, for wire type 2, the length). */
  valueStart: number;
  /** Offset just past the field. */
  end: number;
}

/** Reads the Linesight contract stored in an ONNX model's metadata_props; throws ERR_MODEL_CONTRACT. */
export function readModelContract(onnxBytes: Uint8Array): ModelContract {
  const values: string[] = [];
  for (const span of scanModelFields(onnxBytes)) {
    const entry = decodeMetadataEntry(onnxBytes, span);
    if (entry !== undefined && entry.key === CONTRACT_METADATA_KEY) values.push(entry.value);
  }
  const [json] = values;
  if (json === undefined) {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `ONNX model has no "${CONTRACT_METADATA_KEY}" metadata`,
    );
  }
  if (values.length > 1) {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `ONNX model has ${values.length} "${CONTRACT_METADATA_KEY}" entries`,
    );
  }
  return parseModelContract(json);
}

/**
 * Returns a copy of an ONNX model with `contract` stored under
 * `linesight.contract` (replacing any old one). Every other byte is kept as
 * is, so fields newer than the bundled ONNX schema survive and large weights
 * are never decoded.
 */
export function withModelContract(onnxBytes: Uint8Array, contract: ModelContract): Uint8Array {
  const json = canonicalJson(contract);
  parseModelContract(json);
  const spans = scanModelFields(onnxBytes);
  const kept = spans.filter((span) => !isContractSpan(onnxBytes, span));
  const entry = onnx.StringStringEntryProto.encode({
    key: CONTRACT_METADATA_KEY,
    value: json,
  }).finish();
  const header = [
    ...encodeVarint((METADATA_PROPS_FIELD << 3) | LENGTH_DELIMITED),
    ...encodeVarint(entry.length),
  ];
  const keptBytes = kept.reduce((sum, span) => sum + span.end - span.start, 0);
  const out = new Uint8Array(keptBytes + header.length + entry.length);
  let offset = 0;
  for (const span of kept) {
    out.set(onnxBytes.subarray(span.start, span.end), offset);
    offset += span.end - span.start;
  }
  out.set(header, offset);
  out.set(entry, offset + header.length);
  return out;
}

function isContractSpan(bytes: Uint8Array, span: FieldSpan): boolean {
  return decodeMetadataEntry(bytes, span)?.key === CONTRACT_METADATA_KEY;
}

function decodeMetadataEntry(
  bytes: Uint8Array,
  span: FieldSpan,
): { key: string; value: string } | undefined {
  if (span.field !== METADATA_PROPS_FIELD || span.wireType !== LENGTH_DELIMITED) return undefined;
  try {
    const entry = onnx.StringStringEntryProto.decode(bytes.subarray(span.valueStart, span.end));
    return { key: entry.key, value: entry.value };
  } catch (cause) {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      'ONNX model has a malformed metadata_props entry',
      { cause },
    );
  }
}

/** Splits a serialized ModelProto into its top-level fields without decoding them. */
function scanModelFields(bytes: Uint8Array): FieldSpan[] {
  const spans: FieldSpan[] = [];
  let pos = 0;
  let sawGraph = false;
  while (pos < bytes.length) {
    const start = pos;
    const [tag, afterTag] = readVarint(bytes, pos);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field === 0) throw notOnnx(`field number 0 at byte ${start}`);
    let valueStart = afterTag;
    let end: number;
    switch (wireType) {
      case 0:
        end = readVarint(bytes, afterTag)[1];
        break;
      case 1:
        end = afterTag + 8;
        break;
      case 2: {
        const [length, afterLength] = readVarint(bytes, afterTag);
        valueStart = afterLength;
        end = afterLength + length;
        break;
      }
      case 5:
        end = afterTag + 4;
        break;
      default:
        throw notOnnx(`unsupported wire type ${wireType} at byte ${start}`);
    }
    if (end > bytes.length) throw notOnnx(`field ${field} at byte ${start} runs past the end`);
    if (field === 7 && wireType === LENGTH_DELIMITED) sawGraph = true;
    spans.push({ field, wireType, start, valueStart, end });
    pos = end;
  }
  if (!sawGraph) throw notOnnx('no graph');
  return spans;
}

function readVarint(bytes: Uint8Array, offset: number): [value: number, next: number] {
  let value = 0;
  let multiplier = 1;
  for (let pos = offset; pos < bytes.length && pos < offset + 10; pos++) {
    const byte = bytes[pos] as number;
    value += (byte & 0x7f) * multiplier;
    if (byte < 0x80) {
      if (!Number.isSafeInteger(value)) throw notOnnx(`varint too large at byte ${offset}`);
      return [value, pos + 1];
    }
    multiplier *= 128;
  }
  throw notOnnx(`truncated varint at byte ${offset}`);
}

function encodeVarint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function notOnnx(reason: string): LinesightError {
  return new LinesightError('ERR_MODEL_CONTRACT', `bytes are not an ONNX model: ${reason}`);
}

import { open, type FileHandle } from 'node:fs/promises';
import { LinesightError } from '@linesight/protocol';
import { readModelContract } from '@linesight/vision';
import type { ModelContract } from '@linesight/vision';

// ModelProto fields: graph is 7, metadata_props 14 (both length-delimited).
const GRAPH_FIELD = 7;
const METADATA_PROPS_FIELD = 14;
const LENGTH_DELIMITED = 2;
// A metadata entry is a JSON contract: reference profile, golden outputs and
// training notes can run to megabytes, as the bytes-based reader allows. The cap
// only keeps a bogus length from pulling a whole large upload into memory.
const MAX_METADATA_ENTRY_BYTES = 64 * 1024 * 1024;

/**
 * Reads the Linesight contract of an ONNX file on disk without loading it:
 * walks the top-level protobuf fields by their headers, skipping the graph and
 * weights, and reads only the metadata entries. A file that is not a
 * well-framed ModelProto, or has no valid contract, is refused
 * (ERR_MODEL_CONTRACT) after reading a few bytes, so a large bogus upload
 * never reaches memory.
 */
export async function readContractFromFile(path: string): Promise<ModelContract> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const kept: Buffer[] = [];
    let pos = 0;
    let sawGraph = false;
    while (pos < size) {
      const head = await readAt(file, pos, Math.min(20, size - pos));
      const [tag, afterTag] = readVarint(head, 0, pos);
      const field = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (field === 0) throw notOnnx(`field number 0 at byte ${pos}`);
      let end: number;
      switch (wireType) {
        case 0: {
          const rest = await readAt(file, pos + afterTag, Math.min(10, size - pos - afterTag));
          end = pos + afterTag + readVarint(rest, 0, pos)[1];
          break;
        }
        case 1:
          end = pos + afterTag + 8;
          break;
        case LENGTH_DELIMITED: {
          const [length, afterLength] = readVarint(head, afterTag, pos);
          end = pos + afterLength + length;
          if (end > size) throw notOnnx(`field ${field} at byte ${pos} runs past the end`);
          if (field === GRAPH_FIELD) sawGraph = true;
          if (field === METADATA_PROPS_FIELD) {
            if (length > MAX_METADATA_ENTRY_BYTES) throw notOnnx('a metadata entry is too large');
            kept.push(await readAt(file, pos, end - pos));
          }
          break;
        }
        case 5:
          end = pos + afterTag + 4;
          break;
        default:
          throw notOnnx(`unsupported wire type ${wireType} at byte ${pos}`);
      }
      if (end > size) throw notOnnx(`field ${field} at byte ${pos} runs past the end`);
      pos = end;
    }
    if (!sawGraph) throw notOnnx('no graph');
    // The metadata entries plus an empty graph: a model the bytes-based reader accepts.
    return readModelContract(
      Buffer.concat([...kept, Buffer.from([(GRAPH_FIELD << 3) | LENGTH_DELIMITED, 0])]),
    );
  } finally {
    await file.close();
  }
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

function readVarint(bytes: Buffer, offset: number, at: number): [value: number, next: number] {
  let value = 0;
  let multiplier = 1;
  for (let i = offset; i < bytes.length && i < offset + 10; i++) {
    const byte = bytes[i] as number;
    value += (byte & 0x7f) * multiplier;
    if (byte < 0x80) {
      if (!Number.isSafeInteger(value)) throw notOnnx(`varint too large at byte ${at}`);
      return [value, i + 1];
    }
    multiplier *= 128;
  }
  throw notOnnx(`truncated varint at byte ${at}`);
}

function notOnnx(reason: string): LinesightError {
  return new LinesightError('ERR_MODEL_CONTRACT', `the file is not an ONNX model (${reason})`);
}

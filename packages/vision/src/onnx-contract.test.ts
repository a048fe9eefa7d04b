import { describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { canonicalJson, isLinesightError } from '@linesight/protocol';
import { CONTRACT_METADATA_KEY, type ModelContract } from './model-contract.ts';
import { readModelContract, withModelContract } from './onnx-contract.ts';
import { tinyContract, tinyOnnx } from '@linesight/testkit/onnx';
import onnx = onnxProto.onnx;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isLinesightError(err) ? err.code : `not a LinesightError: ${String(err)}`;
  }
  return undefined;
}

const contract: ModelContract = {
  ...tinyContract(16, 8),
  threshold: 1.25,
  training: { seed: 7, samples: 12 },
  datasetFingerprint: 'ab'.repeat(32),
  referenceProfile: { score: { edges: [0, 1, 2], counts: [3, 4] } },
};

describe('model contract in ONNX bytes', () => {
  it('round-trips through withModelContract and readModelContract', () => {
    const bytes = withModelContract(tinyOnnx({ width: 16, height: 8, contract: null }), contract);
    expect(readModelContract(bytes)).toEqual(contract);
    const decoded = onnx.ModelProto.decode(bytes);
    expect(decoded.graph?.node?.length).toBeGreaterThan(0);
    expect(decoded.metadataProps.filter((p) => p.key === CONTRACT_METADATA_KEY)).toHaveLength(1);
  });

  it('replaces an old contract and keeps other metadata and unknown fields', () => {
    const base = onnx.ModelProto.decode(tinyOnnx({ width: 16, height: 8 }));
    base.metadataProps.push({ key: 'author', value: 'line 3' });
    // Field 26 is ModelProto.configuration in newer ONNX; the bundled schema does not know it.
    // Tag (26 << 3) | 2 as a varint, length 2, then a small embedded message.
    const unknownField = Uint8Array.from([0xd2, 0x01, 0x02, 0x08, 0x01]);
    const bytes = Uint8Array.from([...onnx.ModelProto.encode(base).finish(), ...unknownField]);
    const updated = withModelContract(bytes, { ...contract, threshold: 9 });
    expect(readModelContract(updated).threshold).toBe(9);
    const decoded = onnx.ModelProto.decode(updated);
    expect(decoded.metadataProps.map((p) => p.key).sort()).toEqual([
      'author',
      CONTRACT_METADATA_KEY,
    ]);
    expect(Buffer.from(updated).includes(Buffer.from(unknownField))).toBe(true);
    expect(withModelContract(updated, { ...contract, threshold: 9 })).toEqual(updated);
  });

  it('handles a multi-megabyte model, whose graph length is a four-byte varint', () => {
    const weights = new Float32Array(2_000_000).map((_, i) => i % 97);
    const model = onnx.ModelProto.decode(tinyOnnx({ width: 16, height: 8, contract: null }));
    model.graph?.initializer?.push({
      name: 'big',
      dims: [weights.length],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(weights.buffer),
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    expect(bytes.length).toBeGreaterThan(8_000_000);
    // The speed of this path is a benchmark's to hold, not a test's.
    const withContract = withModelContract(bytes, contract);
    expect(readModelContract(withContract)).toEqual(contract);
    expect(withContract.length).toBeGreaterThan(bytes.length);
    const big = onnx.ModelProto.decode(withContract).graph?.initializer?.at(-1)?.rawData;
    expect(Buffer.from(big ?? []).equals(Buffer.from(weights.buffer))).toBe(true);
  });

  it('writes a contract whose entry length sits on a varint boundary (16384 bytes)', () => {
    const entryLength = (c: ModelContract) =>
      onnx.StringStringEntryProto.encode({
        key: CONTRACT_METADATA_KEY,
        value: canonicalJson(c),
      }).finish().length;
    const base: ModelContract = { ...contract, training: { seed: 7, samples: 12, note: '' } };
    const note = 'x'.repeat(16_384 - entryLength(base));
    const big: ModelContract = { ...base, training: { ...base.training, note } };
    expect(entryLength(big)).toBe(16_384);
    const bytes = withModelContract(tinyOnnx({ width: 16, height: 8, contract: null }), big);
    expect(readModelContract(bytes)).toEqual(big);
  });

  it('fails with ERR_MODEL_CONTRACT when the contract is missing, invalid or the bytes are not ONNX', () => {
    expect(
      codeOf(() => readModelContract(tinyOnnx({ width: 16, height: 8, contract: null }))),
    ).toBe('ERR_MODEL_CONTRACT');
    expect(codeOf(() => readModelContract(Buffer.from('not a model at all')))).toBe(
      'ERR_MODEL_CONTRACT',
    );
    expect(codeOf(() => readModelContract(new Uint8Array(0)))).toBe('ERR_MODEL_CONTRACT');
    const model = onnx.ModelProto.decode(tinyOnnx({ width: 16, height: 8, contract: null }));
    model.metadataProps.push({
      key: CONTRACT_METADATA_KEY,
      value: '{"schema":"linesight.model/v1"}',
    });
    expect(codeOf(() => readModelContract(onnx.ModelProto.encode(model).finish()))).toBe(
      'ERR_MODEL_CONTRACT',
    );
    model.metadataProps = [{ key: CONTRACT_METADATA_KEY, value: '{nope' }];
    expect(codeOf(() => readModelContract(onnx.ModelProto.encode(model).finish()))).toBe(
      'ERR_MODEL_CONTRACT',
    );
    const bad = { ...contract, inputSpec: { ...contract.inputSpec, mean: [0, 0] } };
    expect(codeOf(() => withModelContract(tinyOnnx({ width: 16, height: 8 }), bad))).toBe(
      'ERR_MODEL_CONTRACT',
    );
  });
});

describe('ONNX field scanner', () => {
  // Hand-built ModelProto bytes: tag = (field << 3) | wire type.
  const graph = [0x3a, 0x00]; // field 7 (graph), length 0
  const varintField = [0x08, 0x96, 0x01]; // field 1 (ir_version) = 150
  const fixed64Field = [0x11, 1, 2, 3, 4, 5, 6, 7, 8]; // field 2, 8 bytes
  const fixed32Field = [0x1d, 9, 10, 11, 12]; // field 3, 4 bytes
  const bytesOf = (...parts: number[][]) => Uint8Array.from(parts.flat());
  const entry = (key: string, value: string) => [
    ...onnx.StringStringEntryProto.encode({ key, value }).finish(),
  ];
  const metadata = (key: string, value: string) => {
    const e = entry(key, value);
    if (e.length > 127) throw new Error('entry too long for a one-byte length');
    return [0x72, e.length, ...e]; // field 14, length-delimited
  };

  function notOnnx(bytes: Uint8Array): string | undefined {
    try {
      withModelContract(bytes, contract);
    } catch (err) {
      if (!isLinesightError(err, 'ERR_MODEL_CONTRACT')) return `other error: ${String(err)}`;
      return /not an ONNX model/.test(err.message) ? 'not onnx' : err.message;
    }
    return undefined;
  }

  it('keeps fields of every wire type byte for byte, in order, before the contract', () => {
    const prefix = bytesOf(varintField, fixed64Field, graph, fixed32Field, [0x70, 0x05]);
    const out = withModelContract(prefix, contract);
    expect(Buffer.from(out.subarray(0, prefix.length)).equals(Buffer.from(prefix))).toBe(true);
    expect(readModelContract(out)).toEqual(contract);
    // The contract is the one field after them.
    const e = entry(CONTRACT_METADATA_KEY, canonical(contract));
    expect(out.length).toBe(prefix.length + 1 + varintLength(e.length) + e.length);
  });

  it('skips metadata under other keys and a field 14 that is not length-delimited', () => {
    const bytes = bytesOf(
      graph,
      [0x70, 0x01], // field 14 as a varint: not a metadata entry
      metadata('author', 'line 3'),
    );
    const withContract = withModelContract(bytes, contract);
    expect(readModelContract(withContract)).toEqual(contract);
    expect(withContract.subarray(0, bytes.length)).toEqual(bytes);
  });

  it('refuses a model with two contracts', () => {
    // Short stand-ins are enough: the count is checked before either is parsed.
    const two = bytesOf(
      graph,
      metadata(CONTRACT_METADATA_KEY, '{}'),
      metadata(CONTRACT_METADATA_KEY, '{}'),
    );
    expect(() => readModelContract(two)).toThrow(/2 "linesight.contract" entries/);
    expect(codeOf(() => readModelContract(two))).toBe('ERR_MODEL_CONTRACT');
  });

  it('refuses a malformed metadata entry with the decode error as the cause', () => {
    // Entry of 2 bytes: key field with a length of 5 and no key bytes.
    const bytes = bytesOf(graph, [0x72, 0x02, 0x0a, 0x05]);
    let caught: unknown;
    try {
      readModelContract(bytes);
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_MODEL_CONTRACT')).toBe(true);
    expect((caught as Error).message).toMatch(/malformed metadata_props/);
    expect((caught as Error).cause).toBeDefined();
  });

  it('refuses bytes that are not a ModelProto, whatever follows', () => {
    const cases: [string, Uint8Array][] = [
      ['field number 0', bytesOf([0x00, 0x00], graph)],
      ['start group', bytesOf([0x0b], graph)],
      ['end group', bytesOf([0x0c], graph)],
      ['wire type 6', bytesOf([0x0e], graph)],
      ['wire type 7', bytesOf([0x0f], graph)],
      ['a field past the end', bytesOf(graph, [0x12, 0x05, 1, 2, 3, 4])],
      ['a fixed64 past the end', bytesOf(graph, [0x11, 1, 2, 3, 4, 5, 6, 7])],
      ['a fixed32 past the end', bytesOf(graph, [0x1d, 1, 2, 3])],
      ['a truncated varint', bytesOf(graph, [0x08, 0x80])],
      ['a varint over ten bytes', bytesOf(graph, [0x08], new Array<number>(10).fill(0x80), [0])],
      ['a varint past 2^53', bytesOf(graph, [0x08], new Array<number>(9).fill(0xff), [0x01])],
      ['no graph', bytesOf(varintField, fixed32Field)],
      ['a graph that is a varint', bytesOf([0x38, 0x01])],
      ['metadata but no graph', bytesOf(metadata('author', 'line 3'))],
      ['nothing', new Uint8Array(0)],
    ];
    for (const [what, bytes] of cases) expect(notOnnx(bytes), what).toBe('not onnx');
    // The longest varint that fits: ten bytes, still a safe integer.
    const tenBytes = bytesOf([0x08], new Array<number>(9).fill(0x80), [0x00], graph);
    expect(notOnnx(tenBytes)).toBeUndefined();
    expect(notOnnx(bytesOf(graph))).toBeUndefined();
  });
});

function canonical(c: ModelContract): string {
  return canonicalJson(c);
}

function varintLength(value: number): number {
  let n = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 128)) n++;
  return n;
}

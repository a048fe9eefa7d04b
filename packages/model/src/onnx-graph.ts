import onnxProto from 'onnx-proto';
import { canonicalJson } from '@linesight/protocol';
import { CONTRACT_METADATA_KEY, parseModelContract, type ModelContract } from '@linesight/vision';
import onnx = onnxProto.onnx;

/** ONNX IR version Linesight writes (ONNX 1.8+, every ONNX Runtime since 1.6 reads it). */
export const ONNX_IR_VERSION = 7;
/** The default-domain opset Linesight graphs use. */
export const ONNX_OPSET = 13;

/** A graph ready to encode: nodes in topological order, with its inputs, outputs and weights. */
export interface GraphSpec {
  name: string;
  nodes: onnx.INodeProto[];
  initializers: onnx.ITensorProto[];
  inputs: onnx.IValueInfoProto[];
  outputs: onnx.IValueInfoProto[];
  docString?: string;
}

/** An INT attribute. */
export function intAttr(name: string, value: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

/** An INTS attribute. */
export function intsAttr(name: string, values: readonly number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...values] };
}

/** A FLOAT attribute. */
export function floatAttr(name: string, value: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value };
}

/** A FLOATS attribute. */
export function floatsAttr(name: string, values: readonly number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOATS, floats: [...values] };
}

/** A STRING attribute (UTF-8). */
export function stringAttr(name: string, value: string): onnx.IAttributeProto {
  return {
    name,
    type: onnx.AttributeProto.AttributeType.STRING,
    s: new TextEncoder().encode(value),
  };
}

/** A float32 tensor stored as little-endian raw_data, whatever the host byte order. */
export function floatTensor(
  name: string,
  dims: readonly number[],
  data: Float32Array,
): onnx.ITensorProto {
  assertElementCount(name, dims, data.length);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] as number, true);
  return { name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

/** An int64 tensor stored as little-endian raw_data (shapes, axes). */
export function int64Tensor(
  name: string,
  dims: readonly number[],
  values: readonly number[],
): onnx.ITensorProto {
  assertElementCount(name, dims, values.length);
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++)
    view.setBigInt64(i * 8, BigInt(values[i] as number), true);
  return { name, dims: [...dims], dataType: onnx.TensorProto.DataType.INT64, rawData: raw };
}

/** A node of the default domain. */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: readonly onnx.IAttributeProto[] = [],
  name?: string,
): onnx.INodeProto {
  return {
    opType,
    input: [...inputs],
    output: [...outputs],
    attribute: [...attributes],
    name: name ?? outputs[0] ?? opType,
  };
}

/** A tensor value info; string dims are symbolic (e.g. 'batch'). */
export function tensorValueInfo(
  name: string,
  dims: readonly (number | string)[],
  elemType: number = onnx.TensorProto.DataType.FLOAT,
): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/**
 * Builds a graph step by step: each op gets a unique output name, so graph
 * code reads like the forward pass it describes.
 */
export class GraphBuilder {
  readonly #name: string;
  readonly #nodes: onnx.INodeProto[] = [];
  readonly #initializers: onnx.ITensorProto[] = [];
  readonly #inputs: onnx.IValueInfoProto[] = [];
  readonly #outputs: onnx.IValueInfoProto[] = [];
  readonly #names = new Set<string>();

  constructor(name: string) {
    this.#name = name;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, dims: readonly (number | string)[], elemType?: number): string {
    this.#claim(name);
    this.#inputs.push(tensorValueInfo(name, dims, elemType));
    return name;
  }

  /** Adds a float32 weight and returns its name. */
  weight(name: string, dims: readonly number[], data: Float32Array): string {
    this.#claim(name);
    this.#initializers.push(floatTensor(name, dims, data));
    return name;
  }

  /** Adds an int64 constant (axes, shapes) and returns its name. */
  int64s(name: string, dims: readonly number[], values: readonly number[]): string {
    this.#claim(name);
    this.#initializers.push(int64Tensor(name, dims, values));
    return name;
  }

  /** Appends a single-output node and returns its output name (`output` or `<opType>_<n>`). */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: readonly onnx.IAttributeProto[] = [],
    output?: string,
  ): string {
    const name = output ?? this.#fresh(opType.toLowerCase());
    this.#claim(name);
    this.#nodes.push(node(opType, inputs, [name], attributes));
    return name;
  }

  /** Appends a node with several named outputs and returns their names. */
  opOutputs(
    opType: string,
    inputs: readonly string[],
    attributes: readonly onnx.IAttributeProto[],
    names: readonly string[],
  ): string[] {
    for (const name of names) this.#claim(name);
    this.#nodes.push(node(opType, inputs, names, attributes));
    return [...names];
  }

  /** Declares an existing value as a graph output. */
  output(name: string, dims: readonly (number | string)[], elemType?: number): void {
    if (!this.#names.has(name))
      throw new RangeError(`graph output "${name}" is not produced by the graph`);
    this.#outputs.push(tensorValueInfo(name, dims, elemType));
  }

  /** The finished graph. */
  build(docString?: string): GraphSpec {
    return {
      name: this.#name,
      nodes: [...this.#nodes],
      initializers: [...this.#initializers],
      inputs: [...this.#inputs],
      outputs: [...this.#outputs],
      ...(docString === undefined ? {} : { docString }),
    };
  }

  #claim(name: string): void {
    if (this.#names.has(name)) throw new RangeError(`graph value "${name}" is defined twice`);
    this.#names.add(name);
  }

  #fresh(prefix: string): string {
    for (let n = 0; ; n++) {
      const candidate = `${prefix}_${n}`;
      if (!this.#names.has(candidate)) return candidate;
    }
  }
}

/**
 * Serializes a graph as an ONNX model (IR 7, opset 13, producer "linesight")
 * with the Linesight contract in metadata_props. The same arguments always
 * give the same bytes: no timestamps, no random ids, canonical contract JSON.
 */
export function encodeModel(
  graph: GraphSpec,
  contract: ModelContract,
  options: { docString?: string; producerVersion?: string } = {},
): Uint8Array {
  const contractJson = canonicalJson(contract);
  parseModelContract(contractJson);
  const model: onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'linesight',
    producerVersion: options.producerVersion ?? '',
    docString: options.docString ?? '',
    graph: {
      name: graph.name,
      node: graph.nodes,
      initializer: graph.initializers,
      input: graph.inputs,
      output: graph.outputs,
      docString: graph.docString ?? '',
    },
    metadataProps: [{ key: CONTRACT_METADATA_KEY, value: contractJson }],
  };
  return onnx.ModelProto.encode(model).finish();
}

function assertElementCount(name: string, dims: readonly number[], count: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== count)
    throw new RangeError(
      `tensor "${name}" has ${count} values but dims [${dims.join(', ')}] need ${expected}`,
    );
}

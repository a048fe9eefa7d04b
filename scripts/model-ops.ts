// Operations one inference of an ONNX model costs, counted from onnxruntime's own profile of a
// run (the shapes each node saw), not from timings, so the figure holds on any CPU, emulated
// or not:
//
//   npx tsx scripts/model-ops.ts <model.onnx> [--runs 3]
//
// Prints JSON: multiply-accumulates of Conv, MatMul and Gemm nodes (the bulk of the work),
// the elements every other node wrote (one operation or a few each), and the model's input.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

/** What one inference costs. */
export interface ModelOps {
  input: { name: string; shape: number[] };
  /** Multiply-accumulates of Conv, MatMul and Gemm per inference. */
  macs: number;
  /** Elements written by all other nodes per inference. */
  otherElements: number;
  /** Multiply-accumulates by operator type. */
  macsByOp: Record<string, number>;
  nodes: number;
}

interface ProfileEvent {
  cat: string;
  name: string;
  args?: {
    op_name?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const shapeOf = (entry: Record<string, number[]> | undefined) =>
  entry === undefined ? [] : (Object.values(entry)[0] ?? []);

/** Runs the model once on zeros with profiling on and counts its operations. */
export async function countModelOps(modelPath: string): Promise<ModelOps> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-model-ops-'));
  try {
    const session = await ort.InferenceSession.create(modelPath, {
      enableProfiling: true,
      profileFilePrefix: join(dir, 'profile'),
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    const meta = session.inputMetadata[0];
    if (meta === undefined || !meta.isTensor) throw new Error('the model has no tensor input');
    const shape = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const name = session.inputNames[0]!;
    await session.run({
      [name]: new ort.Tensor('float32', new Float32Array(product(shape)), shape),
    });
    session.endProfiling();
    await session.release();
    const file = (await readdir(dir)).find((f) => f.endsWith('.json'));
    if (file === undefined) throw new Error('onnxruntime wrote no profile');
    const events = JSON.parse(await readFile(join(dir, file), 'utf8')) as ProfileEvent[];
    const ops: ModelOps = {
      input: { name, shape },
      macs: 0,
      otherElements: 0,
      macsByOp: {},
      nodes: 0,
    };
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.args?.op_name === undefined)
        continue;
      ops.nodes++;
      const op = e.args.op_name;
      const inputs = (e.args.input_type_shape ?? []).map(shapeOf);
      const out = shapeOf(e.args.output_type_shape?.[0]);
      let macs = 0;
      if (op === 'Conv' || op === 'FusedConv') {
        // Each output element: (input channels / groups) x kernel elements.
        const weight = inputs[1] ?? [];
        macs = product(out) * product(weight.slice(1));
      } else if (op === 'MatMul' || op === 'Gemm' || op === 'FusedMatMul') {
        const a = inputs[0] ?? [];
        macs = product(out) * (a.at(-1) ?? 0);
      }
      if (macs > 0) {
        ops.macs += macs;
        ops.macsByOp[op] = (ops.macsByOp[op] ?? 0) + macs;
      } else ops.otherElements += product(out);
    }
    return ops;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const model = process.argv[2];
  if (model === undefined) throw new Error('usage: model-ops.ts <model.onnx>');
  process.stdout.write(`${JSON.stringify(await countModelOps(model), null, 2)}\n`);
}

import onnxProto from 'onnx-proto';
import { floatTensor, int64Tensor, intAttr } from '@linesight/model';
import {
  WorkerOnnxModel,
  goldenInputs,
  readModelContract,
  withModelContract,
} from '@linesight/vision';
import onnx = onnxProto.onnx;

/** A variant of a model that flags every frame as a defect: its threshold is far below any score. */
export function alwaysDefect(bytes: Uint8Array): Uint8Array {
  return withModelContract(bytes, { ...readModelContract(bytes), threshold: -1e9 });
}

/**
 * Appends a side chain of `steps` size x size MatMuls to a model's graph. It
 * depends on the score (so it cannot be folded away) but adds 0 to it, so
 * scores, golden outputs and the contract stay as they were; only time grows.
 */
export function withSlowChain(bytes: Uint8Array, steps: number, size = 96): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) throw new Error('model has no graph');
  const scoreName = readModelContract(bytes).outputs.score;
  const fast = `${scoreName}__fast`;
  for (const node of graph.node ?? []) {
    node.output = (node.output ?? []).map((o) => (o === scoreName ? fast : o));
  }
  const initializer = graph.initializer ?? [];
  initializer.push(
    int64Tensor('slow__shape', [2], [size, size]),
    floatTensor('slow__scale', [], Float32Array.of(1 / size)),
    floatTensor('slow__zero', [], Float32Array.of(0)),
    floatTensor('slow__one', [], Float32Array.of(1)),
  );
  graph.initializer = initializer;
  const keepdims0 = intAttr('keepdims', 0);
  // ReduceMean without axes reduces every axis in every opset.
  const nodes: onnx.INodeProto[] = [
    { opType: 'ReduceMean', input: [fast], output: ['slow__seed'], attribute: [keepdims0] },
    // seed * 0 + 1: every chain value stays exactly 1 (no overflow), yet depends on the input.
    { opType: 'Mul', input: ['slow__seed', 'slow__zero'], output: ['slow__seed0'] },
    { opType: 'Add', input: ['slow__seed0', 'slow__one'], output: ['slow__seed1'] },
    { opType: 'Expand', input: ['slow__seed1', 'slow__shape'], output: ['slow__0'] },
  ];
  for (let i = 0; i < steps; i++) {
    nodes.push(
      { opType: 'MatMul', input: [`slow__${i}`, 'slow__0'], output: [`slow__mm_${i}`] },
      { opType: 'Mul', input: [`slow__mm_${i}`, 'slow__scale'], output: [`slow__${i + 1}`] },
    );
  }
  nodes.push(
    {
      opType: 'ReduceMean',
      input: [`slow__${steps}`],
      output: ['slow__mean'],
      attribute: [keepdims0],
    },
    { opType: 'Mul', input: ['slow__mean', 'slow__zero'], output: ['slow__nothing'] },
    { opType: 'Add', input: [fast, 'slow__nothing'], output: [scoreName] },
  );
  graph.node = [...(graph.node ?? []), ...nodes];
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Median time of one run of a model on its first golden input as an agent
 * runs it: single-threaded in a worker thread, message passing included.
 */
export async function medianRunMs(bytes: Uint8Array, runs = 40): Promise<number> {
  const model = await WorkerOnnxModel.load(bytes);
  try {
    const spec = model.contract.inputSpec;
    const input = goldenInputs(spec)[0] as Float32Array;
    for (let i = 0; i < 5; i++) await model.run(input.slice());
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await model.run(input.slice());
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)] as number;
  } finally {
    await model.close();
  }
}

/**
 * A variant of a model whose runs take about `factor` times as long (and at
 * least `minExtraMs` longer), with the same scores: the slow chain is
 * calibrated on this machine.
 */
export async function slowerModel(
  bytes: Uint8Array,
  factor: number,
  options: { minExtraMs?: number } = {},
): Promise<{ bytes: Uint8Array; baseMs: number; slowMs: number }> {
  const baseMs = await medianRunMs(bytes);
  const targetMs = Math.max(factor * baseMs, baseMs + (options.minExtraMs ?? 0));
  // Per-step cost depends on caches and the runtime's scheduling: refine a few times.
  let steps = 16;
  let slow = withSlowChain(bytes, steps);
  let slowMs = await medianRunMs(slow, 15);
  for (let round = 0; round < 4 && Math.abs(slowMs - targetMs) > 0.15 * targetMs; round++) {
    const perStepMs = Math.max(0.0005, (slowMs - baseMs) / steps);
    steps = Math.min(20_000, Math.max(1, Math.round((targetMs - baseMs) / perStepMs)));
    slow = withSlowChain(bytes, steps);
    slowMs = await medianRunMs(slow, 15);
  }
  return { bytes: slow, baseMs, slowMs };
}

// Entry of a HeadGradientPool worker: holds the shared training examples and
// computes the gradients of the batch parts it is sent.
import { parentPort } from 'node:worker_threads';
import { partGradients, type CellHead, type ExampleSource } from './cell-head.ts';
import type { PoolInit, PoolRequest, PoolReply } from './head-gradient-pool.ts';

let source: ExampleSource | undefined;
let cells = 0;
let scratch = new Float32Array(0);

parentPort?.on('message', (message: PoolInit | PoolRequest) => {
  if (message.type === 'init') {
    const z = new Float32Array(message.features);
    const length = message.exampleLength;
    source = {
      z: (i) => z.subarray(i * length, (i + 1) * length),
      defect: (i) => message.defect[i] === 1,
      weight: (i) => message.weights[i] as number,
    };
    cells = message.cells;
    scratch = new Float32Array(message.hidden * cells);
    return;
  }
  if (source === undefined) throw new Error('gradient worker used before init');
  const head: CellHead = {
    inputs: message.inputs,
    hidden: message.hidden,
    w1: message.w1,
    b1: message.b1,
    w2: message.w2,
    b2: message.b2,
  };
  const part = partGradients(head, source, message.indices, cells, scratch);
  const reply: PoolReply = { id: message.id, ...part };
  parentPort?.postMessage(
    reply,
    part.grads.map((g) => g.buffer as ArrayBuffer),
  );
});

// Worker-thread entry that owns ONNX Runtime sessions, so inference never
// blocks the main event loop. Plain JavaScript on purpose: worker threads do
// not inherit the TypeScript loader, and this file only relays to ORT.
// Protocol: see inference-worker.ts.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const sessions = new Map();
let nextSession = 1;

function describe(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Lowers this thread's CPU priority (Linux: a thread id is a valid
 * setpriority target, and threads it starts inherit the value). Returns the
 * nice value set, or null where that is not possible.
 */
function niceThisThread(nice) {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return null;
    setPriority(tid, nice);
    return nice;
  } catch {
    return null;
  }
}

async function handle(msg) {
  switch (msg.op) {
    case 'load': {
      // Before the session exists, so threads ORT starts for it inherit the priority.
      const nice = typeof msg.nice === 'number' ? niceThisThread(msg.nice) : null;
      const session = await ort.InferenceSession.create(new Uint8Array(msg.bytes), msg.options);
      const handle = nextSession++;
      sessions.set(handle, session);
      return {
        handle,
        nice,
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        inputMetadata: session.inputMetadata.map((m) => ({
          name: m.name,
          isTensor: m.isTensor,
          type: m.type,
          shape: m.shape,
        })),
      };
    }
    case 'run': {
      const session = sessions.get(msg.handle);
      if (session === undefined) throw new Error(`no session ${msg.handle}`);
      const feeds = { [msg.inputName]: new ort.Tensor('float32', msg.input, msg.dims) };
      const results = await session.run(feeds, msg.fetches);
      const outputs = {};
      const transfer = [];
      for (const name of msg.fetches) {
        const t = results[name];
        if (t === undefined) continue;
        const data = t.data instanceof Float32Array ? t.data.slice() : t.data;
        outputs[name] = { type: t.type, dims: t.dims, data };
        if (ArrayBuffer.isView(data)) transfer.push(data.buffer);
      }
      return { outputs, transfer };
    }
    case 'release': {
      const session = sessions.get(msg.handle);
      sessions.delete(msg.handle);
      if (session !== undefined) await session.release();
      return {};
    }
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

parentPort.on('message', (msg) => {
  handle(msg).then(
    (result) => {
      const { transfer = [], ...rest } = result;
      parentPort.postMessage({ id: msg.id, ok: true, ...rest }, transfer);
    },
    (err) => parentPort.postMessage({ id: msg.id, ok: false, error: describe(err) }),
  );
});

import { access, readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import type { ResizeKernel } from '@linesight/protocol';
import { runAgentBench } from '../bench/agent-bench.ts';
import { runOutputsBench, type PlcStandIn } from '../bench/outputs-bench.ts';
import { parsePositive, parsePositiveInt } from '../options.ts';
import { progressLine } from '../progress.ts';

const DEFAULT_MODEL = './data/demo/surface-defects-1.0.0.onnx';
const KERNELS: readonly ResizeKernel[] = [
  'nearest',
  'linear',
  'cubic',
  'mitchell',
  'lanczos2',
  'lanczos3',
];

/** `linesight bench agent`: the agent's frame path, stage by stage, end to end and across swaps. */
/**
 * Verdicts per rate of `--outputs` by default. At 600, the agent's latency
 * window (its last 1,024 writes) still held the 30 warm-up writes, and the p99
 * (the 7th worst) was often from the first seconds after connecting; over
 * 3,000 it is the line's steady state.
 */
const OUTPUTS_DEFAULT_FRAMES = 3000;

export function benchAgentCommand(): Command {
  return new Command('agent')
    .description(
      'benchmark the agent frame path: throughput with the pipeline full; latency of the isolated stages and end to end, timed in interleaved pairs paced at half the throughput; and hot swaps under a paced stream',
    )
    .option('--model <file.onnx>', `model to run (default ${DEFAULT_MODEL}, made by \`npm start\`)`)
    .option(
      '--frames <n>',
      `frames per measurement (default 300; with --outputs ${OUTPUTS_DEFAULT_FRAMES} per rate, so that p99 stands on the steady state rather than the first seconds)`,
      parsePositiveInt,
    )
    .option(
      '--rounds <n>',
      'rounds the latency frames are split into (the overhead ratio is their median)',
      parsePositiveInt,
      6,
    )
    .option('--width <px>', 'camera frame width', parsePositiveInt, 1280)
    .option('--height <px>', 'camera frame height', parsePositiveInt, 1024)
    .option(
      '--swap-every <n>',
      'also run a paced stream swapping models every N frames (0 = skip)',
      (v) => Number(v),
      0,
    )
    .option(
      '--swap-model <file.onnx>',
      'the version the swap run alternates with (default: --model republished as another version: same graph, other bytes)',
    )
    .option('--fps <n>', 'frame rate of the paced stream', parsePositive, 30)
    .option(
      '--outputs',
      'instead: verdict-to-output latency of the local outputs (plant MQTT, Modbus TCP, SSE) with frames paced at --rates',
    )
    .option(
      '--rates <list>',
      'frame rates of --outputs, comma-separated',
      (v) => v.split(',').map((x) => parsePositive(x.trim())),
      [30, 100],
    )
    .option(
      '--verdicts-only',
      'with --outputs: make verdicts at exactly each rate without scoring frames (times the output path alone)',
    )
    .option(
      '--plc <stand-in>',
      "with --outputs: the Modbus TCP server standing in for the PLC: lean (answers each request at once) or modbus-serial (the library's server, which defers each answer by at least 1 ms)",
      (v) => {
        if (v !== 'lean' && v !== 'modbus-serial')
          throw new InvalidArgumentError('lean or modbus-serial');
        return v as PlcStandIn;
      },
      'lean' as PlcStandIn,
    )
    .option(
      '--frame-channels <n>',
      'channels of the encoded camera frames: 1 (grey camera) or 3 (grey content in a colour JPEG)',
      (v) => {
        if (v !== '1' && v !== '3') throw new InvalidArgumentError('1 or 3');
        return Number(v) as 1 | 3;
      },
      1,
    )
    .option(
      '--peer <name>',
      'also time a peer on the same frames, interleaved with ours: opencv (scripts/opencv-peer.py with python3-opencv; skipped with a message when missing)',
      (v) => {
        if (v !== 'opencv') throw new InvalidArgumentError('the only peer is opencv');
        return v;
      },
    )
    .option(
      '--shadow',
      'also run a paced stream at --fps in alternating blocks without and with a shadow model, and report shadowLiveP50Ratio',
    )
    .option('--shadow-model <file.onnx>', 'the shadow model of --shadow (default: the live model)')
    .option(
      '--resize-kernel <kernel>',
      "preprocess with this sharp resize kernel instead of the model's input spec (nearest, linear, cubic, mitchell, lanczos2, lanczos3), to measure it",
      (v) => {
        if (!KERNELS.includes(v as ResizeKernel))
          throw new InvalidArgumentError(`one of ${KERNELS.join(', ')}`);
        return v as ResizeKernel;
      },
    )
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (opts: {
        model?: string;
        frames?: number;
        rounds: number;
        width: number;
        height: number;
        swapEvery: number;
        swapModel?: string;
        fps: number;
        outputs?: boolean;
        rates: number[];
        verdictsOnly?: boolean;
        plc: PlcStandIn;
        frameChannels: 1 | 3;
        peer?: 'opencv';
        shadow?: boolean;
        shadowModel?: string;
        resizeKernel?: ResizeKernel;
        json?: boolean;
      }) => {
        const path = opts.model ?? DEFAULT_MODEL;
        try {
          await access(path);
        } catch {
          throw new Error(
            `no model at ${path}: pass --model FILE.onnx (train one with \`linesight model train\`, or run \`npm start\` once to make the demo model)`,
          );
        }
        if (opts.outputs) {
          const outputs = await runOutputsBench({
            onnx: await readFile(path),
            frames: opts.frames ?? OUTPUTS_DEFAULT_FRAMES,
            rates: opts.rates,
            width: opts.width,
            height: opts.height,
            source: opts.verdictsOnly ? 'verdicts' : 'pipeline',
            plc: opts.plc,
            progress: (text) => progressLine(text),
          });
          progressLine('');
          console.log(opts.json ? JSON.stringify(outputs) : JSON.stringify(outputs, null, 2));
          return;
        }
        const result = await runAgentBench({
          onnx: await readFile(path),
          frames: opts.frames ?? 300,
          rounds: opts.rounds,
          width: opts.width,
          height: opts.height,
          swapEvery: Number.isInteger(opts.swapEvery) && opts.swapEvery > 0 ? opts.swapEvery : 0,
          fps: opts.fps,
          frameChannels: opts.frameChannels,
          ...(opts.peer !== undefined ? { peer: opts.peer } : {}),
          ...(opts.shadow === true ? { shadow: true } : {}),
          ...(opts.resizeKernel !== undefined ? { resizeKernel: opts.resizeKernel } : {}),
          ...(opts.swapModel !== undefined ? { swapOnnx: await readFile(opts.swapModel) } : {}),
          ...(opts.shadowModel !== undefined
            ? { shadowOnnx: await readFile(opts.shadowModel) }
            : {}),
          progress: (text) => progressLine(text),
        });
        progressLine('');
        if (result.peer !== undefined && 'skipped' in result.peer)
          process.stderr.write(`OpenCV peer skipped: ${result.peer.skipped}\n`);
        console.log(opts.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
      },
    );
}

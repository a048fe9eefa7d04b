import { createWriteStream } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { Command, InvalidArgumentError } from 'commander';
import { describeError } from '@linesight/protocol';
import { WorkerOnnxModel, separateMasks } from '@linesight/vision';
import { parsePositiveInt } from '../options.ts';
import { progressLine } from '../progress.ts';

/** One output line: a score, or why the file was skipped. */
type PredictLine =
  | { path: string; score: number; defect: boolean; threshold: number; latencyMs: number }
  | { path: string; error: string };

interface PredictOptions {
  model: string;
  input: string;
  out?: string;
  threads: number;
  ext: string[];
}

function parseExtensions(value: string): string[] {
  const list = value
    .split(',')
    .map((e) => e.trim().replace(/^\./, '').toLowerCase())
    .filter((e) => e !== '');
  if (list.length === 0) throw new InvalidArgumentError('expected extensions, e.g. jpg,png');
  return list;
}

/** `linesight predict`: batch-scores a folder of images with a local ONNX model. */
export function predictCommand(): Command {
  return new Command('predict')
    .description(
      'score every image in a folder (recursively, in sorted order) with an ONNX model; one JSON line per image',
    )
    .requiredOption(
      '--model <file.onnx>',
      'model to score with (its contract sets preprocessing and threshold)',
    )
    .requiredOption('--input <dir>', 'folder of images, searched recursively')
    .option('--out <file.jsonl>', 'write the JSON lines here instead of stdout')
    .option(
      '--threads <n>',
      'inference worker threads, one ONNX session each',
      parsePositiveInt,
      Math.min(availableParallelism(), 8),
    )
    .option(
      '--ext <list>',
      'file extensions to score, comma-separated (a .png beside a .jpg of the same stem is a mask and is skipped)',
      parseExtensions,
      ['jpg', 'jpeg', 'png'],
    )
    .addHelpText(
      'after',
      '\nEach line is {"path","score","defect","threshold","latencyMs"}, or {"path","error"} for a file that cannot be read or decoded (skipped, not fatal).\nProgress and a summary go to stderr.',
    )
    .action(async (opts: PredictOptions) => {
      await runPredict(opts);
    });
}

export async function listImages(root: string, extensions: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const dot = entry.name.lastIndexOf('.');
        if (dot > 0 && extensions.includes(entry.name.slice(dot + 1).toLowerCase()))
          found.push(path);
      }
    }
  };
  await walk(root);
  // Masks beside their images (the dataset layout) are not frames: the dataset reader's rule.
  const frames = separateMasks(found).images;
  // Sorted by path relative to the root, byte-wise, so runs are reproducible.
  return frames.sort((a, b) => {
    const x = relative(root, a);
    const y = relative(root, b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

async function runPredict(opts: PredictOptions): Promise<void> {
  const files = await listImages(opts.input, opts.ext);
  if (files.length === 0) {
    throw new Error(`no images (${opts.ext.join(', ')}) found under ${opts.input}`);
  }
  const onnx = await readFile(opts.model);
  // Inference workers do not keep the process alive on their own; the progress ticker does.
  let started = performance.now();
  let done = 0;
  const ticker = setInterval(() => {
    if (done === 0) return;
    const rate = done / ((performance.now() - started) / 1000);
    progressLine(
      `scored ${done}/${files.length}  ${rate.toFixed(1)} images/s  ETA ${formatSeconds((files.length - done) / rate)}`,
      2000,
    );
  }, 250);
  try {
    await scoreAll(opts, files, onnx, {
      started: () => {
        started = performance.now();
      },
      scored: () => {
        done++;
      },
    });
  } finally {
    clearInterval(ticker);
  }
}

async function scoreAll(
  opts: PredictOptions,
  files: readonly string[],
  onnx: Uint8Array,
  on: { started: () => void; scored: () => void },
): Promise<void> {
  const sessions = await Promise.all(
    Array.from({ length: opts.threads }, () => WorkerOnnxModel.load(onnx)),
  );
  const out: Writable = opts.out === undefined ? process.stdout : createWriteStream(opts.out);
  const started = performance.now();
  on.started();
  const results: (PredictLine | undefined)[] = new Array<PredictLine | undefined>(files.length);
  const latencies: number[] = [];
  let written = 0;
  let defects = 0;
  let errors = 0;
  let next = 0;

  const flush = async () => {
    let chunk = '';
    while (written < files.length && results[written] !== undefined) {
      chunk += `${JSON.stringify(results[written])}\n`;
      results[written] = undefined;
      written++;
    }
    if (chunk !== '' && !out.write(chunk)) await once(out, 'drain');
  };

  // Two lanes per session: one image is decoded while the other is in inference.
  const lane = async (session: WorkerOnnxModel) => {
    for (let i = next++; i < files.length; i = next++) {
      const path = files[i] as string;
      const t0 = performance.now();
      let line: PredictLine;
      try {
        const scored = await session.scoreImage(await readFile(path));
        const latencyMs = performance.now() - t0;
        const threshold = session.contract.threshold;
        line = {
          path,
          score: scored.score,
          defect: scored.score >= threshold,
          threshold,
          latencyMs: Math.round(latencyMs * 1000) / 1000,
        };
        latencies.push(latencyMs);
        if (line.defect) defects++;
      } catch (err) {
        line = { path, error: describeError(err) };
        errors++;
        progressLine('');
        console.error(`skipped ${path}: ${line.error}`);
      }
      results[i] = line;
      on.scored();
      await flush();
    }
  };

  try {
    await Promise.all(sessions.flatMap((s) => [lane(s), lane(s)]));
    await flush();
  } finally {
    await Promise.allSettled(sessions.map((s) => s.close()));
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
    }
  }
  progressLine('');
  const elapsedSec = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.error(
    `scored ${files.length - errors} of ${files.length} images in ${elapsedSec.toFixed(1)} s ` +
      `(${(files.length / elapsedSec).toFixed(1)} images/s, ${opts.threads} threads): ` +
      `${defects} defect, ${files.length - errors - defects} good, ${errors} skipped; ` +
      `latency p50 ${percentile(latencies, 0.5).toFixed(1)} ms p99 ${percentile(latencies, 0.99).toFixed(1)} ms; ` +
      `threshold ${sessions[0]?.contract.threshold}` +
      (opts.out === undefined ? '' : ` -> ${opts.out}`),
  );
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

function formatSeconds(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  if (sec < 60) return `${Math.ceil(sec)}s`;
  return `${Math.floor(sec / 60)}m${String(Math.ceil(sec % 60)).padStart(2, '0')}s`;
}

import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { Command, InvalidArgumentError } from 'commander';
import { renderSurface } from '@linesight/firmware-sim';
import sharp from 'sharp';
import { adminTokenFor } from '../admin-token.ts';
import { parsePositive, parsePositiveInt } from '../options.ts';

const MAX_CONCURRENCY = 256;
const MAX_SECONDS = 600;
const REQUEST_TIMEOUT_MS = 30_000;

/** What `linesight bench predict --json` prints. */
export interface PredictBenchResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  requests: number;
  concurrency: number;
  seconds: number;
  meanMs: number;
  maxMs: number;
  /** Median of the server's own latencyMs, preprocessMs and inferenceMs (successful requests). */
  serverLatencyP50Ms: number;
  serverPreprocessP50Ms: number;
  serverInferenceP50Ms: number;
  /** CPU time this benchmarking process spent per request (it shares the machine with the cloud). */
  clientCpuMsPerReq: number;
  /** The first request, not counted above: it may load the model. */
  warmupMs: number;
  model: { name: string; version: string };
  imageBytes: number;
  errorsByStatus: Record<string, number>;
}

interface BenchOptions {
  cloud: string;
  token?: string;
  dataDir: string;
  concurrency: number;
  seconds: number;
  model?: string;
  image?: string;
  maxRequests: number;
  json?: boolean;
}

function bounded(max: number, parse: (value: string) => number) {
  return (value: string): number => {
    const n = parse(value);
    if (n > max) throw new InvalidArgumentError(`at most ${max}`);
    return n;
  };
}

/** `linesight bench predict`: load-tests POST /v1/predict on a running cloud on this machine. */
export function benchPredictCommand(): Command {
  return new Command('predict')
    .description(
      'drive POST /v1/predict on a running cloud with concurrent keep-alive requests and report throughput and latency',
    )
    .option('--cloud <url>', 'cloud HTTP URL (loopback addresses only)', 'http://127.0.0.1:8080')
    .option(
      '--token <token>',
      'admin token (default LINESIGHT_ADMIN_TOKEN or <data-dir>/admin-token)',
    )
    .option('--data-dir <dir>', "the cloud's data folder, to find its admin token", './data')
    .option(
      '--concurrency <n>',
      `requests in flight (1-${MAX_CONCURRENCY})`,
      bounded(MAX_CONCURRENCY, parsePositiveInt),
      4,
    )
    .option(
      '--seconds <s>',
      `how long to send requests (at most ${MAX_SECONDS})`,
      bounded(MAX_SECONDS, parsePositive),
      10,
    )
    .option('--model <selector>', 'name@version or name (default: the only registered model)')
    .option(
      '--image <file>',
      'JPEG or PNG to send (default: a generated 1280x1024 grey JPEG, a camera-sized frame)',
    )
    .option('--max-requests <n>', 'stop after this many requests', parsePositiveInt, 1_000_000)
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: BenchOptions) => {
      const result = await benchPredict(opts);
      if (opts.json) {
        console.log(JSON.stringify(result));
        return;
      }
      console.log(
        `${result.model.name}@${result.model.version}, ${result.imageBytes}-byte image, ` +
          `concurrency ${result.concurrency}, ${result.seconds.toFixed(1)} s`,
      );
      console.log(
        `requests=${result.requests} errors=${result.errors} reqPerSec=${result.reqPerSec.toFixed(1)} ` +
          `p50=${result.p50Ms.toFixed(2)} ms p99=${result.p99Ms.toFixed(2)} ms max=${result.maxMs.toFixed(2)} ms`,
      );
      console.log(
        `server p50: latency ${result.serverLatencyP50Ms.toFixed(2)} ms = preprocess ` +
          `${result.serverPreprocessP50Ms.toFixed(2)} ms + inference ${result.serverInferenceP50Ms.toFixed(2)} ms; ` +
          `first request ${result.warmupMs.toFixed(1)} ms; bench CPU ${result.clientCpuMsPerReq.toFixed(2)} ms/request`,
      );
      if (result.errors > 0)
        console.log(`errors by status: ${JSON.stringify(result.errorsByStatus)}`);
    });
}

function loopbackUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--cloud ${JSON.stringify(value)} is not a URL`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (url.protocol !== 'http:' || !loopback) {
    throw new Error(
      `--cloud must be an http:// URL on this machine (127.0.0.1, localhost or ::1); got ${value}`,
    );
  }
  return url;
}

interface Answer {
  status: number;
  body: string;
}

/** Runs the benchmark; throws when the first request fails (wrong token, no model...). */
export async function benchPredict(opts: BenchOptions): Promise<PredictBenchResult> {
  const base = loopbackUrl(opts.cloud);
  const token = await adminTokenFor(opts);
  const image = opts.image === undefined ? await testImage() : await readFile(opts.image);
  const contentType = image[0] === 0x89 ? 'image/png' : 'image/jpeg';
  const url = new URL('/v1/predict', base);
  if (opts.model !== undefined) url.searchParams.set('model', opts.model);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });

  const send = (): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          timeout: REQUEST_TIMEOUT_MS,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': contentType,
            'content-length': image.byteLength,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(image);
    });

  try {
    const w0 = performance.now();
    let first: Answer;
    try {
      first = await send();
    } catch (cause) {
      throw new Error(`cannot reach ${url.origin}: ${(cause as Error).message}`, { cause });
    }
    const warmupMs = performance.now() - w0;
    if (first.status !== 200) {
      throw new Error(`POST ${url.pathname}${url.search} answered ${first.status}: ${first.body}`);
    }
    const model = (JSON.parse(first.body) as { model: { name: string; version: string } }).model;

    const latencies: number[] = [];
    const server = {
      latency: [] as number[],
      preprocess: [] as number[],
      inference: [] as number[],
    };
    const errorsByStatus: Record<string, number> = {};
    let issued = 0;
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const deadline = started + opts.seconds * 1000;
    const worker = async () => {
      while (performance.now() < deadline && issued < opts.maxRequests) {
        issued++;
        const t0 = performance.now();
        try {
          const answer = await send();
          if (answer.status === 200) {
            latencies.push(performance.now() - t0);
            const body = JSON.parse(answer.body) as {
              latencyMs: number;
              preprocessMs: number;
              inferenceMs: number;
            };
            server.latency.push(body.latencyMs);
            server.preprocess.push(body.preprocessMs);
            server.inference.push(body.inferenceMs);
          } else {
            errorsByStatus[answer.status] = (errorsByStatus[answer.status] ?? 0) + 1;
          }
        } catch {
          errorsByStatus.network = (errorsByStatus.network ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    latencies.sort((a, b) => a - b);
    const errors = Object.values(errorsByStatus).reduce((a, b) => a + b, 0);
    return {
      reqPerSec: latencies.length / seconds,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      errors,
      requests: issued,
      concurrency: opts.concurrency,
      seconds,
      meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
      maxMs: latencies[latencies.length - 1] ?? Number.NaN,
      serverLatencyP50Ms: median(server.latency),
      serverPreprocessP50Ms: median(server.preprocess),
      serverInferenceP50Ms: median(server.inference),
      clientCpuMsPerReq: (cpu.user + cpu.system) / 1000 / Math.max(1, issued),
      warmupMs,
      model,
      imageBytes: image.byteLength,
      errorsByStatus,
    };
  } finally {
    agent.destroy();
  }
}

/** A camera-sized frame, what clients send: a synthetic 1280x1024 surface as a grey JPEG (quality 90). */
async function testImage(): Promise<Buffer> {
  const width = 1280;
  const height = 1024;
  const surface = renderSurface({ seed: 1, width, height, defect: 'none' });
  // 'b-w': a one-component JPEG, as a grey camera writes it (sharp would otherwise widen it to YCbCr).
  return sharp(surface.pixels, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .jpeg({ quality: 90 })
    .toBuffer();
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

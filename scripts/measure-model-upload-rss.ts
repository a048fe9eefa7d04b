// Measures the cloud's memory while it receives a large model upload.
//
//   npx tsx scripts/measure-model-upload-rss.ts [--mb 200] [--mode bogus|padded] [--root DIR]
//
// Starts `linesight cloud` (from --root, default this checkout) as a child process on free
// ports, streams a multipart upload of --mb MiB to POST /v1/models from this process
// (generated on the fly, never held in memory here), and prints the cloud's resident memory
// before and its peak (VmHWM from /proc) after, as JSON. Modes: `bogus` sends random-looking
// bytes (refused as not an ONNX model); `padded` sends a valid small model followed by an
// unknown protobuf field of --mb MiB (a valid model the cloud must load to validate).
// Linux only (/proc). A measurement, not a test: nothing here asserts a number.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { meanScoreOnnx } from '@linesight/testkit/onnx';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '200' },
    mode: { type: 'string', default: 'bogus' },
    root: { type: 'string', default: resolve(import.meta.dirname, '..') },
  },
});
const payloadBytes = Number(values.mb) * 1024 * 1024;
const mode = values.mode === 'padded' ? 'padded' : 'bogus';
const root = resolve(values.root);

async function memory(pid: number): Promise<{ rssMb: number; peakRssMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakRssMb: Math.round(kb('VmHWM') / 1024) };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function body(boundary: string): { stream: ReadableStream<Uint8Array>; totalBytes: number } {
  const head = Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="name"\r\n\r\nbig\r\n` +
      `--${boundary}\r\ncontent-disposition: form-data; name="version"\r\n\r\n1.0.0\r\n` +
      `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.onnx"\r\n` +
      'content-type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const prefix =
    mode === 'padded'
      ? Buffer.concat([
          meanScoreOnnx({ side: 16, threshold: 0.5 }),
          // Field 100 of ModelProto, length-delimited: unknown to ONNX, skipped by parsers.
          Buffer.from([...varint((100 << 3) | 2), ...varint(payloadBytes)]),
        ])
      : Buffer.alloc(0);
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  let sent = 0;
  let stage = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (stage === 0) {
        controller.enqueue(Buffer.concat([head, prefix]));
        stage = 1;
      } else if (sent < payloadBytes) {
        const n = Math.min(chunk.length, payloadBytes - sent);
        controller.enqueue(chunk.subarray(0, n));
        sent += n;
      } else {
        controller.enqueue(tail);
        controller.close();
      }
    },
  });
  return { stream, totalBytes: head.length + prefix.length + payloadBytes + tail.length };
}

const dataDir = await mkdtemp(join(tmpdir(), 'linesight-upload-rss-'));
const adminToken = 'measure-upload-rss-token-0123456789';
const cloud = spawn(
  process.execPath,
  [
    join(root, 'packages/cli/bin/linesight.js'),
    'cloud',
    '--http-port',
    '0',
    '--mqtt-port',
    '0',
    '--data-dir',
    dataDir,
  ],
  {
    cwd: root,
    env: { ...process.env, LINESIGHT_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
try {
  const httpUrl = await new Promise<string>((resolveUrl, reject) => {
    const lines = createInterface({ input: cloud.stdout });
    lines.on('line', (line) => {
      const url = (JSON.parse(line) as { httpUrl?: string }).httpUrl;
      if (url !== undefined) resolveUrl(url);
    });
    cloud.once('exit', (code) => reject(new Error(`cloud exited with ${code}`)));
  });
  const pid = cloud.pid as number;
  const before = await memory(pid);
  const boundary = 'measure-boundary-7f3a';
  const { stream, totalBytes } = body(boundary);
  const started = performance.now();
  const res = await fetch(`${httpUrl}/v1/models`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${adminToken}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
    },
    body: stream,
    duplex: 'half',
  } as RequestInit);
  const answer = (await res.json()) as { error?: string; message?: string };
  const seconds = (performance.now() - started) / 1000;
  const after = await memory(pid);
  process.stdout.write(
    `${JSON.stringify({
      root,
      mode,
      uploadMb: Math.round(totalBytes / 1024 / 1024),
      status: res.status,
      answer: answer.error ?? 'registered',
      seconds: Math.round(seconds * 10) / 10,
      rssBeforeMb: before.rssMb,
      peakRssMb: after.peakRssMb,
      peakGrowthMb: after.peakRssMb - before.rssMb,
      rssAfterMb: after.rssMb,
    })}\n`,
  );
} finally {
  cloud.kill('SIGTERM');
  await new Promise((r) => cloud.once('exit', r));
  await rm(dataDir, { recursive: true, force: true });
}

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import aedesModule from 'aedes';
import Modbus from 'modbus-serial';
import mqtt from 'mqtt';
import pino from 'pino';
import sharp from 'sharp';
import { LocalOutputs, checkOutputConfigs, type OutputStats } from '@linesight/agent';
import { renderSurface } from '@linesight/firmware-sim';
import type { FrameResult, Manifest } from '@linesight/protocol';
import { readModelContract } from '@linesight/vision';
import { agentPipeline, workerSlot } from './agent-bench.ts';
import { LEAN_PLC_SCRIPT } from './lean-plc-script.ts';
import { percentiles } from './stats.ts';

/** Options of the outputs benchmark. */
export interface OutputsBenchOptions {
  onnx: Uint8Array;
  /** Frames per rate. */
  frames: number;
  /** Frame rates to run at, frames/s. */
  rates: number[];
  width: number;
  height: number;
  /**
   * 'pipeline': frames scored by the model in the agent's pipeline (CPU load
   * included; a busy machine may not sustain the rate). 'verdicts': verdicts
   * made at exactly the rate without scoring, to time the output path alone.
   */
  source: 'pipeline' | 'verdicts';
  /**
   * The PLC stand-in: 'lean', a Modbus TCP server that answers each request
   * at once (`lean-plc-script.ts`); 'modbus-serial', the library's own
   * server, which defers every answer by a setTimeout(0) (at least 1 ms).
   */
  plc: PlcStandIn;
  progress: (text: string) => void;
}

/** The Modbus TCP server the outputs benchmark writes to. */
export type PlcStandIn = 'lean' | 'modbus-serial';

/** Latency of one output kind at one frame rate (ms). */
export interface OutputRateResult {
  /** Verdict to written, as the agent measures it and reports in telemetry. */
  p50Ms: number;
  p99Ms: number;
  /** Verdict to received by the other side (subscriber, PLC, SSE client), measured here. */
  deliveredP50Ms: number;
  deliveredP99Ms: number;
  /**
   * Delivered latency of good verdicts and of the others (defect, unknown)
   * apart: on Modbus a good verdict is one request and the others two (coils,
   * then registers).
   */
  deliveredByVerdict: Record<'good' | 'defect', { p50Ms: number; p99Ms: number; count: number }>;
  written: number;
  delivered: number;
  dropped: number;
  stale: number;
  failures: number;
}

/** Latency of one output kind: the worst rate on top, each rate beside. */
export type OutputKindResult = OutputRateResult & { byFps: Record<string, OutputRateResult> };

/** What the outputs benchmark reports. */
export interface OutputsBenchResult {
  frameSize: string;
  framesPerRate: number;
  rates: number[];
  source: 'pipeline' | 'verdicts';
  /** The plant broker the MQTT output published to. */
  broker: 'mosquitto' | 'aedes-in-process';
  mqttQos: 1;
  /** The Modbus TCP server standing in for the PLC. */
  plcStandIn: PlcStandIn;
  outputs: { mqtt: OutputKindResult; modbus: OutputKindResult; sse: OutputKindResult };
  /**
   * The PLC stand-in's own answer time to one request (FC16 of three
   * registers, what a good verdict writes; a defect is two requests in a
   * row), timed with a client of its own at 100/s after the rates: the floor
   * under outputs.modbus.
   */
  plc: { requestP50Ms: number; requestP99Ms: number; requests: number };
  /** Verdicts per second the pipeline produced at each rate, and frames it dropped. */
  pipeline: Record<string, { verdictsPerSec: number; droppedOverload: number; unknown: number }>;
  method: string;
}

const MAP = {
  defectCoil: 0,
  unknownCoil: 1,
  scoreRegister: 100,
  verdictRegister: 101,
  sequenceRegister: 102,
};

/**
 * Verdict-to-output latency per output kind: the agent's real frame
 * pipeline scores paced frames and hands each verdict to its local outputs
 * (plant MQTT at QoS 1 to mosquitto when installed, Modbus TCP to a
 * modbus-serial server, SSE to a connected client), as a device does.
 */
export async function runOutputsBench(o: OutputsBenchOptions): Promise<OutputsBenchResult> {
  o.progress('rendering frames');
  const images = await renderFrames(o.width, o.height);
  const contract = readModelContract(o.onnx);
  const manifest: Manifest = {
    schema: 'linesight.manifest/v1',
    name: 'bench',
    version: '1.0.0',
    sha256: '0'.repeat(64),
    sizeBytes: 1,
    issuedAt: new Date(0).toISOString(),
    keyId: '0'.repeat(16),
    inputSpec: contract.inputSpec,
    outputs: contract.outputs,
    threshold: contract.threshold,
  };
  const broker = await startBroker();
  const plc = await startPlc(o.plc);
  const kinds = ['mqtt', 'modbus', 'sse'] as const;
  const perRate: Record<string, Record<(typeof kinds)[number], OutputRateResult>> = {};
  const pipelineStats: OutputsBenchResult['pipeline'] = {};
  let plcRequests: OutputsBenchResult['plc'];
  try {
    for (const fps of o.rates) {
      const slot = await workerSlot(o.onnx, manifest);
      const verdictAt = new Map<number, number>();
      const defects = new Set<number>();
      const delivered = {
        mqtt: new Map<number, number>(),
        modbus: new Map<number, number>(),
        sse: new Map<number, number>(),
      };
      // The PLC's clock is wall-clock ms; this process's performance.now() is relative to timeOrigin.
      plc.onCommit = (seq, at) => delivered.modbus.set(seq, at - performance.timeOrigin);
      const { outputs, problems } = checkOutputConfigs([
        { kind: 'mqtt', url: broker.url, qos: 1, topic: 'bench/{deviceId}/verdicts' },
        { kind: 'modbus', host: '127.0.0.1', port: plc.port, map: MAP, pulseMs: 20 },
      ]);
      if (problems.length > 0) throw new Error(problems.join('; '));
      const local = new LocalOutputs({
        deviceId: 'bench',
        outputs,
        http: { port: 0, host: '127.0.0.1', recentVerdicts: 1000, sseMaxBufferedBytes: 1 << 20 },
        status: () => ({
          deviceId: 'bench',
          phase: 'running',
          model: null,
          cloudConnected: false,
          cloudReconnects: 0,
          swaps: 0,
          frames: { captured: 0, scored: 0, unknown: 0, droppedOverload: 0, defects: 0 },
          errors: 0,
          watchdogTrips: 0,
          circuitOpenFrames: 0,
        }),
        logger: pino({ level: 'warn' }),
      });
      await local.start();
      const subscriber = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      subscriber.on('message', (_t, payload) => {
        const seq = (JSON.parse(payload.toString('utf8')) as FrameResult).seq;
        delivered.mqtt.set(seq, performance.now());
      });
      await subscriber.subscribeAsync('bench/+/verdicts', { qos: 1 });
      const sse = sseClient(`${local.httpUrl}/verdicts/stream`, (seq) =>
        delivered.sse.set(seq, performance.now()),
      );
      const onVerdict = (result: FrameResult) => {
        verdictAt.set(result.seq, performance.now());
        if (result.verdict !== 'good') defects.add(result.seq);
        local.publish(result);
      };
      const pipeline = agentPipeline(slot, onVerdict);
      // Warm-up: connections opened, JIT warm; not measured.
      const warm = Math.min(30, o.frames);
      const total = warm + o.frames;
      const periodMs = 1000 / fps;
      const start = performance.now();
      let measuredFrom = 0;
      for (let seq = 0; seq < total; seq++) {
        const due = start + seq * periodMs;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (seq === warm) measuredFrom = performance.now();
        if (seq % 30 === 0) o.progress(`outputs at ${fps} fps ${seq}/${total}`);
        if (o.source === 'verdicts') onVerdict(syntheticVerdict(seq));
        else pipeline.frame({ seq, capturedAt: new Date(), image: images[seq % images.length]! });
      }
      await pipeline.drain();
      const seconds = (performance.now() - measuredFrom) / 1000;
      const expected = [...verdictAt.keys()].filter((s) => s >= warm);
      await waitFor('every verdict delivered', () =>
        kinds.every((k) => expected.every((s) => delivered[k].has(s))) ? true : undefined,
      ).catch(() => undefined);
      const stats = new Map(local.fanOut.stats().map((s) => [s.kind, s]));
      perRate[String(fps)] = Object.fromEntries(
        kinds.map((k) => [
          k,
          rateResult(stats.get(k), expected, verdictAt, delivered[k], defects, warm),
        ]),
      ) as Record<(typeof kinds)[number], OutputRateResult>;
      pipelineStats[String(fps)] = {
        verdictsPerSec: Math.round((expected.length / seconds) * 10) / 10,
        droppedOverload: pipeline.counters.droppedOverload,
        unknown: pipeline.counters.unknown,
      };
      sse.close();
      await subscriber.endAsync(true);
      await local.close();
      await slot.close();
    }
    o.progress('PLC stand-in request round trips');
    plcRequests = await plcRoundTrips(plc.port, 300, 100);
  } finally {
    await plc.close();
    await broker.stop();
  }
  const outputs = Object.fromEntries(
    kinds.map((k) => {
      const byFps = Object.fromEntries(
        o.rates.map((fps) => [String(fps), perRate[String(fps)]![k]]),
      );
      const worst = Object.values(byFps).reduce((a, b) => (b.p99Ms > a.p99Ms ? b : a));
      return [k, { ...worst, byFps }];
    }),
  ) as OutputsBenchResult['outputs'];
  return {
    frameSize: `${o.width}x${o.height} JPEG`,
    framesPerRate: o.frames,
    rates: o.rates,
    source: o.source,
    broker: broker.kind,
    mqttQos: 1,
    plcStandIn: o.plc,
    outputs,
    plc: plcRequests,
    pipeline: pipelineStats,
    method: `${o.source === 'pipeline' ? 'frames paced at each rate through the agent pipeline (worker-thread inference)' : 'verdicts made at exactly each rate, without scoring'}; p50Ms/p99Ms: verdict to written as the agent measures it (MQTT: PUBACK at QoS 1; Modbus: the PLC answered the last write; SSE: written to the client socket); delivered*: verdict to received by the subscriber, the PLC (sequence register) and the SSE client in this process; top-level figures are the rate with the worst p99; the first 30 frames of each rate are warm-up; plc: the PLC stand-in's answer time to one request (a good verdict is one request, a defect two, each answered before the next is sent); plcStandIn lean: a Modbus TCP server answering at once, modbus-serial: the library's server, which defers each answer by setTimeout(0)`,
  };
}

/** A verdict as the pipeline makes one: every fourth a defect. */
function syntheticVerdict(seq: number): FrameResult {
  const defect = seq % 4 === 3;
  return {
    schema: 'linesight.result/v1',
    deviceId: 'bench',
    seq,
    capturedAt: new Date().toISOString(),
    verdict: defect ? 'defect' : 'good',
    score: defect ? 3.2 : 0.4,
    threshold: 2,
    model: { name: 'bench', version: '1.0.0', sha256: '0'.repeat(64) },
    latencyMs: { capture: 0, queue: 0, preprocess: 0, inference: 0, total: 0 },
  };
}

/**
 * Runner latency covers the last 1024 writes of the run (warm-up included
 * when frames are few); delivered latency covers the measured frames only.
 */
function rateResult(
  stats: OutputStats | undefined,
  expected: number[],
  verdictAt: Map<number, number>,
  delivered: Map<number, number>,
  defects: Set<number>,
  warm: number,
): OutputRateResult {
  const seqs = expected.filter((s) => s >= warm && delivered.has(s));
  const ms = (s: number) => delivered.get(s)! - verdictAt.get(s)!;
  const deliveredMs = seqs.map(ms);
  const d = percentiles(deliveredMs);
  const split = (keep: (s: number) => boolean) => {
    const samples = seqs.filter(keep).map(ms);
    const p = percentiles(samples);
    return { p50Ms: p.median, p99Ms: p.p99, count: samples.length };
  };
  return {
    p50Ms: stats?.latencyMs.p50 ?? 0,
    p99Ms: stats?.latencyMs.p99 ?? 0,
    deliveredP50Ms: d.median,
    deliveredP99Ms: d.p99,
    deliveredByVerdict: {
      good: split((s) => !defects.has(s)),
      defect: split((s) => defects.has(s)),
    },
    written: stats?.written ?? 0,
    delivered: deliveredMs.length,
    dropped: stats?.dropped ?? 0,
    stale: stats?.stale ?? 0,
    failures: stats?.failures ?? 0,
  };
}

async function renderFrames(width: number, height: number): Promise<Buffer[]> {
  const images: Buffer[] = [];
  for (let i = 0; i < 8; i++) {
    const surface = renderSurface({
      seed: 200 + i,
      width,
      height,
      defect: i % 4 === 3 ? 'scratch' : 'none',
    });
    images.push(
      // One-component JPEGs, as a grey camera sends: without 'b-w' sharp widens to YCbCr.
      await sharp(surface.pixels, { raw: { width, height, channels: 1 } })
        .toColourspace('b-w')
        .jpeg({ quality: 90 })
        .toBuffer(),
    );
  }
  return images;
}

async function waitFor<T>(
  what: string,
  check: () => T | undefined,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sseClient(url: string, onSeq: (seq: number) => void): { close: () => void } {
  const req = request(url, (res) => {
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const id = /^id: (\d+)$/m.exec(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (id) onSeq(Number(id[1]));
      }
    });
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  req.end();
  return { close: () => req.destroy() };
}

interface Broker {
  kind: 'mosquitto' | 'aedes-in-process';
  url: string;
  stop: () => Promise<void>;
}

/** mosquitto in its own process when installed (as on a plant), else aedes in this process. */
async function startBroker(): Promise<Broker> {
  const binary = ['mosquitto', '/usr/sbin/mosquitto'].find(
    (b) => spawnSync(b, ['-h'], { stdio: 'ignore' }).error === undefined,
  );
  if (binary !== undefined) {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-bench-mosquitto-'));
    const port = await freePort();
    const config = join(dir, 'mosquitto.conf');
    await writeFile(
      config,
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
    );
    const child: ChildProcess = spawn(binary, ['-c', config], { stdio: 'ignore' });
    const url = `mqtt://127.0.0.1:${port}`;
    await waitForMqtt(url);
    return {
      kind: 'mosquitto',
      url,
      stop: async () => {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  type AedesBroker = ReturnType<typeof import('aedes').createBroker>;
  const broker = (aedesModule as unknown as () => AedesBroker)();
  const server: Server = createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    kind: 'aedes-in-process',
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}

async function waitForMqtt(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 });
      await c.endAsync(true);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A holding register the verdicts do not use, for timing the PLC stand-in alone. */
const SPARE_REGISTER = 200;

/** The PLC stand-in's answer time to `count` FC16 writes of three registers, one at a time, paced at `fps`. */
async function plcRoundTrips(
  port: number,
  count: number,
  fps: number,
): Promise<OutputsBenchResult['plc']> {
  const client = new Modbus.default();
  client.setTimeout(1000);
  client.setID(1);
  await client.connectTCP('127.0.0.1', { port });
  try {
    const samples: number[] = [];
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const wait = start + (i * 1000) / fps - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t0 = performance.now();
      await client.writeRegisters(SPARE_REGISTER, [i, 0, i]);
      samples.push(performance.now() - t0);
    }
    const p = percentiles(samples.slice(Math.min(30, count >> 1)));
    return { requestP50Ms: p.median, requestP99Ms: p.p99, requests: samples.length };
  } finally {
    await new Promise<void>((r) => client.close(() => r()));
  }
}

/** modbus-serial's server as the PLC stand-in, run in its own process as a PLC is its own device. */
const PLC_SCRIPT = `
const Modbus = require(process.argv[1]);
const server = new Modbus.ServerTCP({
  setCoil: () => undefined,
  setRegister: (addr, value) => {
    if (addr === ${MAP.sequenceRegister}) process.stdout.write(value + ' ' + (performance.timeOrigin + performance.now()) + '\\n');
  },
}, { host: '127.0.0.1', port: Number(process.argv[2]), unitID: 1 });
server.on('socketError', () => undefined);
server.on('initialized', () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

/**
 * A PLC stand-in in a child process (the lean server or modbus-serial's),
 * telling each write of the sequence register with its wall-clock time in ms
 * (timeOrigin + now, comparable across processes on one machine).
 */
async function startPlc(kind: PlcStandIn): Promise<{
  port: number;
  onCommit: (seq: number, atEpochMs: number) => void;
  close: () => Promise<void>;
}> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    kind === 'lean'
      ? ['-e', LEAN_PLC_SCRIPT, String(port), String(MAP.sequenceRegister)]
      : ['-e', PLC_SCRIPT, createRequire(import.meta.url).resolve('modbus-serial'), String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const plc = {
    port,
    onCommit: (_seq: number, _at: number) => undefined as void,
    close: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') resolve();
      const [seq, at] = line.split(' ');
      if (at !== undefined) plc.onCommit(Number(seq), Number(at));
    });
    child.once('exit', (code) => reject(new Error(`PLC stand-in exited (${code})`)));
  });
  return plc;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

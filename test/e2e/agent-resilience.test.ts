// End-to-end resilience of `linesight agent` processes: bad models are refused,
// a model that hangs on real frames is contained by the watchdog and then its
// circuit breaker (quarantined, the previous version back), a shadow model
// does not touch live verdicts, kill -9 during a download or a swap is
// survived, and a version that crash-loops the agent is quarantined.
//
// How models reach the agent here. The cloud refuses models that do not load
// or that give non-finite golden scores, so such files can only reach a device
// through a broken or compromised publisher. To test the device's own checks,
// this file plays the signer: a test key is added to each device's trust list
// at provisioning, and the test signs manifests and desired-state documents
// with it (as the cloud's DesiredIssuer and ModelService do) and publishes them
// retained on the device's desired topic. Artifacts come from a small HTTP
// server in the test that also proxies (and can throttle) the cloud's own
// artifact endpoint, where the kill -9 download test fetches a model the cloud
// registered, resumed with an HTTP Range request the cloud answers.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient, CloudApiError } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { Cloud } from '@linesight/cloud';
import {
  CHANNEL_SCHEMAS,
  decodePayload,
  deviceTopic,
  encodePayload,
  generateSigningKeyPair,
  sha256Hex,
  signDocument,
  signManifest,
  type DesiredState,
  type DeviceEvent,
  type FrameResult,
  type Manifest,
  type ModelAssignment,
  type SigningKeyPair,
  type Telemetry,
} from '@linesight/protocol';
import {
  OnnxModel,
  WorkerOnnxModel,
  goldenInputs,
  preprocessImage,
  readModelContract,
} from '@linesight/vision';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess, type LogLine } from '../helpers/linesight-process.ts';
import { FleetObserver } from '../helpers/observer.ts';
import {
  withContractInputSize,
  withNanScore,
  withPadding,
  withSlowSideChain,
  withUnknownOp,
} from '../helpers/onnx-mutations.ts';

const models = inject('models');
const GOLDEN_TOLERANCE = 1e-3;

let dir: string;
let cloud: Cloud;
let api: CloudApiClient;
let mqttUrl: string;
let v1: Uint8Array;
let v2: Uint8Array;
const observer = new FleetObserver();
const signer: SigningKeyPair = generateSigningKeyPair();
const running = new Set<LinesightProcess>();
const revisions = new Map<string, number>();
let admin: MqttClient;

/** Device channels the FleetObserver does not record: telemetry and events. */
class DeviceFeed {
  readonly telemetry = new Map<string, Telemetry[]>();
  readonly events = new Map<string, DeviceEvent[]>();
  #client: MqttClient | undefined;

  async start(url: string, token: string): Promise<void> {
    this.#client = await mqtt.connectAsync(url, {
      clientId: `resilience-feed-${process.pid}`,
      username: 'admin',
      password: token,
      reconnectPeriod: 0,
    });
    this.#client.on('message', (topic, payload) => {
      const [, , , deviceId, channel] = topic.split('/');
      if (deviceId === undefined || payload.length === 0) return;
      if (channel === 'telemetry') {
        const list = this.telemetry.get(deviceId) ?? [];
        list.push(decodePayload(CHANNEL_SCHEMAS.telemetry, payload, 'telemetry'));
        this.telemetry.set(deviceId, list);
      } else if (channel === 'events') {
        const list = this.events.get(deviceId) ?? [];
        list.push(decodePayload(CHANNEL_SCHEMAS.events, payload, 'event'));
        this.events.set(deviceId, list);
      }
    });
  }

  /** Subscribes to one device's telemetry and events. */
  async follow(deviceId: string): Promise<void> {
    await this.#client!.subscribeAsync(
      [deviceTopic(deviceId, 'telemetry'), deviceTopic(deviceId, 'events')],
      { qos: 1 },
    );
  }

  async close(): Promise<void> {
    await this.#client?.endAsync(true);
  }
}

/** One request the server saw, with what it sent back so far. */
interface SeenRequest {
  path: string;
  range: string | undefined;
  status: number | undefined;
  bytesSent: number;
}

/**
 * Serves test artifacts from memory and proxies everything else to the
 * cloud's HTTP port, optionally throttling artifact responses so a download
 * takes seconds. Records every request (path, Range header, bytes sent).
 */
class ArtifactServer {
  readonly artifacts = new Map<string, Uint8Array>();
  readonly requests: SeenRequest[] = [];
  /** Bytes per second for proxied artifact bodies; undefined = unthrottled. */
  throttleBytesPerSec: number | undefined;
  /**
   * Sent instead of the device's credentials on proxied requests: the cloud lets a
   * device download only models the cloud itself assigned it, and here the test
   * signs the desired state.
   */
  upstreamAuthorization: string | undefined;
  #server: Server | undefined;
  #upstream: URL | undefined;

  async start(upstream: string): Promise<string> {
    this.#upstream = new URL(upstream);
    const server = createServer((req, res) => this.#handle(req, res));
    this.#server = server;
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    res.on('error', () => undefined);
    const seen: SeenRequest = {
      path: req.url ?? '',
      range: req.headers.range,
      status: undefined,
      bytesSent: 0,
    };
    this.requests.push(seen);
    const local = this.artifacts.get(seen.path);
    if (local !== undefined) {
      seen.status = 200;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(local);
      seen.bytesSent = local.byteLength;
      return;
    }
    const upstream = this.#upstream!;
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: {
          ...req.headers,
          host: upstream.host,
          ...(this.upstreamAuthorization ? { authorization: this.upstreamAuthorization } : {}),
        },
      },
      (up) => {
        seen.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.headers);
        void this.#relay(up, res, seen, seen.path.endsWith('/artifact'));
      },
    );
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  }

  async #relay(
    up: IncomingMessage,
    res: ServerResponse,
    seen: SeenRequest,
    throttle: boolean,
  ): Promise<void> {
    const slice = 64 * 1024;
    try {
      for await (const chunk of up as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length; at += slice) {
          if (res.destroyed) {
            up.destroy();
            return;
          }
          const part = chunk.subarray(at, at + slice);
          res.write(part);
          seen.bytesSent += part.length;
          const rate = throttle ? this.throttleBytesPerSec : undefined;
          if (rate !== undefined)
            await new Promise((r) => setTimeout(r, (part.length / rate) * 1000));
        }
      }
      res.end();
    } catch {
      res.destroy();
    }
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Golden scores as the cloud computes them at registration. */
async function goldenScoresOf(bytes: Uint8Array): Promise<number[]> {
  const model = await OnnxModel.load(bytes);
  try {
    const scores: number[] = [];
    for (const input of goldenInputs(readModelContract(bytes).inputSpec))
      scores.push((await model.run(input)).score);
    return scores;
  } finally {
    await model.close();
  }
}

/**
 * A model assignment signed with the test key. `golden` gives the reference
 * scores to sign (default: computed from the file, like the cloud does; `null`
 * for none). Served by the test server unless `artifactUrl` is given.
 */
async function assignment(
  name: string,
  version: string,
  bytes: Uint8Array,
  options: { golden?: number[] | null; artifactUrl?: string } = {},
): Promise<ModelAssignment> {
  const contract = readModelContract(bytes);
  const sha256 = sha256Hex(bytes);
  const golden = options.golden === undefined ? await goldenScoresOf(bytes) : options.golden;
  const manifest: Manifest = {
    schema: 'linesight.manifest/v1',
    name,
    version,
    sha256,
    sizeBytes: bytes.byteLength,
    inputSpec: contract.inputSpec,
    outputs: contract.outputs,
    threshold: contract.threshold,
    issuedAt: new Date().toISOString(),
    keyId: signer.keyId,
    ...(golden === null ? {} : { golden: { scores: golden, tolerance: GOLDEN_TOLERANCE } }),
  };
  let artifactUrl = options.artifactUrl;
  if (artifactUrl === undefined) {
    artifactUrl = `/test-artifacts/${sha256}.onnx`;
    server.artifacts.set(artifactUrl, bytes);
  }
  return { signed: signManifest(manifest, signer), artifactUrl };
}

/** Signs and publishes (retained) the next desired-state revision for a device. */
async function setDesired(
  deviceId: string,
  content: { model: ModelAssignment | null; shadow?: ModelAssignment | null },
): Promise<DesiredState> {
  const revision = (revisions.get(deviceId) ?? 0) + 1;
  revisions.set(deviceId, revision);
  const now = new Date();
  const doc = signDocument<DesiredState>(
    {
      schema: 'linesight.desired/v1',
      deviceId,
      revision,
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
      keyId: signer.keyId,
      model: content.model,
      ...(content.shadow !== undefined ? { shadow: content.shadow } : {}),
    },
    signer,
  );
  await admin.publishAsync(
    deviceTopic(deviceId, 'desired'),
    encodePayload(CHANNEL_SCHEMAS.desired, doc, 'desired'),
    { qos: 1, retain: true },
  );
  return doc;
}

/** Provisions a device (once) with the cloud, trusting the test key as well. */
async function provision(deviceId: string): Promise<string> {
  const dataDir = join(dir, 'agents', deviceId);
  const creds = await api.provisionDevice(deviceId);
  await writeDeviceCredentials(join(dataDir, 'device.json'), {
    ...creds,
    trustedKeys: [...creds.trustedKeys, { keyId: signer.keyId, publicKeyPem: signer.publicKeyPem }],
  });
  await feed.follow(deviceId);
  return dataDir;
}

/** Starts `linesight agent` for a provisioned device and waits until it runs. */
async function startAgent(
  deviceId: string,
  options: { seed: number; fps: number; args?: string[] },
): Promise<LinesightProcess> {
  const agent = new LinesightProcess([
    'agent',
    '--device-id',
    deviceId,
    '--cloud',
    serverUrl,
    '--mqtt',
    mqttUrl,
    '--camera',
    `synthetic:${options.seed}`,
    '--fps',
    String(options.fps),
    '--data-dir',
    join(dir, 'agents', deviceId),
    '--telemetry-interval',
    '1',
    ...(options.args ?? []),
  ]);
  running.add(agent);
  void agent.exited.then(() => running.delete(agent));
  await agent.waitForLog((l) => l.msg === 'agent started', 90_000);
  return agent;
}

/** SIGKILL, and wait until the process is gone. */
async function kill9(agent: LinesightProcess): Promise<void> {
  agent.child.kill('SIGKILL');
  await agent.exited;
}

/** Stops with SIGTERM and expects a clean exit. */
async function stopCleanly(agent: LinesightProcess, timeoutMs = 20_000): Promise<void> {
  const code = await agent.stop(timeoutMs);
  expect(code, `exit code on SIGTERM; last output:\n${agent.text.slice(-12).join('\n')}`).toBe(0);
}

function results(deviceId: string): FrameResult[] {
  return observer.results.get(deviceId) ?? [];
}

function reported(deviceId: string) {
  return observer.reported.get(deviceId);
}

/** Waits until the device reports `version` live and at least `frames` more frames scored on it. */
async function waitForFramesOn(deviceId: string, version: string, frames = 5): Promise<void> {
  const start = reported(deviceId)?.framesByVersion[version] ?? 0;
  try {
    await eventually(
      () => {
        const r = reported(deviceId);
        return r?.model?.version === version && (r.framesByVersion[version] ?? 0) >= start + frames
          ? true
          : undefined;
      },
      {
        what: `${deviceId} scoring ${frames} more frames on ${version}`,
        timeoutMs: 90_000,
        intervalMs: 50,
      },
    );
  } catch (err) {
    const r = reported(deviceId);
    const events = (feed.events.get(deviceId) ?? [])
      .slice(-5)
      .map((e) => `${e.type}: ${e.message}`);
    throw new Error(
      `${String(err)}; last reported: ${JSON.stringify({ phase: r?.phase, model: r?.model?.version, lastError: r?.lastError, frames: r?.frames })}; last events: ${events.join(' | ')}`,
    );
  }
}

function modelLiveLog(version: string) {
  return (l: LogLine) =>
    l.msg === 'model live' && (l.model as { version?: string } | undefined)?.version === version;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function readState(deviceId: string) {
  return JSON.parse(
    await readFile(join(dir, 'agents', deviceId, 'models', 'state.json'), 'utf8'),
  ) as {
    active: { manifest: Manifest } | null;
    lastKnownGood: { manifest: Manifest } | null;
    stable: boolean;
    startsSinceActivation: number;
    quarantined: string[];
  };
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

const feed = new DeviceFeed();
const server = new ArtifactServer();
let serverUrl: string;
let v1Assignment: ModelAssignment;
let v2Assignment: ModelAssignment;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-resilience-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud') },
    pino({ level: 'warn' }),
  );
  const urls = await cloud.start();
  mqttUrl = urls.mqtt;
  api = new CloudApiClient({ baseUrl: urls.http, adminToken: cloud.adminToken.token });
  await observer.start(urls.mqtt, cloud.adminToken.token);
  await feed.start(urls.mqtt, cloud.adminToken.token);
  admin = await mqtt.connectAsync(urls.mqtt, {
    clientId: `resilience-admin-${randomBytes(4).toString('hex')}`,
    username: 'admin',
    password: cloud.adminToken.token,
    reconnectPeriod: 0,
  });
  server.upstreamAuthorization = `Bearer ${cloud.adminToken.token}`;
  serverUrl = await server.start(urls.http);
  v1 = await readFile(models.v1);
  v2 = await readFile(models.v2);
  v1Assignment = await assignment('line', '1.0.0', v1);
  v2Assignment = await assignment('line', '2.0.0', v2);
});

afterEach(async () => {
  // A failed test must not leave an agent burning CPU under the next one.
  await Promise.all([...running].map((a) => a.stop()));
  // Every message the agents published decoded against its schema.
  expect(observer.invalid).toBe(0);
});

afterAll(async () => {
  await Promise.all([...running].map((a) => a.stop()));
  await admin?.endAsync(true);
  await feed.close();
  await observer.close();
  await server.close();
  await cloud?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('agent resilience (linesight agent processes)', () => {
  it('refuses a NaN model, a wrong input shape, an unloadable model and wrong golden scores, and keeps the live version', async () => {
    const id = 'refuser';
    await provision(id);
    const agent = await startAgent(id, { seed: 11, fps: 10 });
    await setDesired(id, { model: v1Assignment });
    await waitForFramesOn(id, '1.0.0');

    const cases = [
      { version: '1.0.1-nan', bytes: withNanScore(v1), code: 'ERR_MODEL_OUTPUT' },
      {
        version: '1.0.1-shape',
        bytes: withContractInputSize(v1, { width: 96, height: 80 }),
        code: 'ERR_MODEL_CONTRACT',
      },
      { version: '1.0.1-unknown-op', bytes: withUnknownOp(v1), code: 'ERR_MODEL_LOAD' },
    ];
    // The cloud refuses each of these files at upload: only a broken signer could send them.
    for (const c of cases) {
      const answer = await api
        .publishModel({ name: 'refused', version: c.version, onnx: c.bytes })
        .then(
          () => 'accepted',
          (err: unknown) => (err instanceof CloudApiError ? err.status : String(err)),
        );
      expect(answer, `cloud answer to ${c.version}`).toBe(400);
    }
    // A genuine file whose signed golden scores are not its own (caught only on the device).
    const goldenV1 = await goldenScoresOf(v1);
    const wrongGolden = {
      version: '1.0.1-golden',
      bytes: v2,
      golden: goldenV1 as number[] | null,
      code: 'ERR_MODEL_OUTPUT',
    };

    for (const c of [...cases.map((x) => ({ ...x, golden: null })), wrongGolden]) {
      const doc = await setDesired(id, {
        model: await assignment('line', c.version, c.bytes, { golden: c.golden }),
      });
      const state = await eventually(
        () => {
          const r = reported(id);
          return r?.desiredRevision === doc.revision && r.lastError?.model?.version === c.version
            ? r
            : undefined;
        },
        { what: `${c.version} refused`, timeoutMs: 60_000, intervalMs: 50 },
      );
      expect(state.lastError?.code, `${c.version}: ${state.lastError?.message}`).toBe(c.code);
      expect(state.model?.version).toBe('1.0.0');
      expect(state.phase).toBe('running');
      // Frames keep flowing on the live version.
      await waitForFramesOn(id, '1.0.0', 5);
    }
    const refusals = (feed.events.get(id) ?? []).filter((e) => e.type === 'model.refused');
    expect(refusals.map((e) => [e.model?.version, e.code])).toEqual(
      [...cases, wrongGolden].map((c) => [c.version, c.code]),
    );

    await stopCleanly(agent);
    // Once the model was live, every frame was scored by it: no unknown, no other version.
    const all = results(id);
    const first = all.findIndex((r) => r.model !== null);
    expect(first).toBeGreaterThanOrEqual(0);
    const live = all.slice(first);
    expect(live.filter((r) => r.verdict === 'unknown' || r.model?.version !== '1.0.0')).toEqual([]);
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i));
  });

  it('contains a model that hangs on real frames: unknown within the watchdog limit, never a silent good; the breaker opens and the previous version takes over', async () => {
    // The slow branch is free on the golden inputs, so the cloud registers this file and the
    // device's golden check passes; on camera frames each run takes about half a second
    // (more than twice the watchdog limit, and short enough that the abandoned runs return
    // soon after, even on a busy machine).
    const slow = withSlowSideChain(v1, { size: 1024, steps: 50 });
    const registered = await api.publishModel({ name: 'hang', version: '1.0.0', onnx: slow });
    expect(registered.sha256).toBe(sha256Hex(slow));
    // How long the model really needs on a camera frame, measured here, off the event loop.
    const frame = await readFile(await firstImage(models.dataset));
    const probe = await WorkerOnnxModel.load(slow);
    let slowRunMs: number;
    try {
      const input = await preprocessImage(frame, probe.contract.inputSpec);
      const t0 = performance.now();
      await probe.run(input);
      slowRunMs = performance.now() - t0;
    } finally {
      await probe.close();
    }

    const id = 'hanger';
    const watchdogMs = 200;
    const trips = 3;
    await provision(id);
    const agent = await startAgent(id, {
      seed: 12,
      fps: 2,
      args: ['--watchdog-ms', String(watchdogMs), '--watchdog-trips', String(trips)],
    });
    await setDesired(id, { model: v1Assignment });
    await waitForFramesOn(id, '1.0.0', 3);

    const hang = await assignment('line', '1.0.2-hang', slow);
    await setDesired(id, { model: hang });
    const hangLive = await agent.waitForLog(modelLiveLog('1.0.2-hang'), 60_000);
    // After `trips` consecutive trips the breaker opens, the version is quarantined, and the
    // previous version (last-known-good) is live again, though desired state still names the hang.
    const opened = await agent.waitForLog(
      (l) => l.msg?.startsWith('circuit breaker open') === true,
      90_000,
    );
    const fallback = await agent.waitForLog(
      (l) => modelLiveLog('1.0.0')(l) && l.source === 'last-known-good',
      90_000,
    );
    const state = await eventually(
      () => {
        const r = reported(id);
        return r?.lastError?.code === 'ERR_AGENT_WATCHDOG' && r.model?.version === '1.0.0'
          ? r
          : undefined;
      },
      { what: 'watchdog quarantine reported' },
    );
    expect(state.lastError?.model?.version).toBe('1.0.2-hang');
    expect(state.lastError?.message).toMatch(
      new RegExp(
        `^ERR_AGENT_WATCHDOG: watchdog: ${trips} consecutive runs over ${watchdogMs} ms on line@1\\.0\\.2-hang; quarantined, falling back to the last-known-good version line@1\\.0\\.0`,
      ),
    );
    const refusal = await eventually(
      () =>
        (feed.events.get(id) ?? []).find(
          (e) => e.type === 'model.refused' && e.code === 'ERR_AGENT_WATCHDOG',
        ),
      { what: 'watchdog event' },
    );
    expect(refusal.model?.version).toBe('1.0.2-hang');
    // The line recovers on the previous version.
    await waitForFramesOn(id, '1.0.0', 5);
    const stored = await readState(id);
    expect(stored.quarantined).toContain(hang.signed.manifest.sha256);
    expect(stored.active?.manifest.version).toBe('1.0.0');

    // Desired state naming the hanging version again is refused, as for a crash-looping version.
    const again = await setDesired(id, { model: hang });
    const refusedAgain = await eventually(
      () => {
        const r = reported(id);
        return r?.desiredRevision === again.revision ? r : undefined;
      },
      { what: 'hang refused again' },
    );
    expect(refusedAgain.lastError?.code).toBe('ERR_AGENT_WATCHDOG');
    expect(refusedAgain.lastError?.message).toMatch(/quarantined on this device/);
    expect(refusedAgain.model?.version).toBe('1.0.0');
    await waitForFramesOn(id, '1.0.0', 3);
    expect(agent.lines.filter(modelLiveLog('1.0.2-hang'))).toHaveLength(1);

    const fromHang = results(id).filter((x) => x.model?.version === '1.0.2-hang');
    const circuitOpen = fromHang.filter((r) => r.reason?.startsWith('circuit-open') === true);
    const telemetry = await eventually(
      () => {
        const t = feed.telemetry.get(id)?.at(-1);
        return t !== undefined &&
          (t.watchdogTrips ?? 0) >= trips &&
          (t.circuitOpenFrames ?? 0) >= circuitOpen.length
          ? t
          : undefined;
      },
      {
        what: 'telemetry with watchdog trips and circuit-open frames',
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    );
    // The agent waits for the abandoned runs to return before it exits (exiting under a
    // thread inside native inference could abort the process).
    await stopCleanly(agent, 60_000);

    // Never a verdict from the hanging model: the first `trips` frames were abandoned by the
    // watchdog, the rest (until the previous version was live) were not run at all.
    expect(fromHang.filter((r) => r.verdict !== 'unknown')).toEqual([]);
    expect(fromHang.every((r) => r.score === null)).toBe(true);
    const watchdogFrames = fromHang.slice(0, trips);
    expect(watchdogFrames).toHaveLength(trips);
    for (const r of watchdogFrames) expect(r.reason).toMatch(/watchdog/);
    expect(fromHang.slice(trips)).toEqual(circuitOpen);
    for (const r of circuitOpen) {
      expect(r.reason).toMatch(/^circuit-open: line@1\.0\.2-hang/);
      expect(r.latencyMs.inference).toBe(0);
    }
    // The verdict never waited for the model: it came after the watchdog limit, well before the run's own time.
    const inference = watchdogFrames.map((r) => r.latencyMs.inference);
    expect(Math.min(...inference)).toBeGreaterThanOrEqual(watchdogMs * 0.9);
    expect(median(inference)).toBeLessThan(Math.max(slowRunMs, 5 * watchdogMs));
    expect(telemetry.watchdogTrips).toBeGreaterThanOrEqual(watchdogFrames.length);
    expect(telemetry.circuitOpenFrames).toBe(circuitOpen.length);
    // Every frame after the hanging version's last one was scored by the previous version.
    const all = results(id);
    const lastHang = all.map((r) => r.model?.version).lastIndexOf('1.0.2-hang');
    const after = all.slice(lastHang + 1);
    expect(after.length).toBeGreaterThanOrEqual(5);
    expect(after.filter((r) => r.verdict === 'unknown' || r.model?.version !== '1.0.0')).toEqual(
      [],
    );

    const t = (l: LogLine) => Number(l.time);
    console.log(
      `[hang] model run on a frame ${slowRunMs.toFixed(0)} ms; watchdog ${watchdogMs} ms, breaker at ${trips} trips; ` +
        `watchdog frames ${watchdogFrames.length} (inference p50 ${median(inference).toFixed(0)} ms, max ${Math.max(...inference).toFixed(0)} ms); ` +
        `hang live -> breaker open ${t(opened) - t(hangLive)} ms, -> last-known-good live ${t(fallback) - t(hangLive)} ms; ` +
        `circuit-open frames before the fallback ${circuitOpen.length}; telemetry watchdogTrips ${telemetry.watchdogTrips}, circuitOpenFrames ${telemetry.circuitOpenFrames}`,
    );
  });

  it('runs a shadow model beside the live one without changing live verdicts, and reports agreement', async () => {
    const frames = 240;
    const fps = 24;
    const seed = 21;
    const runFor = async (id: string, shadow: ModelAssignment | null) => {
      await provision(id);
      const agent = await startAgent(id, { seed, fps });
      await setDesired(id, { model: v1Assignment, shadow });
      await waitForFramesOn(id, '1.0.0', 1);
      if (shadow !== null)
        await eventually(
          () => (reported(id)?.shadowModel?.version === '2.0.0' ? true : undefined),
          { what: 'shadow loaded' },
        );
      const from = results(id).length;
      await eventually(() => (results(id).length >= from + frames ? true : undefined), {
        what: `${frames} frames on ${id}`,
        timeoutMs: 120_000,
        intervalMs: 100,
      });
      await stopCleanly(agent);
      return results(id).slice(from);
    };
    const off = await runFor('shadow-off', null);
    const on = await runFor('shadow-on', v2Assignment);

    // Same camera, same live model: the verdict and score of every frame both runs scored agree.
    const bySeq = new Map(off.map((r) => [r.seq, r]));
    const both = on.filter((r) => bySeq.has(r.seq));
    expect(both.length).toBeGreaterThan(frames / 4);
    for (const r of both) {
      const o = bySeq.get(r.seq)!;
      expect([r.seq, r.verdict, r.score, r.model?.version]).toEqual([
        o.seq,
        o.verdict,
        o.score,
        '1.0.0',
      ]);
    }
    expect(on.every((r) => r.model?.version === '1.0.0' && r.verdict !== 'unknown')).toBe(true);

    const shadow = [...(feed.telemetry.get('shadow-on') ?? [])]
      .reverse()
      .find((t) => t.shadow !== undefined)?.shadow;
    expect(shadow?.model.version).toBe('2.0.0');
    expect(shadow?.scored).toBeGreaterThan(0);
    // Two trained versions of the same detector: they agree on most verdicts (0.94 measured),
    // and their scores differ (a shadow that reported the live scores would agree on all).
    expect(shadow?.agreementRate).toBeGreaterThan(0.5);
    expect(shadow?.agreementRate).toBeLessThanOrEqual(1);
    expect(shadow?.meanAbsScoreDiff).toBeGreaterThan(0);
    expect(feed.telemetry.get('shadow-off')?.some((t) => t.shadow !== undefined)).toBe(false);

    const p50Off = median(off.map((r) => r.latencyMs.total));
    const p50On = median(on.map((r) => r.latencyMs.total));
    console.log(
      `[shadow] live latencyMs.total p50 without shadow ${p50Off.toFixed(2)} ms, with shadow ${p50On.toFixed(2)} ms ` +
        `(ratio ${(p50On / p50Off).toFixed(3)}); shadow scored ${shadow?.scored}, skipped ${shadow?.skipped}, ` +
        `agreement ${shadow?.agreementRate}, mean |score diff| ${shadow?.meanAbsScoreDiff?.toFixed(3)}`,
    );
    // What the shadow costs the live path is a benchmark's number (`bench agent`), not a test's:
    // here, every live verdict and score is identical with and without it (above).
  });

  it('survives kill -9 in the middle of a download (resumed with Range) and of a swap, and converges', async () => {
    const id = 'killer';
    const dataDir = await provision(id);
    const args = ['--watchdog-ms', '10000'];
    let agent = await startAgent(id, { seed: 13, fps: 5, args });
    await setDesired(id, { model: v1Assignment });
    await waitForFramesOn(id, '1.0.0', 3);

    // A 6 MB artifact the cloud registers and serves; the proxy sends it at 1.5 MB/s.
    const big = withPadding(v2, 6 * 1024 * 1024, 'resilience download test');
    await api.publishModel({ name: 'line-big', version: '3.0.0', onnx: big });
    const bigAssignment = await assignment('line', '3.0.0', big, {
      artifactUrl: '/v1/models/line-big/3.0.0/artifact',
    });
    const part = join(dataDir, 'models', `${sha256Hex(big)}.onnx.part`);
    const artifactRequests = () => server.requests.filter((r) => r.path.endsWith('/artifact'));
    server.throttleBytesPerSec = 1.5 * 1024 * 1024;
    const downloadStarted = performance.now();
    await setDesired(id, { model: bigAssignment });
    const firstRequest = await eventually(() => artifactRequests()[0], {
      what: 'download started',
    });
    expect(firstRequest.range).toBeUndefined();
    await eventually(() => (firstRequest.bytesSent >= big.byteLength / 2 ? true : undefined), {
      what: 'half the artifact sent',
      timeoutMs: 60_000,
      intervalMs: 20,
    });
    await kill9(agent);
    const killedAfterMs = performance.now() - downloadStarted;
    const partBytes = (await sizeOf(part)) ?? 0;
    expect(partBytes).toBeGreaterThan(0);
    expect(partBytes).toBeLessThan(big.byteLength);
    expect(await sizeOf(join(dataDir, 'models', `${sha256Hex(big)}.onnx`))).toBeUndefined();

    // Restart: it runs the verified live version at once and resumes where the part file ends.
    const resumeStarted = performance.now();
    agent = await startAgent(id, { seed: 13, fps: 5, args });
    const started = agent.lines.find((l) => l.msg === 'agent started');
    expect((started?.model as { version?: string } | null)?.version).toBe('1.0.0');
    await agent.waitForLog(modelLiveLog('3.0.0'), 90_000);
    const resumeMs = performance.now() - resumeStarted;
    const resumed = artifactRequests()[1];
    expect(resumed?.range).toBe(`bytes=${partBytes}-`);
    expect(resumed?.status).toBe(206);
    expect(resumed?.bytesSent).toBe(big.byteLength - partBytes);
    expect(artifactRequests()).toHaveLength(2);
    await waitForFramesOn(id, '3.0.0', 3);
    server.throttleBytesPerSec = undefined;
    console.log(
      `[download] ${big.byteLength} bytes at 1.5 MB/s; killed after ${killedAfterMs.toFixed(0)} ms with ` +
        `${partBytes} bytes in the part file; restart to live on the resumed download ${resumeMs.toFixed(0)} ms`,
    );

    // Mid-swap: a version that loads slowly (its golden check takes a while); kill as loading starts.
    const slowLoad = withSlowSideChain(v1, { size: 1024, steps: 12, when: 'always' });
    const slowAssignment = await assignment('line', '4.0.0', slowLoad);
    await setDesired(id, { model: slowAssignment });
    await eventually(() => (reported(id)?.phase === 'loading' ? true : undefined), {
      what: 'loading phase',
      timeoutMs: 60_000,
      intervalMs: 1,
    });
    await kill9(agent);
    const atKill = await readState(id);
    // The swap had not happened: the store still names the previous version.
    expect(atKill.active?.manifest.version).toBe('3.0.0');

    agent = await startAgent(id, { seed: 13, fps: 5, args });
    const restarted = agent.lines.find((l) => l.msg === 'agent started');
    expect((restarted?.model as { version?: string } | null)?.version).toBe('3.0.0');
    await agent.waitForLog(modelLiveLog('4.0.0'), 90_000);
    await waitForFramesOn(id, '4.0.0', 2);
    const after = await readState(id);
    expect(after.active?.manifest.version).toBe('4.0.0');
    expect(after.lastKnownGood?.manifest.version).toBe('3.0.0');
    await stopCleanly(agent);
  });

  it('quarantines a version that crash-loops the agent and runs last-known-good', async () => {
    const id = 'crasher';
    await provision(id);
    // First make 1.0.0 stable (it has to run a second without a restart).
    let agent = await startAgent(id, { seed: 14, fps: 5, args: ['--stable-after', '1'] });
    await setDesired(id, { model: v1Assignment });
    await waitForFramesOn(id, '1.0.0', 2);
    await eventually(async () => ((await readState(id)).stable ? true : undefined), {
      what: '1.0.0 stable',
    });
    await stopCleanly(agent);

    const args = ['--stable-after', '120', '--crash-loop-starts', '3'];
    agent = await startAgent(id, { seed: 14, fps: 5, args });
    await setDesired(id, { model: v2Assignment });
    await agent.waitForLog(modelLiveLog('2.0.0'), 60_000);
    await kill9(agent);
    // Two more starts on 2.0.0, each killed soon after it went live.
    for (let start = 1; start <= 2; start++) {
      agent = await startAgent(id, { seed: 14, fps: 5, args });
      await agent.waitForLog(modelLiveLog('2.0.0'), 60_000);
      expect((await readState(id)).startsSinceActivation).toBe(start);
      await kill9(agent);
    }
    // The third start quarantines 2.0.0 and comes back on 1.0.0, though desired state still names 2.0.0.
    const resultsBefore = results(id).length;
    agent = await startAgent(id, { seed: 14, fps: 5, args });
    const started = agent.lines.find((l) => l.msg === 'agent started');
    expect((started?.model as { version?: string } | null)?.version).toBe('1.0.0');
    const state = await eventually(
      () => {
        const r = reported(id);
        return r?.lastError?.code === 'ERR_AGENT_CRASH_LOOP' && r.model?.version === '1.0.0'
          ? r
          : undefined;
      },
      { what: 'crash loop reported' },
    );
    expect(state.lastError?.model?.version).toBe('2.0.0');
    // The quarantine itself (decided while restoring, before MQTT is up) reaches the cloud as an event.
    const quarantine = await eventually(
      () =>
        (feed.events.get(id) ?? []).find(
          (e) => e.code === 'ERR_AGENT_CRASH_LOOP' && /restarted 3 times/.test(e.message),
        ),
      { what: 'crash-loop event from the restart' },
    );
    expect(quarantine.model?.version).toBe('2.0.0');
    await waitForFramesOn(id, '1.0.0', 5);
    const stored = await readState(id);
    expect(stored.quarantined).toContain(v2Assignment.signed.manifest.sha256);
    expect(stored.active?.manifest.version).toBe('1.0.0');
    expect(agent.lines.some(modelLiveLog('2.0.0'))).toBe(false);
    expect(
      results(id)
        .slice(resultsBefore)
        .filter((r) => r.model?.version === '2.0.0'),
    ).toEqual([]);
    await stopCleanly(agent);
  });
});

async function firstImage(root: string): Promise<string> {
  const entries = await readdir(root, { recursive: true });
  const found = entries.find((e) => /\.(png|jpe?g)$/i.test(e));
  if (found === undefined) throw new Error(`no image under ${root}`);
  return join(root, found);
}

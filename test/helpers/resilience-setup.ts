// Shared set-up of the agent resilience e2e files (test/e2e/agent-resilience-*.test.ts):
// a cloud on free ports, an observer of every device topic, and a test signer.
//
// How models reach the agent there. The cloud refuses models that do not load
// or that give non-finite golden scores, so such files can only reach a device
// through a broken or compromised publisher. To test the device's own checks,
// the rig plays the signer: a test key is added to each device's trust list
// at provisioning, and the rig signs manifests and desired-state documents
// with it (as the cloud's DesiredIssuer and ModelService do) and publishes them
// retained on the device's desired topic. Artifacts come from a small HTTP
// server that also proxies (and can throttle) the cloud's own artifact
// endpoint, so a test can fetch a model the cloud registered, resumed with an
// HTTP Range request the cloud answers.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { expect } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import {
  CHANNEL_SCHEMAS,
  deviceTopic,
  encodePayload,
  sha256Hex,
  signDocument,
  signManifest,
  type DesiredState,
  type FrameResult,
  type Manifest,
  type ModelAssignment,
  type ReportedState,
} from '@linesight/protocol';
import { goldenScoresOf, readModelContract } from '@linesight/vision';
import { ArtifactServer } from './artifact-server.ts';
import { eventually } from '@linesight/testkit/eventually';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { testSigner, type TestSigner } from '@linesight/testkit/signer';
import { LinesightProcess, type LogLine } from './linesight-process.ts';
import { FleetObserver } from './observer.ts';

/** Tolerance signed into the rig's manifests' golden scores. */
export const GOLDEN_TOLERANCE = 1e-3;

/** What an agent's `models/state.json` holds. */
export interface StoredModelState {
  active: { manifest: Manifest } | null;
  lastKnownGood: { manifest: Manifest } | null;
  stable: boolean;
  startsSinceActivation: number;
  quarantined: string[];
}

/** Matches the agent's log line saying `version` went live. */
export function modelLiveLog(version: string): (l: LogLine) => boolean {
  return (l: LogLine) =>
    l.msg === 'model live' && (l.model as { version?: string } | undefined)?.version === version;
}

/** The model version an agent's 'agent started' log line names, if it has one yet. */
export function startedVersion(agent: LinesightProcess): string | undefined {
  const started = agent.lines.find((l) => l.msg === 'agent started');
  return (started?.model as { version?: string } | null | undefined)?.version;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * A cloud on free ports with its own temporary directory, an observer of every device
 * topic, a test signer trusted by the devices it provisions, and the artifact server
 * the agents use as their cloud URL. Start with {@link ResilienceRig.start}; call
 * `afterEach()` after each test and `close()` once.
 */
export class ResilienceRig {
  readonly observer = new FleetObserver();
  readonly server = new ArtifactServer();
  readonly signer: TestSigner = testSigner();
  readonly #running = new Set<LinesightProcess>();
  readonly #revisions = new Map<string, number>();
  #admin: MqttClient | undefined;
  #closed: Promise<void> | undefined;

  private constructor(readonly cloud: TestCloud) {}

  /** The test cloud's temporary folder (removed by close()); agents live under it. */
  get dir(): string {
    return this.cloud.dir;
  }

  get api(): CloudApiClient {
    return this.cloud.api;
  }

  get mqttUrl(): string {
    return this.cloud.mqttUrl;
  }

  /** The artifact server's URL, given to the agents as the cloud's. */
  serverUrl!: string;

  /** Starts the cloud (ports 0, a fresh temporary directory) and the rig's clients. */
  static async start(name: string): Promise<ResilienceRig> {
    const rig = new ResilienceRig(
      await startTestCloud({ logger: pino({ level: 'warn', base: { rig: name } }) }),
    );
    try {
      const token = rig.cloud.adminToken;
      await rig.observer.start(rig.mqttUrl, token);
      rig.#admin = await mqtt.connectAsync(rig.mqttUrl, {
        clientId: `resilience-admin-${name}-${randomBytes(4).toString('hex')}`,
        username: 'admin',
        password: token,
        reconnectPeriod: 0,
      });
      rig.server.upstreamAuthorization = `Bearer ${token}`;
      rig.serverUrl = await rig.server.start(rig.cloud.httpUrl);
    } catch (err) {
      await rig.close();
      throw err;
    }
    return rig;
  }

  /**
   * A model assignment signed with the test key. `golden` gives the reference
   * scores to sign (default: computed from the file, like the cloud does; `null`
   * for none). Served by the artifact server unless `artifactUrl` is given.
   */
  async assignment(
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
      keyId: this.signer.keyId,
      ...(golden === null ? {} : { golden: { scores: golden, tolerance: GOLDEN_TOLERANCE } }),
    };
    let artifactUrl = options.artifactUrl;
    if (artifactUrl === undefined) {
      artifactUrl = `/test-artifacts/${sha256}.onnx`;
      this.server.artifacts.set(artifactUrl, bytes);
    }
    return { signed: signManifest(manifest, this.signer), artifactUrl };
  }

  /** An assignment of a model file given by path (one of the e2e global setup's models). */
  async assignmentOf(version: string, path: string): Promise<ModelAssignment> {
    return this.assignment('line', version, await readFile(path));
  }

  /** Signs and publishes (retained) the next desired-state revision for a device. */
  async setDesired(
    deviceId: string,
    content: { model: ModelAssignment | null; shadow?: ModelAssignment | null },
  ): Promise<DesiredState> {
    const revision = (this.#revisions.get(deviceId) ?? 0) + 1;
    this.#revisions.set(deviceId, revision);
    const now = new Date();
    const doc = signDocument<DesiredState>(
      {
        schema: 'linesight.desired/v1',
        deviceId,
        revision,
        issuedAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
        keyId: this.signer.keyId,
        model: content.model,
        ...(content.shadow !== undefined ? { shadow: content.shadow } : {}),
      },
      this.signer,
    );
    await this.#admin!.publishAsync(
      deviceTopic(deviceId, 'desired'),
      encodePayload(CHANNEL_SCHEMAS.desired, doc, 'desired'),
      { qos: 1, retain: true },
    );
    return doc;
  }

  /** The device's data directory. */
  dataDir(deviceId: string): string {
    return join(this.dir, 'agents', deviceId);
  }

  /** Provisions a device (once) with the cloud, trusting the test key as well. */
  async provision(deviceId: string): Promise<string> {
    const dataDir = this.dataDir(deviceId);
    const creds = await this.api.provisionDevice(deviceId);
    await writeDeviceCredentials(join(dataDir, 'device.json'), {
      ...creds,
      trustedKeys: [...creds.trustedKeys, this.signer.trusted],
    });
    return dataDir;
  }

  /** Starts `linesight agent` for a provisioned device and waits until it runs. */
  async startAgent(
    deviceId: string,
    options: { seed: number; fps: number; args?: string[] },
  ): Promise<LinesightProcess> {
    const agent = new LinesightProcess([
      'agent',
      '--device-id',
      deviceId,
      '--cloud',
      this.serverUrl,
      '--mqtt',
      this.mqttUrl,
      '--camera',
      `synthetic:${options.seed}`,
      '--fps',
      String(options.fps),
      '--data-dir',
      this.dataDir(deviceId),
      '--telemetry-interval',
      '1',
      ...(options.args ?? []),
    ]);
    this.#running.add(agent);
    void agent.exited.then(() => this.#running.delete(agent));
    await agent.waitForLog((l) => l.msg === 'agent started', 90_000);
    return agent;
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill9(agent: LinesightProcess): Promise<void> {
    agent.child.kill('SIGKILL');
    await agent.exited;
  }

  /** Stops with SIGTERM and expects a clean exit. */
  async stopCleanly(agent: LinesightProcess, timeoutMs = 20_000): Promise<void> {
    const code = await agent.stop(timeoutMs);
    expect(code, `exit code on SIGTERM; last output:\n${agent.text.slice(-12).join('\n')}`).toBe(0);
  }

  /** Every result the device published, oldest first. */
  results(deviceId: string): FrameResult[] {
    return this.observer.results.get(deviceId) ?? [];
  }

  /** The device's latest reported state. */
  reported(deviceId: string): ReportedState | undefined {
    return this.observer.reported.get(deviceId);
  }

  /** Waits until the device reports `version` live and at least `frames` more frames scored on it. */
  async waitForFramesOn(deviceId: string, version: string, frames = 5): Promise<void> {
    const start = this.reported(deviceId)?.framesByVersion[version] ?? 0;
    try {
      await eventually(
        () => {
          const r = this.reported(deviceId);
          return r?.model?.version === version &&
            (r.framesByVersion[version] ?? 0) >= start + frames
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
      const r = this.reported(deviceId);
      const events = (this.observer.events.get(deviceId) ?? [])
        .slice(-5)
        .map((e) => `${e.type}: ${e.message}`);
      throw new Error(
        `${String(err)}; last reported: ${JSON.stringify({ phase: r?.phase, model: r?.model?.version, lastError: r?.lastError, frames: r?.frames })}; last events: ${events.join(' | ')}`,
      );
    }
  }

  /** The device's `models/state.json`. */
  async readState(deviceId: string): Promise<StoredModelState> {
    return JSON.parse(
      await readFile(join(this.dataDir(deviceId), 'models', 'state.json'), 'utf8'),
    ) as StoredModelState;
  }

  /**
   * After each test: stops the agents a failed test left running (so they do not burn CPU
   * under the next one) and checks that every message the agents published decoded
   * against its schema.
   */
  async afterEach(): Promise<void> {
    await Promise.all([...this.#running].map((a) => a.stop()));
    expect(this.observer.invalid).toBe(0);
  }

  /** Stops what is left running and closes everything; idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#running].map((a) => a.stop()));
      await this.#admin?.endAsync(true);
      await this.observer.close();
      await this.server.close();
      await this.cloud.close();
    })();
    return this.#closed;
  }
}

import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { InferenceWorkerPool, ModelSlot, type ScoringModel } from '@linesight/vision';
import {
  describeError,
  isLinesightError,
  type AgentPhase,
  type DesiredState,
  type DeviceEvent,
  type EdgeDataReport,
  type FrameResult,
  type Manifest,
  type ReportedError,
  type ReportedState,
  type SamplingPolicy,
} from '@linesight/protocol';
import type { Camera, Frame } from './camera/camera.ts';
import type { AgentConfig } from './config.ts';
import { DesiredGuard } from './desired-guard.ts';
import type { HandoverEntry } from './guard/guard-protocol.ts';
import { DeviceLink } from './device-link.ts';
import { cloudFetch } from './cloud-tls.ts';
import { ModelStore } from './models/model-store.ts';
import { ModelUpdater, type ModelLoader } from './models/model-updater.ts';
import { slowStepNotice } from './models/step-watch.ts';
import type { AgentHttpStatus } from './http/agent-http-server.ts';
import { LocalOutputs, type VerdictSink } from './outputs/local-outputs.ts';
import { FramePipeline, modelRefOf, type Stage } from './pipeline/frame-pipeline.ts';
import { ShadowRunner } from './pipeline/shadow-runner.ts';
import type { ScoredExtras } from './pipeline/frame-pipeline.ts';
import { Forwarder, type SampleUploader } from './forwarding/forwarder.ts';
import { HttpSampleUploader } from './forwarding/sample-uploader.ts';
import { IdleGapTimer } from './idle-gap-timer.ts';
import { frameImageStats, type FrameImageStats } from './sampling/image-stats.ts';
import { Sampler } from './sampling/sampler.ts';
import { EdgeStore } from './store/edge-store.ts';
import { TelemetryWindowAggregator } from './store/telemetry-window.ts';

/** Optional collaborators of an agent (simulators inject these; real devices use the defaults). */
export interface AgentDeps {
  /** Loads verified model bytes; default: one worker thread per loaded model. */
  loadModel?: ModelLoader;
  /**
   * Worker threads for the default loader, shared by several agents in one
   * process (a simulated fleet); their owner closes it. Default: the agent's
   * own pool, closed by its close().
   */
  workers?: InferenceWorkerPool;
  /** Uploads sampled images to object storage; without one they stay on the device. */
  uploader?: SampleUploader;
  /**
   * Takes the verdicts instead of the agent's own local outputs (a worker
   * under a line guard hands them to the guard, which owns the outputs);
   * the config's `outputs` and `http` are then not used.
   */
  outputs?: VerdictSink;
}

/** A store that could not open is tried again this often. */
const EDGE_STORE_RETRY_MS = 30_000;
/** A close step that takes this long is logged with its name. */
const SLOW_CLOSE_STEP_MS = 1000;

/** The agent's version, reported to the cloud. */
export const AGENT_VERSION = '0.1.0';

/**
 * A device agent: camera frames scored by the live model, desired state
 * followed over MQTT, state, results, events and telemetry reported.
 * Runs without the cloud (on its stored model) and catches up on reconnect.
 */
export class Agent {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly #camera: Camera;
  readonly #slot = new ModelSlot<ScoringModel, Manifest>();
  readonly #shadow: ShadowRunner;
  readonly #store: ModelStore;
  #stableTimer: NodeJS.Timeout | undefined;
  #guard: DesiredGuard | undefined;
  /** Desired documents are checked one at a time, in arrival order. */
  #desiredChain: Promise<void> = Promise.resolve();
  readonly #pipeline: FramePipeline;
  readonly #link: DeviceLink;
  /** HTTP to the cloud with its pinned CA (artifacts, upload URLs). */
  readonly #cloudHttp: ReturnType<typeof cloudFetch>;
  /** Its own worker threads (with a warm spare) when it was given none; closed by close(). */
  readonly #ownWorkers: InferenceWorkerPool | undefined;
  /** Verdicts to the line (PLC, plant broker, SSE...), independent of the cloud link. */
  readonly #outputs: VerdictSink;
  #swaps = 0;
  #cloudConnects = 0;
  readonly #updater: ModelUpdater;
  #phase: AgentPhase = 'starting';
  #lastError: ReportedError | undefined;
  #telemetryTimer: NodeJS.Timeout | undefined;
  #telemetryIntervalSec: number;
  #lastTelemetry = { at: Date.now(), scored: 0 };
  #closing: Promise<void> | undefined;
  readonly #deps: AgentDeps;
  #edge: EdgeStore | undefined;
  #sampler: Sampler | undefined;
  #forwarder: Forwarder | undefined;
  #uploader: HttpSampleUploader | undefined;
  readonly #window = new TelemetryWindowAggregator();
  /** Closes telemetry windows; while frames arrive, right after a frame. */
  #windowTimer: IdleGapTimer | undefined;
  #windowSec: number;
  #windowBase = { dropped: 0, errors: 0, samples: 0 };
  #closingStep: string | undefined;
  #edgeRetryTimer: NodeJS.Timeout | undefined;
  /** The sampling policy of the last desired state (a store opened later takes it). */
  #samplingPolicy: SamplingPolicy | undefined;

  constructor(config: AgentConfig, camera: Camera, logger?: Logger, deps: AgentDeps = {}) {
    this.config = config;
    this.log =
      logger ??
      pino({ level: this.config.logLevel, base: { app: 'agent', deviceId: this.config.deviceId } });
    this.#camera = camera;
    this.#telemetryIntervalSec = this.config.telemetryIntervalSec;
    this.#windowSec = this.config.windowSec;
    this.#deps = deps;
    const { deviceId } = this.config;
    this.#cloudHttp = cloudFetch(this.config.cloudUrl, this.config.tls);
    this.#link = new DeviceLink({
      deviceId,
      mqttUrl: this.config.mqttUrl,
      username: this.config.username,
      password: this.config.password,
      ...(this.config.tls !== undefined ? { tls: this.config.tls } : {}),
      logger: this.log.child({ component: 'link' }),
      onDesired: (doc) => {
        if (doc.deviceId !== deviceId) return;
        this.#desiredChain = this.#desiredChain.then(() => this.#onDesired(doc));
      },
      onConnect: () => {
        this.#cloudConnects++;
        this.#report();
        this.#forwarder?.tick();
      },
      onDisconnect: () => this.#forwarder?.onDisconnect(),
    });
    this.#outputs =
      deps.outputs ??
      new LocalOutputs({
        deviceId,
        outputs: this.config.outputs,
        ...(this.config.http ? { http: this.config.http } : {}),
        status: () => this.status(),
        logger: this.log.child({ component: 'outputs' }),
      });
    this.#shadow = new ShadowRunner(
      new ModelSlot<ScoringModel, Manifest>(),
      this.log.child({ component: 'shadow' }),
      // The shadow scores on idle capacity only: it yields whenever a live frame waits.
      { liveBusy: () => this.#pipeline.inFlight > 0 },
    );
    this.#store = new ModelStore(this.config.dataDir);
    this.#pipeline = new FramePipeline({
      deviceId,
      slot: this.#slot,
      queueDepth: this.config.queueDepth,
      publish: (result) => {
        // The line first: local outputs only queue here, they never wait on the frame path.
        this.#outputs.publish(result);
        this.#link.publishResult(result);
      },
      onDropped: (result) => this.#recordVerdict(result),
      keepInput: () => this.#shadow.wantsInput(),
      onScored: (frame, result, extras) => {
        this.#shadow.offer(frame, result, extras.input);
        this.#onScored(frame, result, extras);
      },
      inspect: (tensor, spec) => frameImageStats(tensor, spec),
      onCameraError: (err) =>
        this.#event('error', 'camera.error', describeError(err), { code: 'ERR_CAMERA' }),
      circuitBreaker: {
        tripsToOpen: this.config.watchdogTrips,
        onOpen: ({ manifest, trips, watchdogMs }) => {
          this.#updater
            .quarantineLive(manifest, {
              code: 'ERR_AGENT_WATCHDOG',
              message: `watchdog: ${trips} consecutive runs over ${watchdogMs} ms on ${manifest.name}@${manifest.version}`,
            })
            .catch((err: unknown) =>
              this.log.error({ err: describeError(err) }, 'could not quarantine a hanging model'),
            );
        },
      },
      logger: this.log.child({ component: 'pipeline' }),
    });
    this.#ownWorkers =
      deps.loadModel === undefined && deps.workers === undefined
        ? new InferenceWorkerPool()
        : undefined;
    const workers = deps.workers ?? this.#ownWorkers;
    this.#updater = new ModelUpdater({
      cloudUrl: this.config.cloudUrl,
      username: this.config.username,
      password: this.config.password,
      fetch: this.#cloudHttp.fetch,
      trustedKeys: () => this.#guard?.trustedKeys ?? this.config.trustedKeys,
      store: this.#store,
      slot: this.#slot,
      shadowSlot: this.#shadow.slot,
      watchdogMs: this.config.watchdogMs,
      crashLoopStarts: this.config.crashLoopStarts,
      downloadTimeoutMs: this.config.downloadTimeoutMs,
      ...(deps.loadModel ? { loadModel: deps.loadModel } : {}),
      ...(workers !== undefined ? { workers } : {}),
      logger: this.log.child({ component: 'updater' }),
      hooks: {
        phase: (phase) => {
          this.#phase = phase;
          this.#report();
        },
        activated: (manifest, source) => {
          if (source !== 'shadow') {
            this.#swaps++;
            // Falling back to last-known-good keeps the error that explains why.
            if (source !== 'last-known-good') this.#lastError = undefined;
            this.#watchStability(manifest);
          }
          this.log.info({ model: modelRefOf(manifest), source }, 'model live');
          this.#event(
            'info',
            'model.activated',
            `${manifest.name}@${manifest.version} is live (${source})`,
            { model: modelRefOf(manifest) },
          );
          this.#report();
        },
        refused: (manifest, err) => {
          const code = isLinesightError(err) ? err.code : 'ERR_MODEL_LOAD';
          this.#lastError = {
            code,
            message: describeError(err).slice(0, 1000),
            at: new Date().toISOString(),
            ...(manifest
              ? {
                  model: {
                    name: manifest.name,
                    version: manifest.version,
                    sha256: manifest.sha256,
                  },
                }
              : {}),
          };
          this.#event('error', 'model.refused', this.#lastError.message, {
            code,
            ...(manifest ? { model: modelRefOf(manifest) } : {}),
          });
          this.#report();
        },
        handled: () => this.#report(),
        slow: (manifest, slow) => {
          const notice = slowStepNotice(manifest, slow, this.#lastError);
          if (notice.lastError === 'clear') this.#lastError = undefined;
          else if (notice.lastError !== 'keep') this.#lastError = notice.lastError;
          const { level, type, message, code } = notice.event;
          this.#event(level, type, message, {
            model: modelRefOf(manifest),
            ...(code !== undefined ? { code } : {}),
          });
          this.#report();
        },
      },
    });
  }

  async #onDesired(doc: DesiredState): Promise<void> {
    const guard = this.#guard;
    if (guard === undefined) return;
    try {
      await guard.check(doc);
    } catch (err) {
      const code = isLinesightError(err) ? err.code : 'ERR_PROTOCOL_PAYLOAD';
      this.log.warn({ revision: doc.revision, err: describeError(err) }, 'desired state refused');
      this.#lastError = {
        code,
        message: describeError(err).slice(0, 1000),
        at: new Date().toISOString(),
      };
      this.#event('error', 'desired.rejected', this.#lastError.message, { code });
      this.#report();
      return;
    }
    if (
      doc.telemetryIntervalSec !== undefined &&
      doc.telemetryIntervalSec !== this.#telemetryIntervalSec
    ) {
      this.#telemetryIntervalSec = doc.telemetryIntervalSec;
      this.#scheduleTelemetry();
    }
    this.#applyEdgeData(doc);
    this.#updater.apply(doc);
  }

  /** What the local HTTP endpoint shows about the agent (phase, model, counters). */
  status(): AgentHttpStatus {
    return {
      deviceId: this.config.deviceId,
      phase: this.#phase,
      model: this.#slot.info ? modelRefOf(this.#slot.info) : null,
      cloudConnected: this.#link.connected,
      cloudReconnects: Math.max(0, this.#cloudConnects - 1),
      swaps: this.#swaps,
      frames: { ...this.#pipeline.counters },
      errors: this.#pipeline.errors,
      watchdogTrips: this.#pipeline.watchdogTrips,
      circuitOpenFrames: this.#pipeline.circuitOpenFrames,
    };
  }

  /**
   * Writes verdicts the line was told by someone else (a line guard, while
   * this process was not running) to the verdict log, so it keeps one row
   * per frame. A frame the guard had sent to a worker that died is skipped
   * when that worker's rows show it recorded the frame itself (its result
   * was lost with it, its row was not): the hand-over is idempotent.
   * Returns how many were written and skipped (`stored: false` without a store).
   */
  recordLineVerdicts(entries: readonly HandoverEntry[]): {
    stored: boolean;
    recorded: number;
    skipped: number;
  } {
    const edge = this.#edge;
    if (edge === undefined) return { stored: false, recorded: 0, skipped: 0 };
    let skipped = 0;
    for (const { result, sentToPid } of entries) {
      if (
        sentToPid !== undefined &&
        edge.recordedBefore(sentToPid, result.seq, result.capturedAt)
      ) {
        skipped++;
        continue;
      }
      this.#recordVerdict(result, { handedOver: true });
    }
    return { stored: true, recorded: entries.length - skipped, skipped };
  }

  /** Frame counters and per-version counts (for tests and the sim). */
  get frames() {
    return { ...this.#pipeline.counters, byVersion: { ...this.#pipeline.framesByVersion } };
  }

  /** The frame loop's progress (frames finished, frames in it), for the systemd watchdog. */
  get frameLoop(): { finished: number; inFlight: number } {
    const c = this.#pipeline.counters;
    return {
      finished: c.scored + c.unknown + c.droppedOverload,
      inFlight: this.#pipeline.inFlight,
    };
  }

  /** The local HTTP endpoint's URL, when it is on and started. */
  get httpUrl(): string | undefined {
    return this.#outputs.httpUrl;
  }

  /** The live model's manifest, if any. */
  get liveModel(): Manifest | undefined {
    return this.#slot.info;
  }

  /** Restores the stored model, connects (in the background) and starts the camera. */
  async start(): Promise<void> {
    this.#guard = await DesiredGuard.open(this.config.dataDir, this.config.trustedKeys);
    this.#guard.onDiskFull = (err) =>
      this.log.warn({ err: describeError(err) }, 'desired state accepted but not persisted');
    await this.#updater.restore();
    this.#phase = this.#slot.hasModel ? 'running' : 'idle';
    await this.#outputs.start();
    const edge = await this.#openEdgeStore();
    this.#event(
      'info',
      'agent.started',
      edge === undefined ? 'agent started without its store' : `agent started (boot ${edge.boot})`,
    );
    this.#link.start();
    await this.#camera.start(this.#pipeline);
    this.#scheduleTelemetry();
    this.#scheduleWindows();
    this.log.info(
      {
        camera: this.#camera.description,
        model: this.#slot.info ? modelRefOf(this.#slot.info) : null,
        // What the box runs: an emulated or real arm64 build says so here.
        arch: process.arch,
        node: process.version,
      },
      'agent started',
    );
  }

  /**
   * Stops in order: camera (no new frames), frames in flight, updates,
   * final state to the cloud, MQTT, then the models and their spare worker. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#telemetryTimer);
      this.#windowTimer?.close();
      clearTimeout(this.#stableTimer);
      clearTimeout(this.#edgeRetryTimer);
      const errors: unknown[] = [];
      const steps: [string, () => unknown][] = [
        ['camera', () => this.#camera.close()],
        ['frames in flight', () => this.#pipeline.drain()],
        ['shadow frames', () => this.#shadow.drain()],
        ['line outputs', () => this.#outputs.close()],
        ['sampler', () => this.#sampler?.drain()],
        ['desired state', () => this.#desiredChain],
        ['updater', () => this.#updater.close()],
        [
          'final state',
          () => {
            this.#closeWindow();
            this.#edge?.flush();
            this.#report();
            this.#publishTelemetry();
          },
        ],
        // Batches in flight get a moment for their PUBACK; what is not acknowledged stays stored.
        ['uploader', () => this.#uploader?.close()],
        ['forwarder', () => withTimeout(this.#forwarder?.close(), 3000)],
        ['mqtt', () => this.#link.close()],
        ['cloud http', () => this.#cloudHttp.close()],
        ['store', () => this.#edge?.close()],
        ['model', () => this.#slot.close()],
        ['shadow model', () => this.#shadow.slot.close()],
        // After the models: their threads are theirs to close; the pool stops its spare.
        ['worker pool', () => this.#ownWorkers?.close()],
      ];
      for (const [name, step] of steps) {
        this.#closingStep = name;
        const startedMs = performance.now();
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
        // A stop that runs long says where (a process manager may kill it before it ends).
        const ms = Math.round(performance.now() - startedMs);
        if (ms >= SLOW_CLOSE_STEP_MS) this.log.warn({ step: name, ms }, 'slow close step');
      }
      this.#closingStep = 'done';
      this.log.info(
        { frames: { ...this.#pipeline.counters }, boot: this.#edge?.boot },
        'agent stopped',
      );
      if (errors.length > 0) throw new AggregateError(errors, 'agent close failed');
    })();
    return this.#closing;
  }

  /** Marks a new version stable once it has run `stableAfterSec` without the agent restarting. */
  #watchStability(manifest: Manifest): void {
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(() => {
      this.#store
        .markStable(manifest.sha256)
        .catch((err: unknown) =>
          this.log.warn({ err: describeError(err) }, 'could not record a stable model'),
        );
    }, this.config.stableAfterSec * 1000);
    this.#stableTimer.unref();
  }

  /**
   * Opens the local store and starts sampling and forwarding. A store that cannot open (a
   * disk full to the last block with nothing of the store's own to evict) must not stop the
   * line: frames are scored and published without it, and opening is tried again.
   */
  async #openEdgeStore(): Promise<EdgeStore | undefined> {
    let edge: EdgeStore;
    try {
      edge = await EdgeStore.open({
        dir: join(this.config.dataDir, 'store'),
        quotaBytes: this.config.storeQuotaBytes,
        quotaCheckMs: this.config.storeQuotaCheckMs,
        logger: this.log.child({ component: 'store' }),
      });
    } catch (err) {
      this.log.error(
        { err: describeError(err), retryInMs: EDGE_STORE_RETRY_MS },
        'local store could not open; scoring without it',
      );
      clearTimeout(this.#edgeRetryTimer);
      this.#edgeRetryTimer = setTimeout(() => {
        if (this.#closing === undefined) void this.#openEdgeStore();
      }, EDGE_STORE_RETRY_MS);
      this.#edgeRetryTimer.unref();
      return undefined;
    }
    if (this.#closing !== undefined) {
      edge.close();
      return undefined;
    }
    this.#edge = edge;
    this.#sampler = new Sampler({ store: edge, logger: this.log.child({ component: 'sampler' }) });
    this.#forwarder = new Forwarder({
      deviceId: this.config.deviceId,
      store: edge,
      publish: (channel, payload) => this.#link.publishStored(channel, payload),
      connected: () => this.#link.connected,
      recordsPerSec: this.config.forwardRecordsPerSec,
      tickMs: this.config.forwardTickMs,
      uploader: this.#deps.uploader ?? this.#httpUploader(),
      logger: this.log.child({ component: 'forwarder' }),
    });
    this.#forwarder.start();
    this.#sampler.setPolicy(this.#samplingPolicy);
    return edge;
  }

  #httpUploader(): HttpSampleUploader {
    this.#uploader = new HttpSampleUploader({
      cloudUrl: this.config.cloudUrl,
      deviceId: this.config.deviceId,
      username: this.config.username,
      password: this.config.password,
      fetch: this.#cloudHttp.fetch,
      logger: this.log.child({ component: 'uploader' }),
    });
    return this.#uploader;
  }

  #onScored(frame: Frame, result: FrameResult, extras: ScoredExtras): void {
    const stats = extras.inspected as FrameImageStats | undefined;
    this.#window.add(result, stats);
    this.#recordVerdict(result);
    this.#sampler?.offer(frame, result, extras.map);
    this.#windowTimer?.frameHandled();
  }

  /** The verdict log keeps what the line was told about every frame, a dropped one included. */
  #recordVerdict(result: FrameResult, options: { handedOver?: boolean } = {}): void {
    this.#edge?.recordVerdict(
      {
        frameSeq: result.seq,
        at: result.capturedAt,
        modelName: result.model?.name ?? null,
        modelVersion: result.model?.version ?? null,
        score: result.score,
        verdict: result.verdict,
        ...(result.reason !== undefined ? { reason: result.reason.slice(0, 500) } : {}),
        latencyMs: result.latencyMs.total,
      },
      options,
    );
  }

  #applyEdgeData(doc: DesiredState): void {
    this.#samplingPolicy = doc.edgeData?.sampling;
    this.#sampler?.setPolicy(doc.edgeData?.sampling);
    const windowSec = doc.edgeData?.windowSec ?? this.config.windowSec;
    if (windowSec !== this.#windowSec) {
      this.#windowSec = windowSec;
      this.#closeWindow();
      this.#scheduleWindows();
    }
  }

  #scheduleWindows(): void {
    this.#windowTimer?.close();
    this.#windowTimer = new IdleGapTimer({
      intervalMs: this.#windowSec * 1000,
      // A line that stopped for a second gets its window closed on time.
      idleAfterMs: 1000,
      run: () => this.#closeWindow(),
    });
    this.#windowTimer.start();
  }

  /** The step of close() under way (for a shutdown that runs out of time): undefined before close(), `done` after it. */
  get closingStep(): string | undefined {
    return this.#closingStep;
  }

  /** Ends the current telemetry window and stores it. */
  #closeWindow(): void {
    const edge = this.#edge;
    if (edge === undefined) return;
    const { droppedOverload } = this.#pipeline.counters;
    const errors = this.#pipeline.errors;
    const sampled = this.#sampler?.stats.sampled;
    const samples = sampled ? Object.values(sampled).reduce((a, b) => a + b, 0) : 0;
    const window = this.#window.close({
      droppedFrames: droppedOverload - this.#windowBase.dropped,
      errors: errors - this.#windowBase.errors,
      samples: samples - this.#windowBase.samples,
      store: edge.state(),
    });
    this.#windowBase = { dropped: droppedOverload, errors, samples };
    edge.addWindow(window);
  }

  /** The edge-data settings in force and the store's state. */
  edgeDataReport(): EdgeDataReport | undefined {
    const edge = this.#edge;
    const sampler = this.#sampler;
    if (edge === undefined || sampler === undefined) return undefined;
    return { windowSec: this.#windowSec, sampling: { ...sampler.policy }, store: edge.state() };
  }

  /** Counters of the local store and the forwarder (for tests and the sim). */
  get edgeData() {
    return {
      boot: this.#edge?.boot,
      store: this.#edge?.state(),
      forwarder: this.#forwarder ? { ...this.#forwarder.stats } : undefined,
      sampler: this.#sampler ? { ...this.#sampler.stats } : undefined,
    };
  }

  #scheduleTelemetry(): void {
    clearInterval(this.#telemetryTimer);
    this.#telemetryTimer = setInterval(() => {
      this.#publishTelemetry();
      this.#report();
    }, this.#telemetryIntervalSec * 1000);
    this.#telemetryTimer.unref();
  }

  #publishTelemetry(): void {
    const now = Date.now();
    const { counters } = this.#pipeline;
    const elapsedSec = Math.max(0.001, (now - this.#lastTelemetry.at) / 1000);
    const fps =
      Math.round(((counters.scored - this.#lastTelemetry.scored) / elapsedSec) * 100) / 100;
    this.#lastTelemetry = { at: now, scored: counters.scored };
    const live = this.#slot.info;
    const shadow = this.#shadow.stats();
    const outputs = this.#outputs.telemetry();
    this.#link.publishTelemetry({
      schema: 'linesight.telemetry/v1',
      deviceId: this.config.deviceId,
      at: new Date(now).toISOString(),
      intervalSec: this.#telemetryIntervalSec,
      model: live ? modelRefOf(live) : null,
      frames: { ...counters },
      fps,
      latencyMs: this.#pipeline.latency.summary(),
      stageLatencyMs: Object.fromEntries(
        Object.entries(this.#pipeline.stages).map(([stage, window]) => [stage, window.summary()]),
      ) as Record<Stage, { p50: number; p99: number; max: number }>,
      errors: this.#pipeline.errors,
      watchdogTrips: this.#pipeline.watchdogTrips,
      circuitOpenFrames: this.#pipeline.circuitOpenFrames,
      ...(shadow ? { shadow } : {}),
      ...(outputs ? { outputs } : {}),
    });
  }

  /** The current reported state. */
  reportedState(): ReportedState {
    const live = this.#slot.info;
    const edgeData = this.edgeDataReport();
    return {
      schema: 'linesight.reported/v1',
      deviceId: this.config.deviceId,
      phase: this.#phase,
      desiredRevision: this.#updater.handledRevision,
      model: live ? modelRefOf(live) : null,
      shadowModel: this.#shadow.slot.info ? modelRefOf(this.#shadow.slot.info) : null,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      frames: { ...this.#pipeline.counters },
      framesByVersion: { ...this.#pipeline.framesByVersion },
      agentVersion: AGENT_VERSION,
      updatedAt: new Date().toISOString(),
      ...(edgeData ? { edgeData } : {}),
    };
  }

  #report(): void {
    this.#link.publishReported(this.reportedState());
  }

  #event(
    level: DeviceEvent['level'],
    type: string,
    message: string,
    extra: Pick<DeviceEvent, 'code' | 'model'> = {},
  ): void {
    this.#edge?.addEvent({
      at: new Date().toISOString(),
      level,
      type,
      message: message.slice(0, 2000),
      ...(extra.code !== undefined ? { code: extra.code.slice(0, 64) } : {}),
    });
    this.#link.publishEvent({
      schema: 'linesight.event/v1',
      deviceId: this.config.deviceId,
      at: new Date().toISOString(),
      level,
      type,
      message: message.slice(0, 2000),
      ...extra,
    });
  }
}

/** Waits for `promise`, but not longer than `ms`. */
async function withTimeout(promise: Promise<void> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

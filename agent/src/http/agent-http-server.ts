import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Type } from '@sinclair/typebox';
import type { AgentPhase, FrameCounters, ModelRef } from '@linesight/protocol';
import type { OutputRunner, OutputStats } from '../outputs/output-runner.ts';
import type { SseOutput } from '../outputs/sse-output.ts';
import type { FrameMetrics } from './frame-metrics.ts';
import { PrometheusText } from './prometheus.ts';

/** What the agent tells the endpoint about itself, read on each request. */
export interface AgentHttpStatus {
  deviceId: string;
  phase: AgentPhase;
  model: ModelRef | null;
  cloudConnected: boolean;
  /** Times the cloud MQTT link connected again after the first time. */
  cloudReconnects: number;
  /** Models that went live since start (first load and swaps). */
  swaps: number;
  frames: FrameCounters;
  errors: number;
  watchdogTrips: number;
  circuitOpenFrames: number;
  /** Under a line guard: its worker and what it answered for it. */
  guard?: LineGuardStatus;
}

/** What a line guard tells about its worker and the verdicts it gave in the worker's place. */
export interface LineGuardStatus {
  /** The scoring process's pid while it takes frames. */
  workerPid: number | null;
  workerRestarts: number;
  /** The worker keeps exiting before it runs stably. */
  crashLoop: boolean;
  verdictBudgetMs: number;
  unknownNoWorker: number;
  unknownTimeout: number;
  unknownWorkerExit: number;
  /** Worker results that came after the guard had answered (not written again). */
  lateResults: number;
  /** Unknowns kept for the next worker's verdict log, and dropped because the list was full. */
  handoverPending: number;
  handoverDropped: number;
}

/** Options of the agent's local HTTP endpoint. */
export interface AgentHttpServerOptions {
  host: string;
  port: number;
  status: () => AgentHttpStatus;
  feed: SseOutput;
  frameMetrics: FrameMetrics;
  runners: () => readonly OutputRunner[];
  /** Largest `limit` of /verdicts (the feed keeps this many). */
  recentVerdicts: number;
  logger: Logger;
}

const startedAt = Date.now();

/**
 * The agent's local, read-only HTTP endpoint for the line: `/healthz`,
 * `/metrics` (Prometheus), `/verdicts?limit=N` (the newest verdicts, oldest
 * first) and `/verdicts/stream` (Server-Sent Events). It works with the cloud
 * unreachable; it has no write routes.
 */
export class AgentHttpServer {
  readonly #o: AgentHttpServerOptions;
  readonly #app: FastifyInstance;
  #closing: Promise<void> | undefined;

  constructor(options: AgentHttpServerOptions) {
    this.#o = options;
    this.#app = Fastify({
      // Per-request logs (info) are off: screens and scrapers poll often. Typed with the base
      // logger so the routes stay logger-agnostic.
      loggerInstance: options.logger.child(
        {},
        { level: options.logger.isLevelEnabled('debug') ? options.logger.level : 'warn' },
      ) as FastifyBaseLogger,
      // SSE streams stay open: closing must not wait for clients to hang up.
      forceCloseConnections: true,
    });
    this.#routes();
  }

  /** Listens; resolves with the base URL. */
  async start(): Promise<string> {
    await this.#app.listen({ host: this.#o.host, port: this.#o.port });
    const address = this.#app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** Ends SSE streams (the feed closes them) and stops listening. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#app.close();
    return this.#closing;
  }

  #routes(): void {
    const app = this.#app;
    app.get('/healthz', async () => {
      const s = this.#o.status();
      const outputs = this.#o.runners().map((r) => r.stats());
      const down = outputs.filter((o) => !o.up).map((o) => o.name);
      return {
        status: down.length === 0 && s.guard?.crashLoop !== true ? 'ok' : 'degraded',
        deviceId: s.deviceId,
        phase: s.phase,
        model: s.model,
        cloudConnected: s.cloudConnected,
        uptimeSec: Math.round((Date.now() - startedAt) / 1000),
        outputsDown: down,
        ...(s.guard !== undefined ? { guard: s.guard } : {}),
      };
    });
    app.get('/metrics', async (_req, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      return this.#metrics();
    });
    app.get(
      '/verdicts',
      {
        schema: {
          querystring: Type.Object({
            limit: Type.Integer({
              minimum: 1,
              maximum: this.#o.recentVerdicts,
              default: Math.min(100, this.#o.recentVerdicts),
            }),
          }),
        },
      },
      async (req) => {
        const { limit } = req.query as { limit: number };
        return { verdicts: this.#o.feed.recent(limit) };
      },
    );
    app.get('/verdicts/stream', (req, reply) => {
      reply.hijack();
      const lastEventId = req.headers['last-event-id'];
      this.#o.feed.attach(reply.raw, typeof lastEventId === 'string' ? lastEventId : undefined);
    });
    app.addHook('onClose', async () => {
      await this.#o.feed.close();
    });
  }

  #metrics(): string {
    const s = this.#o.status();
    const fm = this.#o.frameMetrics;
    const outputs: OutputStats[] = this.#o.runners().map((r) => r.stats());
    const perOutput = (value: (o: OutputStats) => number) =>
      outputs.map((o) => ({ labels: { output: o.name, kind: o.kind }, value: value(o) }));
    const text = new PrometheusText()
      .family(
        'linesight_agent_frames_total',
        'counter',
        'frames by what happened to them',
        Object.entries(s.frames).map(([kind, value]) => ({ labels: { kind }, value })),
      )
      .family(
        'linesight_agent_verdicts_total',
        'counter',
        'verdicts by kind',
        Object.entries(fm.verdicts).map(([verdict, value]) => ({ labels: { verdict }, value })),
      )
      .histogram('linesight_agent_frame_latency_ms', 'arrival at the agent to verdict', [
        { histogram: fm.total },
      ])
      .histogram('linesight_agent_stage_latency_ms', 'pipeline stage latency of scored frames', [
        { labels: { stage: 'preprocess' }, histogram: fm.preprocess },
        { labels: { stage: 'inference' }, histogram: fm.inference },
      ])
      .family('linesight_agent_errors_total', 'counter', 'frame and camera errors', [
        { value: s.errors },
      ])
      .family('linesight_agent_watchdog_trips_total', 'counter', 'inferences over the watchdog', [
        { value: s.watchdogTrips },
      ])
      .family(
        'linesight_agent_circuit_open_frames_total',
        'counter',
        'frames published as unknown because their model version kept exceeding the watchdog',
        [{ value: s.circuitOpenFrames }],
      )
      .family('linesight_agent_model_swaps_total', 'counter', 'models that went live', [
        { value: s.swaps },
      ])
      .family('linesight_agent_cloud_connected', 'gauge', '1 while the cloud link is up', [
        { value: s.cloudConnected ? 1 : 0 },
      ])
      .family('linesight_agent_cloud_reconnects_total', 'counter', 'cloud link reconnections', [
        { value: s.cloudReconnects },
      ])
      .family('linesight_agent_sse_clients', 'gauge', 'connected Server-Sent Events clients', [
        { value: this.#o.feed.clients },
      ])
      .family(
        'linesight_output_up',
        'gauge',
        '1 while the output writes',
        perOutput((o) => (o.up ? 1 : 0)),
      )
      .family(
        'linesight_output_written_total',
        'counter',
        'verdicts written',
        perOutput((o) => o.written),
      )
      .family(
        'linesight_output_skipped_total',
        'counter',
        'verdicts skipped on purpose (filter, rate limit)',
        perOutput((o) => o.skipped),
      )
      .family(
        'linesight_output_dropped_total',
        'counter',
        'verdicts dropped because the queue was full',
        perOutput((o) => o.dropped),
      )
      .family(
        'linesight_output_stale_total',
        'counter',
        'verdicts dropped because they waited longer than maxAgeMs',
        perOutput((o) => o.stale),
      )
      .family(
        'linesight_output_failures_total',
        'counter',
        'failed write attempts',
        perOutput((o) => o.failures),
      )
      .family(
        'linesight_output_outages_total',
        'counter',
        'times the output went down',
        perOutput((o) => o.outages),
      )
      .family(
        'linesight_output_down_ms_total',
        'counter',
        'time spent down (ms)',
        perOutput((o) => o.downMs),
      )
      .family(
        'linesight_output_queued',
        'gauge',
        'verdicts waiting',
        perOutput((o) => o.queued),
      )
      .family(
        'linesight_output_reconnects_total',
        'counter',
        'output reconnections',
        perOutput((o) => o.reconnects),
      )
      .histogram(
        'linesight_output_latency_ms',
        'verdict to written, per output',
        this.#o.runners().map((r) => ({
          labels: { output: r.name, kind: r.kind },
          histogram: r.histogram,
        })),
      );
    return text.toString();
  }
}

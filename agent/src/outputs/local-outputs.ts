import type { Logger } from 'pino';
import type { FrameResult, OutputTelemetry } from '@linesight/protocol';
import { AgentHttpServer, type AgentHttpStatus } from '../http/agent-http-server.ts';
import { FrameMetrics } from '../http/frame-metrics.ts';
import { CommandOutput } from './command-output.ts';
import { OutputFanOut } from './fan-out.ts';
import { ModbusOutput } from './modbus-output.ts';
import { MqttOutput } from './mqtt-output.ts';
import type { LineOutput } from './output.ts';
import { OutputRunner } from './output-runner.ts';
import type { HttpConfig, OutputConfig, OutputPolicy } from './outputs-config.ts';
import { SseOutput } from './sse-output.ts';
import { WebhookOutput } from './webhook-output.ts';

/** Options of the agent's local outputs. */
export interface LocalOutputsOptions {
  deviceId: string;
  /** Validated output entries (see checkOutputConfigs). */
  outputs: readonly OutputConfig[];
  /** The local HTTP endpoint; omitted = off. */
  http?: HttpConfig;
  status: () => AgentHttpStatus;
  logger: Logger;
}

/**
 * Where an agent sends its verdicts for the line: its own local outputs, or
 * (under a line guard) the guard, which owns them.
 */
export interface VerdictSink {
  /** The local HTTP endpoint's URL, when this sink serves one. */
  readonly httpUrl: string | undefined;
  start(): Promise<void>;
  /** Hands over one verdict; returns at once and never throws. */
  publish(result: FrameResult): void;
  /** Per-output counters for telemetry (undefined when there is none). */
  telemetry(): OutputTelemetry[] | undefined;
  /** Idempotent. */
  close(): Promise<void>;
}

/** The SSE feed's policy: a local socket write, so a short queue and no staleness limit. */
const SSE_POLICY: OutputPolicy = {
  queueMax: 1000,
  dropPolicy: 'drop-oldest',
  maxAgeMs: 0,
  timeoutMs: 1000,
  retryBackoff: { initialMs: 100, maxMs: 1000 },
};

/**
 * Everything that takes verdicts to the line without the cloud: the
 * configured outputs (plant MQTT, Modbus, webhook, command) and, when the
 * HTTP endpoint is on, its SSE feed, each behind its own runner, plus the
 * endpoint itself. `publish` is the one call on the frame path.
 */
export class LocalOutputs implements VerdictSink {
  readonly fanOut: OutputFanOut;
  readonly frameMetrics = new FrameMetrics();
  readonly #server: AgentHttpServer | undefined;
  readonly #log: Logger;
  #closing: Promise<void> | undefined;
  /** The HTTP endpoint's URL once started. */
  httpUrl: string | undefined;

  constructor(options: LocalOutputsOptions) {
    const log = options.logger;
    this.#log = log;
    const runners = options.outputs.map((config) => {
      const name = config.name ?? config.kind;
      return new OutputRunner(
        name,
        createOutput(config, options.deviceId, log.child({ output: name })),
        config,
        log.child({ output: name }),
      );
    });
    if (options.http !== undefined) {
      const feed = new SseOutput({
        recentVerdicts: options.http.recentVerdicts,
        maxBufferedBytes: options.http.sseMaxBufferedBytes,
      });
      runners.push(new OutputRunner('sse', feed, SSE_POLICY, log.child({ output: 'sse' })));
      this.#server = new AgentHttpServer({
        host: options.http.host,
        port: options.http.port,
        status: options.status,
        feed,
        frameMetrics: this.frameMetrics,
        runners: () => this.fanOut.runners,
        recentVerdicts: options.http.recentVerdicts,
        logger: log.child({ component: 'http' }),
      });
    }
    this.fanOut = new OutputFanOut(runners, log);
  }

  /** Starts the outputs (connecting in the background) and the HTTP endpoint. */
  async start(): Promise<void> {
    await this.fanOut.start();
    if (this.#server !== undefined) {
      this.httpUrl = await this.#server.start();
      this.#log.info({ url: this.httpUrl }, 'agent http endpoint listening');
    }
  }

  /** Hands a verdict to every output; returns at once and never throws. */
  publish(result: FrameResult): void {
    const verdictAtMs = performance.now();
    this.frameMetrics.observe(result);
    this.fanOut.publish(result, verdictAtMs);
  }

  /** Per-output counters and latency for telemetry (undefined when there is no output). */
  telemetry(): OutputTelemetry[] | undefined {
    const stats = this.fanOut.stats();
    return stats.length === 0 ? undefined : stats;
  }

  /** Closes the HTTP endpoint, then every output. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const errors: unknown[] = [];
      for (const step of [() => this.#server?.close(), () => this.fanOut.close()]) {
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, 'closing local outputs failed');
    })();
    return this.#closing;
  }
}

/** Builds the output a config entry describes. */
export function createOutput(config: OutputConfig, deviceId: string, logger: Logger): LineOutput {
  switch (config.kind) {
    case 'mqtt':
      return new MqttOutput(config, deviceId, logger);
    case 'modbus':
      return new ModbusOutput(config, logger);
    case 'webhook':
      return new WebhookOutput(config);
    case 'command':
      return new CommandOutput(config);
  }
}

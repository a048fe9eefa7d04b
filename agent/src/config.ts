import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { LinesightError } from '@linesight/protocol';
import {
  HttpConfigSchema,
  checkOutputConfigs,
  type OutputConfig,
} from './outputs/outputs-config.ts';

const TrustedKeySchema = Type.Object({ keyId: Type.String(), publicKeyPem: Type.String() });

/** Everything an agent needs to start; defaults live in the schema. */
export const AgentConfigSchema = Type.Object(
  {
    deviceId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
    cloudUrl: Type.String({ pattern: '^https?://', description: 'base URL of the cloud HTTP API' }),
    mqttUrl: Type.String({ pattern: '^(mqtts?|wss?|tcp)://', description: 'MQTT broker URL' }),
    username: Type.String({ minLength: 1 }),
    password: Type.String({
      default: '',
      description: 'the device secret; may be empty when tls holds a client certificate',
    }),
    tls: Type.Optional(
      Type.Object(
        {
          caPem: Type.String({
            minLength: 1,
            description: 'the only CA trusted for the cloud (mqtts, HTTPS), from provisioning',
          }),
          clientCertPem: Type.Optional(Type.String({ minLength: 1 })),
          clientKeyPem: Type.Optional(Type.String({ minLength: 1 })),
        },
        {
          additionalProperties: false,
          description:
            'TLS towards the cloud: the pinned CA, and optionally a client certificate naming the device id (docs/security.md#tls)',
        },
      ),
    ),
    trustedKeys: Type.Array(TrustedKeySchema, {
      minItems: 1,
      description: 'manifest signing keys this device trusts',
    }),
    dataDir: Type.String({ minLength: 1 }),
    telemetryIntervalSec: Type.Number({ minimum: 0.2, maximum: 3600, default: 5 }),
    queueDepth: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 2,
      description: 'frames waiting to be scored before the oldest is dropped',
    }),
    downloadTimeoutMs: Type.Integer({
      minimum: 1000,
      default: 30_000,
      description: 'a download with no progress for this long is retried',
    }),
    watchdogMs: Type.Integer({
      minimum: 10,
      default: 2000,
      description: 'an inference slower than this is abandoned; its frame is published as unknown',
    }),
    watchdogTrips: Type.Integer({
      minimum: 1,
      default: 3,
      description:
        'consecutive watchdog trips on the live version that quarantine it and fall back to last-known-good',
    }),
    crashLoopStarts: Type.Integer({
      minimum: 2,
      default: 3,
      description: 'agent starts before a new, not yet stable version counts as crash-looping',
    }),
    stableAfterSec: Type.Number({
      minimum: 1,
      default: 60,
      description: 'running this long after a swap makes a version stable',
    }),
    windowSec: Type.Number({
      minimum: 0.2,
      maximum: 3600,
      default: 60,
      description: 'telemetry window length kept in the store (desired state may change it)',
    }),
    storeQuotaBytes: Type.Integer({
      minimum: 1024,
      default: 2 * 1024 * 1024 * 1024,
      description: 'disk quota of the local store and its image folder together',
    }),
    forwardRecordsPerSec: Type.Integer({
      minimum: 1,
      default: 2000,
      description:
        'stored records sent per second at most (drains a backlog without flooding the cloud)',
    }),
    forwardTickMs: Type.Integer({
      minimum: 10,
      maximum: 60_000,
      default: 100,
      description:
        'how often the forwarder looks in the store for records to send (a simulated fleet of thousands of agents in one process looks less often)',
    }),
    storeQuotaCheckMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: 1000,
      description: "how often the store checks its disk quota and the disk's free space",
    }),
    lineGuard: Type.Boolean({
      default: false,
      description:
        'run as a line guard: this process owns the camera and the local outputs and scores in a worker process it restarts; the line gets a verdict for every frame (unknown while the worker is away)',
    }),
    verdictBudgetMs: Type.Integer({
      minimum: 50,
      maximum: 60_000,
      default: 800,
      description:
        'line guard: a frame the worker has not answered this long after it arrived is answered unknown (agent-timeout)',
    }),
    logLevel: Type.String({ default: 'info' }),
    outputs: Type.Array(Type.Unknown(), {
      default: [],
      description:
        'local outputs to the line (plant MQTT, Modbus, webhook, command); each entry is checked against the schema its kind names',
    }),
    http: Type.Optional(HttpConfigSchema),
  },
  { additionalProperties: false },
);
/** A validated agent configuration. */
export type AgentConfig = Omit<Static<typeof AgentConfigSchema>, 'outputs'> & {
  outputs: OutputConfig[];
};

/** Applies defaults and validates; reports every problem at once as ERR_AGENT_CONFIG. */
export function loadAgentConfig(input: Record<string, unknown>): AgentConfig {
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const value = Value.Default(AgentConfigSchema, Value.Clone(defined)) as Record<string, unknown>;
  const problems = [...Value.Errors(AgentConfigSchema, value)].map(
    (e) => `${e.path.slice(1) || 'config'}: ${e.message}`,
  );
  const outputs = Array.isArray(value.outputs) ? checkOutputConfigs(value.outputs) : undefined;
  if (outputs !== undefined) {
    problems.push(...outputs.problems);
    value.outputs = outputs.outputs;
  }
  const tls = value.tls as AgentConfig['tls'];
  if ((tls?.clientCertPem === undefined) !== (tls?.clientKeyPem === undefined))
    problems.push('tls: clientCertPem and clientKeyPem go together');
  if (value.password === '' && tls?.clientCertPem === undefined)
    problems.push('password: required unless tls holds a client certificate');
  if (problems.length > 0) {
    throw new LinesightError(
      'ERR_AGENT_CONFIG',
      `invalid agent configuration:\n  ${problems.join('\n  ')}`,
      { details: { problems } },
    );
  }
  return value as AgentConfig;
}

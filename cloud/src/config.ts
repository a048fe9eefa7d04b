import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import cron from 'node-cron';
import { LinesightError } from '@linesight/protocol';
import { DriftSettingsSchema, type DriftSettingsInput } from './drift/drift-settings.ts';
import { RetrainSettingsSchema, type RetrainSettingsInput } from './retrain/retrain-settings.ts';

/** Everything the cloud needs to start; defaults live in the schema. */
export const CloudConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'address HTTP and MQTT listen on' }),
    httpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    mqttPort: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
    mqttMaxConnections: Type.Integer({
      minimum: 1,
      default: 10_000,
      description:
        'device connections the embedded broker holds; beyond it device logins are refused with "server unavailable", logged and counted (docs/scaling.md)',
    }),
    mqttDeviceMessagesPerSec: Type.Number({
      exclusiveMinimum: 0,
      default: 200,
      description:
        'PUBLISH rate each device may sustain on the embedded broker; beyond it the broker stops reading that connection until the rate allows (backpressure, nothing dropped; counted in linesight_mqtt_throttled_publishes_total)',
    }),
    mqttDeviceMessageBurst: Type.Integer({
      minimum: 1,
      default: 1000,
      description:
        'publishes a device may send at once above its rate (a reconnecting agent draining its backlog)',
    }),
    mqttUrl: Type.Optional(
      Type.String({
        pattern: '^(mqtts?|tcp)://[^/@]+$',
        description:
          'an external MQTT broker (Mosquitto 2 with dynamic security) instead of the embedded one, e.g. mqtt://broker:1883 (docs/scaling.md); the cloud manages its logins',
      }),
    ),
    mqttAccounts: Type.Union([Type.Literal('dynsec'), Type.Literal('files')], {
      default: 'dynsec',
      description:
        "how the cloud keeps the external broker's logins: Mosquitto's dynamic-security plugin (over MQTT), or a password_file and acl_file it writes into mosquittoConfigDir and reloads (manifests/mosquitto/README.md)",
    }),
    mosquittoConfigDir: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'with mqttAccounts files: the folder shared with Mosquitto where the cloud writes linesight-passwords and linesight-acl',
      }),
    ),
    mosquittoPidFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "with mqttAccounts files: Mosquitto's pid_file; the cloud sends that process SIGHUP after each write (without it, something else must reload the broker)",
      }),
    ),
    mqttUsername: Type.String({
      minLength: 1,
      default: 'linesight-cloud',
      description: "the cloud's login on the external broker: a dynamic-security admin",
    }),
    mqttPassword: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "the cloud's password on the external broker (the app entry reads it from --mqtt-password-file or LINESIGHT_MQTT_PASSWORD)",
      }),
    ),
    dataDir: Type.String({ minLength: 1, default: './data' }),
    advertisedUrl: Type.Optional(
      Type.String({
        pattern: '^https?://[^/]+',
        description:
          'HTTP base URL devices and clients must use, when it is not the bound address (NAT, a load balancer, a container)',
      }),
    ),
    advertisedMqttUrl: Type.Optional(
      Type.String({
        pattern: '^(mqtts?|wss?|tcp)://[^/]+',
        description: 'MQTT URL handed to devices at provisioning, when it is not the bound address',
      }),
    ),
    tlsCert: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM certificate file (intermediates after it): the cloud serves HTTPS and mqtts with it (docs/security.md#tls); needs tlsKey',
      }),
    ),
    tlsKey: Type.Optional(
      Type.String({ minLength: 1, description: 'PEM private key file of tlsCert (unencrypted)' }),
    ),
    tlsCa: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM file of the CA that signed tlsCert: devices get it at provisioning and trust only it (default: tlsCert itself, which must then be self-signed)',
      }),
    ),
    tlsClientCa: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM file of a CA whose client certificates log devices in without a password (CN or a DNS SAN equal to the device id); needs tlsCert',
      }),
    ),
    metricsAuth: Type.Union([Type.Literal('open'), Type.Literal('token')], {
      default: 'open',
      description:
        "who may read /metrics: 'open' (anyone, for a scraper inside the plant network) or 'token' (an API token of role viewer or more)",
    }),
    adminToken: Type.Optional(
      Type.String({ minLength: 16, description: 'bearer token for admin routes' }),
    ),
    desiredTtlSec: Type.Integer({
      minimum: 60,
      default: 7 * 24 * 3600,
      description:
        'how long a signed desired-state document stays valid; the cloud re-issues documents at half that age',
    }),
    maxModelBytes: Type.Integer({ minimum: 1024, default: 512 * 1024 * 1024 }),
    maxConcurrentModelUploads: Type.Integer({
      minimum: 1,
      default: 2,
      description: 'model uploads streamed and validated at once; more are refused with 503',
    }),
    artifactDownloadConcurrency: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 256,
      description:
        'model artifact downloads streamed at once; more are refused with 503 and a Retry-After that grows with the devices waiting, so a large rollout spreads its downloads (docs/scaling.md)',
    }),
    desiredPublishRatePerSec: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 500,
      description:
        "desired-state documents published a second when many devices change at once (a rollout wave, a key rotation, the republish at start), after a first second's worth at once: a wave of 10,000 reaches its devices over 19 s instead of in one moment (POST /v1/rollouts answers once they are out), so their artifact downloads do not all arrive together (docs/scaling.md)",
    }),
    maxPredictBytes: Type.Integer({
      minimum: 1024,
      default: 20 * 1024 * 1024,
      description: 'largest image body POST /v1/predict accepts',
    }),
    rateLimits: Type.Union(
      [
        Type.Object(
          {
            perMinute: Type.Integer({
              minimum: 1,
              default: 3000,
              description:
                'control-plane requests per minute for each token or device (the rest get 429 and Retry-After)',
            }),
            predictPerMinute: Type.Integer({
              minimum: 1,
              default: 60_000,
              description:
                'POST /v1/predict requests per minute for each token, counted apart from the control plane',
            }),
          },
          { additionalProperties: false },
        ),
        Type.Literal(false),
      ],
      {
        default: { perMinute: 3000, predictPerMinute: 60_000 },
        description: 'per-caller REST rate limits, or false for none',
      },
    ),
    publicUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description:
          'deprecated: the old name of advertisedUrl (it also based the signed blob URLs); loadCloudConfig moves it there',
      }),
    ),
    uploadUrlTtlSec: Type.Integer({
      minimum: 10,
      maximum: 7 * 24 * 3600,
      default: 900,
      description: 'lifetime of the upload URLs devices get for sampled images',
    }),
    s3Bucket: Type.Optional(
      Type.String({
        minLength: 3,
        maxLength: 63,
        description: 'keep artifacts and uploads in this S3 bucket instead of <dataDir>/blobs',
      }),
    ),
    s3Endpoint: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: 'S3-compatible endpoint (MinIO, Ceph); AWS S3 when absent',
      }),
    ),
    s3Region: Type.String({ minLength: 1, default: 'us-east-1' }),
    s3ForcePathStyle: Type.Boolean({
      default: false,
      description:
        'path-style bucket URLs (endpoint/bucket/key), as most S3-compatible servers need',
    }),
    s3Credentials: Type.Optional(
      Type.Object(
        {
          accessKeyId: Type.String({ minLength: 1 }),
          secretAccessKey: Type.String({ minLength: 1 }),
          sessionToken: Type.Optional(Type.String()),
        },
        {
          additionalProperties: false,
          description:
            'static S3 credentials (the app entry takes them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); without them the AWS SDK default chain applies',
        },
      ),
    ),
    maxUploadObjectBytes: Type.Integer({
      minimum: 1024,
      default: 32 * 1024 * 1024,
      description: 'largest object a device may ask an upload URL for',
    }),
    edgeRetentionDays: Type.Object(
      {
        verdicts: Type.Number({ minimum: 0.001, default: 90 }),
        verdict_minutes: Type.Number({ minimum: 0.001, default: 365 }),
        windows: Type.Number({ minimum: 0.001, default: 365 }),
        events: Type.Number({ minimum: 0.001, default: 365 }),
        samples: Type.Number({ minimum: 0.001, default: 365 }),
      },
      {
        default: {},
        additionalProperties: false,
        description:
          'days each edge-data table keeps its rows (verdict log, windows, events, sample index)',
      },
    ),
    edgeRetentionCron: Type.String({
      default: '17 * * * *',
      description: 'node-cron schedule of the edge-data retention job',
    }),
    edgeOrphanGraceHours: Type.Number({
      minimum: 1,
      maximum: 24 * 365,
      default: 24,
      description:
        'hours an object under samples/ that no sample index row names is left alone before the orphan sweep may delete it (docs/edge-data.md); at least four uploadUrlTtlSec, which the default grows to',
    }),
    edgeOrphanSweepCron: Type.String({
      default: '43 2 * * *',
      description:
        'node-cron schedule of the sweep that deletes sample objects no index row names (it lists the whole samples/ prefix: daily by default)',
    }),
    reviewQualityWindowDays: Type.Number({
      minimum: 1,
      maximum: 3650,
      default: 30,
      description:
        'the review precision and recall gauges in /metrics count labelled samples captured in this many days',
    }),
    drift: DriftSettingsSchema,
    retrain: RetrainSettingsSchema,
    logLevel: Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { default: 'info' },
    ),
  },
  { additionalProperties: false },
);
/** A validated cloud configuration. */
export type CloudConfig = Static<typeof CloudConfigSchema>;
/** Cloud configuration as given, before defaults. */
export type CloudConfigInput = Partial<Omit<CloudConfig, 'drift' | 'retrain'>> & {
  drift?: DriftSettingsInput;
  retrain?: RetrainSettingsInput;
};

/** Applies defaults and validates; reports every problem at once as ERR_CLOUD_CONFIG. */
export function loadCloudConfig(input: CloudConfigInput): CloudConfig {
  const withDefaults = Value.Default(CloudConfigSchema, Value.Clone(dropUndefined(input)));
  const problems = [...Value.Errors(CloudConfigSchema, withDefaults)].map(
    (e) => `${e.path.slice(1) || 'config'}: ${allowedValues(e.schema) ?? e.message}`,
  );
  if (problems.length > 0) {
    throw new LinesightError(
      'ERR_CLOUD_CONFIG',
      `invalid cloud configuration:\n  ${problems.join('\n  ')}`,
      {
        details: { problems },
      },
    );
  }
  const config = withDefaults as CloudConfig;
  // The default grace follows a long upload-URL lifetime, so raising that alone stays valid.
  if (input.edgeOrphanGraceHours === undefined)
    config.edgeOrphanGraceHours = Math.max(
      config.edgeOrphanGraceHours,
      Math.ceil((4 * config.uploadUrlTtlSec) / 3600),
    );
  const related = retentionProblems(config);
  if (related.length > 0)
    throw new LinesightError(
      'ERR_CLOUD_CONFIG',
      `invalid cloud configuration:\n  ${related.join('\n  ')}`,
      { details: { problems: related } },
    );
  if (config.publicUrl !== undefined) {
    const trim = (url: string): string => url.replace(/\/+$/, '');
    if (config.advertisedUrl !== undefined && trim(config.advertisedUrl) !== trim(config.publicUrl))
      throw new LinesightError(
        'ERR_CLOUD_CONFIG',
        `invalid cloud configuration:\n  publicUrl: the old name of advertisedUrl, and the two differ (${config.publicUrl} vs ${config.advertisedUrl}): give advertisedUrl only`,
      );
    config.advertisedUrl ??= config.publicUrl;
    delete config.publicUrl;
  }
  if (config.mqttUrl !== undefined && config.mqttPassword === undefined)
    throw new LinesightError(
      'ERR_CLOUD_CONFIG',
      'invalid cloud configuration:\n  mqttPassword: required with mqttUrl (--mqtt-password-file or LINESIGHT_MQTT_PASSWORD)',
    );
  const broker = brokerAccountProblems(config);
  if (broker.length > 0)
    throw new LinesightError(
      'ERR_CLOUD_CONFIG',
      `invalid cloud configuration:\n  ${broker.join('\n  ')}`,
      { details: { problems: broker } },
    );
  return config;
}

/** Problems of the external broker's account settings that the schema cannot see. */
function brokerAccountProblems(config: CloudConfig): string[] {
  const problems: string[] = [];
  if (config.mqttAccounts === 'files') {
    if (config.mqttUrl === undefined)
      problems.push('mqttAccounts: files needs mqttUrl (--mqtt-url)');
    if (config.mosquittoConfigDir === undefined)
      problems.push(
        'mosquittoConfigDir: required with mqttAccounts files (--mosquitto-config-dir)',
      );
    // A password_file line is `username:hash`, an acl_file line `user <username>`.
    if (/[:\s]/.test(config.mqttUsername))
      problems.push(
        `mqttUsername: ${JSON.stringify(config.mqttUsername)} cannot be in a Mosquitto password file (no colon, no white space)`,
      );
  } else if (config.mosquittoConfigDir !== undefined || config.mosquittoPidFile !== undefined)
    problems.push(
      'mosquittoConfigDir, mosquittoPidFile: only with mqttAccounts files (--mqtt-accounts files)',
    );
  return problems;
}

/** Problems of the retention settings that the schema cannot see (schedules, and the grace against the URL lifetime). */
function retentionProblems(config: CloudConfig): string[] {
  const problems: string[] = [];
  for (const key of ['edgeRetentionCron', 'edgeOrphanSweepCron'] as const)
    if (!cron.validate(config[key]))
      problems.push(`${key}: ${JSON.stringify(config[key])} is not a node-cron schedule`);
  // An upload may start a moment before its URL expires; four lifetimes leave room for it to land.
  if (config.edgeOrphanGraceHours * 3600 < 4 * config.uploadUrlTtlSec)
    problems.push(
      `edgeOrphanGraceHours: ${config.edgeOrphanGraceHours} h is shorter than four upload-URL lifetimes (uploadUrlTtlSec ${config.uploadUrlTtlSec} s): the orphan sweep could delete an upload whose index row is on its way`,
    );
  return problems;
}

function dropUndefined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** "must be one of a, b, c" for a union of literals (TypeBox says only "Expected union value"). */
function allowedValues(schema: unknown): string | undefined {
  const anyOf = (schema as { anyOf?: { const?: unknown }[] }).anyOf;
  if (!Array.isArray(anyOf) || !anyOf.every((s) => s.const !== undefined)) return undefined;
  return `must be one of ${anyOf.map((s) => String(s.const)).join(', ')}`;
}

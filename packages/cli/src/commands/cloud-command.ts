import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { runCloud } from '@linesight/cloud';
import { parsePort, parsePositive, parsePositiveInt, logLevelOption } from '../options.ts';
import { logDestination, logPrettyOption } from '../log-output.ts';
import { installShutdown } from '../shutdown.ts';
import { envAdminToken } from '../admin-token.ts';

/** How long the cloud's close (HTTP, broker, jobs, registry) may take after a signal. */
const CLOUD_SHUTDOWN_LIMIT_MS = 10_000;

/** `linesight cloud`: the control plane with its embedded broker. */
export function cloudCommand(): Command {
  return new Command('cloud')
    .description(
      'run the cloud control plane: REST API + docs, MQTT broker (embedded, or an external Mosquitto with --mqtt-url), registry and blob store',
    )
    .option('--http-port <port>', 'HTTP port (0 = any free port)', parsePort, 8080)
    .option('--mqtt-port <port>', 'MQTT port (0 = any free port)', parsePort, 1883)
    .option(
      '--mqtt-max-connections <n>',
      'device connections the embedded broker holds; beyond it devices are refused (logged, counted in /metrics). Default 10000; see docs/scaling.md',
      parsePositiveInt,
    )
    .option(
      '--mqtt-device-rate <n>',
      'publishes per second each device may sustain on the embedded broker; beyond it the broker reads that device more slowly (nothing is dropped). Default 200',
      parsePositive,
    )
    .option(
      '--mqtt-device-burst <n>',
      'publishes a device may send at once above its rate. Default 1000',
      parsePositiveInt,
    )
    .option(
      '--max-artifact-downloads <n>',
      'model artifact downloads streamed at once; more are answered 503 with a Retry-After that grows with the devices waiting (counted in /metrics). Default 256; see docs/scaling.md',
      parsePositiveInt,
    )
    .option(
      '--desired-publish-rate <n>',
      "desired-state documents published a second when many devices change at once (a rollout wave, a key rotation), after a first second's worth at once, so a large wave's downloads do not all arrive together. Default 500; see docs/scaling.md",
      parsePositiveInt,
    )
    .option(
      '--mqtt-url <url>',
      'use this external broker (Mosquitto 2 with dynamic security, e.g. mqtt://broker:1883) instead of the embedded one; the cloud manages its device logins (docs/scaling.md, manifests/mosquitto)',
    )
    .option(
      '--mqtt-username <name>',
      "the cloud's login on the external broker, a dynamic-security admin (default linesight-cloud)",
    )
    .addOption(
      new Option(
        '--mqtt-accounts <kind>',
        "how the cloud keeps the external broker's logins: Mosquitto's dynamic-security plugin, or a password_file and acl_file it writes and reloads (manifests/mosquitto/README.md)",
      )
        .choices(['dynsec', 'files'])
        .default('dynsec'),
    )
    .option(
      '--mosquitto-config-dir <dir>',
      'with --mqtt-accounts files: the folder shared with Mosquitto where the cloud writes linesight-passwords and linesight-acl',
    )
    .option(
      '--mosquitto-pid-file <file>',
      "with --mqtt-accounts files: Mosquitto's pid_file; the cloud sends it SIGHUP after each write",
    )
    .option(
      '--mqtt-password-file <file>',
      "file holding the cloud's password on the external broker (else LINESIGHT_MQTT_PASSWORD)",
      readSecretFile,
    )
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--data-dir <dir>',
      'where the registry, keys, admin token and artifacts live',
      './data',
    )
    .option(
      '--advertised-url <url>',
      'HTTP base URL devices and clients must use, when not the bound address (NAT, load balancer, container)',
    )
    .option(
      '--advertised-mqtt-url <url>',
      'MQTT URL handed to devices at provisioning, when not the bound address',
    )
    .option(
      '--tls-cert <file>',
      'serve HTTPS and mqtts with this PEM certificate (intermediates after it); its names must include the host devices use (docs/security.md#tls)',
    )
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option(
      '--tls-ca <file>',
      'PEM CA that signed --tls-cert, handed to devices at provisioning as the only CA they trust (default: --tls-cert, if self-signed)',
    )
    .option(
      '--tls-client-ca <file>',
      'PEM CA whose client certificates log devices in without a password (CN or DNS SAN = device id)',
    )
    .option(
      '--metrics-token-required',
      '/metrics needs an API token (role viewer or more) instead of being open (config metricsAuth: token)',
    )
    .addOption(logLevelOption('info'))
    .addOption(logPrettyOption())
    .addOption(
      new Option(
        '--public-url <url>',
        'old name of --advertised-url (signed blob URLs use it too)',
      ).hideHelp(),
    )
    .option('--s3-bucket <name>', 'keep artifacts and sampled images in this S3 bucket')
    .option(
      '--s3-endpoint <url>',
      'S3-compatible endpoint, e.g. http://minio:9000 (AWS when absent)',
    )
    .option('--s3-region <region>', 'S3 region (default: AWS_REGION, else us-east-1)')
    .option(
      '--s3-force-path-style',
      'path-style bucket URLs (MinIO and most S3-compatible servers)',
    )
    .option('--drift-schedule <cron>', 'node-cron schedule of the drift job (default */5 * * * *)')
    .option(
      '--drift-lookback-sec <sec>',
      'product drift aggregates the windows of this many seconds (default 900)',
      parsePositive,
    )
    .option('--alert-webhook-url <url>', 'POST drift alerts here when they open and resolve')
    .option(
      '--drift-config <file>',
      'JSON file of drift settings (levels, minimum frames, camera checks; see docs/drift.md); flags win',
      readJsonObject,
    )
    .option(
      '--retrain-config <file>',
      'JSON file of retraining settings (models, schedule, triggers, margin, rollout; see docs/retraining.md)',
      readJsonObject,
    )
    .addHelpText(
      'after',
      '\nThe admin token comes from LINESIGHT_ADMIN_TOKEN; without it one is created in <data-dir>/admin-token (mode 0600).' +
        '\nWith --mqtt-url the embedded broker does not start (--mqtt-port and --mqtt-max-connections are unused): devices connect to that broker, where the cloud gives each device its own login and topics.' +
        '\nWith --s3-bucket, credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), else the AWS SDK default chain. See docs/storage.md.',
    )
    .action(
      async (opts: {
        httpPort: number;
        mqttPort: number;
        mqttMaxConnections?: number;
        mqttDeviceRate?: number;
        mqttDeviceBurst?: number;
        maxArtifactDownloads?: number;
        desiredPublishRate?: number;
        mqttUrl?: string;
        mqttUsername?: string;
        mqttPasswordFile?: string;
        mqttAccounts: 'dynsec' | 'files';
        mosquittoConfigDir?: string;
        mosquittoPidFile?: string;
        host: string;
        dataDir: string;
        advertisedUrl?: string;
        advertisedMqttUrl?: string;
        logLevel: string;
        logPretty?: boolean;
        tlsCert?: string;
        tlsKey?: string;
        tlsCa?: string;
        tlsClientCa?: string;
        metricsTokenRequired?: boolean;
        publicUrl?: string;
        s3Bucket?: string;
        s3Endpoint?: string;
        s3Region?: string;
        s3ForcePathStyle?: boolean;
        driftSchedule?: string;
        driftLookbackSec?: number;
        alertWebhookUrl?: string;
        driftConfig?: Record<string, unknown>;
        retrainConfig?: Record<string, unknown>;
      }) => {
        const adminToken = envAdminToken();
        const cloud = await runCloud({
          ...(opts.logPretty ? { logDestination: logDestination(true) } : {}),
          config: {
            httpPort: opts.httpPort,
            mqttPort: opts.mqttPort,
            mqttMaxConnections: opts.mqttMaxConnections,
            mqttDeviceMessagesPerSec: opts.mqttDeviceRate,
            mqttDeviceMessageBurst: opts.mqttDeviceBurst,
            artifactDownloadConcurrency: opts.maxArtifactDownloads,
            desiredPublishRatePerSec: opts.desiredPublishRate,
            mqttUrl: opts.mqttUrl,
            mqttUsername: opts.mqttUsername,
            mqttPassword: opts.mqttPasswordFile,
            mqttAccounts: opts.mqttAccounts,
            mosquittoConfigDir: opts.mosquittoConfigDir,
            mosquittoPidFile: opts.mosquittoPidFile,
            host: opts.host,
            dataDir: opts.dataDir,
            advertisedUrl: opts.advertisedUrl,
            advertisedMqttUrl: opts.advertisedMqttUrl,
            logLevel: opts.logLevel as 'info',
            tlsCert: opts.tlsCert,
            tlsKey: opts.tlsKey,
            tlsCa: opts.tlsCa,
            tlsClientCa: opts.tlsClientCa,
            ...(opts.metricsTokenRequired ? { metricsAuth: 'token' as const } : {}),
            publicUrl: opts.publicUrl,
            s3Bucket: opts.s3Bucket,
            s3Endpoint: opts.s3Endpoint,
            s3Region: opts.s3Region,
            s3ForcePathStyle: opts.s3ForcePathStyle,
            // Validated with the rest of the configuration (every problem reported at once).
            drift: {
              ...opts.driftConfig,
              ...(opts.driftSchedule !== undefined ? { schedule: opts.driftSchedule } : {}),
              ...(opts.driftLookbackSec !== undefined
                ? { lookbackSec: opts.driftLookbackSec }
                : {}),
              ...(opts.alertWebhookUrl !== undefined ? { webhookUrl: opts.alertWebhookUrl } : {}),
            },
            ...(opts.retrainConfig !== undefined ? { retrain: opts.retrainConfig } : {}),
            ...(adminToken === undefined ? {} : { adminToken }),
          },
          env: process.env,
        });
        installShutdown({
          logger: cloud.log,
          limitMs: CLOUD_SHUTDOWN_LIMIT_MS,
          close: () => cloud.close(),
        });
      },
    );
}

/** The first line of a secret file (the option's value becomes the secret itself). */
function readSecretFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(
      `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const secret = text.split('\n')[0]?.trim() ?? '';
  if (secret === '') throw new InvalidArgumentError(`${path} is empty`);
  return secret;
}

function readJsonObject(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(
      `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError(`${path} must hold a JSON object`);
  return value as Record<string, unknown>;
}

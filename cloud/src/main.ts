import pino from 'pino';
import { checkLogLevel } from '@linesight/protocol';
import { Cloud } from './cloud.ts';
import type { CloudConfigInput } from './config.ts';

/** How the app entry is told what to run. */
export interface RunCloudOptions {
  /** Validated by the cloud; `adminToken` is the CLI's LINESIGHT_ADMIN_TOKEN, else the data dir's token is used. */
  config: CloudConfigInput;
  env: NodeJS.ProcessEnv;
  /** Where log lines go (e.g. a pretty printer); pino's JSON on stdout when omitted. */
  logDestination?: pino.DestinationStream;
}

/**
 * The cloud app entry: reads LINESIGHT_MQTT_PASSWORD and, when S3 is
 * configured, the standard AWS variables from the environment, starts the
 * cloud and logs where it listens; the caller (the CLI) installs the signal handling
 * that runs its close().
 */
export async function runCloud(options: RunCloudOptions): Promise<Cloud> {
  const { env } = options;
  const envMqttPassword = env.LINESIGHT_MQTT_PASSWORD;
  const s3 = options.config.s3Bucket !== undefined;
  const region = options.config.s3Region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const config: CloudConfigInput = {
    ...options.config,
    ...(envMqttPassword && options.config.mqttPassword === undefined
      ? { mqttPassword: envMqttPassword }
      : {}),
    ...(s3 && region ? { s3Region: region } : {}),
    ...(s3 && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          s3Credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
  };
  // Before pino sees it: pino's error for an unknown level names none of the valid ones.
  const level = checkLogLevel(config.logLevel ?? 'info', 'ERR_CLOUD_CONFIG');
  const logOptions = { level, base: { app: 'cloud' } };
  const logger =
    options.logDestination === undefined
      ? pino(logOptions)
      : pino(logOptions, options.logDestination);
  const cloud = new Cloud(config, logger);
  const urls = await cloud.start();
  const token = cloud.adminToken;
  logger.info(
    {
      httpUrl: urls.http,
      mqttUrl: urls.mqtt,
      advertisedUrl: cloud.advertised.http,
      advertisedMqttUrl: cloud.advertised.mqtt,
      docsUrl: `${urls.http}/docs`,
      adminTokenSource: token.source,
      adminTokenPath: token.path,
      blobStore: cloud.blobs.kind,
      broker: config.mqttUrl === undefined ? 'embedded' : 'external',
    },
    token.source === 'config'
      ? 'cloud ready; admin token from LINESIGHT_ADMIN_TOKEN'
      : `cloud ready; admin token in ${token.path}`,
  );
  return cloud;
}

// A real cloud in this process for tests: HTTP and MQTT on free ports of 127.0.0.1, its
// data in a temporary folder that close() removes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud, type CloudConfigInput } from '@linesight/cloud';

/** A started test cloud. */
export interface TestCloud {
  /** The running cloud (a new one after {@link TestCloud.restart}). */
  readonly cloud: Cloud;
  /** The temporary folder; the cloud's data dir is `<dir>/cloud`. */
  readonly dir: string;
  readonly httpUrl: string;
  readonly mqttUrl: string;
  readonly adminToken: string;
  /** A REST client with the admin token. */
  readonly api: CloudApiClient;
  /**
   * Closes the cloud and starts a new one on the same data dir and configuration, as a
   * process restart does; its ports are new (port 0), so read the URLs again.
   */
  restart(): Promise<void>;
  /** Closes the cloud and removes its folder; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a cloud on port 0 (HTTP and MQTT) with a fresh data dir. `config` adds to or
 * overrides that configuration (TLS, S3, limits); the logger is silent unless given.
 */
export async function startTestCloud(
  options: { config?: Partial<CloudConfigInput>; logger?: Logger } = {},
): Promise<TestCloud> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-test-cloud-'));
  const config: CloudConfigInput = {
    httpPort: 0,
    mqttPort: 0,
    dataDir: join(dir, 'cloud'),
    ...options.config,
  };
  const logger = options.logger ?? pino({ level: 'silent' });
  let cloud: Cloud;
  try {
    cloud = await startCloud(config, logger);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const apiOf = (c: Cloud) =>
    new CloudApiClient({ baseUrl: c.urls.http, adminToken: c.adminToken.token });
  let api = apiOf(cloud);
  let closing: Promise<void> | undefined;
  return {
    get cloud() {
      return cloud;
    },
    dir,
    get httpUrl() {
      return cloud.urls.http;
    },
    get mqttUrl() {
      return cloud.urls.mqtt;
    },
    get adminToken() {
      return cloud.adminToken.token;
    },
    get api() {
      return api;
    },
    restart: async () => {
      if (closing !== undefined) throw new Error('the test cloud is closed');
      await cloud.close();
      cloud = await startCloud(config, logger);
      api = apiOf(cloud);
    },
    close: () =>
      (closing ??= (async () => {
        await cloud.close();
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

/** A started cloud, or the start's error with whatever it opened closed again. */
async function startCloud(config: CloudConfigInput, logger: Logger): Promise<Cloud> {
  const cloud = new Cloud(config, logger);
  try {
    await cloud.start();
  } catch (err) {
    await cloud.close();
    throw err;
  }
  return cloud;
}

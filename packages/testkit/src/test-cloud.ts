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
  readonly cloud: Cloud;
  /** The temporary folder; the cloud's data dir is `<dir>/cloud`. */
  readonly dir: string;
  readonly httpUrl: string;
  readonly mqttUrl: string;
  readonly adminToken: string;
  /** A REST client with the admin token. */
  readonly api: CloudApiClient;
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
  const cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud'), ...options.config },
    options.logger ?? pino({ level: 'silent' }),
  );
  try {
    await cloud.start();
  } catch (err) {
    await cloud.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const { http, mqtt } = cloud.urls;
  const adminToken = cloud.adminToken.token;
  let closing: Promise<void> | undefined;
  return {
    cloud,
    dir,
    httpUrl: http,
    mqttUrl: mqtt,
    adminToken,
    api: new CloudApiClient({ baseUrl: http, adminToken }),
    close: () =>
      (closing ??= (async () => {
        await cloud.close();
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

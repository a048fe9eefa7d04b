// `linesight cloud` as its own process for e2e tests: ports 0, a given data dir, an admin
// token, optionally S3 storage or TLS; resolves once it logs its URLs.
import { randomBytes } from 'node:crypto';
import { CloudApiClient } from '@linesight/api-client';
import type { S3TestServer } from '@linesight/cloud/testing';
import { LinesightProcess, type LogLine } from './linesight-process.ts';

/** A started cloud process. */
export interface CloudProcess {
  readonly process: LinesightProcess;
  /** The log line that announced the URLs (httpUrl, mqttUrl, blobStore, ...). */
  readonly ready: LogLine;
  readonly httpUrl: string;
  readonly mqttUrl: string;
  readonly adminToken: string;
  /** A REST client with the admin token (over HTTPS only if this process trusts the CA). */
  readonly api: CloudApiClient;
}

/** Options of {@link startCloudProcess}. */
export interface CloudProcessOptions {
  dataDir: string;
  /** Default: a random token. */
  adminToken?: string;
  /** Artifacts and samples in this s3rver, reached at `endpoint` (default its own, e.g. a proxy). */
  s3?: { server: S3TestServer; endpoint?: string };
  /** More `linesight cloud` flags (TLS, limits). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** A busy CI machine takes a while to start the cloud through the TypeScript loader. */
  readyTimeoutMs?: number;
}

/** Starts `linesight cloud --http-port 0 --mqtt-port 0 --data-dir <dataDir>` and waits for its URLs. */
export async function startCloudProcess(options: CloudProcessOptions): Promise<CloudProcess> {
  const adminToken = options.adminToken ?? `test-${randomBytes(16).toString('hex')}`;
  const s3 = options.s3;
  const cloud = new LinesightProcess(
    [
      'cloud',
      '--http-port',
      '0',
      '--mqtt-port',
      '0',
      '--data-dir',
      options.dataDir,
      ...(s3 === undefined
        ? []
        : [
            '--s3-bucket',
            s3.server.bucket,
            '--s3-endpoint',
            s3.endpoint ?? s3.server.endpoint,
            '--s3-force-path-style',
          ]),
      ...(options.args ?? []),
    ],
    {
      LINESIGHT_ADMIN_TOKEN: adminToken,
      ...(s3 === undefined
        ? {}
        : {
            AWS_ACCESS_KEY_ID: s3.server.credentials.accessKeyId,
            AWS_SECRET_ACCESS_KEY: s3.server.credentials.secretAccessKey,
            AWS_REGION: s3.server.region,
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          }),
      ...options.env,
    },
  );
  let ready: LogLine;
  try {
    ready = await cloud.waitForLog(
      (l) => typeof l.httpUrl === 'string',
      options.readyTimeoutMs ?? 180_000,
    );
  } catch (err) {
    await cloud.stop();
    throw err;
  }
  const httpUrl = ready.httpUrl as string;
  return {
    process: cloud,
    ready,
    httpUrl,
    mqttUrl: ready.mqttUrl as string,
    adminToken,
    api: new CloudApiClient({ baseUrl: httpUrl, adminToken }),
  };
}
